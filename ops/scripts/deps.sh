#!/usr/bin/env bash
# deps.sh - install the Debian 12 packages Funnel needs (only the missing ones).
# Sourced or run by ops/bootstrap.sh and ops/test.sh. Needs root or sudo.
set -euo pipefail
PKGS=(build-essential pkg-config meson ninja-build
      libgrpc-dev protobuf-c-compiler libprotobuf-c-dev libuv1-dev liblmdb-dev lmdb-utils
      libcriterion-dev libstemmer-dev libutf8proc-dev libxxhash-dev libjansson-dev
      valgrind time python3 python3-grpcio python3-protobuf python3-numpy python3-xapian wamerican
      python3-xgboost python3-sklearn)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
