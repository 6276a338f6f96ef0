#!/usr/bin/env bash
# test.sh - README's second command: builds and runs the whole test suite.
#   1. release-style build (build/) + every meson test (unit + integration),
#   2. ASan+UBSan build (build-asan/) + the same suite,
#   3. the servers under valgrind for one integration run (tests/valgrind/run.sh).
# Ends with one line "N passed, N failed, N skipped" (counted over all three).
# .ci/run calls exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
bash ops/scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0; skipped=0
failures=$(mktemp)   # what failed and the end of its output, printed again last
trap 'rm -f "$failures"' EXIT
count() {   # count results of a meson build dir's last test run
  local log=$1/meson-logs/testlog.json
  [ -f "$log" ] || { failed=$((failed + 1)); echo "$1: no test log (the build failed)" >>"$failures"; return; }
  read -r p f s < <(/usr/bin/python3 - "$log" "$1" "$failures" <<'PY'
import json, sys
p = f = s = 0
with open(sys.argv[3], "a") as out:
    for line in open(sys.argv[1]):
        t = json.loads(line)
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"): p += 1
        elif r == "SKIP": s += 1
        else:
            f += 1
            # CI keeps only the end of the output: name the test and show why there
            # (its FAIL lines, then its last lines; a test's end may be its servers' logs)
            lines = ((t.get("stdout") or "") + (t.get("stderr") or "")).rstrip().splitlines()
            fails = [l for l in lines if "FAIL" in l][:15]
            out.write("%s: %s %s after %.1f s; its FAIL lines, then its last lines:\n"
                      % (sys.argv[2], t.get("name"), r, float(t.get("duration") or 0)))
            out.write("".join("    | %s\n" % l[:240] for l in fails + ["..."] + lines[-12:]))
print(p, f, s)
PY
)
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
}

suite() {   # suite BUILDDIR [meson setup args...]
  local dir=$1; shift
  echo "== $dir: build"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || { failed=$((failed + 1)); return; }
  fi
  ninja -C "$dir" || { failed=$((failed + 1)); return; }
  echo "== $dir: test"
  meson test -C "$dir" --print-errorlogs --num-processes 2 2>&1 | tail -n 40
  count "$dir"
}

suite build
# LSan is left on; UBSan aborts on the first report so that it fails the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# -O1: the sanitizers find the same faults and the suite runs about twice as fast
# (it must stay under 20 minutes on CI with the plain suite and valgrind)
suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Ddebug=true -Doptimization=1
unset ASAN_OPTIONS UBSAN_OPTIONS

echo "== valgrind: servers in one integration run"
if bash tests/valgrind/run.sh build; then passed=$((passed + 1))
else failed=$((failed + 1)); echo "valgrind: servers in one integration run (above)" >>"$failures"; fi

if [ -s "$failures" ]; then echo "== what failed"; cat "$failures"; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
