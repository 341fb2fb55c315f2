//! Bank statements, pure: parsing the files a bank gives out, and suggesting which open
//! item each statement line pays. No storage, no web, no clock — except [`books`] (bank
//! accounts, import and reconciliation on the store) and [`entities`] (their records).
//!
//! * [`parse_csv`] reads a CSV export described by a [`CsvFormat`] (which
//!   [`CsvFormat::detect`] can guess from the header row, in English or German).
//! * [`parse_camt053`] reads an ISO 20022 camt.053 bank-to-customer statement (XML,
//!   versions .001.02 to .001.08), which may hold several statements.
//! * [`suggest`] ranks [`Candidate`]s (open invoices, unreconciled journal lines) for one
//!   [`StatementLine`]; [`match_all`] pairs lines and candidates one to one (scoring
//!   table below).
//!
//! Invariants:
//! * **All or nothing.** A file is imported whole or not at all: every row (or entry) is
//!   checked, and if any is wrong the result is [`BankError::Invalid`] listing *every*
//!   problem with the line of the file it is on (see [`Problem`]), so the bookkeeper can
//!   fix the file in one go. Nothing is returned alongside an error.
//! * Amounts are exact [`Money`] in the statement's currency, positive for money *into*
//!   the account; no floating point anywhere.
//! * Line numbers are the physical, 1-based line of the file where a row or entry starts
//!   (a quoted CSV field may span lines; an XML entry starts at its `<Ntry>` tag).
//! * Input is bytes: UTF-8 (a byte-order mark is ignored); anything that is not valid
//!   UTF-8 is read as Windows-1252, the encoding of most older European bank exports.
//!
//! ```
//! use nexus_ledger::Currency;
//! use nexus_ledger::bank::{CsvFormat, parse_csv};
//!
//! let file = "Buchungstag;Betrag;Verwendungszweck\n\
//!             02.04.2024;-1.234,56;Miete April\n\
//!             03.04.2024;500,00;RE-2024-17\n";
//! let format = CsvFormat::detect(file.lines().next().unwrap_or_default())?;
//! let statement = parse_csv(file.as_bytes(), &format, Currency::EUR)?;
//! assert_eq!(statement.lines[0].amount.minor(), -123_456);
//! assert_eq!((statement.lines[1].line, statement.lines[1].description.as_str()), (3, "RE-2024-17"));
//! # Ok::<(), nexus_ledger::bank::BankError>(())
//! ```
//!
//! # Reconciliation scoring
//!
//! A candidate's score is the sum of these points (at most 100):
//!
//! | Signal | Points |
//! |---|---|
//! | amount equal to the cent, same currency and direction | 50 |
//! | *or* amount within 3% of the candidate's, same currency and direction (a discount, a fee) | 15 |
//! | the candidate's whole reference found in the line's reference or description, ignoring case, spaces and punctuation, on token boundaries (`INV-000042` in "inv 000042", not in "INV-0000420") | 30 |
//! | *or* the reference's last number (at least two digits, leading zeros ignored) found as a number of its own (`42` or `0042`; not `420`, `42,00` or `RE42`) | 15 |
//! | every word of the party's name in the line's counterparty or description (case, umlauts, punctuation and legal forms such as GmbH, Ltd, Inc ignored) | 15 |
//! | *or* at least half of those words | 8 |
//! | booking date 0 / 1–3 / 4–7 / 8–14 / 15–30 / more days from the candidate's date | 5 / 4 / 3 / 2 / 1 / 0 |
//!
//! [`suggest`] offers candidates scoring at least [`SUGGEST_THRESHOLD`] (15: something
//! besides the date); [`match_all`] pairs on at least [`MATCH_THRESHOLD`] (65: the exact
//! amount and one of reference, number or full name). Ties rank by candidate id, so the
//! result never depends on the order candidates are given in.

use std::borrow::Cow;
use std::fmt;

use time::Date;

use crate::{Currency, Money};

pub mod books;
mod camt;
mod csv;
pub mod entities;
mod reconcile;

pub use camt::parse_camt053;
pub use csv::{AmountColumns, CsvFormat, DateFormat, DecimalSeparator, parse_csv};
pub use reconcile::{
    Candidate, MATCH_THRESHOLD, SUGGEST_THRESHOLD, Suggestion, match_all, suggest,
};

/// One statement of one account: what the bank says happened, in the order it says it.
///
/// A CSV export gives only the lines (no account, no balances); a camt.053 statement
/// gives all of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The account: its IBAN, or another identifier the bank uses; `None` when the file
    /// does not say.
    pub account: Option<String>,
    /// The account's currency; every line is in it.
    pub currency: Currency,
    /// The booked balance before the first line, when the file gives it.
    pub opening: Option<Money>,
    /// The booked balance after the last line, when the file gives it. When both balances
    /// are given, `opening + Σ lines == closing` has been checked.
    pub closing: Option<Money>,
    /// The booked lines (pending entries are left out).
    pub lines: Vec<StatementLine>,
}

/// One booked movement on a bank statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// The 1-based physical line of the file where this line's row or entry starts.
    pub line: usize,
    /// The day the bank booked it.
    pub booking_date: Date,
    /// The day it counts for interest, when the bank says.
    pub value_date: Option<Date>,
    /// The amount, positive for money into the account, negative for money out.
    pub amount: Money,
    /// Who paid (for money in) or was paid (for money out); may be empty.
    pub counterparty: String,
    /// The payment's reference (an invoice number, an end-to-end id); may be empty.
    pub reference: String,
    /// Free text: the remittance information and the bank's own notes; may be empty.
    pub description: String,
    /// The bank's unique id for the entry, for spotting a statement imported twice; may be
    /// empty (CSV exports rarely have one).
    pub bank_reference: String,
}

/// One thing wrong with an imported file, at a line of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line of the file (0 only where no line can be told).
    pub line: usize,
    /// What is wrong, for the bookkeeper: `amount "12,3x" is not a number`.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
        }
    }
}

/// `line 7: amount "12,3x" is not a number`.
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Everything a bank import can refuse. Nothing is imported when any of these is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// The file has nothing in it.
    #[error("the file is empty: there is nothing to import")]
    Empty,

    /// The file has a header row (or a statement) but not a single transaction.
    #[error("the file holds no transactions: {what}")]
    NoTransactions {
        /// What was found instead, such as "only a header row".
        what: String,
    },

    /// The columns of a CSV file could not be told from its header row.
    #[error("cannot tell the columns from the header row {header:?}: {reason}")]
    UnknownHeader {
        /// The header row as read.
        header: String,
        /// What is missing or ambiguous, with the names looked for.
        reason: String,
    },

    /// A [`CsvFormat`] that cannot be used, whatever the file.
    #[error("the CSV format is not usable: {reason}")]
    InvalidFormat {
        /// What is wrong with it.
        reason: String,
    },

    /// The XML is not well formed; parsing stopped at the first error.
    #[error("line {line}: the XML is malformed: {message}")]
    MalformedXml {
        /// The 1-based line of the error.
        line: usize,
        /// The parser's description of it.
        message: String,
    },

    /// Well-formed XML, but not a camt.053 bank-to-customer statement.
    #[error("this is not a camt.053 bank statement: {reason}")]
    NotCamt053 {
        /// Why not.
        reason: String,
    },

    /// Rows or entries that are wrong: every one found, in file order.
    #[error(
        "nothing was imported; {}:\n{}",
        count_problems(problems),
        list_problems(problems)
    )]
    Invalid {
        /// Every problem found, in the order of the file.
        problems: Vec<Problem>,
    },
}

impl BankError {
    /// The line-by-line problems of an [`BankError::Invalid`] (empty for other errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            BankError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}

fn count_problems(problems: &[Problem]) -> String {
    match problems.len() {
        1 => "fix this problem and import the file again".to_owned(),
        n => format!("fix these {n} problems and import the file again"),
    }
}

fn list_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Byte offsets to 1-based line numbers.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    pub(crate) fn line_of(&self, offset: u64) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        self.starts.partition_point(|&start| start <= offset).max(1)
    }
}

/// The text of a file: UTF-8 without its byte-order mark, or else Windows-1252.
pub(crate) fn decode_text(input: &[u8]) -> Cow<'_, str> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    match std::str::from_utf8(input) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(input.iter().map(|&b| windows_1252(b)).collect()),
    }
}

/// Windows-1252 to Unicode; the five unassigned bytes map to the C1 controls, as the
/// WHATWG encoding standard does.
fn windows_1252(byte: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_utf8_with_bom_and_windows_1252() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFDatum;Betrag"), "Datum;Betrag");
        assert_eq!(decode_text("Müller".as_bytes()), "Müller");
        assert_eq!(decode_text(b"M\xFCller \x80 5"), "Müller € 5");
    }

    #[test]
    fn invalid_lists_every_problem() {
        let err = BankError::Invalid {
            problems: vec![
                Problem::new(7, "amount \"12,3x\" is not a number"),
                Problem::new(9, "date \"31.02.2024\" does not exist"),
            ],
        };
        assert_eq!(
            err.to_string(),
            "nothing was imported; fix these 2 problems and import the file again:\n\
             line 7: amount \"12,3x\" is not a number\n\
             line 9: date \"31.02.2024\" does not exist"
        );
        assert_eq!(err.problems().len(), 2);
        assert!(BankError::Empty.problems().is_empty());
    }
}
