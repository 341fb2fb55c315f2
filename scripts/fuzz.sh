#!/usr/bin/env bash
# Fuzzes the document extractors and the search query (fuzz/, cargo-fuzz on
# libFuzzer), each target for SECONDS (default 600), and prints what each run did.
# Installs the nightly toolchain and cargo-fuzz if missing. A crash is kept under
# fuzz/artifacts/TARGET/ (rerun it with `cargo +nightly fuzz run TARGET FILE`); the
# corpus grows under fuzz/corpus/TARGET/ and is kept between runs. Exits non-zero if
# any target found a crash, a timeout or a memory blow-up.
#
#   scripts/fuzz.sh            # every target, 10 minutes each
#   scripts/fuzz.sh 3600 extract
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-600}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(extract search_query)

command -v rustup > /dev/null || die "rustup is needed (https://rustup.rs)"
rustup toolchain list | grep -q '^nightly' || quietly "installing nightly" rustup toolchain install nightly --profile minimal
command -v cargo-fuzz > /dev/null || quietly "installing cargo-fuzz" cargo install cargo-fuzz --locked

cd "$repo"
export CARGO_TARGET_DIR="${NEXUS_FUZZ_TARGET_DIR:-/var/cache/nexus-ci/fuzz-target}"
# Seeds: one small valid document of each kind (the first byte picks the kind the
# target reads it as), and a few queries.
mkdir -p fuzz/corpus/extract fuzz/corpus/search_query
python3 - fuzz/corpus/extract <<'PY'
import io, sys, zipfile
out = sys.argv[1]
def save(name, kind, data):
    open(f"{out}/seed-{name}", "wb").write(bytes([kind]) + data)
objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
stream = b"BT /F1 12 Tf 20 100 Td (Invoice 42 overdue) Tj ET"
objs[3] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
pdf, offsets = b"%PDF-1.4\n", []
for i, o in enumerate(objs, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
save("pdf", 0, pdf)
def zipped(files):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return b.getvalue()
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
docx = zipped({"[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>',
    "word/document.xml": f'<?xml version="1.0"?><w:document {W}><w:body>'
    '<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Terms</w:t></w:r></w:p>'
    '<w:p><w:r><w:t>Payment within 30 days.</w:t></w:r></w:p>'
    '<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Item</w:t></w:r></w:p></w:tc></w:tr></w:tbl>'
    '</w:body></w:document>'})
save("docx", 1, docx)
save("zip-docx", 7, docx)
S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
xlsx = zipped({
    "[Content_Types].xml": '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<?xml version="1.0"?><workbook {S} {R}><sheets><sheet name="Prices" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
    "xl/worksheets/sheet1.xml": f'<?xml version="1.0"?><worksheet {S}><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>Item</t></is></c><c r="B1"><v>12.5</v></c></row>'
    '</sheetData></worksheet>'})
save("xlsx", 2, xlsx)
save("csv", 3, b"name,amount\nCoffee,12.50\n\"Steel, rolled\",1000\n")
save("html", 4, b"<html><h1>Terms</h1><p>Pay <b>now</b>.</p><script>x()</script></html>")
save("md", 5, b"# Terms\n\nPay within *30* days.\n\n## Late\n\n| a | b |\n|---|---|\n")
save("txt", 6, "Grüße aus Zürich\n\nline two".encode())
PY
for q in 'coffee' '"steel works"' 'müller AND -söhne' 'a*' '東京' '(((' 'x~2' 'name:alpine'; do
    printf '\x14%s' "$q" > "fuzz/corpus/search_query/seed-$(printf '%s' "$q" | sha256sum | cut -c1-12)"
done
failed=0
for target in "${targets[@]}"; do
    echo "== $target for ${seconds}s"
    # -s none: coverage-guided without a sanitizer (safe Rust; the C parts are
    # llama.cpp's, not fuzzed here); the RSS and time limits catch bombs and hangs.
    if ! cargo +nightly fuzz run -O -s none "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -max_len=262144 \
        -print_final_stats=1 2>&1 | tee "/tmp/fuzz-$target.log" | grep -E '^(#[0-9]+ +DONE|stat::|==|SUMMARY|Crash|Test unit)'; then
        :
    fi
    if grep -qE 'SUMMARY|Test unit written|ERROR: libFuzzer' "/tmp/fuzz-$target.log"; then
        echo "$target: FOUND A PROBLEM (see /tmp/fuzz-$target.log and fuzz/artifacts/$target/)"
        failed=1
    else
        echo "$target: nothing found in ${seconds}s"
    fi
done
exit "$failed"
