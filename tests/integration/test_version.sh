#!/bin/bash
# test_version.sh - `--version` on all three programs: exit 0 and one line
#   "PROG VERSION (git ID, index schema N)"
# with VERSION = meson's project() version ($FUNNEL_VERSION), ID a short git
# id or "unknown", and N = IDX_SCHEMA_VERSION in index/format.h. The daemons
# answer it before reading flags or a config file, so it works next to flags
# that would otherwise stop them with a usage error.
. "$(dirname "$0")/lib.sh"
want_version=${FUNNEL_VERSION:?FUNNEL_VERSION (meson project version)}
schema=$(sed -n 's/^#define IDX_SCHEMA_VERSION \([0-9][0-9]*\).*/\1/p' "$HERE/../../index/format.h")
[ -n "$schema" ] || fail "no IDX_SCHEMA_VERSION in index/format.h"

check_version() {  # check_version PROG NAME [ARGS...]
    local prog=$1 name=$2 out rc; shift 2
    out=$("$prog" "$@" 2>"$T/err"); rc=$?
    [ "$rc" = 0 ] || { cat "$T/err"; fail "$name $*: exit $rc (want 0)"; }
    [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "$name $*: not one line: $out"
    [ ! -s "$T/err" ] || { cat "$T/err"; fail "$name $*: wrote to stderr"; }
    local re="^$name ${want_version//./\\.} \\(git ([0-9a-f]{7,40}|unknown), index schema $schema\\)\$"
    [[ $out =~ $re ]] || fail "$name $*: '$out' does not match $re"
    ok "$out  ($name $*)"
}
check_version "$FUNNEL" funnel --version
check_version "$FUNNEL_SHARD_BIN" funnel-shard --version
check_version "$FUNNEL_COORDINATOR_BIN" funnel-coordinator --version
# before flags and config: a missing config or an unknown flag does not matter
check_version "$FUNNEL_SHARD_BIN" funnel-shard --config /nonexistent/shard.conf --version
check_version "$FUNNEL_COORDINATOR_BIN" funnel-coordinator --no-such-flag --version
# the three agree (one generated header)
a=$("$FUNNEL" --version | cut -d' ' -f2-); b=$("$FUNNEL_SHARD_BIN" --version | cut -d' ' -f2-)
c=$("$FUNNEL_COORDINATOR_BIN" --version | cut -d' ' -f2-)
[ "$a" = "$b" ] && [ "$b" = "$c" ] || fail "the programs disagree: '$a' '$b' '$c'"
# inside a git checkout the id is the checkout's HEAD (built from this tree)
if head=$(git -C "$HERE/../.." rev-parse --short HEAD 2>/dev/null); then
    [[ $a == *"(git $head,"* ]] || echo "note: built at another commit than HEAD $head: $a (rebuild to refresh)"
fi
ok "funnel, funnel-shard and funnel-coordinator print the same version"
