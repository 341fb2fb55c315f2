#!/usr/bin/env bash
# Runs schemathesis against a running appliance's OpenAPI document.
#   scripts/schemathesis.sh BASE_URL CA_FILE USERNAME PASSWORD [MAX_EXAMPLES]
# Signs in, then fuzzes every operation but signing in and out (which would end the
# session it runs with, or trip the sign-in throttle) with the contract checks: no server
# errors, only documented statuses, content types and response schemas as documented,
# schema-violating requests refused. Users and roles are fuzzed too: a change of access
# needs the actor's password, which the fuzzer does not send, and the last
# administrator cannot be removed, so its session survives.
set -euo pipefail
BASE="$1" CA="$2" USER_NAME="$3" PASSWORD="$4" EXAMPLES="${5:-10}"
VENV="${NEXUS_SCHEMATHESIS_VENV:-/var/cache/nexus-tools/schemathesis-venv}"
JAR="$(mktemp)"
trap 'rm -f "$JAR"' EXIT
LOGIN=$(curl -sf --cacert "$CA" -c "$JAR" "$BASE/api/v1/session" \
  -H 'content-type: application/json' \
  -d "{\"username\":\"$USER_NAME\",\"password\":\"$PASSWORD\"}")
CSRF=$(printf '%s' "$LOGIN" | python3 -c 'import sys, json; print(json.load(sys.stdin)["csrf_token"])')
TOKEN=$(awk '$6 == "nexus_session" { print $7 }' "$JAR")
# The document must be valid OpenAPI 3.1 before anything is fuzzed.
curl -sf --cacert "$CA" "$BASE/api/v1/openapi.json" | "$VENV/bin/python" -c '
import json, sys
from openapi_spec_validator import validate
doc = json.load(sys.stdin)
validate(doc)
print("openapi.json: valid OpenAPI", doc["openapi"], "with", len(doc["paths"]), "paths")'

exec "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
  --tls-verify "$CA" \
  -H "Cookie: nexus_session=$TOKEN" -H "X-CSRF-Token: $CSRF" \
  --exclude-path /api/v1/session \
  --max-examples "$EXAMPLES" --workers 2 --seed 1 --phases examples,fuzzing,stateful \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
  --no-color
