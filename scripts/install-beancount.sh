#!/usr/bin/env bash
# Installs beancount, the oracle of the ledger's tests (modules/ledger/tests/beancount.rs),
# into a Python virtual environment:
#
#   ${NEXUS_BEANCOUNT_VENV:-${NEXUS_TOOLS:-/var/cache/nexus-tools}/beancount-venv}
#
# beancount 3.2.3 is pinned: it ships wheels for CPython 3.9-3.13 on Linux x86_64 and
# aarch64 and provides `bean-check` (bean-query moved to the separate `beanquery`
# package in 3.x; the tests read balances through `beancount.loader` instead).
#
# Python 3.9 or newer with the venv module must be installed (Debian: python3-venv).
# Idempotent: prints nothing and does nothing when the pinned version is installed.
set -euo pipefail

VERSION="3.2.3"
TOOLS="${NEXUS_TOOLS:-/var/cache/nexus-tools}"
VENV="${NEXUS_BEANCOUNT_VENV:-$TOOLS/beancount-venv}"

# die, quietly
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

installed() {
  [ -x "$VENV/bin/bean-check" ] &&
    [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("beancount"))' 2>/dev/null)" = "$VERSION" ]
}

installed && exit 0

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON is not installed (Python 3.9 or newer is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
  die "$("$PYTHON" --version 2>&1) is too old; beancount $VERSION needs Python 3.9 or newer"

mkdir -p "$(dirname "$VENV")" ||
  die "cannot create $(dirname "$VENV") (set NEXUS_TOOLS or NEXUS_BEANCOUNT_VENV to a writable place)"
# Tests running at once may all ask for it: one installs, the others wait for it.
exec 9>"$VENV.lock"
flock 9
installed && exit 0
if [ ! -x "$VENV/bin/python" ]; then
  quietly "creating the venv $VENV (Debian: apt-get install python3-venv)" \
    "$PYTHON" -m venv "$VENV"
fi
quietly "pip install beancount==$VERSION" \
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --only-binary=beancount "beancount==$VERSION"

installed || die "pip finished but $VENV/bin/bean-check or beancount $VERSION is missing"
