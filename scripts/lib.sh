# Helpers shared by the install scripts. Source it, do not run it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Messages are prefixed with the sourcing script's name without `.sh`
# (scripts/install-beancount.sh → "install-beancount: error: ...").

NEXUS_SCRIPT_NAME="$(basename "$0" .sh)"

# Prints an error and exits with status 1.
die() {
  echo "$NEXUS_SCRIPT_NAME: error: $*" >&2
  exit 1
}

# Runs a command with its output kept aside; shows the output only if it fails.
quietly() {
  local what="$1"
  shift
  local log
  log="$(mktemp)"
  if ! "$@" >"$log" 2>&1; then
    echo "$NEXUS_SCRIPT_NAME: error: $what failed:" >&2
    tail -n 40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}
