#!/usr/bin/env bash
# Runs the nexus-bench sections: durable kernel writes per second side by side with
# PostgreSQL (with a tailer's lag beside the load), ledger posting and trial balances,
# HTTPS list latency, durable job-queue throughput against PostgreSQL's SKIP LOCKED
# queue (jobs), and the open time after SIGKILL on a store of more than a gigabyte
# (crash-open); on its own, vector search against hnswlib and faiss (vectors, which
# installs them and the embedding model) and search quality on a labelled set beside
# bm25s (quality, which installs the set, bm25s and the model), and full-text search
# over HTTPS with a million customers (search). Arguments go to
# `nexus-bench all`, e.g.
#
#   scripts/bench.sh --seconds 5 --json bench.json
#
# or, when the first one names a section, to that section alone:
#
#   scripts/bench.sh crash-open --store-mib 1100
#
# Needs Debian's postgresql package (installed here if missing; needs root) and a
# Rust toolchain. NEXUS_BENCH_DIR picks where the temporary data goes (default
# /var/tmp); CARGO_TARGET_DIR is honoured.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then
    echo "bench.sh: installing Debian's postgresql package" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi

section=all
case "${1:-}" in
    writes | ledger | list | jobs | crash-open | tlog | vectors | quality | search | all)
        section="$1"
        shift
        ;;
esac

if [ "$section" = vectors ]; then
    scripts/install-ann-peers.sh
    scripts/install-embedding-model.sh
fi
if [ "$section" = quality ]; then
    scripts/install-retrieval-set.sh
    scripts/install-embedding-model.sh
fi

cargo build --release -p nexus-bench -p nexus
exec "${CARGO_TARGET_DIR:-$repo/target}/release/nexus-bench" "$section" "$@"
