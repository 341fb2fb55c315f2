//! CSV bank exports: a [`CsvFormat`] says which column holds what and how dates and
//! amounts are written; [`parse_csv`] reads a whole file or refuses it whole.

use ::csv::{ReaderBuilder, StringRecord};
use time::{Date, Month};

use super::{BankError, LineIndex, Problem, Statement, StatementLine, decode_text};
use crate::{Currency, LedgerError, Money};

/// How dates are written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DateFormat {
    /// `2024-03-31`.
    Iso,
    /// `31.03.2024`, as German banks write.
    DayMonthYearDots,
    /// `31/03/2024`, as British banks write.
    DayMonthYearSlashes,
    /// `03/31/2024`, as American banks write.
    MonthDayYearSlashes,
}

impl DateFormat {
    /// The pattern for messages: `DD.MM.YYYY`.
    pub fn pattern(self) -> &'static str {
        match self {
            DateFormat::Iso => "YYYY-MM-DD",
            DateFormat::DayMonthYearDots => "DD.MM.YYYY",
            DateFormat::DayMonthYearSlashes => "DD/MM/YYYY",
            DateFormat::MonthDayYearSlashes => "MM/DD/YYYY",
        }
    }

    /// Reads `text` (surrounding spaces ignored). Days and months may have one digit;
    /// the year has four.
    pub(super) fn parse(self, text: &str) -> Result<Date, String> {
        let wrong = || format!("date {text:?} is not a date written {}", self.pattern());
        let trimmed = text.trim();
        let separator = match self {
            DateFormat::Iso => '-',
            DateFormat::DayMonthYearDots => '.',
            DateFormat::DayMonthYearSlashes | DateFormat::MonthDayYearSlashes => '/',
        };
        let parts: Vec<&str> = trimmed.split(separator).collect();
        let &[a, b, c] = parts.as_slice() else {
            return Err(wrong());
        };
        let (year, month, day) = match self {
            DateFormat::Iso => (a, b, c),
            DateFormat::DayMonthYearDots | DateFormat::DayMonthYearSlashes => (c, b, a),
            DateFormat::MonthDayYearSlashes => (c, a, b),
        };
        let number = |part: &str, min: usize, max: usize| {
            (part.len() >= min && part.len() <= max && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u16>().ok())
                .flatten()
        };
        let (Some(year), Some(month), Some(day)) =
            (number(year, 4, 4), number(month, 1, 2), number(day, 1, 2))
        else {
            return Err(wrong());
        };
        let exists = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .zip(u8::try_from(day).ok())
            .and_then(|(month, day)| Date::from_calendar_date(i32::from(year), month, day).ok());
        exists.ok_or_else(|| format!("date {text:?} does not exist"))
    }
}

/// The character between whole units and decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecimalSeparator {
    /// `1234.56`.
    Point,
    /// `1234,56`.
    Comma,
}

impl DecimalSeparator {
    fn char(self) -> char {
        match self {
            DecimalSeparator::Point => '.',
            DecimalSeparator::Comma => ',',
        }
    }
}

/// Where the amount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AmountColumns {
    /// One column, negative for money out: `-12.50`.
    Signed(usize),
    /// Two columns: money out in `debit`, money in in `credit`, each written without a
    /// sign (a sign there is ignored) and the other left empty or zero.
    DebitCredit {
        /// The column of money out of the account.
        debit: usize,
        /// The column of money into the account.
        credit: usize,
    },
}

/// How a CSV export is laid out. Columns count from 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvFormat {
    /// The field delimiter: `b','`, `b';'`, `b'\t'`.
    pub delimiter: u8,
    /// Whether the first row names the columns (and is skipped).
    pub has_header: bool,
    /// The booking date's column.
    pub date: usize,
    /// The value date's column, if any.
    pub value_date: Option<usize>,
    /// The amount's column or columns.
    pub amount: AmountColumns,
    /// The payer's or payee's name, if any.
    pub counterparty: Option<usize>,
    /// The payment reference, if any.
    pub reference: Option<usize>,
    /// The free text, if any.
    pub description: Option<usize>,
    /// How dates are written.
    pub date_format: DateFormat,
    /// The decimal separator.
    pub decimal: DecimalSeparator,
    /// The thousands separator, if amounts may have one: `'.'`, `','`, `' '` or `'\''`.
    /// Groups after it must have three digits.
    pub thousands: Option<char>,
}

/// Header names the columns are recognised by, compared without case, surrounding
/// spaces or quotes, and with a trailing `(EUR)`-style note removed. Earlier names win
/// when several columns match. The flag marks German names.
const DATE_NAMES: &[(&str, bool)] = &[
    ("booking date", false),
    ("posting date", false),
    ("transaction date", false),
    ("date", false),
    ("buchungstag", true),
    ("buchungsdatum", true),
    ("datum", true),
];
const VALUE_DATE_NAMES: &[(&str, bool)] = &[
    ("value date", false),
    ("valuta", true),
    ("valutadatum", true),
    ("wertstellung", true),
    ("wertstellungsdatum", true),
];
const AMOUNT_NAMES: &[(&str, bool)] = &[("amount", false), ("betrag", true), ("umsatz", true)];
const DEBIT_NAMES: &[(&str, bool)] = &[
    ("debit", false),
    ("debit amount", false),
    ("money out", false),
    ("paid out", false),
    ("withdrawal", false),
    ("withdrawals", false),
    ("soll", true),
    ("belastung", true),
];
const CREDIT_NAMES: &[(&str, bool)] = &[
    ("credit", false),
    ("credit amount", false),
    ("money in", false),
    ("paid in", false),
    ("deposit", false),
    ("deposits", false),
    ("haben", true),
    ("gutschrift", true),
];
const DESCRIPTION_NAMES: &[(&str, bool)] = &[
    ("description", false),
    ("memo", false),
    ("details", false),
    ("narrative", false),
    ("verwendungszweck", true),
    ("buchungstext", true),
    ("beschreibung", true),
];
const REFERENCE_NAMES: &[(&str, bool)] = &[
    ("reference", false),
    ("payment reference", false),
    ("customer reference", false),
    ("end-to-end reference", false),
    ("ref", false),
    ("referenz", true),
    ("kundenreferenz", true),
    ("end-to-end-referenz", true),
];
const COUNTERPARTY_NAMES: &[(&str, bool)] = &[
    ("counterparty", false),
    ("payee", false),
    ("payer", false),
    ("payee/payer", false),
    ("beneficiary", false),
    ("name", false),
    ("auftraggeber/empfänger", true),
    ("auftraggeber / empfänger", true),
    ("begünstigter/zahlungspflichtiger", true),
    ("beguenstigter/zahlungspflichtiger", true),
    ("zahlungsempfänger", true),
    ("empfänger", true),
    ("auftraggeber", true),
    ("name zahlungsbeteiligter", true),
];

impl CsvFormat {
    /// Guesses the format from the header row: the delimiter (whichever of `;` `,` tab
    /// `|` occurs most outside quotes) and the columns, by their English or German names
    /// (Date/Booking date/Buchungstag, Amount/Betrag or Debit+Credit/Soll+Haben,
    /// Description/Memo/Verwendungszweck, Reference/Referenz,
    /// Payee/Counterparty/Name/Auftraggeber/Empfänger, Value date/Valuta).
    ///
    /// The header cannot show how dates and amounts are written, so this picks by
    /// language: German names give `DD.MM.YYYY` and `1.234,56`; English names give ISO
    /// dates and `1,234.56`. Set [`CsvFormat::date_format`] when a bank writes
    /// `31/03/2024` or `03/31/2024`.
    pub fn detect(header_line: &str) -> Result<CsvFormat, BankError> {
        let header = header_line
            .strip_prefix('\u{FEFF}')
            .unwrap_or(header_line)
            .trim_end_matches(['\r', '\n']);
        let unknown = |reason: String| BankError::UnknownHeader {
            header: header.to_owned(),
            reason,
        };
        let delimiter = detect_delimiter(header);
        let mut reader = ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .from_reader(header.as_bytes());
        let names: Vec<String> = match reader.records().next() {
            Some(Ok(record)) => record.iter().map(normalise_header).collect(),
            _ => Vec::new(),
        };
        let mut german = false;
        let mut find = |table: &[(&str, bool)]| {
            for &(wanted, is_german) in table {
                if let Some(column) = names.iter().position(|name| name == wanted) {
                    german |= is_german;
                    return Some(column);
                }
            }
            None
        };
        let date = find(DATE_NAMES);
        let value_date = find(VALUE_DATE_NAMES);
        let amount = find(AMOUNT_NAMES);
        let debit = find(DEBIT_NAMES);
        let credit = find(CREDIT_NAMES);
        let description = find(DESCRIPTION_NAMES);
        let reference = find(REFERENCE_NAMES);
        let counterparty = find(COUNTERPARTY_NAMES);

        let amount = match (amount, debit, credit) {
            (Some(column), _, _) => Some(AmountColumns::Signed(column)),
            (None, Some(debit), Some(credit)) => Some(AmountColumns::DebitCredit { debit, credit }),
            (None, Some(_), None) => {
                return Err(unknown(
                    "it has a debit column but no credit column (such as Credit or Haben)"
                        .to_owned(),
                ));
            }
            (None, None, Some(_)) => {
                return Err(unknown(
                    "it has a credit column but no debit column (such as Debit or Soll)".to_owned(),
                ));
            }
            (None, None, None) => None,
        };
        let (date, amount) = match (date, amount) {
            (Some(date), Some(amount)) => (date, amount),
            (date, amount) => {
                let mut missing = Vec::new();
                if date.is_none() {
                    missing.push("no date column (such as Date, Booking date or Buchungstag)");
                }
                if amount.is_none() {
                    missing
                        .push("no amount column (such as Amount or Betrag, or Debit and Credit)");
                }
                return Err(unknown(missing.join(" and ")));
            }
        };
        let (date_format, decimal, thousands) = if german {
            (
                DateFormat::DayMonthYearDots,
                DecimalSeparator::Comma,
                Some('.'),
            )
        } else {
            (DateFormat::Iso, DecimalSeparator::Point, Some(','))
        };
        Ok(CsvFormat {
            delimiter,
            has_header: true,
            date,
            value_date,
            amount,
            counterparty,
            reference,
            description,
            date_format,
            decimal,
            thousands,
        })
    }

    /// The columns the format reads, each with what it is for.
    fn columns(&self) -> Vec<(usize, &'static str)> {
        let mut columns = vec![(self.date, "date")];
        match self.amount {
            AmountColumns::Signed(column) => columns.push((column, "amount")),
            AmountColumns::DebitCredit { debit, credit } => {
                columns.push((debit, "debit"));
                columns.push((credit, "credit"));
            }
        }
        let optional = [
            (self.value_date, "value date"),
            (self.counterparty, "counterparty"),
            (self.reference, "reference"),
            (self.description, "description"),
        ];
        columns.extend(
            optional
                .into_iter()
                .filter_map(|(column, what)| column.map(|c| (c, what))),
        );
        columns
    }

    fn check(&self) -> Result<(), BankError> {
        let invalid = |reason: String| Err(BankError::InvalidFormat { reason });
        if matches!(self.delimiter, b'"' | b'\r' | b'\n') || !self.delimiter.is_ascii() {
            return invalid(format!(
                "{:?} cannot be the delimiter",
                char::from(self.delimiter)
            ));
        }
        if let Some(thousands) = self.thousands {
            if thousands == self.decimal.char() {
                return invalid(format!(
                    "{thousands:?} cannot be both the decimal and the thousands separator"
                ));
            }
            if !matches!(thousands, '.' | ',' | ' ' | '\'' | '\u{A0}' | '\u{202F}') {
                return invalid(format!(
                    "{thousands:?} is not a thousands separator; use '.', ',', ' ' or '\\''"
                ));
            }
        }
        let columns = self.columns();
        for (i, &(column, what)) in columns.iter().enumerate() {
            if let Some(&(_, other)) = columns[..i].iter().find(|&&(c, _)| c == column) {
                return invalid(format!(
                    "column {} is given as both the {other} and the {what}",
                    column + 1
                ));
            }
        }
        Ok(())
    }

    fn widest_column(&self) -> usize {
        self.columns().iter().map(|&(c, _)| c).max().unwrap_or(0)
    }
}

/// The delimiter that occurs most in `header` outside quotes; `,` when none does.
fn detect_delimiter(header: &str) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b';', b',', b'\t', b'|'];
    let mut quoted = false;
    for byte in header.bytes() {
        if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = candidates.iter().position(|&c| c == byte) {
            counts[i] += 1;
        }
    }
    let best = (0..candidates.len())
        .max_by_key(|&i| (counts[i], std::cmp::Reverse(i)))
        .unwrap_or(1);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

/// `" Betrag (EUR) "` → `betrag`.
fn normalise_header(name: &str) -> String {
    let mut name = name.trim().trim_matches('"').trim().to_lowercase();
    if name.ends_with(')')
        && let Some(open) = name.rfind('(')
    {
        name.truncate(open);
    }
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads a whole CSV export into a [`Statement`] in `currency` (no account, no balances:
/// CSV exports do not carry them reliably).
///
/// Quoted fields may hold the delimiter, quotes (doubled) and line breaks. Blank rows
/// (including rows of empty fields) are skipped. Every row must have as many fields as
/// the header (or, without a header, as the first row).
///
/// All or nothing: if any row is wrong, the result is [`BankError::Invalid`] listing every
/// problem, such as `line 7: amount "12,3x" is not a number`,
/// `line 9: date "31.02.2024" does not exist` or `line 12: expected 5 columns, found 3`.
/// An empty file is [`BankError::Empty`]; a header without rows is
/// [`BankError::NoTransactions`].
pub fn parse_csv(
    input: &[u8],
    format: &CsvFormat,
    currency: Currency,
) -> Result<Statement, BankError> {
    format.check()?;
    let text = decode_text(input);
    if text.trim().is_empty() {
        return Err(BankError::Empty);
    }
    let mut reader = ReaderBuilder::new()
        .delimiter(format.delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut expected: Option<usize> = None;
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let line_index = LineIndex::new(&text);
    // csv counts lines wrongly after `\r\n`, so lines come from byte offsets instead; a
    // record's offset may still point at the line break that ended the previous one.
    let line_at = |byte: u64| {
        let start = usize::try_from(byte).unwrap_or(usize::MAX);
        let skipped = text.get(start..).map_or(0, |rest| {
            rest.len() - rest.trim_start_matches(['\r', '\n']).len()
        });
        line_index.line_of(byte.saturating_add(u64::try_from(skipped).unwrap_or(0)))
    };
    let mut record = StringRecord::new();
    loop {
        let before = reader.position().byte();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(err) => {
                let byte = err.position().map_or(before, |p| p.byte());
                problems.push(Problem::new(
                    line_at(byte),
                    format!("the row cannot be read: {err}"),
                ));
                break;
            }
        }
        let line = line_at(record.position().map_or(before, |p| p.byte()));
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let Some(width) = expected else {
            let width = record.len();
            if format.widest_column() >= width {
                return Err(BankError::Invalid {
                    problems: vec![Problem::new(
                        line,
                        format!(
                            "the format reads column {} but the file has only {width} \
                             columns; check the delimiter ({:?}) and the column numbers",
                            format.widest_column() + 1,
                            char::from(format.delimiter)
                        ),
                    )],
                });
            }
            expected = Some(width);
            if format.has_header {
                continue;
            }
            read_row(&record, line, format, currency, &mut lines, &mut problems);
            continue;
        };
        if record.len() != width {
            problems.push(Problem::new(
                line,
                format!("expected {width} columns, found {}", record.len()),
            ));
            continue;
        }
        read_row(&record, line, format, currency, &mut lines, &mut problems);
    }
    if !problems.is_empty() {
        return Err(BankError::Invalid { problems });
    }
    if lines.is_empty() {
        return Err(BankError::NoTransactions {
            what: "there is only a header row".to_owned(),
        });
    }
    Ok(Statement {
        account: None,
        currency,
        opening: None,
        closing: None,
        lines,
    })
}

/// Reads one data row, adding either its line or every problem it has.
fn read_row(
    record: &StringRecord,
    line: usize,
    format: &CsvFormat,
    currency: Currency,
    lines: &mut Vec<StatementLine>,
    problems: &mut Vec<Problem>,
) {
    let field = |column: usize| record.get(column).unwrap_or("").trim();
    let optional = |column: Option<usize>| column.map(field).unwrap_or("").to_owned();
    let before = problems.len();
    let mut problem = |message: String| problems.push(Problem::new(line, message));

    let booking_date = format
        .date_format
        .parse(field(format.date))
        .map_err(&mut problem)
        .ok();
    let value_date = match format.value_date.map(field) {
        Some(text) if !text.is_empty() => format
            .date_format
            .parse(text)
            .map(Some)
            .map_err(|m| problem(format!("value {m}")))
            .ok()
            .flatten(),
        _ => None,
    };
    let amount = match format.amount {
        AmountColumns::Signed(column) => {
            let text = field(column);
            if text.is_empty() {
                problem("there is no amount".to_owned());
                None
            } else {
                parse_amount(text, format, currency, "amount")
                    .map_err(&mut problem)
                    .ok()
            }
        }
        AmountColumns::DebitCredit { debit, credit } => {
            let read = |text: &str, what: &'static str| {
                if text.is_empty() {
                    Ok(None)
                } else {
                    parse_amount(text, format, currency, what)
                        .map(|m| Some(m.minor().unsigned_abs()))
                }
            };
            let (debit_text, credit_text) = (field(debit), field(credit));
            match (read(debit_text, "debit"), read(credit_text, "credit")) {
                (Err(a), Err(b)) => {
                    problem(a);
                    problem(b);
                    None
                }
                (Err(m), _) | (_, Err(m)) => {
                    problem(m);
                    None
                }
                (Ok(debit), Ok(credit)) => match (debit.filter(|&d| d != 0), credit) {
                    (Some(_), Some(c)) if c != 0 => {
                        problem(format!(
                            "there is an amount in both the debit ({debit_text:?}) and the \
                             credit ({credit_text:?}) column; a row is one or the other"
                        ));
                        None
                    }
                    (Some(d), _) => signed(d, true, currency).map_err(&mut problem).ok(),
                    (None, Some(c)) => signed(c, false, currency).map_err(&mut problem).ok(),
                    (None, None) if debit.is_some() => Some(Money::zero(currency)),
                    (None, None) => {
                        problem("there is no amount in the debit or the credit column".to_owned());
                        None
                    }
                },
            }
        }
    };
    if problems.len() > before {
        return;
    }
    if let (Some(booking_date), Some(amount)) = (booking_date, amount) {
        lines.push(StatementLine {
            line,
            booking_date,
            value_date,
            amount,
            counterparty: optional(format.counterparty),
            reference: optional(format.reference),
            description: optional(format.description),
            bank_reference: String::new(),
        });
    }
}

/// `magnitude` minor units, negative when `out`.
fn signed(magnitude: u64, out: bool, currency: Currency) -> Result<Money, String> {
    let minor = i64::try_from(magnitude).map_err(|_| "the amount is too large".to_owned())?;
    Ok(Money::new(if out { -minor } else { minor }, currency))
}

/// Reads an amount written the format's way: an optional sign, digits with optional
/// thousands separators in groups of three, an optional decimal part.
fn parse_amount(
    text: &str,
    format: &CsvFormat,
    currency: Currency,
    what: &str,
) -> Result<Money, String> {
    let not_a_number = || format!("{what} {text:?} is not a number");
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    let decimal = format.decimal.char();
    let (whole, fraction) = match unsigned.split_once(decimal) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (unsigned, None),
    };
    let whole_digits: String = match format.thousands {
        Some(separator) if whole.contains(separator) => {
            let groups: Vec<&str> = whole.split(separator).collect();
            let grouped = groups.iter().enumerate().all(|(i, group)| {
                let size_ok = if i == 0 {
                    (1..=3).contains(&group.len())
                } else {
                    group.len() == 3
                };
                size_ok && group.bytes().all(|b| b.is_ascii_digit())
            });
            if !grouped {
                return Err(not_a_number());
            }
            groups.concat()
        }
        _ => whole.to_owned(),
    };
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(&whole_digits) || fraction.is_some_and(|f| !digits(f)) {
        return Err(not_a_number());
    }
    let plain = match fraction {
        Some(fraction) => format!("{sign}{whole_digits}.{fraction}"),
        None => format!("{sign}{whole_digits}"),
    };
    Money::parse(&plain, currency).map_err(|err| match err {
        LedgerError::TooManyDecimals { currency, .. } => format!(
            "{what} {text:?} has more decimals than {currency} allows ({})",
            currency.exponent()
        ),
        LedgerError::AmountTooLarge { .. } => format!("{what} {text:?} is too large"),
        _ => not_a_number(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use time::macros::date;

    const ENGLISH: &str = include_str!("../../tests/fixtures/bank/english.csv");
    const GERMAN: &[u8] = include_bytes!("../../tests/fixtures/bank/german.csv");
    const BAD: &str = include_str!("../../tests/fixtures/bank/bad.csv");

    fn eur(minor: i64) -> Money {
        Money::new(minor, Currency::EUR)
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    fn first_line(text: &str) -> &str {
        text.lines().next().unwrap()
    }

    /// The problems of a refused file, as `line N: message` strings.
    fn problems(result: Result<Statement, BankError>) -> Vec<String> {
        match result {
            Err(err) => err.problems().iter().map(Problem::to_string).collect(),
            Ok(statement) => panic!("expected problems, got {statement:?}"),
        }
    }

    #[test]
    fn english_export_with_quoted_fields_and_debit_credit() {
        let format = CsvFormat::detect(first_line(ENGLISH)).unwrap();
        assert_eq!(
            format,
            CsvFormat {
                delimiter: b',',
                has_header: true,
                date: 0,
                value_date: None,
                amount: AmountColumns::DebitCredit {
                    debit: 3,
                    credit: 4
                },
                counterparty: Some(1),
                reference: Some(5),
                description: Some(2),
                date_format: DateFormat::Iso,
                decimal: DecimalSeparator::Point,
                thousands: Some(','),
            }
        );
        let statement = parse_csv(ENGLISH.as_bytes(), &format, Currency::USD).unwrap();
        let got: Vec<_> = statement
            .lines
            .iter()
            .map(|l| (l.line, l.booking_date, l.amount, l.counterparty.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    date!(2024 - 03 - 01),
                    usd(-150_000),
                    "Landlord Properties LLC"
                ),
                (3, date!(2024 - 03 - 04), usd(123_456), "Acme, Inc."),
                (5, date!(2024 - 03 - 05), usd(-1_250), "First Bank"),
                (6, date!(2024 - 03 - 07), usd(0), "First Bank"),
            ]
        );
        // The quoted description holds a comma, a doubled quote and a line break.
        assert_eq!(
            statement.lines[1].description,
            "Payment \"March\", thanks\ninvoice INV-000042"
        );
        assert_eq!(statement.lines[1].reference, "INV-000042");
        assert_eq!(
            (statement.account, statement.opening, statement.closing),
            (None, None, None)
        );
    }

    #[test]
    fn german_export_with_bom_semicolons_and_thousands() {
        let header = String::from_utf8_lossy(GERMAN);
        let format = CsvFormat::detect(first_line(&header)).unwrap();
        assert_eq!(format.delimiter, b';');
        assert_eq!(format.date, 0);
        assert_eq!(format.value_date, Some(1));
        assert_eq!(format.counterparty, Some(2));
        assert_eq!(format.description, Some(3));
        assert_eq!(format.amount, AmountColumns::Signed(4));
        assert_eq!(format.date_format, DateFormat::DayMonthYearDots);
        assert_eq!(
            (format.decimal, format.thousands),
            (DecimalSeparator::Comma, Some('.'))
        );
        let statement = parse_csv(GERMAN, &format, Currency::EUR).unwrap();
        let got: Vec<_> = statement
            .lines
            .iter()
            .map(|l| (l.line, l.booking_date, l.value_date, l.amount))
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    date!(2024 - 04 - 02),
                    Some(date!(2024 - 04 - 02)),
                    eur(-123_456)
                ),
                (
                    3,
                    date!(2024 - 04 - 03),
                    Some(date!(2024 - 04 - 04)),
                    eur(50_000)
                ),
                (4, date!(2024 - 04 - 05), None, eur(123_456_789)),
                (
                    5,
                    date!(2024 - 04 - 30),
                    Some(date!(2024 - 04 - 30)),
                    eur(-995)
                ),
            ]
        );
        assert_eq!(statement.lines[0].counterparty, "Müller Immobilien GmbH");
        assert_eq!(statement.lines[1].description, "RE-2024-17; Danke");
    }

    #[test]
    fn bad_rows_are_all_listed_and_nothing_is_imported() {
        let format = CsvFormat {
            date_format: DateFormat::DayMonthYearDots,
            ..CsvFormat::detect(first_line(BAD)).unwrap()
        };
        assert_eq!(format.amount, AmountColumns::Signed(1));
        assert_eq!(
            problems(parse_csv(BAD.as_bytes(), &format, Currency::EUR)),
            [
                "line 3: amount \"12,3x\" is not a number",
                "line 4: date \"31.02.2024\" does not exist",
                "line 5: expected 5 columns, found 3",
                "line 6: date \"2024-03-05\" is not a date written DD.MM.YYYY",
                "line 6: amount \"1,234\" has more decimals than EUR allows (2)",
                "line 8: there is no amount",
                "line 9: amount \"1.23.45\" is not a number",
                "line 10: value date \"32.01.2024\" does not exist",
            ]
        );
    }

    #[test]
    fn debit_and_credit_both_given_is_refused() {
        let file = "Date,Debit,Credit,Memo\n\
                    2024-01-02,10.00,,ok\n\
                    2024-01-03,10.00,5.00,both\n\
                    2024-01-04,,,neither\n\
                    2024-01-05,0.00,7.50,zero debit is fine\n\
                    2024-01-06,1x,2y,two bad amounts\n";
        let format = CsvFormat::detect(first_line(file)).unwrap();
        assert_eq!(
            problems(parse_csv(file.as_bytes(), &format, Currency::USD)),
            [
                "line 3: there is an amount in both the debit (\"10.00\") and the credit \
                 (\"5.00\") column; a row is one or the other",
                "line 4: there is no amount in the debit or the credit column",
                "line 6: debit \"1x\" is not a number",
                "line 6: credit \"2y\" is not a number",
            ]
        );
    }

    #[test]
    fn empty_and_header_only_files_are_refused() {
        let format = CsvFormat::detect("Date,Amount").unwrap();
        assert_eq!(
            parse_csv(b"", &format, Currency::USD),
            Err(BankError::Empty)
        );
        assert_eq!(
            parse_csv(b"\xEF\xBB\xBF\n\n  \n", &format, Currency::USD),
            Err(BankError::Empty)
        );
        let err = parse_csv(b"Date,Amount\r\n\r\n", &format, Currency::USD).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the file holds no transactions: there is only a header row"
        );
    }

    #[test]
    fn trailing_blank_lines_and_crlf_are_tolerated() {
        let format = CsvFormat::detect("Date,Amount").unwrap();
        let file = b"Date,Amount\r\n2024-01-02,5\r\n2024-01-03,-1.5\r\n\r\n,\r\n\r\n";
        let statement = parse_csv(file, &format, Currency::USD).unwrap();
        let amounts: Vec<_> = statement.lines.iter().map(|l| (l.line, l.amount)).collect();
        assert_eq!(amounts, [(2, usd(500)), (3, usd(-150))]);
        let file = b"Date,Amount\r\n\r\n\r\n2024-01-02,5\n\n2024-01-03,x\n";
        assert_eq!(
            problems(parse_csv(file, &format, Currency::USD)),
            ["line 6: amount \"x\" is not a number"]
        );
    }

    #[test]
    fn without_header_the_first_row_sets_the_width() {
        let format = CsvFormat {
            has_header: false,
            ..CsvFormat::detect("Date;Amount;Memo").unwrap()
        };
        // English names, so ISO dates and decimal points are expected.
        let file = "02.01.2024;5,00;a\n03.01.2024;1,00\n";
        assert_eq!(
            problems(parse_csv(file.as_bytes(), &format, Currency::EUR)),
            [
                "line 1: date \"02.01.2024\" is not a date written YYYY-MM-DD",
                "line 1: amount \"5,00\" is not a number",
                "line 2: expected 3 columns, found 2",
            ]
        );
        let format = CsvFormat { date: 5, ..format };
        assert_eq!(
            problems(parse_csv(file.as_bytes(), &format, Currency::EUR)),
            [
                "line 1: the format reads column 6 but the file has only 3 columns; check the \
              delimiter (';') and the column numbers"
            ]
        );
    }

    #[test]
    fn yen_and_dinar_decimals_follow_the_currency() {
        let format = CsvFormat::detect("Date,Amount").unwrap();
        let file = "Date,Amount\n2024-01-02,\"1,500\"\n2024-01-03,1.5\n";
        assert_eq!(
            problems(parse_csv(file.as_bytes(), &format, Currency::JPY)),
            ["line 3: amount \"1.5\" has more decimals than JPY allows (0)"]
        );
        let file = "Date,Amount\n2024-01-02,-1.005\n";
        let statement = parse_csv(file.as_bytes(), &format, Currency::KWD).unwrap();
        assert_eq!(statement.lines[0].amount, Money::new(-1005, Currency::KWD));
    }

    #[test]
    fn date_formats() {
        let cases = [
            (DateFormat::Iso, "2024-03-31", Ok(date!(2024 - 03 - 31))),
            (
                DateFormat::DayMonthYearDots,
                "1.3.2024",
                Ok(date!(2024 - 03 - 01)),
            ),
            (
                DateFormat::DayMonthYearSlashes,
                "31/03/2024",
                Ok(date!(2024 - 03 - 31)),
            ),
            (
                DateFormat::MonthDayYearSlashes,
                "03/31/2024",
                Ok(date!(2024 - 03 - 31)),
            ),
            (
                DateFormat::DayMonthYearDots,
                "29.02.2024",
                Ok(date!(2024 - 02 - 29)),
            ),
            (
                DateFormat::DayMonthYearDots,
                "29.02.2023",
                Err("date \"29.02.2023\" does not exist"),
            ),
            (
                DateFormat::MonthDayYearSlashes,
                "31/03/2024",
                Err("date \"31/03/2024\" does not exist"),
            ),
            (
                DateFormat::Iso,
                "2024-3-1x",
                Err("date \"2024-3-1x\" is not a date written YYYY-MM-DD"),
            ),
            (
                DateFormat::DayMonthYearSlashes,
                "31/03/24",
                Err("date \"31/03/24\" is not a date written DD/MM/YYYY"),
            ),
            (
                DateFormat::Iso,
                "",
                Err("date \"\" is not a date written YYYY-MM-DD"),
            ),
        ];
        for (format, text, expected) in cases {
            assert_eq!(
                format.parse(text),
                expected.map_err(str::to_owned),
                "{text}"
            );
        }
    }

    #[test]
    fn amounts_with_separators() {
        let german = CsvFormat::detect("Datum;Betrag").unwrap();
        let english = CsvFormat::detect("Date,Amount").unwrap();
        let swiss = CsvFormat {
            thousands: Some('\''),
            ..english.clone()
        };
        let cases: [(&CsvFormat, &str, Result<i64, &str>); 12] = [
            (&german, "1.234,56", Ok(123_456)),
            (&german, "-1.234.567,8", Ok(-123_456_780)),
            (&german, "1234,56", Ok(123_456)),
            (&german, "+0,01", Ok(1)),
            (
                &german,
                "1.23,45",
                Err("amount \"1.23,45\" is not a number"),
            ),
            (
                &german,
                "1,234.56",
                Err("amount \"1,234.56\" is not a number"),
            ),
            (&english, "1,234.56", Ok(123_456)),
            (&english, "12", Ok(1200)),
            (&english, "1e5", Err("amount \"1e5\" is not a number")),
            (&english, "-", Err("amount \"-\" is not a number")),
            (&swiss, "1'234.50", Ok(123_450)),
            (
                &english,
                "99999999999999999999",
                Err("amount \"99999999999999999999\" is too large"),
            ),
        ];
        for (format, text, expected) in cases {
            let got = parse_amount(text, format, Currency::EUR, "amount").map(Money::minor);
            assert_eq!(got, expected.map_err(str::to_owned), "{text}");
        }
    }

    #[test]
    fn detect_names_what_it_cannot_find() {
        let err = CsvFormat::detect("Foo;Bar;Baz").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot tell the columns from the header row \"Foo;Bar;Baz\": no date column \
             (such as Date, Booking date or Buchungstag) and no amount column (such as Amount \
             or Betrag, or Debit and Credit)"
        );
        let err = CsvFormat::detect("Date,Debit,Memo").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("it has a debit column but no credit column (such as Credit or Haben)")
        );
        let err = CsvFormat::detect("Buchungstag;Text").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("no amount column (such as Amount or Betrag, or Debit and Credit)")
        );
        // Soll/Haben, a tab delimiter, a BOM, quoted names and a currency note.
        let format =
            CsvFormat::detect("\u{FEFF}\"Buchungstag\"\tSoll (EUR)\tHaben (EUR)\tName\r\n")
                .unwrap();
        assert_eq!(format.delimiter, b'\t');
        assert_eq!(
            format.amount,
            AmountColumns::DebitCredit {
                debit: 1,
                credit: 2
            }
        );
        assert_eq!(format.counterparty, Some(3));
        assert_eq!(format.date_format, DateFormat::DayMonthYearDots);
        // "Booking date" beats "Value date"; quoted commas are not delimiters.
        let format =
            CsvFormat::detect("Value date;Booking date;\"Amount (USD)\";\"Memo (a, b, c, d)\"")
                .unwrap();
        assert_eq!(format.delimiter, b';');
        assert_eq!((format.date, format.value_date), (1, Some(0)));
        assert_eq!(
            (format.amount, format.description),
            (AmountColumns::Signed(2), Some(3))
        );
    }

    #[test]
    fn unusable_formats_are_refused_before_reading() {
        let base = CsvFormat::detect("Date,Amount,Memo").unwrap();
        let cases = [
            (
                CsvFormat {
                    thousands: Some('.'),
                    ..base.clone()
                },
                "'.' cannot be both the decimal and the thousands separator",
            ),
            (
                CsvFormat {
                    description: Some(1),
                    ..base.clone()
                },
                "column 2 is given as both the amount and the description",
            ),
            (
                CsvFormat {
                    delimiter: b'"',
                    ..base.clone()
                },
                "'\"' cannot be the delimiter",
            ),
        ];
        for (format, reason) in cases {
            assert_eq!(
                parse_csv(b"Date,Amount\n2024-01-01,1\n", &format, Currency::USD),
                Err(BankError::InvalidFormat {
                    reason: reason.to_owned()
                })
            );
        }
    }

    // ---- property: statements written as CSV with random quoting read back the same ----

    fn random_text(rng: &mut StdRng, delimiter: u8) -> String {
        const PIECES: &[&str] = &[
            "INV-000042",
            "Müller",
            "Acme",
            "rent",
            "\"quoted\"",
            "a\nb",
            "x\r\ny",
            "€",
            " ",
            " ",
            "42,00",
            "1.234,56",
            "Zahlung",
            "&",
            "'",
        ];
        let mut text = String::new();
        for _ in 0..rng.random_range(0..5) {
            if rng.random_bool(0.15) {
                text.push(char::from(delimiter));
            }
            text.push_str(PIECES[rng.random_range(0..PIECES.len())]);
        }
        text.trim().to_owned()
    }

    fn write_amount(
        minor: i64,
        format: &CsvFormat,
        currency: Currency,
        rng: &mut StdRng,
    ) -> String {
        let exponent = u32::from(currency.exponent());
        let scale = 10u64.pow(exponent);
        let (whole, fraction) = (minor.unsigned_abs() / scale, minor.unsigned_abs() % scale);
        let mut digits = whole.to_string();
        if let Some(separator) = format.thousands
            && rng.random_bool(0.5)
        {
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(separator);
                }
                grouped.push(c);
            }
            digits = grouped;
        }
        let sign = if minor < 0 { "-" } else { "" };
        if exponent == 0 {
            format!("{sign}{digits}")
        } else {
            let width = usize::try_from(exponent).unwrap();
            format!("{sign}{digits}{}{fraction:0width$}", format.decimal.char())
        }
    }

    fn write_date(date: Date, format: DateFormat) -> String {
        let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
        match format {
            DateFormat::Iso => format!("{y:04}-{m:02}-{d:02}"),
            DateFormat::DayMonthYearDots => format!("{d:02}.{m:02}.{y:04}"),
            DateFormat::DayMonthYearSlashes => format!("{d}/{m:02}/{y:04}"),
            DateFormat::MonthDayYearSlashes => format!("{m:02}/{d}/{y:04}"),
        }
    }

    #[test]
    fn random_statements_round_trip_through_csv() {
        let mut rng = StdRng::seed_from_u64(0x0B0A_2024);
        let date_formats = [
            DateFormat::Iso,
            DateFormat::DayMonthYearDots,
            DateFormat::DayMonthYearSlashes,
            DateFormat::MonthDayYearSlashes,
        ];
        let quote_styles = [
            ::csv::QuoteStyle::Always,
            ::csv::QuoteStyle::Necessary,
            ::csv::QuoteStyle::NonNumeric,
        ];
        for case in 0..300 {
            let delimiter = [b',', b';', b'\t', b'|'][rng.random_range(0..4)];
            let decimal = if rng.random_bool(0.5) {
                DecimalSeparator::Point
            } else {
                DecimalSeparator::Comma
            };
            let thousands = match (decimal, rng.random_range(0..3)) {
                (_, 0) => None,
                (DecimalSeparator::Point, 1) => Some(','),
                (DecimalSeparator::Comma, 1) => Some('.'),
                _ => Some(' '),
            };
            let split = rng.random_bool(0.5);
            let format = CsvFormat {
                delimiter,
                has_header: rng.random_bool(0.7),
                date: 2,
                value_date: Some(0),
                amount: if split {
                    AmountColumns::DebitCredit {
                        debit: 5,
                        credit: 1,
                    }
                } else {
                    AmountColumns::Signed(1)
                },
                counterparty: Some(3),
                reference: Some(4),
                description: Some(6),
                date_format: date_formats[rng.random_range(0..4)],
                decimal,
                thousands,
            };
            let currency = [Currency::EUR, Currency::JPY, Currency::KWD][rng.random_range(0..3)];
            let mut writer = ::csv::WriterBuilder::new()
                .delimiter(delimiter)
                .quote_style(quote_styles[rng.random_range(0..3)])
                .terminator(if rng.random_bool(0.5) {
                    ::csv::Terminator::CRLF
                } else {
                    ::csv::Terminator::Any(b'\n')
                })
                .from_writer(Vec::new());
            let mut expected = Vec::new();
            if format.has_header {
                writer
                    .write_record(["Valuta", "Amount", "Date", "Name", "Ref", "Debit", "Memo"])
                    .unwrap();
            }
            for _ in 0..rng.random_range(1..12) {
                writer.flush().unwrap();
                let line = 1 + writer.get_ref().iter().filter(|&&b| b == b'\n').count();
                let booking_date =
                    Date::from_julian_day(rng.random_range(2_440_000..2_470_000)).unwrap();
                let value_date = rng
                    .random_bool(0.7)
                    .then(|| booking_date.next_day().unwrap());
                let minor = rng.random_range(-10_000_000_000i64..10_000_000_000);
                let amount = Money::new(minor, currency);
                let text = write_amount(minor.abs(), &format, currency, &mut rng);
                let (signed, debit, credit) = match (split, minor < 0) {
                    (false, _) => (
                        write_amount(minor, &format, currency, &mut rng),
                        String::new(),
                        String::new(),
                    ),
                    (true, true) => (String::new(), text, String::new()),
                    (true, false) => (String::new(), String::new(), text),
                };
                let amount_cell = if split { credit } else { signed };
                let line_out = StatementLine {
                    line,
                    booking_date,
                    value_date,
                    amount,
                    counterparty: random_text(&mut rng, delimiter),
                    reference: random_text(&mut rng, delimiter),
                    description: random_text(&mut rng, delimiter),
                    bank_reference: String::new(),
                };
                writer
                    .write_record([
                        value_date
                            .map(|d| write_date(d, format.date_format))
                            .unwrap_or_default(),
                        amount_cell,
                        write_date(booking_date, format.date_format),
                        line_out.counterparty.clone(),
                        line_out.reference.clone(),
                        debit,
                        line_out.description.clone(),
                    ])
                    .unwrap();
                expected.push(line_out);
            }
            let bytes = writer.into_inner().unwrap();
            let statement = parse_csv(&bytes, &format, currency).unwrap_or_else(|err| {
                panic!("case {case}: {err}\n{}", String::from_utf8_lossy(&bytes))
            });
            assert_eq!(
                statement.lines,
                expected,
                "case {case}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
