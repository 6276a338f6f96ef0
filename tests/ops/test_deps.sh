#!/bin/bash
# test_deps.sh - ops/scripts/deps.sh waits for another apt/dpkg run instead of
# failing, with a fake apt-get (APT_GET) and dpkg-query (on PATH): nothing is
# installed or removed, so it is safe anywhere, root or not.
#   1. lists lock held for 2 updates, dpkg lock for 1 install: deps.sh says
#      whom it waits for (the PIDs apt names), retries, succeeds; every apt-get
#      got -o DPkg::Lock::Timeout=N with N <= FUNNEL_APT_TIMEOUT;
#   2. the lock never frees: deps.sh gives up after FUNNEL_APT_TIMEOUT, naming
#      the holder, with apt's exit status;
#   3. another apt failure: no retry, apt's message shown;
#   4. nothing missing: apt-get is not run; a bad FUNNEL_APT_TIMEOUT: exit 2.
# usage: test_deps.sh ops/scripts/deps.sh
set -uo pipefail
DEPS=${1:?deps.sh}
T=$(mktemp -d "${TMPDIR:-/tmp}/funnel-deps-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

mkdir "$T/bin"
# dpkg-query: every package installed except those in $FAKE_MISSING
cat > "$T/bin/dpkg-query" <<'SH'
#!/bin/bash
p=${!#}
for m in ${FAKE_MISSING:-}; do [ "$p" = "$m" ] && exit 1; done
printf 'install ok installed'
SH
# apt-get: logs its arguments; the first $FAKE_LOCKED_UPDATES updates and
# $FAKE_LOCKED_INSTALLS installs fail the way apt 2.6 does when locked
cat > "$T/bin/apt-get" <<'SH'
#!/bin/bash
echo "$*" >> "$FAKE_STATE/calls"
cmd=
for a in "$@"; do case $a in update|install) cmd=$a ;; esac; done
n=$(( $(grep -c -w "$cmd" "$FAKE_STATE/calls") ))
if [ "$cmd" = update ] && [ "$n" -le "${FAKE_LOCKED_UPDATES:-0}" ]; then
    echo "Reading package lists..."
    echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
    echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
    exit 100
fi
if [ "$cmd" = install ] && [ "$n" -le "${FAKE_LOCKED_INSTALLS:-0}" ]; then
    for _ in 1 2 3; do
        echo "Waiting for cache lock: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4343 (unattended-upgr)..."
    done
    echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
    exit 100
fi
if [ "$cmd" = install ] && [ -n "${FAKE_OTHER_ERROR:-}" ]; then
    echo "E: Unable to locate package $FAKE_OTHER_ERROR" >&2
    exit 100
fi
echo "fake apt-get $cmd: done"
SH
chmod +x "$T/bin/dpkg-query" "$T/bin/apt-get"

# run_deps NAME [VAR=VALUE...]: deps.sh with the fakes; output in $T/NAME.out
run_deps() {
    local name=$1; shift
    mkdir -p "$T/$name"
    env PATH="$T/bin:$PATH" APT_GET="$T/bin/apt-get" FUNNEL_SUDO= FAKE_STATE="$T/$name" \
        FUNNEL_APT_RETRY_S=0.2 "$@" bash "$DEPS" > "$T/$name.out" 2>&1
}

# 1. waits, says for whom, succeeds
start=$SECONDS
run_deps wait FAKE_MISSING="lmdb-utils wamerican" FAKE_LOCKED_UPDATES=2 FAKE_LOCKED_INSTALLS=1 FUNNEL_APT_TIMEOUT=60
rc=$?
cat "$T/wait.out"
[ "$rc" = 0 ] || fail "deps.sh exit $rc while the locks were released (want 0)"
grep -q "waiting for another apt/dpkg run: /var/lib/apt/lists/lock is held by process 4242 (apt-get)" "$T/wait.out" \
    || fail "no line naming the lists lock's holder"
[ "$(grep -c 'waiting for another apt/dpkg run' "$T/wait.out")" = 2 ] \
    || fail "want one waiting line per holder (lists lock, then the dpkg lock)"
grep -q "Waiting for cache lock: .*held by process 4343 (unattended-upgr)" "$T/wait.out" \
    || fail "apt's own waiting line (naming the dpkg lock's holder) was not passed on"
[ "$(grep -c 'Waiting for cache lock' "$T/wait.out")" = 1 ] || fail "apt's repeated waiting line was not squeezed to one"
[ "$(grep -c -w update "$T/wait/calls")" = 3 ] || fail "want 3 apt-get update runs (2 locked + 1)"
[ "$(grep -c -w install "$T/wait/calls")" = 2 ] || fail "want 2 apt-get install runs (1 locked + 1)"
grep -w install "$T/wait/calls" | grep -q -- "--no-install-recommends lmdb-utils wamerican$" \
    || fail "install did not ask for exactly the missing packages: $(grep -w install "$T/wait/calls" | tail -n 1)"
while read -r line; do
    t=$(sed -n 's/.*-o DPkg::Lock::Timeout=\([0-9]*\) .*/\1/p' <<<"$line")
    [ -n "$t" ] && [ "$t" -le 60 ] || fail "apt-get without DPkg::Lock::Timeout <= 60: $line"
done < "$T/wait/calls"
ok "locked twice (lists) and once (dpkg): waited, named PIDs 4242 and 4343, installed ($((SECONDS - start)) s)"

# 2. the lock is never released: gives up after the timeout, naming the holder
start=$SECONDS
run_deps stuck FAKE_MISSING=lmdb-utils FAKE_LOCKED_UPDATES=1000 FUNNEL_APT_TIMEOUT=2
rc=$?; took=$((SECONDS - start))
cat "$T/stuck.out"
[ "$rc" = 100 ] || fail "deps.sh exit $rc with the lock never released (want apt's 100)"
grep -q "gave up after 2 s waiting for another apt/dpkg run: /var/lib/apt/lists/lock is held by process 4242 (apt-get)" \
    "$T/stuck.out" || fail "no 'gave up' line naming the holder"
[ "$took" -le 6 ] || fail "took $took s with FUNNEL_APT_TIMEOUT=2"
grep -qw install "$T/stuck/calls" && fail "installed although update never ran"
ok "lock never released: gave up after $took s (FUNNEL_APT_TIMEOUT=2), exit 100"

# 3. another failure: no retry, apt's message shown
run_deps other FAKE_MISSING=lmdb-utils FAKE_OTHER_ERROR=lmdb-utils FUNNEL_APT_TIMEOUT=60
rc=$?
[ "$rc" = 100 ] || fail "deps.sh exit $rc on a non-lock apt error (want 100)"
grep -q "E: Unable to locate package lmdb-utils" "$T/other.out" || fail "apt's error was not shown"
[ "$(grep -c -w install "$T/other/calls")" = 1 ] || fail "a non-lock failure was retried"
ok "a non-lock apt error stops at once with apt's message"

# 4. nothing missing: no apt-get; a bad timeout is a usage error
run_deps none FUNNEL_APT_TIMEOUT=60 || fail "deps.sh failed with nothing to install"
[ ! -e "$T/none/calls" ] || fail "apt-get ran with nothing missing"
run_deps bad FAKE_MISSING=lmdb-utils FUNNEL_APT_TIMEOUT=soon
rc=$?
[ "$rc" = 2 ] && grep -q "FUNNEL_APT_TIMEOUT='soon' is not a number" "$T/bad.out" || fail "bad FUNNEL_APT_TIMEOUT: exit $rc"
ok "nothing missing: no apt-get; FUNNEL_APT_TIMEOUT=soon: exit 2"
