//! PDF text: Unicode to WinAnsiEncoding, Helvetica widths, line wrapping.

use crate::widths::{HELVETICA, HELVETICA_BOLD};

/// The two fonts every document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Font {
    /// Helvetica.
    Regular,
    /// Helvetica-Bold.
    Bold,
}

impl Font {
    /// `Bold` when `bold`, else `Regular`.
    pub(crate) fn bold_if(bold: bool) -> Font {
        if bold { Font::Bold } else { Font::Regular }
    }

    /// The PostScript name of the standard font.
    pub(crate) fn base_name(self) -> &'static [u8] {
        match self {
            Font::Regular => b"Helvetica",
            Font::Bold => b"Helvetica-Bold",
        }
    }

    /// The resource name pages use for the font.
    pub(crate) fn resource(self) -> &'static [u8] {
        match self {
            Font::Regular => b"F1",
            Font::Bold => b"F2",
        }
    }

    /// Advance widths of WinAnsi codes 32..=255, in thousandths of the size.
    pub(crate) fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }
}

/// The byte for a line break inside text still to be wrapped.
const BREAK: u8 = b'\n';

/// One character in WinAnsiEncoding: `Some(code)`, or `None` for a character that is
/// dropped (zero-width characters, soft hyphens, carriage returns).
fn win_ansi(c: char, keep_breaks: bool) -> Option<u8> {
    let code = match c {
        ' '..='~' => c as u8,
        '\n' if keep_breaks => BREAK,
        '\n' | '\t' => b' ',
        '\r' | '\u{AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => return None,
        // Latin-1 Supplement: the same code in Windows-1252.
        '\u{A0}'..='\u{FF}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8A,
        '‹' => 0x8B,
        'Œ' => 0x8C,
        'Ž' => 0x8E,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' | '\u{2012}' => 0x96,
        '—' | '\u{2015}' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9A,
        '›' => 0x9B,
        'œ' => 0x9C,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        // Near enough.
        '\u{2010}' | '\u{2011}' | '\u{2212}' => b'-',
        '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => b' ',
        '\u{2044}' | '\u{2215}' => b'/',
        '\u{2032}' => b'\'',
        '\u{2033}' => b'"',
        _ => b'?',
    };
    Some(code)
}

/// Text for one line: line breaks and tabs become spaces.
pub(crate) fn encode(s: &str) -> Vec<u8> {
    s.chars().filter_map(|c| win_ansi(c, false)).collect()
}

/// Text that will be wrapped: line breaks are kept as breaks.
pub(crate) fn encode_paragraphs(s: &str) -> Vec<u8> {
    s.chars().filter_map(|c| win_ansi(c, true)).collect()
}

/// Width of encoded text in thousandths of the font size.
pub(crate) fn units(text: &[u8], font: Font) -> u32 {
    let table = font.widths();
    text.iter()
        .map(|&b| {
            b.checked_sub(32)
                .and_then(|i| table.get(usize::from(i)))
                .map_or(0, |&w| u32::from(w))
        })
        .sum()
}

/// Width of encoded text in points.
pub(crate) fn width(text: &[u8], font: Font, size: f32) -> f32 {
    // Exact below 2^24 units, i.e. for lines of more than 30,000 characters.
    units(text, font) as f32 * size / 1000.0
}

/// Breaks encoded text into lines no wider than `max` points: at spaces where possible,
/// inside a word only when the word alone is wider than a line. A line break in the
/// text always breaks. Always at least one line (perhaps empty).
pub(crate) fn wrap(text: &[u8], font: Font, size: f32, max: f32) -> Vec<Vec<u8>> {
    // Measured in whole font units; the tolerance absorbs float rounding so that a text
    // exactly as wide as its column (a column fitted to it) never wraps.
    let fits = |u: u32| u as f32 * size / 1000.0 <= max + 0.01;
    let space = units(b" ", font);
    let mut lines = Vec::new();
    for paragraph in text.split(|&b| b == BREAK) {
        let mut line: Vec<u8> = Vec::new();
        let mut line_units = 0;
        for word in paragraph.split(|&b| b == b' ').filter(|w| !w.is_empty()) {
            let word_units = units(word, font);
            let sep = if line.is_empty() { 0 } else { space };
            if fits(line_units + sep + word_units) {
                if sep > 0 {
                    line.push(b' ');
                }
                line.extend_from_slice(word);
                line_units += sep + word_units;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
                line_units = 0;
            }
            if fits(word_units) {
                line.extend_from_slice(word);
                line_units = word_units;
                continue;
            }
            // A word wider than a line: break it between characters.
            for &b in word {
                let u = units(&[b], font);
                if !line.is_empty() && !fits(line_units + u) {
                    lines.push(std::mem::take(&mut line));
                    line_units = 0;
                }
                line.push(b);
                line_units += u;
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_win_ansi_and_falls_back_to_question_mark() {
        assert_eq!(encode("Müller"), b"M\xfcller");
        assert_eq!(encode("10 €"), b"10 \x80");
        assert_eq!(encode("a–b—c"), b"a\x96b\x97c");
        assert_eq!(encode("“x”"), b"\x93x\x94");
        assert_eq!(encode("Ωжä日"), b"??\xe4?");
        assert_eq!(encode("a\tb\nc\r"), b"a b c");
        assert_eq!(encode("−5"), b"-5");
        assert_eq!(encode_paragraphs("a\nb"), b"a\nb");
    }

    #[test]
    fn widths_are_adobes() {
        // Helvetica: H 722, e 556, l 222, o 556; Bold: H 722, e 556, l 278, o 611.
        assert_eq!(units(b"Hello", Font::Regular), 722 + 556 + 222 + 222 + 556);
        assert_eq!(units(b"Hello", Font::Bold), 722 + 556 + 278 + 278 + 611);
        assert_eq!(units(b"1,234.56", Font::Regular), 6 * 556 + 278 + 278);
        assert_eq!(units(b"\x80", Font::Regular), 556);
    }

    #[test]
    fn wraps_at_spaces_and_inside_long_words() {
        let text = encode_paragraphs("the quick brown fox jumps");
        let lines = wrap(&text, Font::Regular, 10.0, 60.0);
        assert!(lines.len() > 1);
        for l in &lines {
            assert!(width(l, Font::Regular, 10.0) <= 60.0);
        }
        assert_eq!(lines.join(&b' '), text);
        let long = vec![b'W'; 40];
        let lines = wrap(&long, Font::Regular, 10.0, 50.0);
        assert!(lines.len() > 5);
        assert_eq!(lines.concat(), long);
        assert_eq!(wrap(b"", Font::Regular, 10.0, 50.0), vec![Vec::<u8>::new()]);
        assert_eq!(wrap(b"a\n\nb", Font::Regular, 10.0, 50.0).len(), 3);
    }
}
