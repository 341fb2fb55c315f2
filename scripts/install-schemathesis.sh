#!/usr/bin/env bash
# schemathesis (PyPI) in a venv: the API contract test's independent client.
set -euo pipefail
VENV="${NEXUS_SCHEMATHESIS_VENV:-/var/cache/nexus-tools/schemathesis-venv}"
VERSION=4.32.5
if [ -x "$VENV/bin/schemathesis" ] && "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  exit 0
fi
echo "install-schemathesis: installing schemathesis $VERSION into $VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "schemathesis==$VERSION" || {
  echo "install-schemathesis: error: pip install schemathesis==$VERSION failed" >&2
  exit 1
}
