#!/usr/bin/env bash
# Installs what building the appliance needs beyond Rust on a fresh Debian machine:
# cmake, clang and libclang-dev, which llama.cpp's build (the `llama-cpp-sys-2` crate
# behind appliance/ai) runs (cmake) and reads its headers with (bindgen, libclang).
#
# Idempotent: does nothing when cmake and libclang are there. Run as root, or as a
# user with sudo.
set -euo pipefail

# die, quietly
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have_libclang() {
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null ||
    compgen -G "/usr/lib/*/libclang*.so*" >/dev/null
}

command -v cmake >/dev/null 2>&1 && command -v clang >/dev/null 2>&1 && have_libclang && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and sudo is not installed; run this as root"
  SUDO=(sudo)
fi
command -v apt-get >/dev/null 2>&1 ||
  die "cmake, clang and libclang are needed and apt-get is not available: install them (Debian or Ubuntu: cmake clang libclang-dev)"
echo "install-build-deps: installing cmake, clang and libclang-dev (apt)"
quietly "apt-get update" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
quietly "apt-get install cmake clang libclang-dev" \
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends cmake clang libclang-dev
command -v cmake >/dev/null 2>&1 && have_libclang ||
  die "apt-get finished but cmake or libclang is still missing"
