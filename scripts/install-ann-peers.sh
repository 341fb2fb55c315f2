#!/usr/bin/env bash
# Installs the peers of `nexus-bench vectors` into a Python virtual environment:
# hnswlib (built from its sdist, about a minute and a half) and faiss-cpu, from PyPI:
#
#   ${NEXUS_TOOLS:-/var/cache/nexus-tools}/ann-venv
#
# Idempotent: does nothing when both import.
set -euo pipefail

TOOLS="${NEXUS_TOOLS:-/var/cache/nexus-tools}"
VENV="$TOOLS/ann-venv"

# die, quietly
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

installed() { "$VENV/bin/python" -c 'import hnswlib, faiss, numpy' >/dev/null 2>&1; }
installed && exit 0
PYTHON="${PYTHON:-python3}"
mkdir -p "$TOOLS" || die "cannot create $TOOLS (set NEXUS_TOOLS to a writable place)"
exec 9>"$VENV.lock"
flock 9
installed && exit 0
[ -x "$VENV/bin/python" ] || quietly "creating the venv $VENV" "$PYTHON" -m venv "$VENV"
quietly "pip install hnswlib faiss-cpu numpy" \
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "numpy==2.4.6" "hnswlib==0.8.0" "faiss-cpu==1.15.1"
installed || die "pip finished but hnswlib or faiss does not import"
