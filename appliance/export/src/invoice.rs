//! An invoice (or credit note) as an A4 PDF.

use time::Date;

use crate::ExportError;
use crate::format::{format_date, format_money};
use crate::model::{Align, MAX_EXPONENT};
use crate::pdf::{A4, Doc, Flow, Meta, PAD_X, Table, TableCol, TableRow};
use crate::text::{Font, encode, encode_paragraphs, width, wrap};

/// A business on an invoice. Blank fields are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    /// Legal name. Must not be blank.
    pub name: String,
    /// Postal address, one line each ("Hauptstraße 5", "10115 Berlin", "Germany").
    pub address: Vec<String>,
    /// VAT or other tax registration number.
    pub tax_id: String,
    /// E-mail address.
    pub email: String,
    /// Telephone number.
    pub phone: String,
}

/// One line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    /// What was sold; wraps, and line breaks are kept.
    pub description: String,
    /// The quantity as the caller formats it ("3", "2.5 h", "1,000 kg").
    pub quantity: String,
    /// Price of one unit, in minor units of the invoice's currency.
    pub unit_price: i64,
    /// The discount as the caller formats it ("10 %"), or blank.
    pub discount: String,
    /// The tax rate's label ("VAT 19 %"), matching a [`TaxRow`].
    pub tax: String,
    /// The line's amount before tax, in minor units.
    pub net: i64,
}

/// Tax for one rate: the amount it applies to and the tax itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRow {
    /// The rate's label ("VAT 19 %").
    pub label: String,
    /// Net amount taxed at this rate, in minor units.
    pub base: i64,
    /// Tax at this rate, in minor units.
    pub tax: i64,
}

/// The invoice's totals, in minor units. They must add up: `total = net + tax`,
/// `due = total - paid`, `net` is the sum of the lines and `tax` the sum of the tax rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvoiceTotals {
    /// Sum of the lines' net amounts.
    pub net: i64,
    /// Sum of the tax rows' tax.
    pub tax: i64,
    /// Net plus tax.
    pub total: i64,
    /// Already paid (shown only when not zero).
    pub paid: i64,
    /// Still to pay: total minus paid.
    pub due: i64,
}

/// An invoice or a credit note, with everything it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Who sends it.
    pub seller: Party,
    /// Who pays it.
    pub buyer: Party,
    /// The invoice number ("INV-2026-0042"). Must not be blank.
    pub number: String,
    /// What the document is: "Invoice", "Credit note". Printed in capitals as the heading.
    pub kind: String,
    /// Date of issue.
    pub issue_date: Date,
    /// Date payment is due; not before the issue date.
    pub due_date: Date,
    /// Currency code ("EUR").
    pub currency: String,
    /// Decimals of the currency (2 for EUR, 0 for JPY, 3 for KWD).
    pub exponent: u8,
    /// The lines, in order.
    pub lines: Vec<InvoiceLine>,
    /// Tax per rate.
    pub tax_rows: Vec<TaxRow>,
    /// The totals.
    pub totals: InvoiceTotals,
    /// Payment terms ("Payable within 14 days without deduction."), or blank.
    pub payment_terms: String,
    /// Bank details, one line each ("IBAN DE89 3704 0044 0532 0130 00", "BIC COBADEFFXXX").
    pub bank_details: Vec<String>,
    /// Anything else to say, or blank; wraps, and line breaks are kept.
    pub notes: String,
}

const MARGIN_X: f32 = 50.0;
const MARGIN_TOP: f32 = 48.0;
const BODY_BOTTOM: f32 = 78.0;
const TABLE_SIZE: f32 = 9.0;
const GRAY: f32 = 0.4;

/// Lays out an invoice on A4 pages: the seller top left, the heading ("INVOICE") with
/// number and dates top right, the buyer below, then the lines (descriptions wrap; the
/// table header repeats on every page), and on the last page the tax per rate, the
/// totals and the payment instructions. Every page's footer carries the seller's
/// details and "Page 1 of 2".
///
/// # Errors
/// [`ExportError`] when a required text is blank (number, kind, seller or buyer name),
/// the exponent is unsupported, the due date precedes the issue date, or the amounts do
/// not add up (see [`InvoiceTotals`]); such an invoice should not go out.
pub fn invoice_pdf(invoice: &Invoice) -> Result<Vec<u8>, ExportError> {
    validate(invoice)?;
    let page = A4;
    let right = page.w - MARGIN_X;
    let content_w = right - MARGIN_X;
    let money = |m: i64| encode(&format_money(m, invoice.exponent));
    let kind = invoice.kind.trim();

    // The line table: numbers keep their natural width, the description takes the rest.
    let has_discount = invoice.lines.iter().any(|l| !l.discount.trim().is_empty());
    let cur = invoice.currency.trim();
    let with_cur = |h: &str| {
        if cur.is_empty() {
            h.to_string()
        } else {
            format!("{h} ({cur})")
        }
    };
    let mut header = vec![
        "Description".to_string(),
        "Qty".to_string(),
        with_cur("Unit price"),
    ];
    let mut aligns = vec![Align::Left, Align::Right, Align::Right];
    if has_discount {
        header.push("Discount".to_string());
        aligns.push(Align::Right);
    }
    header.push("Tax".to_string());
    aligns.push(Align::Left);
    header.push(with_cur("Net"));
    aligns.push(Align::Right);
    let rows: Vec<TableRow> = invoice
        .lines
        .iter()
        .map(|l| {
            let mut cells = vec![
                encode_paragraphs(l.description.trim()),
                encode(l.quantity.trim()),
                money(l.unit_price),
            ];
            if has_discount {
                cells.push(encode(l.discount.trim()));
            }
            cells.push(encode(l.tax.trim()));
            cells.push(money(l.net));
            TableRow {
                cells,
                font: Font::Regular,
                indent: 0,
                rule_above: false,
            }
        })
        .collect();
    let header: Vec<Vec<u8>> = header.iter().map(|h| encode(h)).collect();
    let mut widths: Vec<f32> = (0..header.len())
        .map(|j| {
            let head = width(&header[j], Font::Bold, TABLE_SIZE);
            rows.iter()
                .map(|r| {
                    r.cells
                        .get(j)
                        .map_or(0.0, |c| width(c, Font::Regular, TABLE_SIZE))
                })
                .fold(head, f32::max)
                + 2.0 * PAD_X
        })
        .collect();
    // Every column but the description keeps its natural width, up to a share of the
    // page; the description gets the rest (at least a third of the page).
    let cap = content_w / 6.0;
    for w in widths.iter_mut().skip(1) {
        *w = w.min(cap.max(60.0));
    }
    let others: f32 = widths.iter().skip(1).sum();
    if let Some(first) = widths.first_mut() {
        *first = (content_w - others).max(content_w / 3.0);
    }
    let table = Table {
        x: MARGIN_X,
        cols: widths
            .iter()
            .zip(&aligns)
            .map(|(&width, &align)| TableCol {
                width,
                align,
                indents: false,
            })
            .collect(),
        header,
        size: TABLE_SIZE,
    };

    // Pages after the first repeat a short head.
    let seller_name = encode(invoice.seller.name.trim());
    let continued = encode(&format!("{kind} {} (continued)", invoice.number.trim()));
    let mut first_page = true;
    let start = move |doc: &mut Doc| -> f32 {
        if first_page {
            first_page = false;
            return page.h - MARGIN_TOP;
        }
        let y = page.h - MARGIN_TOP - 10.0;
        doc.text(MARGIN_X, y, Font::Bold, 10.0, &seller_name, 0.0);
        doc.text_right(right, y, Font::Regular, 9.0, &continued, GRAY);
        doc.rule(MARGIN_X, right, y - 8.0, 0.4, 0.6);
        y - 22.0
    };
    let mut flow = Flow::new(Doc::new(page), BODY_BOTTOM, Box::new(start));

    // Seller, top left.
    let top = flow.y;
    let left_w = content_w * 0.55;
    let mut y = top - 13.0;
    for line in wrap(
        &encode(invoice.seller.name.trim()),
        Font::Bold,
        13.0,
        left_w,
    ) {
        flow.doc.text(MARGIN_X, y, Font::Bold, 13.0, &line, 0.0);
        y -= 15.0;
    }
    y -= 1.0;
    for line in party_lines(&invoice.seller) {
        for part in wrap(&line, Font::Regular, 9.0, left_w) {
            flow.doc.text(MARGIN_X, y, Font::Regular, 9.0, &part, 0.2);
            y -= 11.5;
        }
    }
    let seller_bottom = y;

    // Heading, number and dates, top right.
    let mut y = top - 18.0;
    flow.doc.text_right(
        right,
        y,
        Font::Bold,
        20.0,
        &encode(&kind.to_uppercase()),
        0.0,
    );
    y -= 26.0;
    let label_x = right - 200.0;
    for (label, value) in [
        (format!("{kind} no."), invoice.number.trim().to_string()),
        ("Issue date".to_string(), format_date(invoice.issue_date)),
        ("Due date".to_string(), format_date(invoice.due_date)),
    ] {
        flow.doc
            .text(label_x, y, Font::Regular, 9.0, &encode(&label), GRAY);
        flow.doc
            .text_right(right, y, Font::Bold, 9.0, &encode(&value), 0.0);
        y -= 13.0;
    }
    let meta_bottom = y;

    // Buyer.
    let mut y = seller_bottom.min(meta_bottom) - 20.0;
    flow.doc
        .text(MARGIN_X, y, Font::Bold, 7.5, b"BILL TO", GRAY);
    y -= 14.0;
    for line in wrap(&encode(invoice.buyer.name.trim()), Font::Bold, 10.5, left_w) {
        flow.doc.text(MARGIN_X, y, Font::Bold, 10.5, &line, 0.0);
        y -= 13.0;
    }
    for line in party_lines(&invoice.buyer) {
        for part in wrap(&line, Font::Regular, 9.0, left_w) {
            flow.doc.text(MARGIN_X, y, Font::Regular, 9.0, &part, 0.0);
            y -= 11.5;
        }
    }
    flow.y = y - 16.0;

    table.draw(&mut flow, &rows);
    flow.y -= 16.0;

    // Tax per rate (left) and totals (right), kept together on the last page.
    let tax_table = Table {
        x: MARGIN_X,
        cols: vec![
            TableCol {
                width: content_w * 0.52 - 150.0,
                align: Align::Left,
                indents: false,
            },
            TableCol {
                width: 75.0,
                align: Align::Right,
                indents: false,
            },
            TableCol {
                width: 75.0,
                align: Align::Right,
                indents: false,
            },
        ],
        header: vec![
            encode("Tax rate"),
            encode(&with_cur("Base")),
            encode(&with_cur("Tax")),
        ],
        size: 8.5,
    };
    let tax_rows: Vec<TableRow> = invoice
        .tax_rows
        .iter()
        .map(|t| TableRow {
            cells: vec![
                encode_paragraphs(t.label.trim()),
                money(t.base),
                money(t.tax),
            ],
            font: Font::Regular,
            indent: 0,
            rule_above: false,
        })
        .collect();
    let t = invoice.totals;
    let mut totals: Vec<(String, i64)> = vec![
        ("Net total".to_string(), t.net),
        ("Tax".to_string(), t.tax),
        (with_cur("Total"), t.total),
    ];
    if t.paid != 0 {
        totals.push(("Paid".to_string(), t.paid));
    }
    let totals_h = totals.len() as f32 * 14.0 + 26.0;
    let tax_h = if tax_rows.is_empty() {
        0.0
    } else {
        (tax_rows.len() as f32 + 1.0) * 8.5 * 1.8 + 20.0
    };
    flow.keep(totals_h.max(tax_h));
    let block_top = flow.y;
    if !tax_rows.is_empty() {
        tax_table.draw(&mut flow, &tax_rows);
    }
    let tax_bottom = flow.y;
    let mut y = block_top - 10.0;
    let totals_x = right - 210.0;
    for (label, amount) in &totals {
        flow.doc
            .text(totals_x, y, Font::Regular, 9.5, &encode(label), 0.2);
        flow.doc
            .text_right(right, y, Font::Regular, 9.5, &money(*amount), 0.0);
        y -= 14.0;
    }
    flow.doc.rule(totals_x, right, y + 9.0, 0.9, 0.0);
    y -= 6.0;
    flow.doc.text(
        totals_x,
        y,
        Font::Bold,
        11.0,
        &encode(&with_cur("Amount due")),
        0.0,
    );
    flow.doc
        .text_right(right, y, Font::Bold, 11.0, &money(t.due), 0.0);
    flow.y = tax_bottom.min(y - 10.0) - 14.0;

    // Payment instructions and notes.
    let mut payment: Vec<Vec<u8>> = Vec::new();
    if !invoice.payment_terms.trim().is_empty() {
        payment.extend(wrap(
            &encode_paragraphs(invoice.payment_terms.trim()),
            Font::Regular,
            9.0,
            content_w,
        ));
    }
    for line in invoice.bank_details.iter().filter(|l| !l.trim().is_empty()) {
        payment.extend(wrap(&encode(line.trim()), Font::Regular, 9.0, content_w));
    }
    paragraph(&mut flow, b"Payment", &payment);
    if !invoice.notes.trim().is_empty() {
        let notes = wrap(
            &encode_paragraphs(invoice.notes.trim()),
            Font::Regular,
            9.0,
            content_w,
        );
        paragraph(&mut flow, b"Notes", &notes);
    }

    // Footer: the seller's details and the page number, on every page.
    let mut details: Vec<String> = vec![invoice.seller.name.trim().to_string()];
    let address: Vec<&str> = invoice
        .seller
        .address
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    if !address.is_empty() {
        details.push(address.join(", "));
    }
    for (label, value) in [
        ("Tax ID ", &invoice.seller.tax_id),
        ("", &invoice.seller.email),
        ("", &invoice.seller.phone),
    ] {
        if !value.trim().is_empty() {
            details.push(format!("{label}{}", value.trim()));
        }
    }
    let footer = wrap(
        &encode(&details.join(" · ")),
        Font::Regular,
        7.5,
        content_w - 80.0,
    );
    let mut doc = flow.doc;
    let pages = doc.page_count();
    for i in 0..pages {
        doc.select(i);
        doc.rule(MARGIN_X, right, 56.0, 0.4, 0.6);
        for (k, line) in footer.iter().take(3).enumerate() {
            doc.text(
                MARGIN_X,
                44.0 - 9.0 * k as f32,
                Font::Regular,
                7.5,
                line,
                GRAY,
            );
        }
        let label = encode(&format!("Page {} of {pages}", i + 1));
        doc.text_right(right, 44.0, Font::Regular, 7.5, &label, GRAY);
    }
    let title = format!("{kind} {}", invoice.number.trim());
    doc.finish(&Meta {
        title: &title,
        author: invoice.seller.name.trim(),
        created: None,
    })
}

/// A heading and its lines: the heading stays with the first lines; long texts flow
/// onto further pages.
fn paragraph(flow: &mut Flow, heading: &[u8], lines: &[Vec<u8>]) {
    if lines.is_empty() {
        return;
    }
    let leading = 11.5;
    let all = 16.0 + lines.len() as f32 * leading;
    flow.keep(all.min(16.0 + 3.0 * leading));
    let mut y = flow.y - 10.0;
    flow.doc.text(MARGIN_X, y, Font::Bold, 9.5, heading, 0.0);
    y -= 14.0;
    for line in lines {
        if y < flow.bottom {
            flow.break_page();
            y = flow.y - 10.0;
        }
        flow.doc.text(MARGIN_X, y, Font::Regular, 9.0, line, 0.15);
        y -= leading;
    }
    flow.y = y - 8.0;
}

/// Address, tax id, e-mail and phone of a party, encoded, blank ones left out.
fn party_lines(p: &Party) -> Vec<Vec<u8>> {
    let mut lines: Vec<String> = p
        .address
        .iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if !p.tax_id.trim().is_empty() {
        lines.push(format!("Tax ID {}", p.tax_id.trim()));
    }
    for s in [&p.email, &p.phone] {
        if !s.trim().is_empty() {
            lines.push(s.trim().to_string());
        }
    }
    lines.iter().map(|l| encode(l)).collect()
}

fn validate(inv: &Invoice) -> Result<(), ExportError> {
    let required: [(&str, &'static str, &'static str); 4] = [
        (&inv.number, "invoice number", "give the invoice its number"),
        (
            &inv.kind,
            "document kind",
            "say what it is: \"Invoice\" or \"Credit note\"",
        ),
        (
            &inv.seller.name,
            "seller's name",
            "the seller must be named",
        ),
        (&inv.buyer.name, "buyer's name", "the buyer must be named"),
    ];
    for (value, what, hint) in required {
        if value.trim().is_empty() {
            return Err(ExportError::Missing { what, hint });
        }
    }
    if inv.exponent > MAX_EXPONENT {
        return Err(ExportError::Exponent {
            what: format!("invoice {}", inv.number.trim()),
            exponent: inv.exponent,
        });
    }
    if inv.due_date < inv.issue_date {
        return Err(ExportError::DueBeforeIssue {
            issued: inv.issue_date,
            due: inv.due_date,
        });
    }
    let m = |v: i64| format_money(v, inv.exponent);
    let overflow = || ExportError::InvoiceTotals("the amounts are too large to add up".into());
    let t = inv.totals;
    let lines = inv
        .lines
        .iter()
        .try_fold(0_i64, |acc, l| acc.checked_add(l.net))
        .ok_or_else(overflow)?;
    if lines != t.net {
        return Err(ExportError::InvoiceTotals(format!(
            "the lines' net amounts sum to {} but the net total is {}",
            m(lines),
            m(t.net)
        )));
    }
    let taxes = inv
        .tax_rows
        .iter()
        .try_fold(0_i64, |acc, r| acc.checked_add(r.tax))
        .ok_or_else(overflow)?;
    if taxes != t.tax {
        return Err(ExportError::InvoiceTotals(format!(
            "the tax rows sum to {} but the tax total is {}",
            m(taxes),
            m(t.tax)
        )));
    }
    let total = t.net.checked_add(t.tax).ok_or_else(overflow)?;
    if total != t.total {
        return Err(ExportError::InvoiceTotals(format!(
            "net {} plus tax {} is {}, but the total is {}",
            m(t.net),
            m(t.tax),
            m(total),
            m(t.total)
        )));
    }
    let due = t.total.checked_sub(t.paid).ok_or_else(overflow)?;
    if due != t.due {
        return Err(ExportError::InvoiceTotals(format!(
            "total {} less paid {} is {}, but the amount due is {}",
            m(t.total),
            m(t.paid),
            m(due),
            m(t.due)
        )));
    }
    Ok(())
}
