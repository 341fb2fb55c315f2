//! Passages cut into chunks for the index: about [`TARGET`] characters each, cut at
//! paragraph, then line, then word boundaries, each chunk after the first of a passage
//! starting with the end of the one before ([`OVERLAP`]), so a phrase cut in two is
//! still found whole in one of them.

use crate::Passage;

/// The size a chunk aims at, in characters.
pub const TARGET: usize = 1_200;
/// How much of the previous chunk a chunk repeats, in characters (at most).
pub const OVERLAP: usize = 200;

/// One chunk: its passage's locator and page, and its text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Chunk {
    pub locator: String,
    pub page: Option<u32>,
    pub text: String,
}

/// The chunks of every passage, in order.
pub fn chunk(passages: &[Passage]) -> Vec<Chunk> {
    let mut out = Vec::new();
    for p in passages {
        for text in cut(&p.text) {
            out.push(Chunk {
                locator: p.locator.clone(),
                page: p.page,
                text,
            });
        }
    }
    out
}

/// Pieces of at most `TARGET` characters: paragraphs, or lines, or words of a longer one.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        if para.chars().count() <= TARGET {
            out.push(para.to_owned());
            continue;
        }
        for line in para.lines() {
            if line.chars().count() <= TARGET {
                out.push(line.to_owned());
                continue;
            }
            let mut piece = String::new();
            for word in line.split(' ') {
                if !piece.is_empty() && piece.chars().count() + 1 + word.chars().count() > TARGET {
                    out.push(std::mem::take(&mut piece));
                }
                if !piece.is_empty() {
                    piece.push(' ');
                }
                // A word longer than a chunk is cut where it must be.
                let mut word = word;
                while word.chars().count() > TARGET {
                    let at = word
                        .char_indices()
                        .nth(TARGET)
                        .map_or(word.len(), |(i, _)| i);
                    out.push(word[..at].to_owned());
                    word = &word[at..];
                }
                piece.push_str(word);
            }
            if !piece.is_empty() {
                out.push(piece);
            }
        }
    }
    out.retain(|p| !p.trim().is_empty());
    out
}

/// The last words of `text`, at most `OVERLAP` characters.
fn tail(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut n = 0;
    let mut start = words.len();
    while start > 0 && n + words[start - 1].chars().count() < OVERLAP {
        start -= 1;
        n += words[start].chars().count() + 1;
    }
    words[start..].join(" ")
}

fn cut(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    // Whether `current` holds more than the overlap it started with.
    let mut fresh = false;
    for piece in pieces(text) {
        let sep = if current.is_empty() { 0 } else { 2 };
        if fresh && current.chars().count() + sep + piece.chars().count() > TARGET {
            let overlap = tail(&current);
            out.push(std::mem::take(&mut current));
            current = overlap;
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(&piece);
        fresh = true;
    }
    if fresh {
        out.push(current);
    }
    out
}
