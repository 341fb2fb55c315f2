//! Bank accounts, statement import and reconciliation on the store.
//!
//! * [`create_bank_account`] adds a bank account on a postable ledger account of type
//!   Bank, in the company currency.
//! * [`import_statement`] reads a CSV export or a camt.053 file (parsed outside the
//!   writer with [`parse_csv`] / [`parse_camt053`]) and, in one command, writes a
//!   [`BANK_STATEMENT`] record and a [`BANK_LINE`] record per line not imported before.
//! * [`reconciliation`] reads the screen: the unreconciled lines, their suggestions
//!   ([`suggest`], [`match_all`]) against the bank ledger account's journal lines not yet
//!   reconciled, and the statement's closing balance against the ledger's.
//! * [`reconcile`] pairs a line with a journal line, [`create_entry`] posts the entry for
//!   a line that has none (a bank fee, interest) and reconciles it in the same command,
//!   [`unreconcile`] undoes either (an entry it posted stays posted).
//! * [`seed_demo`] gives the demo company a bank account and last month's statement.
//!
//! Invariants:
//! * **All or nothing.** A file with any bad row imports nothing (the error lists every
//!   problem with its line); so does a camt.053 file for another account or a currency
//!   other than the company's.
//! * **Each movement once.** A line is skipped (and counted) when the bank account
//!   already has one with the same bank reference or, without a reference, the same
//!   booking date, amount and description — the *n*-th such line of a file matches the
//!   *n*-th already imported, so a file imported twice adds nothing, while two equal
//!   payments on one day in one file are both kept.
//! * **Each pairing once.** A statement line is reconciled with at most one journal
//!   line of its bank account's ledger account, of the same amount, and a journal line
//!   with at most one statement line; the line's status, its references and the journal
//!   line's mark change together in one command.
//!
//! # Keys in the `ledger` table (tags `b` and `k`)
//! * `b | company | bank account | 'r' | bank reference` → the statement line's id
//!   (`u64`, big endian): lines imported, by the bank's reference.
//! * `b | company | bank account | 'd' | booking date (julian day, `i32` BE) | amount
//!   (`i64` BE, sign bit flipped) | occurrence (`u32` BE) | description` → the statement
//!   line's id: lines without a bank reference.
//! * `k | company | journal line` → the statement line it is reconciled with (`u64` BE);
//!   removed when the reconciliation is undone (an empty value, if ever found, counts
//!   as not reconciled).
//!
//! Every key carries the company, taken from the principal.

use crate::entities::LEDGER;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use nexus_kernel::builtin::Company;
use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::{Action, Command, Kernel, KernelError, ListQuery, Principal, Row};
use time::{Date, Duration, Month};

use super::entities::{
    BANK_ACCOUNT, BANK_LINE, BANK_STATEMENT, BankAccountRecord, BankLineRecord,
    BankStatementRecord, LineStatus, StatementFormat,
};
use super::{
    BankError, Candidate, CsvFormat, DateFormat, DecimalSeparator, Problem, Statement,
    StatementLine, Suggestion, decode_text, match_all, parse_camt053, parse_csv, suggest,
};
use crate::books::{
    self, EntryInput, LineInput, account_of, company_currency, company_key, post_in,
};
use crate::entities::{
    AccountRecord, JOURNAL_ENTRY, JOURNAL_LINE, JournalEntryRecord, JournalKind, JournalLineRecord,
    JournalStatus,
};
use crate::{AccountType, Currency, EntryKind, Money};

/// How many suggestions the reconciliation screen offers per statement line.
pub const SUGGESTIONS: usize = 3;

// ---------------------------------------------------------------- bank accounts

/// A bank account as a person submits it.
#[derive(Debug, Clone)]
pub struct BankAccountInput {
    /// What the firm calls it: "Operating account".
    pub name: String,
    /// Its IBAN or the bank's account number.
    pub number: String,
    /// Its currency; empty means the company currency (the only one accepted for now).
    pub currency: String,
    /// The ledger account it posts to: a postable account of type Bank.
    pub account: u64,
}

/// `DE89 3704 0044…` and `de8937040044…` name the same account.
pub fn normalize_number(number: &str) -> String {
    number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect()
}

/// Adds a bank account. Refused: an empty name or number, a currency other than the
/// company's, a ledger account that is missing, a group, not of type Bank, or already
/// another bank account's.
pub async fn create_bank_account(
    kernel: &Kernel,
    who: &Principal,
    input: BankAccountInput,
) -> Result<Row<BankAccountRecord>, KernelError> {
    kernel.authorize(who, &BANK_ACCOUNT, Action::Create)?;
    let name = input.name.trim().to_owned();
    let number = input.number.trim().to_owned();
    if name.is_empty() {
        return Err(KernelError::invalid("name", "Name is required"));
    }
    if normalize_number(&number).is_empty() {
        return Err(KernelError::invalid(
            "number",
            "IBAN / account number is required",
        ));
    }
    kernel
        .command(&LEDGER, who, move |cmd| {
            let company = cmd.fetch::<Company>(cmd.who().company)?;
            let currency = company_currency(&company)?;
            let wanted = input.currency.trim().to_ascii_uppercase();
            if !wanted.is_empty() && wanted != currency.code() {
                return Err(KernelError::invalid(
                    "currency",
                    format!(
                        "bank accounts in {wanted} are not supported yet: the books are kept in \
                         {}, so a bank account must be in {} too",
                        currency.code(),
                        currency.code()
                    ),
                ));
            }
            let Some(rec) = cmd.find::<AccountRecord>(input.account)? else {
                return Err(KernelError::invalid(
                    "account",
                    format!(
                        "there is no account with id {} in your company",
                        input.account
                    ),
                ));
            };
            let account = account_of(&rec);
            if account.is_group {
                return Err(KernelError::invalid(
                    "account",
                    format!(
                        "{} is a group; choose an account entries post to",
                        account.label()
                    ),
                ));
            }
            if account.kind != AccountType::Bank {
                return Err(KernelError::invalid(
                    "account",
                    format!(
                        "{} is of type {}; choose an account of type Bank",
                        account.label(),
                        account.kind.name()
                    ),
                ));
            }
            cmd.insert(&BankAccountRecord {
                name,
                number,
                currency: currency.code().to_owned(),
                account: input.account,
            })
        })
        .await
}

/// The company's bank accounts, by name.
pub fn bank_accounts(
    kernel: &Kernel,
    who: &Principal,
) -> Result<Vec<Row<BankAccountRecord>>, KernelError> {
    let query = ListQuery {
        sort: Some("name".into()),
        limit: usize::MAX,
        ..Default::default()
    };
    Row::all(&kernel.list(who, &BANK_ACCOUNT, &query)?.rows)
}

// ---------------------------------------------------------------- import

/// The kind of a statement file, and for CSV how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// A CSV export; the columns are detected from the header row, and how dates and
    /// amounts are written may be set where the header cannot tell.
    Csv {
        /// How dates are written, when not as the header's language suggests.
        date_format: Option<DateFormat>,
        /// The decimal separator, when not as the header's language suggests (the
        /// thousands separator is then the other of `.` and `,`).
        decimal: Option<DecimalSeparator>,
    },
    /// An ISO 20022 camt.053 statement (XML).
    Camt053,
}

impl FileFormat {
    /// XML (after any byte-order mark and blank space) is camt.053; anything else CSV.
    pub fn detect(file: &[u8]) -> FileFormat {
        let text = decode_text(file);
        if text.trim_start().starts_with('<') {
            FileFormat::Camt053
        } else {
            FileFormat::Csv {
                date_format: None,
                decimal: None,
            }
        }
    }

    fn name(self) -> StatementFormat {
        match self {
            FileFormat::Csv { .. } => StatementFormat::Csv,
            FileFormat::Camt053 => StatementFormat::Camt053,
        }
    }
}

/// Why a statement was not imported. Nothing was imported.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImportError {
    /// The file itself: unreadable, or rows with problems (each with its line).
    #[error(transparent)]
    File(#[from] BankError),
    /// A camt.053 statement for another account.
    #[error(
        "this statement is for account {found}, not for {bank} ({expected}); \
         import it into that bank account"
    )]
    WrongAccount {
        /// The account the file names.
        found: String,
        /// The bank account's name.
        bank: String,
        /// Its number.
        expected: String,
    },
    /// A statement in another currency.
    #[error(
        "this statement is in {found}, but {bank} is kept in {expected}; only statements \
         in the company currency can be imported"
    )]
    WrongCurrency {
        /// The file's currency.
        found: String,
        /// The bank account's name.
        bank: String,
        /// The company currency.
        expected: String,
    },
    /// Permissions, a missing bank account, the store.
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

impl ImportError {
    /// The line-by-line problems of a file with bad rows (empty otherwise).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ImportError::File(e) => e.problems(),
            _ => &[],
        }
    }
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The statement's record; `None` when every line had been imported before.
    pub statement: Option<Row<BankStatementRecord>>,
    /// Lines added.
    pub imported: usize,
    /// Lines skipped because they were imported before.
    pub skipped: usize,
}

/// Reads `file` for bank account `bank` and imports its lines not imported before, in
/// one command. `closing` is the statement's closing balance (minor units) as the
/// bookkeeper reads it off a statement whose file does not carry it (CSV); a camt.053
/// file's own closing balance wins.
pub async fn import_statement(
    kernel: &Kernel,
    who: &Principal,
    bank: u64,
    file: &[u8],
    format: FileFormat,
    closing: Option<i64>,
) -> Result<Imported, ImportError> {
    kernel.authorize(who, &BANK_LINE, Action::Create)?;
    kernel.authorize(who, &BANK_STATEMENT, Action::Create)?;
    let account = kernel.read::<BankAccountRecord>(who, bank)?;
    let company = kernel.read::<Company>(who, who.company)?;
    let currency = company_currency(&company)?;
    let statement = read_statement(&account, currency, file, format)?;
    let closing = statement.closing.map(Money::minor).or(closing);
    let opening = statement.opening.map(Money::minor);
    kernel
        .command(&LEDGER, who, move |cmd| {
            cmd.require(&BANK_ACCOUNT, bank)?;
            let company = cmd.who().company;
            let mut seen: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
            let mut fresh = Vec::new();
            let mut skipped = 0;
            for line in statement.lines {
                let key = dedupe_key(company, bank, &line, &mut seen);
                if cmd.get(&key)?.is_some() {
                    skipped += 1;
                } else {
                    fresh.push((key, line));
                }
            }
            if fresh.is_empty() {
                return Ok(Imported {
                    statement: None,
                    imported: 0,
                    skipped,
                });
            }
            let last = fresh.iter().map(|(_, l)| l.booking_date).max();
            let record = cmd.insert(&BankStatementRecord {
                bank_account: bank,
                format: format.name(),
                to: last,
                imported: fresh.len() as i64,
                skipped: skipped as i64,
                opening,
                closing,
            })?;
            let imported = fresh.len();
            let some = |text: String| Some(text).filter(|t| !t.is_empty());
            for (key, line) in fresh {
                let rec = cmd.insert(&BankLineRecord {
                    bank_account: bank,
                    statement: Some(record.id),
                    date: line.booking_date,
                    value_date: line.value_date,
                    amount: line.amount.minor(),
                    counterparty: some(clip(&line.counterparty, 200)),
                    reference: some(clip(&line.reference, 200)),
                    description: some(clip(&line.description, 500)),
                    bank_reference: some(clip(&line.bank_reference, 120)),
                    status: LineStatus::Unreconciled,
                    journal_entry: None,
                    journal_line: None,
                })?;
                cmd.put(key, u64_key(rec.id).to_vec());
            }
            Ok(Imported {
                statement: Some(record),
                imported,
                skipped,
            })
        })
        .await
        .map_err(ImportError::from)
}

/// Parses the file and keeps what belongs to `bank`, or refuses the whole file.
fn read_statement(
    bank: &BankAccountRecord,
    currency: Currency,
    file: &[u8],
    format: FileFormat,
) -> Result<Statement, ImportError> {
    let name = bank.name.clone();
    let number = bank.number.clone();
    match format {
        FileFormat::Csv {
            date_format,
            decimal,
        } => {
            let text = decode_text(file);
            let header = text.lines().find(|l| !l.trim().is_empty());
            let Some(header) = header else {
                return Err(BankError::Empty.into());
            };
            let mut csv = CsvFormat::detect(header)?;
            if let Some(d) = date_format {
                csv.date_format = d;
            }
            if let Some(d) = decimal {
                csv.decimal = d;
                csv.thousands = Some(match d {
                    DecimalSeparator::Comma => '.',
                    DecimalSeparator::Point => ',',
                });
            }
            Ok(parse_csv(file, &csv, currency)?)
        }
        FileFormat::Camt053 => {
            let wanted = normalize_number(&number);
            let mut kept: Vec<Statement> = Vec::new();
            let mut others = Vec::new();
            for s in parse_camt053(file)? {
                match &s.account {
                    Some(a) if normalize_number(a) != wanted => others.push((a.clone(), s)),
                    _ => kept.push(s),
                }
            }
            // Another account's statement with movements refuses the file; an empty
            // one (a day without movements) is left out.
            if let Some((found, _)) = others
                .iter()
                .find(|(_, s)| !s.lines.is_empty())
                .or_else(|| others.first().filter(|_| kept.is_empty()))
            {
                return Err(ImportError::WrongAccount {
                    found: found.clone(),
                    bank: name,
                    expected: number,
                });
            }
            if let Some(s) = kept.iter().find(|s| s.currency != currency) {
                return Err(ImportError::WrongCurrency {
                    found: s.currency.code().to_owned(),
                    bank: name,
                    expected: currency.code().to_owned(),
                });
            }
            let opening = kept.first().and_then(|s| s.opening);
            let closing = kept.last().and_then(|s| s.closing);
            let lines: Vec<StatementLine> = kept.into_iter().flat_map(|s| s.lines).collect();
            if lines.is_empty() {
                return Err(BankError::NoTransactions {
                    what: format!("no booked entries for {number}"),
                }
                .into());
            }
            Ok(Statement {
                account: Some(number),
                currency,
                opening,
                closing,
                lines,
            })
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    let one_line: String = s
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.chars().take(max).collect()
}

fn bank_prefix(company: u64, bank: u64) -> Vec<u8> {
    let mut k = company_key(b'b', company);
    k.extend_from_slice(&u64_key(bank));
    k
}

/// The key that says `line` was imported into `bank`; `seen` counts equal lines of one
/// file, so that the second equal payment of a day gets its own key.
fn dedupe_key(
    company: u64,
    bank: u64,
    line: &StatementLine,
    seen: &mut BTreeMap<Vec<u8>, u32>,
) -> Vec<u8> {
    let mut k = bank_prefix(company, bank);
    let reference = line.bank_reference.trim();
    if !reference.is_empty() {
        k.push(b'r');
        k.extend_from_slice(reference.as_bytes());
        return k;
    }
    k.push(b'd');
    k.extend_from_slice(&line.booking_date.to_julian_day().to_be_bytes());
    k.extend_from_slice(&((line.amount.minor() as u64) ^ (1 << 63)).to_be_bytes());
    let description = clip(&line.description, 500);
    let mut same = k.clone();
    same.extend_from_slice(description.as_bytes());
    let n = seen.entry(same).or_insert(0);
    k.extend_from_slice(&n.to_be_bytes());
    *n += 1;
    k.extend_from_slice(description.as_bytes());
    k
}

// ---------------------------------------------------------------- reconciliation

fn mark_key(company: u64, journal_line: u64) -> Vec<u8> {
    let mut k = company_key(b'k', company);
    k.extend_from_slice(&u64_key(journal_line));
    k
}

/// A journal line's amount into the bank: its debit less its credit.
fn into_bank(line: &JournalLineRecord) -> i64 {
    line.debit
        .unwrap_or(0)
        .saturating_sub(line.credit.unwrap_or(0))
}

/// A statement line's record as the domain sees it (`line` is 0: it is not from a file).
pub fn statement_line(rec: &BankLineRecord, currency: Currency) -> StatementLine {
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    StatementLine {
        line: 0,
        booking_date: rec.date,
        value_date: rec.value_date,
        amount: Money::new(rec.amount, currency),
        counterparty: text(&rec.counterparty),
        reference: text(&rec.reference),
        description: text(&rec.description),
        bank_reference: text(&rec.bank_reference),
    }
}

/// A journal line on the bank ledger account, not yet reconciled: something a statement
/// line may be.
#[derive(Debug, Clone)]
pub struct OpenItem {
    /// As [`suggest`] sees it: the journal line's id, the entry's date, the amount into
    /// the bank (debit − credit), the entry's reference (else its number), and its
    /// narration as the party.
    pub candidate: Candidate,
    /// The entry's record id.
    pub entry: u64,
    /// The entry's number, `JE-000042`.
    pub number: String,
    /// The entry's narration.
    pub narration: String,
}

/// One unreconciled statement line and what it may be.
#[derive(Debug, Clone)]
pub struct OpenLine {
    /// The statement line's record.
    pub record: Row<BankLineRecord>,
    /// Its suggestions, best first.
    pub suggestions: Vec<Suggestion>,
    /// The journal line that "accept" takes: the one-to-one match of [`match_all`], else
    /// the best suggestion of the same amount that no other line is matched with.
    pub best: Option<u64>,
}

/// The reconciliation screen of one bank account.
#[derive(Debug, Clone)]
pub struct Reconciliation {
    /// The bank account's record.
    pub bank: Row<BankAccountRecord>,
    /// Its ledger account's label, `1120 Bank account`.
    pub account_label: String,
    /// The company currency.
    pub currency: Currency,
    /// Unreconciled statement lines, by booking date.
    pub open: Vec<OpenLine>,
    /// The journal lines they may be, by journal line id.
    pub items: BTreeMap<u64, OpenItem>,
    /// The latest reconciled statement lines, newest first (at most `recent`).
    pub reconciled: Vec<Row<BankLineRecord>>,
    /// The latest statement with a closing balance: its last booking date and closing
    /// balance.
    pub statement_closing: Option<(Option<Date>, i64)>,
    /// The ledger account's balance (debit positive) on the statement's last booking
    /// date, or today's when there is no statement with a closing balance.
    pub ledger_balance: i64,
    /// The sum of the unreconciled statement lines.
    pub unreconciled_total: i64,
}

/// Reads the reconciliation screen of bank account `bank`: unreconciled lines with their
/// suggestions, and up to `recent` reconciled ones.
pub fn reconciliation(
    kernel: &Kernel,
    who: &Principal,
    bank: u64,
    recent: usize,
) -> Result<Reconciliation, KernelError> {
    kernel.authorize(who, &BANK_LINE, Action::Read)?;
    kernel.authorize(who, &JOURNAL_LINE, Action::Read)?;
    let bank_rec = kernel.read::<BankAccountRecord>(who, bank)?;
    let ledger = bank_rec.account;
    let company = kernel.read::<Company>(who, who.company)?;
    let currency = company_currency(&company)?;
    let account_label = kernel
        .read::<AccountRecord>(who, ledger)
        .map(|r| account_of(&r).label())
        .unwrap_or_else(|_| format!("#{ledger}"));

    let all = |filters: Vec<(String, String)>| ListQuery {
        filters,
        limit: usize::MAX,
        ..Default::default()
    };
    let by_bank = all(vec![("bank_account".into(), bank.to_string())]);
    let mut lines = Row::<BankLineRecord>::all(&kernel.list(who, &BANK_LINE, &by_bank)?.rows)?;
    lines.sort_by_key(|r| (r.date, r.id));
    let (reconciled, open): (Vec<_>, Vec<_>) = lines
        .into_iter()
        .partition(|r| r.status == LineStatus::Reconciled);

    let statement_closing =
        Row::<BankStatementRecord>::all(&kernel.list(who, &BANK_STATEMENT, &by_bank)?.rows)?
            .iter()
            .filter_map(|s| Some((s.to, s.id, s.closing?)))
            .max()
            .map(|(to, _, closing)| (to, closing));

    let marked = marked_lines(kernel, who)?;
    let journal = Row::<JournalLineRecord>::all(
        &kernel
            .list(
                who,
                &JOURNAL_LINE,
                &all(vec![("account".into(), ledger.to_string())]),
            )?
            .rows,
    )?;
    let balance_on = statement_closing.and_then(|(to, _)| to);
    let mut ledger_balance: i64 = 0;
    let mut entries: BTreeMap<u64, Option<Row<JournalEntryRecord>>> = BTreeMap::new();
    let mut items = BTreeMap::new();
    for l in &journal {
        let amount = into_bank(l);
        let date = l.date;
        if balance_on.is_none_or(|on| date <= on) {
            ledger_balance = ledger_balance.saturating_add(amount);
        }
        if marked.contains(&l.id) {
            continue;
        }
        let entry_id = l.entry;
        let entry = entries
            .entry(entry_id)
            .or_insert_with(|| kernel.read::<JournalEntryRecord>(who, entry_id).ok());
        let Some(entry) = entry else { continue };
        // A cancelled entry and its reversal cancel out at the bank: neither is offered.
        if entry.status == JournalStatus::Cancelled || entry.kind == JournalKind::Reversal {
            continue;
        }
        let number = entry.number.clone();
        let reference = match entry.reference.clone() {
            Some(r) if !r.trim().is_empty() => r,
            _ => number.clone(),
        };
        let narration = entry.narration.clone();
        items.insert(
            l.id,
            OpenItem {
                candidate: Candidate {
                    id: l.id,
                    date,
                    amount: Money::new(amount, currency),
                    reference,
                    party: narration.clone(),
                },
                entry: entry_id,
                number,
                narration,
            },
        );
    }

    let candidates: Vec<Candidate> = items.values().map(|i| i.candidate.clone()).collect();
    let domain: Vec<StatementLine> = open.iter().map(|r| statement_line(r, currency)).collect();
    let pairs = match_all(&domain, &candidates);
    let paired: BTreeSet<u64> = pairs.iter().map(|&(_, c, _)| c).collect();
    let mut open_lines = Vec::with_capacity(open.len());
    let unreconciled_total = open.iter().fold(0i64, |t, r| t.saturating_add(r.amount));
    for (i, (record, line)) in open.into_iter().zip(&domain).enumerate() {
        let suggestions = suggest(line, &candidates, SUGGESTIONS);
        let best = pairs
            .iter()
            .find(|&&(l, _, _)| l == i)
            .map(|&(_, c, _)| c)
            .or_else(|| {
                suggestions.iter().map(|s| s.candidate).find(|c| {
                    !paired.contains(c)
                        && items
                            .get(c)
                            .is_some_and(|it| it.candidate.amount == line.amount)
                })
            });
        open_lines.push(OpenLine {
            record,
            suggestions,
            best,
        });
    }
    let reconciled = reconciled.into_iter().rev().take(recent).collect();
    Ok(Reconciliation {
        bank: bank_rec,
        account_label,
        currency,
        open: open_lines,
        items,
        reconciled,
        statement_closing,
        ledger_balance,
        unreconciled_total,
    })
}

/// The company's journal lines that are reconciled now.
fn marked_lines(kernel: &Kernel, who: &Principal) -> Result<BTreeSet<u64>, KernelError> {
    let prefix = company_key(b'k', who.company);
    let end = prefix_end(&prefix).unwrap_or_default();
    let mut marked = BTreeSet::new();
    kernel
        .module_state(&LEDGER)?
        .scan(prefix.as_slice()..end.as_slice(), false, |k, v| {
            if !v.is_empty()
                && let Some(id) = k.get(9..17).and_then(decode_u64)
            {
                marked.insert(id);
            }
            ControlFlow::Continue(())
        })?;
    Ok(marked)
}

/// The statement line `line`, refused unless it is unreconciled; with its bank account
/// and that account's ledger account.
fn open_line(
    cmd: &Command<'_, '_, '_>,
    line: u64,
) -> Result<(Row<BankLineRecord>, u64), KernelError> {
    let rec = cmd.fetch::<BankLineRecord>(line)?;
    if rec.status == LineStatus::Reconciled {
        let with = rec
            .journal_entry
            .and_then(|e| cmd.find::<JournalEntryRecord>(e).ok().flatten())
            .map(|e| e.fields.number)
            .unwrap_or_else(|| "a journal entry".into());
        return Err(KernelError::Conflict(format!(
            "this statement line is already reconciled with {with}; undo that \
             reconciliation first"
        )));
    }
    let ledger = cmd.fetch::<BankAccountRecord>(rec.bank_account)?.account;
    Ok((rec, ledger))
}

/// Marks statement line `line` reconciled with `journal_line` (of entry `entry`).
fn mark(
    cmd: &mut Command<'_, '_, '_>,
    line: u64,
    entry: u64,
    journal_line: u64,
) -> Result<Row<BankLineRecord>, KernelError> {
    let key = mark_key(cmd.who().company, journal_line);
    cmd.put(key, u64_key(line).to_vec());
    cmd.modify(line, |l: &mut BankLineRecord| {
        l.status = LineStatus::Reconciled;
        l.journal_entry = Some(entry);
        l.journal_line = Some(journal_line);
    })
}

/// Reconciles statement line `line` with `journal_line`, a journal line of the same
/// amount on the bank account's ledger account that no other statement line is
/// reconciled with. Returns the statement line.
pub async fn reconcile(
    kernel: &Kernel,
    who: &Principal,
    line: u64,
    journal_line: u64,
) -> Result<Row<BankLineRecord>, KernelError> {
    kernel.authorize(who, &BANK_LINE, Action::Write)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let (rec, ledger) = open_line(cmd, line)?;
            let Some(jl) = cmd.find::<JournalLineRecord>(journal_line)? else {
                return Err(KernelError::invalid(
                    "journal_line",
                    format!("there is no journal line with id {journal_line} in your company"),
                ));
            };
            if jl.account != ledger {
                return Err(KernelError::invalid(
                    "journal_line",
                    "that journal line is not on this bank account's ledger account",
                ));
            }
            let company = cmd.who().company;
            if let Some(v) = cmd.get(&mark_key(company, journal_line))?
                && !v.is_empty()
            {
                return Err(KernelError::Conflict(
                    "that journal line is already reconciled with another statement line".into(),
                ));
            }
            let entry_id = jl.entry;
            let entry = cmd.fetch::<JournalEntryRecord>(entry_id)?;
            let number = entry.number.clone();
            if entry.status == JournalStatus::Cancelled {
                return Err(KernelError::Conflict(format!(
                    "{number} is cancelled; it cannot be reconciled"
                )));
            }
            let (want, have) = (rec.amount, into_bank(&jl));
            if want != have {
                return Err(KernelError::invalid(
                    "journal_line",
                    format!(
                        "the amounts differ: the statement says {} and {number} books {} at \
                         the bank; post the difference or create an entry instead",
                        nexus_kernel::format_money(want),
                        nexus_kernel::format_money(have)
                    ),
                ));
            }
            mark(cmd, line, entry_id, journal_line)
        })
        .await
}

/// Posts the entry for statement line `line` — the bank against `counter`, dated the
/// booking date, for the line's amount — and reconciles the line with it, in one
/// command. `narration` defaults to the line's counterparty and description. Returns
/// the statement line.
pub async fn create_entry(
    kernel: &Kernel,
    who: &Principal,
    line: u64,
    counter: u64,
    narration: Option<String>,
) -> Result<Row<BankLineRecord>, KernelError> {
    kernel.authorize(who, &BANK_LINE, Action::Write)?;
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let (rec, ledger) = open_line(cmd, line)?;
            if counter == ledger {
                return Err(KernelError::invalid(
                    "account",
                    "choose the account the money came from or went to, not the bank \
                     account itself",
                ));
            }
            let amount = rec.amount;
            if amount == 0 {
                return Err(KernelError::invalid(
                    "account",
                    "this line's amount is zero: there is nothing to post",
                ));
            }
            let date = rec.date;
            let narration = narration
                .map(|n| n.trim().to_owned())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| {
                    let parts: Vec<&str> = [&rec.counterparty, &rec.description]
                        .into_iter()
                        .flatten()
                        .map(String::as_str)
                        .filter(|s| !s.trim().is_empty())
                        .collect();
                    match parts.join(": ") {
                        s if s.is_empty() => "Bank statement line".to_owned(),
                        s => s,
                    }
                });
            let magnitude = amount.saturating_abs();
            let (bank_side, counter_side) = if amount > 0 {
                ((magnitude, 0), (0, magnitude))
            } else {
                ((0, magnitude), (magnitude, 0))
            };
            let input = EntryInput {
                date,
                narration: clip(&narration, 200),
                reference: clip(rec.reference.as_deref().unwrap_or_default(), 60),
                lines: vec![
                    LineInput {
                        account: ledger,
                        debit: bank_side.0,
                        credit: bank_side.1,
                        memo: String::new(),
                        foreign: None,
                    },
                    LineInput {
                        account: counter,
                        debit: counter_side.0,
                        credit: counter_side.1,
                        memo: String::new(),
                        foreign: None,
                    },
                ],
            };
            let entry = post_in(cmd, input, EntryKind::Regular, None)?;
            // The entry's lines, in order, are under `e | company | entry` (books.rs);
            // the bank's is the first.
            let mut entry_key = company_key(b'e', cmd.who().company);
            entry_key.extend_from_slice(&u64_key(entry.id));
            let bank_line = cmd
                .get(&entry_key)?
                .and_then(|ids| ids.get(0..8).and_then(decode_u64))
                .ok_or_else(|| KernelError::Internal(format!("entry {} has no lines", entry.id)))?;
            mark(cmd, line, entry.id, bank_line)
        })
        .await
}

/// Undoes the reconciliation of statement line `line`: it is unreconciled again and its
/// journal line is offered again. An entry posted for it stays posted (cancel it from
/// its page if it was wrong). Returns the statement line.
pub async fn unreconcile(
    kernel: &Kernel,
    who: &Principal,
    line: u64,
) -> Result<Row<BankLineRecord>, KernelError> {
    kernel.authorize(who, &BANK_LINE, Action::Write)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let rec = cmd.fetch::<BankLineRecord>(line)?;
            if rec.status != LineStatus::Reconciled {
                return Err(KernelError::Conflict(
                    "this statement line is not reconciled: there is nothing to undo".into(),
                ));
            }
            if let Some(jl) = rec.journal_line {
                let key = mark_key(cmd.who().company, jl);
                cmd.delete(key);
            }
            cmd.modify(line, |l: &mut BankLineRecord| {
                l.status = LineStatus::Unreconciled;
                l.journal_entry = None;
                l.journal_line = None;
            })
        })
        .await
}

// ---------------------------------------------------------------- demo

/// Gives the demo company's "Bank account" (1120) a bank account record and imports a
/// statement of last month: a CSV line per bank posting of that month (booked a day or
/// two later for customer payments), plus a bank charge and interest that the books do
/// not have yet, with the closing balance that follows. Does nothing when the company
/// has bank accounts already.
pub async fn seed_demo(
    kernel: &Kernel,
    who: &Principal,
    today: Date,
) -> Result<Option<Imported>, KernelError> {
    if !bank_accounts(kernel, who)?.is_empty() {
        return Ok(None);
    }
    let chart = books::chart(kernel, who)?;
    let Some(ledger) = chart.by_code("1120").map(|a| a.id) else {
        return Ok(None);
    };
    let currency = chart.currency();
    let bank = create_bank_account(
        kernel,
        who,
        BankAccountInput {
            name: "Operating account".into(),
            number: "GB29 NWBK 6016 1331 9268 19".into(),
            currency: String::new(),
            account: ledger,
        },
    )
    .await?;
    let first = month_start(today, -1)?;
    let end = month_start(today, 0)? - Duration::days(1);
    let journal = Row::<JournalLineRecord>::all(
        &kernel
            .list(
                who,
                &JOURNAL_LINE,
                &ListQuery {
                    filters: vec![("account".into(), ledger.to_string())],
                    limit: usize::MAX,
                    ..Default::default()
                },
            )?
            .rows,
    )?;
    let money = |m: i64| Money::new(m, currency).decimal();
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut rows: Vec<(Date, String)> = Vec::new();
    let mut balance: i64 = 0;
    for l in &journal {
        let date = l.date;
        let amount = into_bank(l);
        if date > end {
            continue;
        }
        balance = balance.saturating_add(amount);
        if date < first {
            continue;
        }
        let entry = kernel.read::<JournalEntryRecord>(who, l.entry)?;
        let narration = entry.narration.clone();
        // Customers' money reaches the bank a day later; the rest on the day.
        let booked = if amount > 0 {
            (date + Duration::days(1)).min(end)
        } else {
            date
        };
        rows.push((
            booked,
            [
                booked.to_string(),
                quote(""),
                quote(&narration),
                money(amount),
                quote(entry.reference.as_deref().unwrap_or_default()),
            ]
            .join(","),
        ));
    }
    let (charge, interest) = (-750, 123);
    for (amount, what, who_) in [
        (charge, "Account maintenance charge", "Bank"),
        (interest, "Credit interest", "Bank"),
    ] {
        rows.push((
            end,
            [
                end.to_string(),
                quote(who_),
                quote(what),
                money(amount),
                quote(""),
            ]
            .join(","),
        ));
    }
    rows.sort_by_key(|(d, _)| *d);
    let mut csv = String::from("Date,Payee,Description,Amount,Reference\n");
    for (_, row) in rows {
        csv.push_str(&row);
        csv.push('\n');
    }
    let closing = balance.saturating_add(charge).saturating_add(interest);
    let format = FileFormat::Csv {
        date_format: Some(DateFormat::Iso),
        decimal: Some(DecimalSeparator::Point),
    };
    import_statement(kernel, who, bank.id, csv.as_bytes(), format, Some(closing))
        .await
        .map(Some)
        .map_err(|e| match e {
            ImportError::Kernel(k) => k,
            other => KernelError::Internal(format!("the demo statement: {other}")),
        })
}

/// The first day of the month `offset` months from `today`'s.
fn month_start(today: Date, offset: i32) -> Result<Date, KernelError> {
    let months = today.year() * 12 + i32::from(u8::from(today.month())) - 1 + offset;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) as u8 + 1);
    Month::try_from(month)
        .ok()
        .and_then(|m| Date::from_calendar_date(year, m, 1).ok())
        .ok_or_else(|| KernelError::Internal(format!("no month {offset} from {today}")))
}
