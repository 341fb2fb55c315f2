#!/usr/bin/env bash
# Runs every nexus-bench section: durable kernel writes per second side by side with
# PostgreSQL (and, later, HTTPS list latency). Arguments go to `nexus-bench all`, e.g.
#
#   scripts/bench.sh --seconds 5 --json bench.json
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

cargo build --release -p nexus-bench -p nexus
exec "${CARGO_TARGET_DIR:-$repo/target}/release/nexus-bench" all "$@"
