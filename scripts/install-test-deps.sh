#!/usr/bin/env bash
# Installs what the browser end-to-end test (tests/e2e) needs on a fresh Debian machine:
#
#   * Debian's Chromium (and a font, so screenshots show text) when /usr/bin/chromium
#     is missing;
#   * playwright-core from npm (tests/e2e/package-lock.json) when
#     tests/e2e/node_modules/playwright-core is missing. No browser is downloaded.
#
# Node.js 20 or newer must already be installed (Debian 12's own nodejs is 18).
# Idempotent: a second run does nothing. Run as root, or as a user with sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E="$ROOT/tests/e2e"

# die, quietly
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run this as root"
  SUDO=(sudo)
fi

if [ ! -x /usr/bin/chromium ]; then
  command -v apt-get >/dev/null 2>&1 || die "/usr/bin/chromium is missing and apt-get is not available (Debian or Ubuntu needed)"
  echo "install-test-deps: installing chromium and fonts-dejavu-core (apt)"
  quietly "apt-get update" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  quietly "apt-get install chromium fonts-dejavu-core" \
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
  [ -x /usr/bin/chromium ] || die "chromium was installed but /usr/bin/chromium is still missing"
fi

if [ ! -d "$E2E/node_modules/playwright-core" ]; then
  command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is needed)"
  command -v npm >/dev/null 2>&1 || die "npm is not installed (it comes with Node.js 20 or newer)"
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || die "Node.js $(node --version) is too old; tests/e2e needs 20 or newer"
  echo "install-test-deps: installing playwright-core (npm ci in tests/e2e)"
  quietly "npm ci in tests/e2e" env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
    npm ci --prefix "$E2E" --no-audit --no-fund --loglevel=error
  [ -d "$E2E/node_modules/playwright-core" ] || die "npm ci finished but tests/e2e/node_modules/playwright-core is missing"
fi

echo "install-test-deps: ready (chromium: /usr/bin/chromium, playwright-core: tests/e2e/node_modules)"
