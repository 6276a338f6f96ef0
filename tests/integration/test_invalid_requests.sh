#!/usr/bin/env bash
# (d) Malformed requests get INVALID_ARGUMENT (funnel search: exit 1 and
# "error: INVALID_ARGUMENT: ..." on stderr), and the cluster keeps serving.
source "$(dirname "$0")/lib.sh"

I=$(build_index idx 2) || exit 1
A=$(cluster_up "$I" "$T/run") || fail "cluster up"

expect_invalid() {   # expect_invalid WHAT ARGS...
    local what=$1; shift
    "$FUNNEL" search --server "$A" "$@" >"$T/out" 2>"$T/err"
    local rc=$?
    [ $rc -eq 1 ] || { cat "$T/out" "$T/err"; fail "$what: exit $rc, expected 1"; }
    grep -q '^error: INVALID_ARGUMENT: ' "$T/err" || { cat "$T/err"; fail "$what: no INVALID_ARGUMENT"; }
    ok "$what -> $(head -n 1 "$T/err")"
}
expect_invalid "empty query" ""
expect_invalid "blank query" "   "
expect_invalid "k too large" --k 100000 "heat"
expect_invalid "page beyond the window" --k 100 --page 1000 "heat"
expect_invalid "oversized query" "$(head -c 5000 /dev/zero | tr '\0' 'a')"

"$FUNNEL" search --server "$A" --k 3 "heat transfer" >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "valid query after invalid ones"; }
[ "$(grep -cE '^ +[0-9]+  ' "$T/out")" -eq 3 ] || { cat "$T/out"; fail "expected 3 ranked lines"; }
grep -q 'coverage 2/2 shards' "$T/out" || { cat "$T/out"; fail "no coverage footer"; }
ok "valid query still answered: $(tail -n 1 "$T/out")"

# usage errors are the CLI's own: exit 2, nothing sent
"$FUNNEL" search --server "$A" --k abc "heat" >/dev/null 2>&1
[ $? -eq 2 ] || fail "--k abc should be a usage error"
"$FUNNEL" search "heat" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --server should be a usage error"
ok "usage errors exit 2"
