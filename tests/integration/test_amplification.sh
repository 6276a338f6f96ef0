#!/usr/bin/env bash
# Issue 6, acceptance 1: amplification requests (4 KB queries, k=10000,
# explain) to the coordinator and straight to a shard get a bounded reply or
# a clean refusal (within 100 ms alone; during a burst beside a full-speed
# client, within 100 ms or 3x their time alone), other clients' p99 stays
# within 3x (+2 ms), and every process's RSS returns to within 10% (or 4 MiB)
# after the burst (amplification.py does the measuring; npl: 11k documents,
# 3 shards).
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null || { echo "SKIP: needs python3-grpcio"; exit 77; }
command -v protoc-c >/dev/null || { echo "SKIP: needs protoc-c"; exit 77; }

I=$(build_index npl3 3 npl) || exit 1
R=$T/run
cluster_up "$I" "$R" >/dev/null || fail "cluster up"
"$PY" "$HERE/amplification.py" "$R" "$HERE/../../proto" "$DATA/npl/queries.tsv" "$DATA/npl/corpus.jsonl" "$DATA" \
    || fail "amplification checks"
ok "amplification requests bounded; p99 and RSS held"
