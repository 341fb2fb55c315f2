#!/usr/bin/env bash
# schemathesis and openapi-spec-validator (PyPI) in a venv: the API contract test's
# independent client and the OpenAPI 3.1 meta-schema check.
set -euo pipefail
VENV="${NEXUS_SCHEMATHESIS_VENV:-/var/cache/nexus-tools/schemathesis-venv}"
VERSION=4.32.5
VALIDATOR=0.9.0
if [ -x "$VENV/bin/schemathesis" ] && "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION" \
  && "$VENV/bin/python" -c "import openapi_spec_validator" 2>/dev/null; then
  exit 0
fi
echo "install-schemathesis: installing schemathesis $VERSION into $VENV"
mkdir -p "$(dirname "$VENV")"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "schemathesis==$VERSION" "openapi-spec-validator==$VALIDATOR" || {
  echo "install-schemathesis: error: pip install schemathesis==$VERSION failed" >&2
  exit 1
}
