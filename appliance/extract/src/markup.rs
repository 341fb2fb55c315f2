//! HTML and Markdown: text by section, a heading starting each.

use crate::Passage;

/// Sections of `text` as (heading, body) passages; text before the first heading has
/// an empty locator.
struct Sections {
    out: Vec<Passage>,
    heading: String,
    body: String,
}

impl Sections {
    fn new() -> Sections {
        Sections {
            out: Vec::new(),
            heading: String::new(),
            body: String::new(),
        }
    }

    fn heading(&mut self, title: &str) {
        self.close();
        self.heading = title.split_whitespace().collect::<Vec<_>>().join(" ");
    }

    fn push(&mut self, text: &str) {
        self.body.push_str(text);
    }

    fn close(&mut self) {
        let body = std::mem::take(&mut self.body);
        if body.trim().is_empty() && self.heading.is_empty() {
            return;
        }
        // A heading is part of its section's text too: it is what people search for.
        let text = if self.heading.is_empty() {
            body
        } else {
            format!("{}\n\n{body}", self.heading)
        };
        self.out.push(Passage {
            locator: self.heading.clone(),
            page: None,
            text,
        });
    }

    fn finish(mut self) -> Vec<Passage> {
        self.close();
        self.out
    }
}

/// Markdown: `#` headings (and underlined ones) start sections; the rest is kept as
/// written, without the heading marks.
pub(crate) fn markdown(text: &str) -> Vec<Passage> {
    let mut s = Sections::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut fenced = false;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
            i += 1;
            continue;
        }
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        let underlined = lines.get(i + 1).is_some_and(|next| {
            let n = next.trim();
            !trimmed.is_empty()
                && n.len() >= 3
                && (n.chars().all(|c| c == '=') || n.chars().all(|c| c == '-'))
        });
        if !fenced && (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            s.heading(trimmed[hashes..].trim().trim_end_matches('#'));
        } else if !fenced && underlined {
            s.heading(trimmed);
            i += 1;
        } else {
            s.push(line);
            s.push("\n");
        }
        i += 1;
    }
    s.finish()
}

/// HTML: tags dropped (with the content of `script`, `style`, `head` and comments),
/// entities decoded, block elements on lines of their own, `h1`–`h6` starting
/// sections.
pub(crate) fn html(text: &str) -> Vec<Passage> {
    let mut s = Sections::new();
    let mut rest = text;
    let mut heading: Option<String> = None;
    let mut skip: Option<String> = None;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            emit(&mut s, &mut heading, skip.is_some(), &decode(rest));
            break;
        };
        emit(&mut s, &mut heading, skip.is_some(), &decode(&rest[..lt]));
        rest = &rest[lt..];
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |e| &after[e + 3..]);
            continue;
        }
        let Some(gt) = rest.find('>') else {
            break;
        };
        let tag = &rest[1..gt];
        rest = &rest[gt + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(skipping) = &skip {
            if closing && *skipping == name {
                skip = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" | "template" | "noscript" if !closing => skip = Some(name),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                if closing {
                    if let Some(h) = heading.take() {
                        s.heading(&h);
                    }
                } else {
                    heading = Some(String::new());
                }
            }
            "p" | "div" | "br" | "li" | "tr" | "table" | "section" | "article" | "ul" | "ol"
            | "blockquote" | "pre" | "hr" | "dt" | "dd" => s.push("\n"),
            "td" | "th" => s.push(" | "),
            _ => {}
        }
    }
    if let Some(h) = heading.take() {
        s.heading(&h);
    }
    s.finish()
}

fn emit(s: &mut Sections, heading: &mut Option<String>, skipping: bool, text: &str) {
    if skipping {
        return;
    }
    match heading {
        Some(h) => h.push_str(text),
        None => s.push(text),
    }
}

/// The common character references, and numeric ones.
fn decode(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}
