#!/usr/bin/env bash
# sslyze (PyPI) in a venv: the TLS scan of the running server in the test suite
# (tests/it/tls_scan.rs) checks its protocols, cipher suites and certificate against
# Mozilla's "intermediate" configuration.
set -euo pipefail
VENV="${NEXUS_SSLYZE_VENV:-/var/cache/nexus-tools/sslyze-venv}"
VERSION=6.3.1
if [ -x "$VENV/bin/sslyze" ] && "$VENV/bin/python" -c "import sslyze, sys; sys.exit(0 if sslyze.__version__ == '$VERSION' else 1)" 2>/dev/null; then
  exit 0
fi
echo "install-sslyze: installing sslyze $VERSION into $VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "sslyze==$VERSION" || {
  echo "install-sslyze: error: pip install sslyze==$VERSION failed" >&2
  exit 1
}
