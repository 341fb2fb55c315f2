//! Office Open XML: DOCX (paragraphs by heading, tables by row) and XLSX (sheets by
//! rows). Both are ZIP archives, checked before anything is unpacked.

use std::io::{Cursor, Read};

use quick_xml::events::Event;

use crate::{ExtractError, Limits, Passage, table_passages};

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes / (1024 * 1024))
}

/// Opens an archive whose entry count and declared sizes are within `limits`.
fn archive(bytes: &[u8], limits: Limits) -> Result<zip::ZipArchive<Cursor<&[u8]>>, ExtractError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ExtractError::Damaged(format!("it is not a readable ZIP archive ({e})")))?;
    if zip.len() > limits.max_entries {
        return Err(ExtractError::TooLarge(format!(
            "{} entries (it holds {})",
            limits.max_entries,
            zip.len()
        )));
    }
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip
            .by_index(i)
            .map_err(|e| ExtractError::Damaged(format!("entry {i} cannot be read ({e})")))?;
        declared = declared.saturating_add(entry.size());
    }
    if declared > limits.max_unpacked {
        return Err(ExtractError::TooLarge(mib(limits.max_unpacked)));
    }
    Ok(zip)
}

/// One entry, read whole but never past `limit` bytes, whatever its header says.
fn entry(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    limit: u64,
) -> Result<Vec<u8>, ExtractError> {
    let file = zip
        .by_name(name)
        .map_err(|_| ExtractError::Damaged(format!("it has no {name}")))?;
    let mut out = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| ExtractError::Damaged(format!("{name} cannot be unpacked ({e})")))?;
    if out.len() as u64 > limit {
        return Err(ExtractError::TooLarge(mib(limit)));
    }
    Ok(out)
}

/// A Word document's text: a heading paragraph (style `Heading…` or `Title`) starts a
/// section; a table's rows are lines with their cells separated by `|`.
pub(crate) fn docx(bytes: &[u8], limits: Limits) -> Result<Vec<Passage>, ExtractError> {
    let mut zip = archive(bytes, limits)?;
    let xml = entry(&mut zip, "word/document.xml", limits.max_unpacked)?;
    let mut reader = quick_xml::Reader::from_reader(xml.as_slice());
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let (mut heading, mut body) = (String::new(), String::new());
    let mut para = String::new();
    let mut is_heading = false;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut row: Vec<String> = Vec::new();
    let mut cell = String::new();
    let close = |heading: &str, body: &mut String, out: &mut Vec<Passage>| {
        let text = std::mem::take(body);
        if text.trim().is_empty() && heading.is_empty() {
            return;
        }
        out.push(Passage {
            locator: heading.to_owned(),
            page: None,
            text: if heading.is_empty() {
                text
            } else {
                format!("{heading}\n\n{text}")
            },
        });
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| ExtractError::Damaged(format!("its text is not well-formed XML ({e})")))?;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                b"p" => {
                    para.clear();
                    is_heading = false;
                }
                b"pStyle" => {
                    for a in e.attributes().flatten() {
                        if a.key.local_name().as_ref() == b"val" {
                            let v = String::from_utf8_lossy(&a.value).to_ascii_lowercase();
                            is_heading = v.starts_with("heading") || v == "title";
                        }
                    }
                }
                b"t" => in_text = true,
                b"tab" => para.push(' '),
                b"br" | b"cr" => para.push('\n'),
                b"tbl" => table_depth += 1,
                b"tc" => cell.clear(),
                _ => {}
            },
            Event::Text(t) if in_text => {
                para.push_str(&t.xml_content().unwrap_or_default());
            }
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    para.push(c);
                } else {
                    let name: &[u8] = &r;
                    match name {
                        b"amp" => para.push('&'),
                        b"lt" => para.push('<'),
                        b"gt" => para.push('>'),
                        b"quot" => para.push('"'),
                        b"apos" => para.push('\''),
                        _ => {}
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_text = false,
                b"p" if table_depth > 0 => {
                    if !cell.is_empty() {
                        cell.push(' ');
                    }
                    cell.push_str(para.trim());
                }
                b"p" if is_heading && !para.trim().is_empty() => {
                    close(&heading, &mut body, &mut out);
                    heading = para.split_whitespace().collect::<Vec<_>>().join(" ");
                }
                b"p" => {
                    body.push_str(&para);
                    body.push_str("\n\n");
                }
                b"tc" => row.push(std::mem::take(&mut cell)),
                b"tr" => {
                    let cells: Vec<String> = std::mem::take(&mut row)
                        .into_iter()
                        .filter(|c| !c.trim().is_empty())
                        .collect();
                    if !cells.is_empty() {
                        body.push_str(&cells.join(" | "));
                        body.push('\n');
                    }
                }
                b"tbl" => {
                    table_depth = table_depth.saturating_sub(1);
                    body.push('\n');
                }
                _ => {}
            },
            _ => {}
        }
        buf.clear();
    }
    close(&heading, &mut body, &mut out);
    Ok(out)
}

/// The cells of the rectangle from a sheet's first cell to its last (by their `r`
/// references), without unpacking any value.
fn sheet_span(xml: &[u8]) -> Result<u64, ExtractError> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let (mut rows, mut cols) = ((u64::MAX, 0u64), (u64::MAX, 0u64));
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e) | Event::Empty(e)) if e.local_name().as_ref() == b"c" => {
                for a in e.attributes().flatten() {
                    if a.key.local_name().as_ref() == b"r"
                        && let Some((r, c)) = cell_ref(&a.value)
                    {
                        rows = (rows.0.min(r), rows.1.max(r));
                        cols = (cols.0.min(c), cols.1.max(c));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                return Err(ExtractError::Damaged(format!(
                    "a sheet is not well-formed XML ({e})"
                )));
            }
        }
        buf.clear();
    }
    if rows.1 == 0 {
        return Ok(0);
    }
    Ok((rows.1 - rows.0 + 1).saturating_mul(cols.1 - cols.0 + 1))
}

/// `B12` as (row 12, column 2).
fn cell_ref(r: &[u8]) -> Option<(u64, u64)> {
    let letters = r.iter().take_while(|b| b.is_ascii_uppercase()).count();
    if letters == 0 || letters > 3 || letters == r.len() {
        return None;
    }
    let col = r[..letters]
        .iter()
        .fold(0u64, |n, b| n * 26 + u64::from(b - b'A' + 1));
    let row = std::str::from_utf8(&r[letters..]).ok()?.parse().ok()?;
    Some((row, col))
}

/// A workbook's sheets, each by rows (the first row is taken as the header).
pub(crate) fn xlsx(bytes: &[u8], limits: Limits) -> Result<Vec<Passage>, ExtractError> {
    use calamine::Reader;
    let mut zip = archive(bytes, limits)?;
    // The reader lays each sheet out as a dense grid from its first cell to its last:
    // two cells far apart would ask for billions. The spans are measured first.
    let sheets: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter(|n| n.starts_with("xl/worksheets/") && n.ends_with(".xml"))
        .map(|n| n.into_owned())
        .collect();
    let mut grid: u64 = 0;
    for name in sheets {
        let xml = entry(&mut zip, &name, limits.max_unpacked)?;
        grid = grid.saturating_add(sheet_span(&xml)?);
        if grid > limits.max_cells as u64 {
            return Err(ExtractError::TooLarge(format!(
                "{} cells",
                limits.max_cells
            )));
        }
    }
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e| ExtractError::Damaged(format!("the workbook cannot be read ({e})")))?;
    let mut out = Vec::new();
    let mut cells = 0usize;
    for name in book.sheet_names() {
        let Ok(range) = book.worksheet_range(&name) else {
            continue;
        };
        let (height, width) = range.get_size();
        cells = cells.saturating_add(height.saturating_mul(width));
        if cells > limits.max_cells {
            return Err(ExtractError::TooLarge(format!(
                "{} cells",
                limits.max_cells
            )));
        }
        let mut rows = range
            .rows()
            .map(|r| r.iter().map(ToString::to_string).collect::<Vec<String>>());
        let Some(header) = rows.next() else {
            continue;
        };
        // The header row is row 1 (of the sheet's used range); its lines start at 2.
        let first = range.start().map_or(1, |(r, _)| r as usize + 1);
        let mut passages = table_passages(&name, &header, rows, first + 1);
        if passages.is_empty() {
            passages.push(Passage {
                locator: name.clone(),
                page: None,
                text: header.join(" | "),
            });
        }
        out.extend(passages);
    }
    Ok(out)
}
