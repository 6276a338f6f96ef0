#!/bin/bash
# test_install.sh - `meson install --destdir D` installs exactly the three
# programs, the two systemd units, the three configs the units name and the
# docs, and the installed files point at each other:
#   PREFIX/BINDIR/{funnel,funnel-shard,funnel-coordinator}          (0755)
#   PREFIX/lib/systemd/system/{funnel-shard@,funnel-coordinator}.service
#   SYSCONFDIR/funnel/{coordinator,topology,shard-000}.conf
#   DATADIR/doc/funnel/{README,architecture,...}.md
# The units' ExecStart= names the installed binary and --config an installed
# config, Documentation= installed docs, coordinator.conf's topology the
# installed topology.conf; the installed programs answer --version and the
# installed shard-000.conf parses. `systemd-analyze verify` runs on the units
# when it exists (the ExecStart binary pointed into D, where it is installed).
# Nothing else is installed (no static libraries, no test programs).
#
# usage: test_install.sh FUNNEL SHARD COORDINATOR BUILDDIR MESON
#   with FUNNEL_PREFIX, FUNNEL_BINDIR, FUNNEL_SYSCONFDIR, FUNNEL_DATADIR (the
#   absolute install paths meson computed) in the environment.
. "$(dirname "$0")/lib.sh"
B=${4:?build dir}; MESON=${5:-meson}
prefix=${FUNNEL_PREFIX:?}; bindir=${FUNNEL_BINDIR:?}; etc=${FUNNEL_SYSCONFDIR:?}/funnel
docdir=${FUNNEL_DATADIR:?}/doc/funnel; unitdir=$prefix/lib/systemd/system
D=$T/dest

"$MESON" install -C "$B" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1 \
    || { tail -n 20 "$T/install.log"; fail "meson install --destdir"; }
ok "meson install -C $B --destdir D --no-rebuild"

# exactly these files
{
    for p in funnel funnel-shard funnel-coordinator; do echo "$bindir/$p"; done
    echo "$unitdir/funnel-shard@.service"; echo "$unitdir/funnel-coordinator.service"
    for c in coordinator.conf topology.conf shard-000.conf; do echo "$etc/$c"; done
    for d in README ann architecture cli engagement evaluation index-format ltr operations query-language ranking result-page rpc snippets vectors; do echo "$docdir/$d.md"; done
} | sort > "$T/want"
(cd "$D" && find . \( -type f -o -type l \) | sed 's#^\.##' | sort) > "$T/got"
diff -u "$T/want" "$T/got" >"$T/diff" || { cat "$T/diff"; fail "installed files differ from the list (- missing, + extra)"; }
ok "installed exactly $(wc -l < "$T/want") files:"
sed 's/^/    /' "$T/got"

for p in funnel funnel-shard funnel-coordinator; do
    [ -x "$D$bindir/$p" ] || fail "$bindir/$p is not executable"
    v=$("$D$bindir/$p" --version) || fail "installed $p --version"
    [[ $v == "$p "* ]] || fail "installed $p --version printed '$v'"
    ok "installed $p: $v"
done
for f in "$etc"/coordinator.conf "$etc"/topology.conf "$etc"/shard-000.conf \
         "$unitdir"/funnel-shard@.service "$unitdir"/funnel-coordinator.service; do
    ! grep -n '^#@' "$D$f" || fail "$f: a template note (#@) was not dropped"
done

# unit_key UNIT KEY: the value of KEY= in UNIT
unit_key() { sed -n "s/^$2=//p" "$1"; }
check_unit() {  # check_unit UNIT BINARY CONFIG(with %i filled in)
    local u=$D$unitdir/$1 exe cfg url
    exe=$(unit_key "$u" ExecStart | awk '{print $1}')
    [ "$exe" = "$bindir/$2" ] || fail "$1: ExecStart runs '$exe', want $bindir/$2"
    [ -x "$D$exe" ] || fail "$1: ExecStart binary $exe is not installed"
    cfg=$(unit_key "$u" ExecStart | sed -n 's/.* --config \([^ ]*\).*/\1/p' | sed 's/%i/000/')
    [ "$cfg" = "$etc/$3" ] || fail "$1: --config '$cfg', want $etc/$3"
    [ -f "$D$cfg" ] || fail "$1: config $cfg is not installed"
    for url in $(unit_key "$u" Documentation); do
        [[ $url == file://$docdir/* ]] || fail "$1: Documentation $url is not under $docdir"
        [ -f "$D${url#file://}" ] || fail "$1: Documentation $url is not installed"
    done
    ok "$1: ExecStart=$(unit_key "$u" ExecStart); Documentation=$(unit_key "$u" Documentation)"
}
check_unit funnel-shard@.service funnel-shard shard-000.conf
check_unit funnel-coordinator.service funnel-coordinator coordinator.conf

topo=$(sed -n 's/^topology = //p' "$D$etc/coordinator.conf")
[ "$topo" = "$etc/topology.conf" ] && [ -f "$D$topo" ] || fail "coordinator.conf: topology = '$topo', want the installed $etc/topology.conf"
ok "coordinator.conf: topology = $topo"

# the installed shard-000.conf is accepted by the installed funnel-shard: only
# the (not yet built) index is missing, which is exit 1, not 2
"$D$bindir/funnel-shard" --config "$D$etc/shard-000.conf" --index "$T/none/shard-000" >/dev/null 2>"$T/s.err"
rc=$?
[ "$rc" = 1 ] || { cat "$T/s.err"; fail "installed funnel-shard on shard-000.conf: exit $rc, want 1 (no index)"; }
ok "installed shard-000.conf parses"

if systemd-analyze --version >/dev/null 2>&1; then
    mkdir -p "$T/units"
    sed "s#^ExecStart=$bindir/#ExecStart=$D$bindir/#" "$D$unitdir/funnel-shard@.service" > "$T/units/funnel-shard@000.service"
    sed "s#^ExecStart=$bindir/#ExecStart=$D$bindir/#" "$D$unitdir/funnel-coordinator.service" > "$T/units/funnel-coordinator.service"
    systemd-analyze verify "$T/units/funnel-shard@000.service" "$T/units/funnel-coordinator.service" >"$T/verify.log" 2>&1 \
        || { cat "$T/verify.log"; fail "systemd-analyze verify on the installed units"; }
    ok "systemd-analyze verify: the installed units pass"
else
    echo "note: no systemd-analyze here; the units were not verified"
fi
