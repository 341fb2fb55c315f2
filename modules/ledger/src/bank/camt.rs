//! ISO 20022 camt.053 (bank-to-customer statement) files, versions .001.02 to .001.08.
//!
//! Elements are matched by their local names, so the namespace version and any prefix do
//! not matter. What is read, under `Document/BkToCstmrStmt/Stmt`:
//!
//! | Field | From |
//! |---|---|
//! | account | `Acct/Id/IBAN`, else `Acct/Id/Othr/Id` |
//! | currency | `Acct/Ccy`, else the currency of the first balance or entry |
//! | opening | `Bal` of type `OPBD` (else `PRCD`, the previous closing): `Amt@Ccy`, `CdtDbtInd` |
//! | closing | `Bal` of type `CLBD` |
//! | lines | `Ntry` whose `Sts` (or `Sts/Cd`) is `BOOK`; pending and other entries are skipped |
//! | amount | `Ntry/Amt@Ccy`, negative when `CdtDbtInd` is `DBIT` |
//! | booking date | `BookgDt/Dt`, else the date of `BookgDt/DtTm` |
//! | value date | `ValDt/Dt`, else the date of `ValDt/DtTm` |
//! | bank reference | `AcctSvcrRef`, else `NtryRef` |
//! | reference | every `RmtInf/Strd/CdtrRefInf/Ref`, then `Refs/EndToEndId` (not `NOTPROVIDED`), of every `NtryDtls/TxDtls`, distinct, joined by `"; "` |
//! | description | the `RmtInf/Ustrd` of each `TxDtls` joined by spaces, the transactions joined by `"; "`, then `AddtlNtryInf` after `" / "` |
//! | counterparty | for credits `RltdPties/Dbtr/Nm` (or `Dbtr/Pty/Nm`, .001.08), for debits `Cdtr/Nm` (or `Cdtr/Pty/Nm`); distinct names joined by `", "` |
//!
//! A batch entry (several `TxDtls` under one `Ntry`) stays one line, as the bank booked it.
//!
//! Checks, all reported together with their XML line: every amount and balance is in the
//! account's currency; amounts have no sign and no more decimals than the currency;
//! dates exist; and when both balances are given, opening + Σ booked entries == closing.

use quick_xml::Reader;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};

use super::csv::DateFormat;
use super::{BankError, LineIndex, Problem, Statement, StatementLine, decode_text};
use crate::{Currency, Money};

/// Deeper nesting than this is refused; camt.053 needs about a dozen levels.
const MAX_DEPTH: usize = 64;

/// Reads every statement of a camt.053 file.
///
/// All or nothing: any problem in any statement refuses the whole file with
/// [`BankError::Invalid`], listing each problem with its line. XML that is not well
/// formed is [`BankError::MalformedXml`] (at the first error); well-formed XML that is not
/// a camt.053 statement is [`BankError::NotCamt053`]. A statement without entries is
/// returned with no lines (a day without movements).
pub fn parse_camt053(input: &[u8]) -> Result<Vec<Statement>, BankError> {
    let text = decode_text(input);
    if text.trim().is_empty() {
        return Err(BankError::Empty);
    }
    let document = parse_tree(&text)?;
    check_document(&document)?;
    let statements_element =
        document
            .child("BkToCstmrStmt")
            .ok_or_else(|| BankError::NotCamt053 {
                reason: "the document holds no BkToCstmrStmt".to_owned(),
            })?;
    let mut problems = Vec::new();
    let mut statements = Vec::new();
    for element in statements_element.all("Stmt") {
        if let Some(statement) = read_statement(element, &mut problems) {
            statements.push(statement);
        }
    }
    if !problems.is_empty() {
        return Err(BankError::Invalid { problems });
    }
    if statements.is_empty() {
        return Err(BankError::NotCamt053 {
            reason: "it holds no statement (BkToCstmrStmt/Stmt)".to_owned(),
        });
    }
    Ok(statements)
}

/// The root must be a `Document`; when it declares a camt namespace, it must be camt.053.
fn check_document(document: &Element) -> Result<(), BankError> {
    if document.name != "Document" {
        return Err(BankError::NotCamt053 {
            reason: format!("the root element is <{}>, not <Document>", document.name),
        });
    }
    let namespaces: Vec<&str> = document
        .attrs
        .iter()
        .filter(|(key, _)| key == "xmlns" || key.starts_with("xmlns:"))
        .map(|(_, value)| value.as_str())
        .collect();
    let camt = namespaces.iter().find(|ns| ns.contains(":camt.")).copied();
    if let Some(namespace) = camt
        && !namespaces.iter().any(|ns| ns.contains(":camt.053."))
    {
        return Err(BankError::NotCamt053 {
            reason: format!(
                "its namespace is {namespace}; only camt.053 statements can be imported"
            ),
        });
    }
    Ok(())
}

fn read_statement(stmt: &Element, problems: &mut Vec<Problem>) -> Option<Statement> {
    let before = problems.len();
    let name = match stmt.text_at(&["Id"]) {
        Some(id) => format!("statement {id}"),
        None => "the statement".to_owned(),
    };
    let account = stmt
        .text_at(&["Acct", "Id", "IBAN"])
        .or_else(|| stmt.text_at(&["Acct", "Id", "Othr", "Id"]))
        .map(str::to_owned);

    let currency_element = stmt.at(&["Acct", "Ccy"]).filter(|e| !e.text().is_empty());
    let currency_code = currency_element.map(|e| (e.text(), e.line)).or_else(|| {
        stmt.all("Bal")
            .chain(stmt.all("Ntry"))
            .filter_map(|e| e.child("Amt"))
            .find_map(|amt| amt.attr("Ccy").map(|ccy| (ccy, amt.line)))
    });
    let Some((code, line)) = currency_code else {
        problems.push(Problem::new(
            stmt.line,
            format!("{name} does not say its currency (Acct/Ccy)"),
        ));
        return None;
    };
    let currency = match Currency::new(code) {
        Ok(currency) => currency,
        Err(err) => {
            problems.push(Problem::new(line, format!("account currency: {err}")));
            return None;
        }
    };

    let (mut opening, mut previous_closing, mut closing) = (None, None, None);
    for balance in stmt.all("Bal") {
        let kind = balance
            .text_at(&["Tp", "CdOrPrtry", "Cd"])
            .or_else(|| balance.text_at(&["Tp", "CdOrPrtry", "Prtry"]));
        let (slot, what) = match kind {
            Some("OPBD") => (&mut opening, "opening balance (OPBD)"),
            Some("PRCD") => (&mut previous_closing, "previous closing balance (PRCD)"),
            Some("CLBD") => (&mut closing, "closing balance (CLBD)"),
            _ => continue,
        };
        if slot.is_some() {
            problems.push(Problem::new(
                balance.line,
                format!("{name} has a second {what}"),
            ));
            continue;
        }
        match read_amount(balance, what) {
            Ok((money, _)) if money.currency() != currency => problems.push(Problem::new(
                balance.line,
                format!("the {what} {money} is not in the account's currency {currency}"),
            )),
            Ok((money, _)) => *slot = Some(money),
            Err(problem) => problems.push(problem),
        }
    }
    let opening = opening.or(previous_closing);

    let mut lines = Vec::new();
    for entry in stmt.all("Ntry") {
        if let Some(line) = read_entry(entry, currency, problems) {
            lines.push(line);
        }
    }

    if problems.len() == before
        && let (Some(opening), Some(closing)) = (opening, closing)
        && let Err(message) = check_balances(&name, opening, closing, &lines)
    {
        problems.push(Problem::new(stmt.line, message));
    }
    (problems.len() == before).then_some(Statement {
        account,
        currency,
        opening,
        closing,
        lines,
    })
}

/// `opening + Σ lines == closing`, or a message naming every figure.
fn check_balances(
    name: &str,
    opening: Money,
    closing: Money,
    lines: &[StatementLine],
) -> Result<(), String> {
    let too_large = |_| format!("{name}: the entries are too large to add up");
    let mut total = Money::zero(opening.currency());
    for line in lines {
        total = total.checked_add(line.amount).map_err(too_large)?;
    }
    let expected = opening.checked_add(total).map_err(too_large)?;
    if expected == closing {
        return Ok(());
    }
    let difference = closing.checked_sub(expected).map_err(too_large)?;
    Err(format!(
        "{name} does not add up: the opening balance {opening} plus the booked entries \
         ({total}) makes {expected}, but the closing balance is {closing}, a difference of \
         {difference}"
    ))
}

/// One `Ntry`: `None` when it is not booked, or when it has problems (added to `problems`).
fn read_entry(
    entry: &Element,
    currency: Currency,
    problems: &mut Vec<Problem>,
) -> Option<StatementLine> {
    let status = entry.child("Sts").map(|sts| match sts.child("Cd") {
        Some(code) => code.text(),
        None => sts.text(),
    });
    match status {
        Some("BOOK") => {}
        Some(_) => return None,
        None => {
            problems.push(Problem::new(entry.line, "entry has no status (Sts)"));
            return None;
        }
    }
    let before = problems.len();

    let amount = match read_amount(entry, "entry") {
        Ok((money, credit)) if money.currency() == currency => Some((money, credit)),
        Ok((money, _)) => {
            let line = entry.child("Amt").map_or(entry.line, |amt| amt.line);
            problems.push(Problem::new(
                line,
                format!("entry amount {money} is not in the account's currency {currency}"),
            ));
            None
        }
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    let booking_date = match entry.child("BookgDt") {
        Some(element) => read_date(element, "booking date")
            .map_err(|problem| problems.push(problem))
            .ok(),
        None => {
            problems.push(Problem::new(
                entry.line,
                "entry has no booking date (BookgDt)",
            ));
            None
        }
    };
    let value_date = entry.child("ValDt").and_then(|element| {
        read_date(element, "value date")
            .map_err(|problem| problems.push(problem))
            .ok()
    });
    if problems.len() > before {
        return None;
    }
    let (Some((amount, credit)), Some(booking_date)) = (amount, booking_date) else {
        return None;
    };

    let transactions: Vec<&Element> = entry
        .all("NtryDtls")
        .flat_map(|details| details.all("TxDtls"))
        .collect();
    let mut references = Vec::new();
    let mut texts = Vec::new();
    let mut parties = Vec::new();
    let party = if credit { "Dbtr" } else { "Cdtr" };
    for tx in &transactions {
        let remittance = tx.child("RmtInf");
        for structured in remittance.into_iter().flat_map(|r| r.all("Strd")) {
            if let Some(reference) = structured.text_at(&["CdtrRefInf", "Ref"]) {
                push_distinct(&mut references, reference);
            }
        }
        if let Some(end_to_end) = tx.text_at(&["Refs", "EndToEndId"])
            && end_to_end != "NOTPROVIDED"
        {
            push_distinct(&mut references, end_to_end);
        }
        let unstructured: Vec<&str> = remittance
            .into_iter()
            .flat_map(|r| r.all("Ustrd"))
            .map(Element::text)
            .filter(|text| !text.is_empty())
            .collect();
        if !unstructured.is_empty() {
            texts.push(unstructured.join(" "));
        }
        let name = tx
            .text_at(&["RltdPties", party, "Nm"])
            .or_else(|| tx.text_at(&["RltdPties", party, "Pty", "Nm"]));
        if let Some(name) = name {
            push_distinct(&mut parties, name);
        }
    }
    let mut description = texts.join("; ");
    if let Some(additional) = entry.text_at(&["AddtlNtryInf"]) {
        if !description.is_empty() {
            description.push_str(" / ");
        }
        description.push_str(additional);
    }
    Some(StatementLine {
        line: entry.line,
        booking_date,
        value_date,
        amount,
        counterparty: parties.join(", "),
        reference: references.join("; "),
        description,
        bank_reference: entry
            .text_at(&["AcctSvcrRef"])
            .or_else(|| entry.text_at(&["NtryRef"]))
            .unwrap_or("")
            .to_owned(),
    })
}

fn push_distinct(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|known| known == item) {
        list.push(item.to_owned());
    }
}

/// `Amt@Ccy` signed by `CdtDbtInd` (a zero amount may leave the indicator out), and
/// whether it is a credit.
fn read_amount(parent: &Element, what: &str) -> Result<(Money, bool), Problem> {
    let Some(amt) = parent.child("Amt") else {
        return Err(Problem::new(
            parent.line,
            format!("{what} has no amount (Amt)"),
        ));
    };
    let fail = |message: String| Err(Problem::new(amt.line, message));
    let text = amt.text();
    let Some(code) = amt.attr("Ccy") else {
        return fail(format!("{what} amount {text:?} has no currency (Ccy)"));
    };
    let currency = match Currency::new(code) {
        Ok(currency) => currency,
        Err(err) => return fail(format!("{what} amount: {err}")),
    };
    if text.starts_with(['-', '+']) {
        return fail(format!(
            "{what} amount {text:?} has a sign; camt.053 gives the direction in CdtDbtInd"
        ));
    }
    let money = match Money::parse(text, currency) {
        Ok(money) => money,
        Err(err) => return fail(format!("{what} amount {err}")),
    };
    match parent.text_at(&["CdtDbtInd"]) {
        Some("CRDT") => Ok((money, true)),
        Some("DBIT") => money
            .checked_neg()
            .map(|negative| (negative, false))
            .map_err(|err| Problem::new(amt.line, format!("{what} amount: {err}"))),
        None if money.is_zero() => Ok((money, true)),
        Some(other) => Err(Problem::new(
            parent.line,
            format!("{what} has CdtDbtInd {other:?}; expected CRDT or DBIT"),
        )),
        None => Err(Problem::new(
            parent.line,
            format!("{what} does not say whether it is a credit or a debit (CdtDbtInd)"),
        )),
    }
}

/// `Dt`, or the date part of `DtTm`, under `element`.
fn read_date(element: &Element, what: &str) -> Result<time::Date, Problem> {
    let (text, line) = match (element.child("Dt"), element.child("DtTm")) {
        (Some(dt), _) => (dt.text(), dt.line),
        (None, Some(dt_tm)) => {
            let text = dt_tm.text();
            (text.get(..10).unwrap_or(text), dt_tm.line)
        }
        (None, None) => {
            return Err(Problem::new(
                element.line,
                format!("the {what} has no Dt or DtTm"),
            ));
        }
    };
    DateFormat::Iso
        .parse(text)
        .map_err(|message| Problem::new(line, format!("{what}: {message}")))
}

// ---- a small element tree, with the line each element starts on ----

/// An XML element, by local name, with its attributes (raw keys), text and children.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    line: usize,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }

    /// The trimmed text of the element at `path`, when there is some.
    fn text_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path)
            .map(Element::text)
            .filter(|text| !text.is_empty())
    }

    fn text(&self) -> &str {
        self.text.trim()
    }

    /// An attribute by local name (namespace declarations excluded).
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| {
                !key.starts_with("xmlns")
                    && (key == name || key.rsplit_once(':').is_some_and(|(_, local)| local == name))
            })
            .map(|(_, value)| value.trim())
    }
}

fn parse_tree(text: &str) -> Result<Element, BankError> {
    let lines = LineIndex::new(text);
    let mut reader = Reader::from_str(text);
    let malformed = |offset: u64, message: String| BankError::MalformedXml {
        line: lines.line_of(offset),
        message,
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|err| malformed(reader.error_position(), err.to_string()))?;
        let here = reader.buffer_position();
        let finished = match event {
            Event::Start(tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(
                        start,
                        format!("elements are nested more than {MAX_DEPTH} deep"),
                    ));
                }
                stack.push(element(&tag, lines.line_of(start)).map_err(|m| malformed(start, m))?);
                None
            }
            Event::Empty(tag) => {
                Some(element(&tag, lines.line_of(start)).map_err(|m| malformed(start, m))?)
            }
            Event::End(_) => stack.pop(),
            Event::Text(content) => {
                let content = content
                    .xml_content()
                    .map_err(|err| malformed(start, err.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&content);
                }
                None
            }
            Event::CData(content) => {
                let content = content
                    .decode()
                    .map_err(|err| malformed(start, err.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&content);
                }
                None
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => {
                        let name = reference
                            .decode()
                            .map_err(|err| malformed(start, err.to_string()))?;
                        resolve_xml_entity(&name)
                            .ok_or_else(|| malformed(start, format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                    Err(err) => return Err(malformed(start, err.to_string())),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
                None
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => None,
        };
        if let Some(done) = finished {
            match stack.last_mut() {
                Some(parent) => parent.children.push(done),
                None if root.is_none() => root = Some(done),
                None => {
                    return Err(malformed(
                        here,
                        "there is more than one root element".to_owned(),
                    ));
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(BankError::MalformedXml {
            line: lines.line_of(u64::try_from(text.len()).unwrap_or(u64::MAX)),
            message: format!(
                "the file ends before <{}> (opened on line {}) is closed",
                open.name, open.line
            ),
        });
    }
    root.ok_or_else(|| BankError::NotCamt053 {
        reason: "it holds no XML element".to_owned(),
    })
}

fn element(tag: &BytesStart<'_>, line: usize) -> Result<Element, String> {
    let name = String::from_utf8_lossy(tag.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for attribute in tag.attributes() {
        let attribute = attribute.map_err(|err| err.to_string())?;
        let key = String::from_utf8_lossy(attribute.key.as_ref()).into_owned();
        let value = attribute
            .unescape_value()
            .map_err(|err| err.to_string())?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Element {
        name,
        attrs,
        text: String::new(),
        line,
        children: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const GOOD: &str = include_str!("../../tests/fixtures/bank/camt053_v02.xml");
    const V08: &str = include_str!("../../tests/fixtures/bank/camt053_v08.xml");

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn problems(result: Result<Vec<Statement>, BankError>) -> Vec<String> {
        match result {
            Err(err) => err.problems().iter().map(Problem::to_string).collect(),
            Ok(statements) => panic!("expected problems, got {statements:?}"),
        }
    }

    /// The line of the first occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        let at = text.find(needle).unwrap();
        text[..at].matches('\n').count() + 1
    }

    #[test]
    fn reads_a_version_02_statement() {
        let statements = parse_camt053(GOOD.as_bytes()).unwrap();
        assert_eq!(statements.len(), 1);
        let statement = &statements[0];
        assert_eq!(statement.account.as_deref(), Some("DE89370400440532013000"));
        assert_eq!(statement.currency, Currency::EUR);
        // 10 000.00 + 1 190.00 - 1 500.00 - 2 380.00 - 12.50 = 7 297.50
        assert_eq!(statement.opening, Some(eur(1_000_000)));
        assert_eq!(statement.closing, Some(eur(729_750)));
        let got: Vec<_> = statement
            .lines
            .iter()
            .map(|l| (l.line, l.booking_date, l.value_date, l.amount))
            .collect();
        assert_eq!(
            got,
            [
                (
                    line_of(GOOD, "<Ntry><!-- 1 -->"),
                    date!(2024 - 04 - 02),
                    Some(date!(2024 - 04 - 02)),
                    eur(119_000)
                ),
                (
                    line_of(GOOD, "<Ntry><!-- 2 -->"),
                    date!(2024 - 04 - 03),
                    Some(date!(2024 - 04 - 03)),
                    eur(-150_000)
                ),
                (
                    line_of(GOOD, "<Ntry><!-- 4 -->"),
                    date!(2024 - 04 - 05),
                    None,
                    eur(-238_000)
                ),
                (
                    line_of(GOOD, "<Ntry><!-- 5 -->"),
                    date!(2024 - 04 - 05),
                    Some(date!(2024 - 04 - 05)),
                    eur(-1_250)
                ),
            ]
        );
        let customer = &statement.lines[0];
        assert_eq!(customer.counterparty, "Kunde & Söhne GmbH");
        assert_eq!(customer.reference, "RF18539007547034; E2E-2024-0042");
        assert_eq!(
            customer.description,
            "Rechnung INV-000042 vom 15.03.2024 / SEPA-GUTSCHRIFT"
        );
        assert_eq!(customer.bank_reference, "2024040200001");
        let rent = &statement.lines[1];
        assert_eq!(rent.counterparty, "Müller Immobilien GmbH");
        assert_eq!(rent.reference, "");
        assert_eq!(rent.description, "Miete April 2024");
        let batch = &statement.lines[2];
        assert_eq!(batch.counterparty, "Lieferant Eins AG, Lieferant Zwei KG");
        assert_eq!(batch.reference, "PAY-1; PAY-2");
        assert_eq!(
            batch.description,
            "Rechnung 4711; Rechnung 4712 / SAMMLER 2 POSTEN"
        );
        assert_eq!(batch.bank_reference, "NTRYREF-4");
        assert_eq!(statement.lines[3].description, "Kontoführung April");
        assert_eq!(statement.lines[3].counterparty, "");
    }

    #[test]
    fn reads_a_version_08_file_with_two_statements() {
        let statements = parse_camt053(V08.as_bytes()).unwrap();
        assert_eq!(statements.len(), 2);
        let (first, second) = (&statements[0], &statements[1]);
        assert_eq!(first.account.as_deref(), Some("CH9300762011623852957"));
        assert_eq!(first.currency, Currency::CHF);
        let chf = |minor| Money::new(minor, Currency::CHF);
        // 5 000.00 + 250.00 - 99.95 = 5 150.05
        assert_eq!(
            (first.opening, first.closing),
            (Some(chf(500_000)), Some(chf(515_005)))
        );
        assert_eq!(first.lines.len(), 2);
        assert_eq!(first.lines[0].counterparty, "Alpine Treuhand AG");
        assert_eq!(first.lines[0].booking_date, date!(2024 - 05 - 02));
        assert_eq!(first.lines[0].reference, "INV-000117");
        assert_eq!(first.lines[1].counterparty, "Swisscom (Schweiz) AG");
        assert_eq!(first.lines[1].amount, chf(-9_995));
        assert_eq!(first.lines[1].value_date, Some(date!(2024 - 05 - 03)));
        // The second statement: another account given by Othr/Id, PRCD as its opening.
        assert_eq!(second.account.as_deref(), Some("0815-4711"));
        assert_eq!(
            (second.opening, second.closing),
            (Some(chf(100)), Some(chf(100)))
        );
        assert!(second.lines.is_empty());
    }

    /// A one-statement camt.053 around `entries`, with the given balances.
    fn file(opening: &str, closing: &str, entries: &str) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.04">
<BkToCstmrStmt>
<GrpHdr><MsgId>T</MsgId><CreDtTm>2024-04-30T18:00:00</CreDtTm></GrpHdr>
<Stmt>
<Id>S-1</Id>
<Acct><Id><IBAN>DE02120300000000202051</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{opening}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-04-01</Dt></Dt></Bal>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-04-30</Dt></Dt></Bal>
{entries}
</Stmt>
</BkToCstmrStmt>
</Document>
"#
        )
    }

    fn entry(amount: &str, indicator: &str, date: &str) -> String {
        format!(
            "<Ntry>\n<Amt Ccy=\"EUR\">{amount}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>\
             <Sts>BOOK</Sts><BookgDt><Dt>{date}</Dt></BookgDt></Ntry>"
        )
    }

    #[test]
    fn a_sum_that_does_not_match_names_both_figures() {
        // 100.00 + 20.00 - 5.00 = 115.00, but the bank says 120.00.
        let entries = [
            entry("20.00", "CRDT", "2024-04-02"),
            entry("5.00", "DBIT", "2024-04-03"),
        ];
        let xml = file("100.00", "120.00", &entries.join("\n"));
        assert_eq!(
            problems(parse_camt053(xml.as_bytes())),
            [format!(
                "line {}: statement S-1 does not add up: the opening balance 100.00 EUR plus \
                 the booked entries (15.00 EUR) makes 115.00 EUR, but the closing balance is \
                 120.00 EUR, a difference of 5.00 EUR",
                line_of(&xml, "<Stmt>")
            )]
        );
        let xml = file("100.00", "115.00", &entries.join("\n"));
        assert_eq!(parse_camt053(xml.as_bytes()).unwrap()[0].lines.len(), 2);
    }

    #[test]
    fn every_bad_entry_is_listed() {
        let entries = [
            entry("20.00", "CRDT", "2024-04-02"),
            // wrong currency
            "<Ntry>\n<Amt Ccy=\"USD\">7.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>2024-04-02</Dt></BookgDt></Ntry>"
                .to_owned(),
            // no amount
            "<Ntry>\n<CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>\
             <BookgDt><Dt>2024-04-02</Dt></BookgDt></Ntry>"
                .to_owned(),
            // too many decimals and a date that does not exist
            entry("1.234", "DBIT", "2024-02-30"),
            // a sign, and an unknown indicator
            entry("-5.00", "CRDT", "2024-04-04"),
            entry("5.00", "XXXX", "2024-04-04"),
            // no status, no booking date
            "<Ntry>\n<Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd></Ntry>".to_owned(),
            "<Ntry>\n<Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts></Ntry>"
                .to_owned(),
            // pending entries are skipped, however wrong
            "<Ntry>\n<Amt Ccy=\"USD\">x</Amt><Sts>PDNG</Sts></Ntry>".to_owned(),
        ];
        let xml = file("100.00", "120.00", &entries.join("\n"));
        let nth = |n: usize| {
            let at = xml.match_indices("<Ntry>").nth(n).unwrap().0;
            xml[..at].matches('\n').count() + 1
        };
        // Amounts sit on the line after their <Ntry>.
        assert_eq!(
            problems(parse_camt053(xml.as_bytes())),
            [
                format!(
                    "line {}: entry amount 7.00 USD is not in the account's currency EUR",
                    nth(1) + 1
                ),
                format!("line {}: entry has no amount (Amt)", nth(2)),
                format!(
                    "line {}: entry amount \"1.234\" has more decimals than EUR allows (2); \
                     round it to 2 decimals",
                    nth(3) + 1
                ),
                format!(
                    "line {}: booking date: date \"2024-02-30\" does not exist",
                    nth(3) + 1
                ),
                format!(
                    "line {}: entry amount \"-5.00\" has a sign; camt.053 gives the direction \
                     in CdtDbtInd",
                    nth(4) + 1
                ),
                format!(
                    "line {}: entry has CdtDbtInd \"XXXX\"; expected CRDT or DBIT",
                    nth(5)
                ),
                format!("line {}: entry has no status (Sts)", nth(6)),
                format!("line {}: entry has no booking date (BookgDt)", nth(7)),
            ]
        );
    }

    #[test]
    fn a_balance_in_another_currency_is_refused() {
        let xml = file("100.00", "100.00", "").replace(
            "<Amt Ccy=\"EUR\">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-04-30",
            "<Amt Ccy=\"GBP\">100.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2024-04-30",
        );
        assert_eq!(
            problems(parse_camt053(xml.as_bytes())),
            [format!(
                "line {}: the closing balance (CLBD) 100.00 GBP is not in the account's \
                 currency EUR",
                line_of(&xml, "GBP")
            )]
        );
    }

    #[test]
    fn malformed_xml_names_its_line() {
        let xml = file(
            "100.00",
            "100.00",
            "<Ntry>\n<Amt Ccy=\"EUR\">1.00</Amtx></Ntry>",
        );
        let err = parse_camt053(xml.as_bytes()).unwrap_err();
        let BankError::MalformedXml { line, message } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(*line, line_of(&xml, "</Amtx>"));
        assert!(message.contains("Amtx"), "{message}");

        let truncated = &GOOD[..GOOD.find("<Ntry><!-- 2 -->").unwrap()];
        let err = parse_camt053(truncated.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "line {}: the XML is malformed: the file ends before <Stmt> (opened on line {}) \
                 is closed",
                line_of(GOOD, "<Ntry><!-- 2 -->"),
                line_of(GOOD, "<Stmt>")
            )
        );

        let err = parse_camt053(b"<Document><Stmt>&nbsp;</Stmt></Document>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the XML is malformed: unknown entity &nbsp;"
        );
        let err = parse_camt053(b"<a/><b/>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 1: the XML is malformed: there is more than one root element"
        );
    }

    #[test]
    fn other_documents_are_not_statements() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "the file is empty: there is nothing to import"),
            (
                b"<Invoice/>",
                "this is not a camt.053 bank statement: the root element is <Invoice>, not \
                 <Document>",
            ),
            (
                b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.02\">\
                  <BkToCstmrDbtCdtNtfctn/></Document>",
                "this is not a camt.053 bank statement: its namespace is \
                 urn:iso:std:iso:20022:tech:xsd:camt.054.001.02; only camt.053 statements can \
                 be imported",
            ),
            (
                b"<Document><BkToCstmrStmt><GrpHdr/></BkToCstmrStmt></Document>",
                "this is not a camt.053 bank statement: it holds no statement \
                 (BkToCstmrStmt/Stmt)",
            ),
            (
                b"<?xml version=\"1.0\"?><!-- nothing -->",
                "this is not a camt.053 bank statement: it holds no XML element",
            ),
        ];
        for (input, message) in cases {
            assert_eq!(parse_camt053(input).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn prefixes_entities_and_date_times() {
        let xml = "\u{FEFF}<c:Document xmlns:c=\"urn:iso:std:iso:20022:tech:xsd:camt.053.001.02\">\
            <c:BkToCstmrStmt><c:Stmt><c:Acct><c:Id><c:IBAN>X1</c:IBAN></c:Id></c:Acct>\
            <c:Ntry><c:Amt Ccy=\"EUR\">1.5</c:Amt><c:CdtDbtInd>CRDT</c:CdtDbtInd>\
            <c:Sts>BOOK</c:Sts><c:BookgDt><c:DtTm>2024-04-02T23:59:59+02:00</c:DtTm></c:BookgDt>\
            <c:AddtlNtryInf>A &amp; B &#x20AC; <![CDATA[<ok>]]></c:AddtlNtryInf></c:Ntry>\
            </c:Stmt></c:BkToCstmrStmt></c:Document>";
        let statements = parse_camt053(xml.as_bytes()).unwrap();
        let line = &statements[0].lines[0];
        // No Acct/Ccy: the currency comes from the first amount.
        assert_eq!(statements[0].currency, Currency::EUR);
        assert_eq!(
            (line.amount, line.booking_date),
            (eur(150), date!(2024 - 04 - 02))
        );
        assert_eq!(line.description, "A & B € <ok>");
    }

    #[test]
    fn line_index_counts_from_one() {
        let index = LineIndex::new("a\nbc\n\nd");
        let lines: Vec<_> = (0..8).map(|offset| index.line_of(offset)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 2, 3, 4, 4]);
    }
}
