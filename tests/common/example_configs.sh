#!/bin/bash
# example_configs.sh - the example files of ops/configs, as meson rewrote
# them (BUILDDIR/ops/configs, the files `meson install` installs), parse with
# the daemons' own parsers: a bad setting exits 2 ("FILE:LINE: reason"), so an
# exit 1 with an index/topology error means the config itself was accepted.
# The coordinator is also started on the example topology.conf (its shards
# need not run) and stopped with SIGTERM. No example listens on every
# interface (0.0.0.0 / [::]): there is no TLS or authentication yet, so the
# examples stay on loopback and exposing a server is a deliberate edit.
# usage: example_configs.sh FUNNEL_SHARD FUNNEL_COORDINATOR BUILDDIR/ops/configs
set -u
shard=${1:?funnel-shard}; coord=${2:?funnel-coordinator}; dir=${3:?ops/configs}
tmp=$(mktemp -d /tmp/funnel-example-configs-XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fails=0
check() {  # check DESCRIPTION COND...
    local what=$1; shift
    if "$@"; then echo "PASS $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
# run EXPECTED_RC LOG CMD...: runs CMD, stderr to LOG, checks the exit status
run() {
    local want=$1 log=$2; shift 2
    "$@" >/dev/null 2>"$log"
    local rc=$?
    check "exit $rc (want $want): $*" [ "$rc" = "$want" ]
    [ "$rc" = "$want" ] || sed 's/^/  | /' "$log"
}

for f in shard-000.conf coordinator.conf topology.conf funnel-shard@.service funnel-coordinator.service; do
    check "$f exists" [ -s "$dir/$f" ]
    check "$f: rewritten by meson (no #@ template notes)" bash -c "! grep -n '^#@' '$dir/$f'"
done

# Loopback only: outside comments, no example binds or names a wildcard
# address (a listen key, a --listen flag in a unit, or a topology address).
for f in shard-000.conf coordinator.conf topology.conf funnel-shard@.service funnel-coordinator.service; do
    check "$f: no 0.0.0.0 or [::] outside comments" \
        bash -c "! sed 's/#.*//' '$dir/$f' | grep -nE '0\.0\.0\.0|\[::\]'"
done
for f in shard-000.conf coordinator.conf; do
    check "$f: listen is on 127.0.0.1" grep -qE '^listen = 127\.0\.0\.1:[0-9]+$' "$dir/$f"
done
check "topology.conf: every address on 127.0.0.1" \
    bash -c "sed 's/#.*//' '$dir/topology.conf' | awk 'NF { for (i = 3; i <= NF; i++) if (\$i !~ /^127\\.0\\.0\\.1:[0-9]+\$/) bad = 1 } END { exit bad }'"

# funnel-shard: every key of shard.conf accepted; the index is what fails.
run 1 "$tmp/s.log" "$shard" --config "$dir/shard-000.conf" --index /nonexistent/shard-000
check "shard: error is about the index" grep -q "/nonexistent/shard-000" "$tmp/s.log"
check "shard: no config complaint" bash -c "! grep -q 'shard-000.conf' '$tmp/s.log'"

# The same file with a bad line is refused with FILE:LINE (the test can fail).
cp "$dir/shard-000.conf" "$tmp/bad-shard.conf"
echo "bm25.k1 = fast" >> "$tmp/bad-shard.conf"
n=$(wc -l < "$tmp/bad-shard.conf")
run 2 "$tmp/sb.log" "$shard" --config "$tmp/bad-shard.conf" --index /nonexistent/shard-000
check "shard: bad line reported as FILE:$n" grep -q "bad-shard.conf:$n: bm25.k1" "$tmp/sb.log"

# funnel-coordinator: coordinator.conf accepted; the topology is what fails.
run 1 "$tmp/c.log" "$coord" --config "$dir/coordinator.conf" --topology /nonexistent/topology.conf
check "coordinator: error is about the topology" grep -q "topology: /nonexistent/topology.conf" "$tmp/c.log"

cp "$dir/coordinator.conf" "$tmp/bad-coord.conf"
echo "budget_ms = -5" >> "$tmp/bad-coord.conf"
n=$(wc -l < "$tmp/bad-coord.conf")
run 2 "$tmp/cb.log" "$coord" --config "$tmp/bad-coord.conf" --topology /nonexistent/topology.conf
check "coordinator: bad line reported as FILE:$n" grep -q "bad-coord.conf:$n: budget-ms" "$tmp/cb.log"

# The example topology parses: the coordinator starts on it (the shards are
# not running; health probes off) and stops cleanly on SIGTERM.
"$coord" --config "$dir/coordinator.conf" --topology "$dir/topology.conf" \
    --listen 127.0.0.1:0 --addr-file "$tmp/coord.addr" --health-interval-ms 0 2>"$tmp/ct.log" &
pid=$!
for _ in $(seq 200); do [ -s "$tmp/coord.addr" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
check "coordinator: started on topology.conf" [ -s "$tmp/coord.addr" ]
check "coordinator: 3 shards from topology.conf" grep -q "3 shards" "$tmp/ct.log"
kill -TERM "$pid" 2>/dev/null
wait "$pid"; rc=$?; pid=
check "coordinator: exit $rc after SIGTERM (want 0)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/  | /' "$tmp/ct.log"

# The units, if systemd-analyze is here (ExecStart pointed at /bin/true,
# which exists; the instance name fills %i).
if systemd-analyze --version >/dev/null 2>&1; then
    sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' "$dir/funnel-shard@.service" > "$tmp/funnel-shard@000.service"
    sed 's#^ExecStart=[^ ]*#ExecStart=/bin/true#' "$dir/funnel-coordinator.service" > "$tmp/funnel-coordinator.service"
    check "systemd-analyze verify" systemd-analyze verify "$tmp/funnel-shard@000.service" "$tmp/funnel-coordinator.service"
fi
for u in "$dir/funnel-shard@.service" "$dir/funnel-coordinator.service"; do
    for want in '^Type=simple$' '^ExecStart=.* --config ' '^Restart=on-failure$' '^KillSignal=SIGTERM$'; do
        check "$(basename "$u"): $want" grep -q -- "$want" "$u"
    done
done

echo "FAILURES: $fails"
[ "$fails" = 0 ]
