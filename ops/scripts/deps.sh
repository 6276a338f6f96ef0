#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages Funnel needs (only the missing ones).
# Run by ops/bootstrap.sh and ops/test.sh. Needs root or sudo.
#
# Another apt or dpkg run (unattended-upgrades right after a machine boots,
# apt in another shell) holds apt's locks: /var/lib/dpkg/lock-frontend and
# /var/lib/dpkg/lock (fcntl locks) for an install, /var/lib/apt/lists/lock for
# an update. deps.sh then waits for it, FUNNEL_APT_TIMEOUT seconds at most in
# all (default 600), and says for whom it waits:
#   - every apt-get gets -o DPkg::Lock::Timeout=<seconds left>, so an install
#     waits for the dpkg locks inside apt; apt prints "Waiting for cache lock:
#     Could not get lock ... It is held by process PID (NAME)" once a second,
#     which is passed on when it changes and every 30 s;
#   - apt-get update does not wait for the lists lock (DPkg::Lock::Timeout is
#     for dpkg's locks), and an install can lose a race at the end of the
#     other run: a run that fails because of a lock ("Could not get lock",
#     "Unable to acquire the dpkg frontend lock", "Unable to lock directory")
#     is retried every FUNNEL_APT_RETRY_S seconds (default 5) until the
#     timeout, with one line "deps: waiting for another apt/dpkg run: LOCK is
#     held by process PID (NAME) ..." each time the holder changes.
# Any other apt failure stops at once with apt's own message. After the
# timeout deps.sh fails (exit 100, apt's) naming the holder.
#
# deps.sh --bench also installs the benchmarks' peers and tools (tests/bench: a
# sharded Sphinx cluster, hnswlib and faiss for ann_bench.sh, gnuplot for the
# plots), which the test suite does not need.
#
# Overridable for tests and odd machines: APT_GET (default apt-get),
# FUNNEL_SUDO (default: sudo when not root, nothing when root).
set -euo pipefail
PKGS=(build-essential pkg-config meson ninja-build
      libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libuv1-dev liblmdb-dev lmdb-utils
      libcriterion-dev libstemmer-dev libutf8proc-dev libxxhash-dev libstreamvbyte-dev libjansson-dev libzstd-dev
      zlib1g-dev
      valgrind time python3 python3-grpcio python3-protobuf python3-numpy python3-xapian wamerican wbritish
      python3-xgboost python3-sklearn
      fasttext clang libclang-rt-14-dev wordnet-base   # funnel embed; the libFuzzer harnesses
      libmicrohttpd-dev prometheus openssl             # metrics over HTTP, promtool in a test, the dev CA of --tls
      python3-yaml python3-jsonschema)                 # tests/ops/test_k8s_manifests.py (ops/k8s)
[ "${1:-}" = --bench ] && PKGS+=(sphinxsearch python3-pymysql gnuplot-nox python3-hnswlib python3-faiss)

timeout=${FUNNEL_APT_TIMEOUT:-600}
retry=${FUNNEL_APT_RETRY_S:-5}
[[ $timeout =~ ^[0-9]+$ ]] || { echo "deps: FUNNEL_APT_TIMEOUT='$timeout' is not a number of seconds" >&2; exit 2; }
deadline=$((SECONDS + timeout))
default_sudo=; [ "$(id -u)" -eq 0 ] || default_sudo=sudo
SUDO=${FUNNEL_SUDO-$default_sudo}
# shellcheck disable=SC2206  # APT_GET may be a command with arguments
APT=($SUDO ${SUDO:+DEBIAN_FRONTEND=noninteractive} ${APT_GET:-apt-get})
export DEBIAN_FRONTEND=noninteractive
tmp=$(mktemp -d "${TMPDIR:-/tmp}/funnel-deps.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# apt's stdout, with its once-a-second "Waiting for cache lock: ..." line
# shown only when it changes or every 30 s (the last one kept in $tmp/wait).
squeeze_waits() {
    local line last= shown=0
    while IFS= read -r line; do
        if [[ $line == "Waiting for cache lock"* ]]; then
            printf '%s\n' "$line" > "$tmp/wait"
            if [ "$line" != "$last" ] || (( SECONDS - shown >= 30 )); then
                echo "deps: $line (waiting up to $((deadline - SECONDS > 0 ? deadline - SECONDS : 0)) s more)"
                last=$line; shown=$SECONDS
            fi
        else
            printf '%s\n' "$line"
        fi
    done
}

# apt_run ARGS...: "${APT[@]}" ARGS, waiting out other apt/dpkg runs (above).
apt_run() {
    local left rc holder last=
    while :; do
        left=$((deadline - SECONDS)); (( left > 0 )) || left=0
        : > "$tmp/wait"
        set +e
        "${APT[@]}" -o DPkg::Lock::Timeout="$left" "$@" 2>"$tmp/err" </dev/null | squeeze_waits
        rc=${PIPESTATUS[0]}
        set -e
        if [ "$rc" -eq 0 ]; then cat "$tmp/err" >&2; return 0; fi
        if ! grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock directory' "$tmp/err"; then
            cat "$tmp/err" >&2
            return "$rc"
        fi
        # "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 812 (apt-get)"
        holder=$(sed -n 's/.*Could not get lock \(.*\)\. It is held by process \(.*\)$/\1 is held by process \2/p' \
                 "$tmp/err" "$tmp/wait" | sed 's/\.\.\.$//' | head -n 1)
        [ -n "$holder" ] || holder=$(grep -m1 -E 'lock' "$tmp/err" | sed 's/^E: //' || true)
        if (( SECONDS >= deadline )); then
            echo "deps: gave up after ${timeout} s waiting for another apt/dpkg run: $holder" >&2
            echo "deps: let it finish and run this again, or wait longer with FUNNEL_APT_TIMEOUT=SECONDS" >&2
            cat "$tmp/err" >&2
            return "$rc"
        fi
        if [ "$holder" != "$last" ]; then
            echo "deps: waiting for another apt/dpkg run: $holder (retrying every ${retry} s, up to $((deadline - SECONDS)) s more; FUNNEL_APT_TIMEOUT=${timeout})" >&2
            last=$holder
        fi
        sleep "$retry"
    done
}

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    apt_run update -q
    apt_run install -y -q --no-install-recommends "${missing[@]}"
    echo "deps: installed ${missing[*]}" >&2
else
    echo "deps: all ${#PKGS[@]} packages are installed" >&2
fi
