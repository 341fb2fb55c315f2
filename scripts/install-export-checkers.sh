#!/usr/bin/env bash
# Installs the real readers that the export crate's tests (appliance/export/tests) check
# their XLSX and PDF files with:
#
#   * Debian's poppler-utils (`pdftotext`) and qpdf (`qpdf --check`) when either command
#     is missing;
#   * openpyxl and pypdf (pinned below) in a Python virtual environment:
#
#       ${NEXUS_EXPORT_VENV:-${NEXUS_TOOLS:-/var/cache/nexus-tools}/export-venv}
#
# Python 3.9 or newer with the venv module must be installed (Debian: python3-venv).
# Idempotent: prints nothing and does nothing when everything is installed.
# Run as root, or as a user with sudo.
set -euo pipefail

OPENPYXL="3.1.5"
PYPDF="6.1.3"
TOOLS="${NEXUS_TOOLS:-/var/cache/nexus-tools}"
VENV="${NEXUS_EXPORT_VENV:-$TOOLS/export-venv}"

# die, quietly
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if ! command -v pdftotext >/dev/null 2>&1 || ! command -v qpdf >/dev/null 2>&1; then
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run this as root"
    SUDO=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "pdftotext or qpdf is missing and apt-get is not available (Debian or Ubuntu needed)"
  echo "$NEXUS_SCRIPT_NAME: installing poppler-utils and qpdf (apt)"
  quietly "apt-get update" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  quietly "apt-get install poppler-utils qpdf" \
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends poppler-utils qpdf
  command -v pdftotext >/dev/null 2>&1 || die "poppler-utils was installed but pdftotext is still missing"
  command -v qpdf >/dev/null 2>&1 || die "qpdf was installed but the qpdf command is still missing"
fi

venv_ready() {
  [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openpyxl"), m.version("pypdf"))' 2>/dev/null)" = "$OPENPYXL $PYPDF" ]
}

venv_ready && exit 0

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON is not installed (Python 3.9 or newer is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  die "$("$PYTHON" --version 2>&1) is too old; openpyxl $OPENPYXL and pypdf $PYPDF need Python 3.9 or newer"

mkdir -p "$(dirname "$VENV")" ||
  die "cannot create $(dirname "$VENV") (set NEXUS_TOOLS or NEXUS_EXPORT_VENV to a writable place)"
if [ ! -x "$VENV/bin/python" ]; then
  quietly "creating the venv $VENV (Debian: apt-get install python3-venv)" \
    "$PYTHON" -m venv "$VENV"
fi
quietly "pip install openpyxl==$OPENPYXL pypdf==$PYPDF" \
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=:all: "openpyxl==$OPENPYXL" "pypdf==$PYPDF"

venv_ready || die "pip finished but openpyxl $OPENPYXL or pypdf $PYPDF is missing from $VENV"
