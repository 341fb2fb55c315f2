#!/usr/bin/env bash
# Builds the labelled retrieval set of `nexus-bench quality` (scripts/retrieval-set.py:
# the Python FAQ's questions, each with its answer as the gold passage, among the
# tutorial's and the HOWTOs' passages) from Debian's python3.11-doc package, into
#
#   ${NEXUS_TOOLS:-/var/cache/nexus-tools}/retrieval/python-faq
#
# and adds its BM25 peer (bm25s, PyStemmer) to the ANN peers' venv. The package is only
# downloaded and unpacked in a scratch directory, not installed. Idempotent.
set -euo pipefail

TOOLS="${NEXUS_TOOLS:-/var/cache/nexus-tools}"
OUT="$TOOLS/retrieval/python-faq"
VENV="$TOOLS/ann-venv"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# die, quietly
. "$here/lib.sh"

"$here/install-ann-peers.sh"
"$VENV/bin/python" -c 'import bm25s, Stemmer' >/dev/null 2>&1 ||
  quietly "pip install bm25s PyStemmer" \
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "bm25s==0.3.16" "PyStemmer==3.1.0"

[ -s "$OUT/queries.jsonl" ] && [ -s "$OUT/passages.jsonl" ] && exit 0
command -v apt-get >/dev/null 2>&1 || die "apt-get is needed to fetch Debian's python3.11-doc"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
# apt-get download writes as _apt where it can; a scratch dir it may write to.
chmod 0777 "$scratch"
(cd "$scratch" && apt-get download python3.11-doc >/dev/null 2>&1) || {
  quietly "apt-get update" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  (cd "$scratch" && quietly "apt-get download python3.11-doc" apt-get download python3.11-doc)
}
deb="$(compgen -G "$scratch/python3.11-doc_*.deb" | head -n 1)" || die "no python3.11-doc package was downloaded"
quietly "unpacking $(basename "$deb")" dpkg-deb -x "$deb" "$scratch/root"
src="$scratch/root/usr/share/doc/python3.11/html/_sources"
mkdir -p "$OUT.tmp"
python3 "$here/retrieval-set.py" "$src" "$OUT.tmp"
echo "from $(basename "$deb")" >> "$OUT.tmp/README"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
