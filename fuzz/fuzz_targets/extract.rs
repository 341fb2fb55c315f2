//! Any bytes, as any of the kinds of document text is taken from: extraction and
//! chunking end (libFuzzer's timeout), stay within memory (its RSS limit), never
//! panic past the extractor, and keep to the limits they are given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_extract::{Limits, chunk, extract};

/// (detected type, file name): every branch of the extractor's choice.
const KINDS: [(&str, &str); 8] = [
    ("application/pdf", "a.pdf"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "a.docx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "a.xlsx",
    ),
    ("text/plain", "a.csv"),
    ("text/html", "a.html"),
    ("text/plain", "a.md"),
    ("text/plain", "a.txt"),
    ("application/zip", "a.docx"),
];

fuzz_target!(
    init: {
        // The parsers' panics that `extract` catches (it reports the document as
        // damaged) are not findings: libFuzzer's hook would abort on them. A panic
        // that escapes `extract` still aborts (libfuzzer-sys catches it and aborts).
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let (mime, name) = KINDS[usize::from(which) % KINDS.len()];
    // Small limits, so that the bounds themselves are what is fuzzed.
    let limits = Limits {
        max_chars: 20_000,
        max_unpacked: 4 * 1024 * 1024,
        max_entries: 200,
        max_cells: 20_000,
    };
    if let Ok(passages) = extract(bytes, mime, name, limits) {
        let chars: usize = passages.iter().map(|p| p.text.chars().count()).sum();
        assert!(chars <= limits.max_chars, "{chars} characters kept");
        assert!(passages.iter().all(|p| !p.text.is_empty()), "an empty passage kept");
        let chunks = chunk(&passages);
        assert!(passages.is_empty() || !chunks.is_empty(), "text without a chunk");
    }
});
