//! The books on the store: the ledger's commands and reads over the record kernel.
//!
//! * [`install_chart`] creates a company's chart of accounts from the small-firm
//!   template, in one command.
//! * [`post`] validates a journal entry against the company's chart and lock date and,
//!   in one store command, writes the entry and its lines (kernel records, with audit
//!   and change-log entries) and adds the entry to the per-account, per-month totals.
//! * [`cancel`] posts the reversal of a posted entry and marks both.
//! * [`trial_balance`], [`profit_and_loss`], [`balance_sheet`], [`general_ledger`],
//!   [`chart`], [`totals`] and [`export_beancount`] read.
//!
//! # The `ledger` table
//! * `t | company | account | month` → regular debit, credit, closing debit, credit
//!   (four `i64`, little endian): the maintained totals every report reads.
//! * `e | company | entry` → the ids of the entry's lines, in order.
//! * `n | company` → the last entry number given out.
//! * `l | company` → the lock date (days since 1970-01-01, `i64`): nothing is posted on
//!   or before it.
//!
//! All keys carry the company, and every read and write takes it from the principal.

use crate::entities::LEDGER;
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use nexus_kernel::builtin::Company;
use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::{Action, Command, Kernel, KernelError, ListQuery, Principal, Row};
use time::Date;

use crate::entities::{
    ACCOUNT, AccountRecord, JOURNAL_ENTRY, JOURNAL_LINE, JournalEntryRecord, JournalKind,
    JournalLineRecord, JournalStatus,
};
use crate::{
    Account, BalanceSheet, Chart, Currency, EntryKind, Foreign, JournalEntry, LedgerError, Line,
    LockDate, PeriodKey, PeriodTotals, PostedEntry, ProfitAndLoss, Totals, TrialBalanceRow,
    Turnover,
};

/// A journal entry as a person or program submits it.
#[derive(Debug, Clone)]
pub struct EntryInput {
    pub date: Date,
    pub narration: String,
    pub reference: String,
    pub lines: Vec<LineInput>,
}

/// One line: a debit or a credit (minor units of the company currency), not both.
#[derive(Debug, Clone)]
pub struct LineInput {
    pub account: u64,
    pub debit: i64,
    pub credit: i64,
    pub memo: String,
    /// For a line in a foreign (transaction) currency: its amount there, with the sign
    /// of the line, and the rate; the company amount must be that amount at the rate.
    pub foreign: Option<Foreign>,
}

pub(crate) fn refuse(e: LedgerError) -> KernelError {
    KernelError::invalid("lines", e.to_string())
}

pub(crate) fn company_key(tag: u8, company: u64) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&u64_key(company));
    k
}

fn totals_key(company: u64, account: u64, period: PeriodKey) -> Vec<u8> {
    let mut k = company_key(b't', company);
    k.extend_from_slice(&u64_key(account));
    k.extend_from_slice(&period.get().to_be_bytes());
    k
}

fn entry_key(company: u64, entry: u64) -> Vec<u8> {
    let mut k = company_key(b'e', company);
    k.extend_from_slice(&u64_key(entry));
    k
}

fn encode_totals(t: PeriodTotals) -> Vec<u8> {
    [
        t.regular.debit,
        t.regular.credit,
        t.closing.debit,
        t.closing.credit,
    ]
    .iter()
    .flat_map(|n| n.to_le_bytes())
    .collect()
}

fn decode_totals(b: &[u8]) -> Result<PeriodTotals, KernelError> {
    let n = |i: usize| -> Result<i64, KernelError> {
        b.get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .map(i64::from_le_bytes)
            .ok_or_else(|| KernelError::Internal("ledger totals are damaged".into()))
    };
    Ok(PeriodTotals {
        regular: Turnover {
            debit: n(0)?,
            credit: n(1)?,
        },
        closing: Turnover {
            debit: n(2)?,
            credit: n(3)?,
        },
    })
}

/// The company's currency, from its record.
pub(crate) fn company_currency(company: &Company) -> Result<Currency, KernelError> {
    Currency::new(&company.currency.to_string()).map_err(|e| KernelError::Internal(e.to_string()))
}

/// An account record as the domain sees it.
pub(crate) fn account_of(rec: &Row<AccountRecord>) -> Account {
    Account {
        id: rec.id,
        code: rec.code.clone(),
        name: rec.name.clone(),
        class: rec.class,
        kind: rec.r#type,
        parent: rec.parent,
        currency: None,
        is_group: rec.group,
    }
}

/// How many accounts the principal's company has.
pub fn account_count(kernel: &Kernel, who: &Principal) -> Result<u64, KernelError> {
    let one = ListQuery {
        limit: 1,
        ..Default::default()
    };
    Ok(kernel.list(who, &ACCOUNT, &one)?.total)
}

/// Creates the small-firm chart of accounts for the principal's company. Refused when
/// the company already has accounts.
pub async fn install_chart(kernel: &Kernel, who: &Principal) -> Result<usize, KernelError> {
    kernel.authorize(who, &ACCOUNT, Action::Create)?;
    if account_count(kernel, who)? > 0 {
        return Err(KernelError::Conflict(
            "this company already has a chart of accounts".into(),
        ));
    }
    kernel
        .command(&LEDGER, who, |cmd| {
            // Template ids are 1..=n with parents first; map them to record ids.
            let mut ids: BTreeMap<u64, u64> = BTreeMap::new();
            let template = crate::small_firm_accounts();
            for a in &template {
                let rec = cmd.insert(&AccountRecord {
                    code: a.code.clone(),
                    name: a.name.clone(),
                    class: a.class,
                    r#type: a.kind,
                    parent: a.parent.and_then(|p| ids.get(&p).copied()),
                    group: a.is_group,
                })?;
                ids.insert(a.id, rec.id);
            }
            Ok(template.len())
        })
        .await
}

/// The accounts `ids` and their ancestors, as a chart (enough to validate an entry on
/// them). A missing account is reported by its position in `ids`, as a line number.
pub(crate) fn chart_for(
    cmd: &Command<'_, '_, '_>,
    currency: Currency,
    ids: impl IntoIterator<Item = u64>,
) -> Result<Chart, KernelError> {
    let mut accounts: BTreeMap<u64, Account> = BTreeMap::new();
    for (i, first) in ids.into_iter().enumerate() {
        let mut next = Some(first);
        while let Some(id) = next.filter(|id| !accounts.contains_key(id)) {
            let Some(rec) = cmd.find::<AccountRecord>(id)? else {
                return Err(KernelError::invalid(
                    "lines",
                    format!(
                        "line {}: there is no account with id {id} in your company",
                        i + 1
                    ),
                ));
            };
            let account = account_of(&rec);
            next = account.parent;
            accounts.insert(id, account);
        }
    }
    Chart::new(currency, accounts.into_values()).map_err(refuse)
}

/// The setting that holds the lock date (`YYYY-MM-DD`).
const LOCK_DATE: &str = "lock_date";

pub(crate) fn lock_date(cmd: &Command<'_, '_, '_>) -> Result<Option<LockDate>, KernelError> {
    cmd.setting(LOCK_DATE)?
        .map(|text| {
            nexus_kernel::parse_date(&text)
                .map(LockDate)
                .map_err(|_| KernelError::Internal(format!("the lock date \"{text}\" is damaged")))
        })
        .transpose()
}

/// The principal's company's lock date, if one is set.
pub fn current_lock_date(kernel: &Kernel, who: &Principal) -> Result<Option<Date>, KernelError> {
    kernel.authorize(who, &ACCOUNT, Action::Read)?;
    kernel
        .setting(&LEDGER, who.company, LOCK_DATE)?
        .map(|text| {
            nexus_kernel::parse_date(&text)
                .map_err(|_| KernelError::Internal(format!("the lock date \"{text}\" is damaged")))
        })
        .transpose()
}

/// Posts a journal entry; returns its record.
pub async fn post(
    kernel: &Kernel,
    who: &Principal,
    input: EntryInput,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    check_input(&input)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            post_in(cmd, input, EntryKind::Regular, None)
        })
        .await
}

pub(crate) fn check_input(input: &EntryInput) -> Result<(), KernelError> {
    if input.narration.trim().is_empty() {
        return Err(KernelError::invalid("narration", "Narration is required"));
    }
    for (i, l) in input.lines.iter().enumerate() {
        if l.debit < 0 || l.credit < 0 {
            return Err(KernelError::invalid(
                "lines",
                format!(
                    "line {}: debits and credits are entered as positive amounts",
                    i + 1
                ),
            ));
        }
        if l.debit != 0 && l.credit != 0 {
            return Err(KernelError::invalid(
                "lines",
                format!("line {}: enter either a debit or a credit, not both", i + 1),
            ));
        }
    }
    Ok(())
}

pub(crate) fn post_in(
    cmd: &mut Command<'_, '_, '_>,
    input: EntryInput,
    kind: EntryKind,
    reverses: Option<u64>,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    post_into(cmd, input, kind, reverses, None, None)
}

/// Posts `input`; with `draft`, that draft's record becomes the posted entry (same id,
/// a journal number instead of its draft number); `source` names the document posting
/// it, if any.
pub(crate) fn post_into(
    cmd: &mut Command<'_, '_, '_>,
    input: EntryInput,
    kind: EntryKind,
    reverses: Option<u64>,
    draft: Option<u64>,
    source: Option<&str>,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    let company = cmd.who().company;
    let company_rec = cmd.fetch::<Company>(company)?;
    let currency = company_currency(&company_rec)?;
    let chart = chart_for(cmd, currency, input.lines.iter().map(|l| l.account))?;
    let entry = JournalEntry {
        id: 0,
        currency,
        date: input.date,
        narration: input.narration.clone(),
        reference: input.reference.clone(),
        kind,
        lines: input
            .lines
            .iter()
            .map(|l| Line {
                account: l.account,
                amount: l.debit - l.credit,
                foreign: l.foreign,
            })
            .collect(),
    };
    // The year-end closing entry is dated on the year's last day, which period close
    // has usually locked already; the fiscal year being open is what guards it.
    let lock = match kind {
        EntryKind::Closing => None,
        _ => lock_date(cmd)?,
    };
    crate::years::check_open(&crate::years::read(cmd)?, input.date)?;
    let posted = PostedEntry::post(entry, &chart, lock).map_err(refuse)?;
    let total: i64 = input.lines.iter().map(|l| l.debit).sum();

    let counter = company_key(b'n', company);
    let number = cmd.get(&counter)?.and_then(|b| decode_u64(&b)).unwrap_or(0) + 1;
    cmd.put(counter, u64_key(number).to_vec());
    let fields = JournalEntryRecord {
        number: format!("JE-{number:06}"),
        date: input.date,
        narration: input.narration,
        reference: Some(input.reference).filter(|r| !r.is_empty()),
        total,
        status: JournalStatus::Posted,
        kind: kind_name(kind),
        reverses,
        reversed_by: None,
        source: source.map(str::to_owned),
        draft_lines: None,
    };
    let rec = match draft {
        Some(id) => cmd.modify(id, |e: &mut JournalEntryRecord| *e = fields)?,
        None => cmd.insert(&fields)?,
    };
    let mut line_ids = Vec::with_capacity(input.lines.len() * 8);
    for (i, l) in input.lines.into_iter().enumerate() {
        let line = cmd.insert(&JournalLineRecord {
            entry: rec.id,
            date: input.date,
            account: l.account,
            debit: nonzero(l.debit),
            credit: nonzero(l.credit),
            memo: Some(l.memo).filter(|m| !m.is_empty()),
            line: i as i64 + 1,
            currency: l.foreign.map(|f| f.amount.currency().code().to_owned()),
            // The foreign amount as a positive number of its currency's minor units.
            amount_fx: l.foreign.map(|f| f.amount.minor().saturating_abs()),
            rate: l.foreign.map(|f| f.rate.to_string()),
        })?;
        line_ids.extend_from_slice(&u64_key(line.id));
    }
    cmd.put(entry_key(company, rec.id), line_ids);
    for ((account, period), delta) in Totals::deltas(&posted).map_err(refuse)? {
        let key = totals_key(company, account, period);
        let before = match cmd.get(&key)? {
            Some(b) => decode_totals(&b)?,
            None => PeriodTotals::default(),
        };
        let after = before.checked_add(delta).map_err(refuse)?;
        cmd.put(key, encode_totals(after));
    }
    Ok(rec)
}

/// Posts a draft the domain built (an invoice's, a payment's, a stock move's entry) in
/// the running command, as a regular entry whose `source` names the document that
/// posted it (`"invoice INV-000004"`): such an entry is undone through its document,
/// never cancelled on its own. Returns the entry's record. The draft's `id` and
/// `currency` are ignored (the store numbers the entry; posting checks the currency).
pub(crate) fn post_draft(
    cmd: &mut Command<'_, '_, '_>,
    draft: &JournalEntry,
    source: &str,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    let input = EntryInput {
        date: draft.date,
        narration: draft.narration.clone(),
        reference: draft.reference.clone(),
        lines: line_inputs(&draft.lines),
    };
    check_input(&input)?;
    post_into(cmd, input, EntryKind::Regular, None, None, Some(source))
}

/// The domain's signed lines as debits and credits.
pub(crate) fn line_inputs(lines: &[Line]) -> Vec<LineInput> {
    lines
        .iter()
        .map(|l| LineInput {
            account: l.account,
            debit: l.amount.max(0),
            credit: l.amount.min(0).saturating_neg(),
            memo: String::new(),
            foreign: l.foreign,
        })
        .collect()
}

/// A journal line record's foreign amount and rate, if it has them.
fn foreign_of(rec: &Row<JournalLineRecord>) -> Result<Option<Foreign>, KernelError> {
    let (Some(code), Some(minor), Some(rate)) = (&rec.currency, rec.amount_fx, &rec.rate) else {
        return Ok(None);
    };
    let debit_side = rec.debit.is_some();
    let damaged = |e: LedgerError| {
        KernelError::Internal(format!("journal line #{}'s foreign amount: {e}", rec.id))
    };
    let currency = Currency::new(code).map_err(damaged)?;
    let signed = if debit_side { minor } else { -minor };
    Ok(Some(Foreign {
        amount: crate::Money::new(signed, currency),
        rate: crate::Rate::parse(rate).map_err(damaged)?,
    }))
}

/// An amount, or nothing for zero (a line has a debit or a credit, not both).
fn nonzero(minor: i64) -> Option<i64> {
    (minor != 0).then_some(minor)
}

fn kind_name(kind: EntryKind) -> JournalKind {
    match kind {
        EntryKind::Regular => JournalKind::Regular,
        EntryKind::Reversal { .. } => JournalKind::Reversal,
        EntryKind::Closing => JournalKind::Closing,
    }
}

/// Cancels a posted entry by posting its reversal dated `date`; returns the reversal.
pub async fn cancel(
    kernel: &Kernel,
    who: &Principal,
    entry: u64,
    date: Date,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let original = cmd.fetch::<JournalEntryRecord>(entry)?;
            let number = original.number.clone();
            if original.status != JournalStatus::Posted {
                return Err(KernelError::Conflict(format!(
                    "{number} is already cancelled"
                )));
            }
            if let Some(source) = &original.source {
                return Err(KernelError::Conflict(format!(
                    "{number} was posted by {source}; undo it there (a credit note for an \
                     invoice, a refund for a payment, the reverse move for stock)"
                )));
            }
            if original.kind == JournalKind::Reversal {
                return Err(KernelError::Conflict(
                    "a reversal cannot itself be cancelled; post a new entry instead".into(),
                ));
            }
            let ids = cmd
                .get(&entry_key(cmd.who().company, entry))?
                .unwrap_or_default();
            let mut lines = Vec::new();
            for id in ids.chunks_exact(8).filter_map(decode_u64) {
                let line = cmd.fetch::<JournalLineRecord>(id)?;
                // The reversal's foreign amount is the original's, negated.
                let foreign = match foreign_of(&line)? {
                    Some(f) => Some(Foreign {
                        amount: f.amount.checked_neg().map_err(refuse)?,
                        rate: f.rate,
                    }),
                    None => None,
                };
                lines.push(LineInput {
                    account: line.account,
                    debit: line.credit.unwrap_or(0),
                    credit: line.debit.unwrap_or(0),
                    memo: line.memo.clone().unwrap_or_default(),
                    foreign,
                });
            }
            if date < original.date {
                return Err(KernelError::invalid(
                    "date",
                    format!(
                        "the reversal cannot be dated before {number} ({})",
                        original.date
                    ),
                ));
            }
            let input = EntryInput {
                date,
                narration: format!("Reversal of {number}"),
                reference: number.clone(),
                lines,
            };
            let reversal = post_in(cmd, input, EntryKind::Reversal { of: entry }, Some(entry))?;
            cmd.modify(entry, |e: &mut JournalEntryRecord| {
                e.status = JournalStatus::Cancelled;
                e.reversed_by = Some(reversal.id);
            })?;
            Ok(reversal)
        })
        .await
}

/// Sets the lock date: nothing can be posted on or before it afterwards.
pub async fn set_lock_date(
    kernel: &Kernel,
    who: &Principal,
    date: Date,
) -> Result<(), KernelError> {
    kernel.authorize(who, &ACCOUNT, Action::Write)?;
    kernel
        .command(&LEDGER, who, move |cmd| put_lock_date(cmd, date))
        .await
}

/// Stages the lock date (a setting: its change is an event with before and after).
pub(crate) fn put_lock_date(cmd: &mut Command<'_, '_, '_>, date: Date) -> Result<(), KernelError> {
    cmd.set_setting(LOCK_DATE, Some(nexus_kernel::format_date(date)))
}

/// The principal's company's chart of accounts.
pub fn chart(kernel: &Kernel, who: &Principal) -> Result<Chart, KernelError> {
    let company = kernel.read::<Company>(who, who.company)?;
    let currency = company_currency(&company)?;
    let page = kernel.list(
        who,
        &ACCOUNT,
        &ListQuery {
            limit: usize::MAX,
            ..Default::default()
        },
    )?;
    let accounts = Row::<AccountRecord>::all(&page.rows)?
        .iter()
        .map(account_of)
        .collect::<Vec<_>>();
    Chart::new(currency, accounts).map_err(|e| KernelError::Internal(e.to_string()))
}

/// The principal's company's maintained totals.
pub fn totals(kernel: &Kernel, who: &Principal, currency: Currency) -> Result<Totals, KernelError> {
    kernel.authorize(who, &ACCOUNT, Action::Read)?;
    let prefix = company_key(b't', who.company);
    let end = prefix_end(&prefix).unwrap_or_default();
    let mut totals = Totals::new(currency);
    let mut damaged = None;
    kernel
        .module_state(&LEDGER)?
        .scan(
            prefix.as_slice()..end.as_slice(),
            false,
            |k, v| match add_totals_row(&mut totals, k, v) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    damaged = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
    match damaged {
        Some(e) => Err(e),
        None => Ok(totals),
    }
}

/// The company's maintained totals as the command sees them.
pub(crate) fn totals_in(
    cmd: &Command<'_, '_, '_>,
    currency: Currency,
) -> Result<Totals, KernelError> {
    let mut totals = Totals::new(currency);
    for (k, v) in cmd.scan_prefix(&company_key(b't', cmd.who().company))? {
        add_totals_row(&mut totals, &k, &v)?;
    }
    Ok(totals)
}

/// Adds one `t | company | account | month` entry to `totals`.
fn add_totals_row(totals: &mut Totals, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
    let account = key.get(9..17).and_then(decode_u64);
    let period = key
        .get(17..21)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .and_then(PeriodKey::from_u32);
    match (account, period, decode_totals(value)) {
        (Some(a), Some(p), Ok(t)) => {
            totals.insert(a, p, t);
            Ok(())
        }
        _ => Err(KernelError::Internal("ledger totals are damaged".into())),
    }
}

/// The trial balance for the months `from..=to`, from the maintained totals.
pub fn trial_balance(
    kernel: &Kernel,
    who: &Principal,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<(Chart, Vec<TrialBalanceRow>), KernelError> {
    let chart = chart(kernel, who)?;
    let totals = totals(kernel, who, chart.currency())?;
    let rows = crate::trial_balance(&chart, &totals, from, to)
        .map_err(|e| KernelError::BadRequest(e.to_string()))?;
    Ok((chart, rows))
}

/// Every posted entry of the company, as a beancount journal.
pub fn export_beancount(kernel: &Kernel, who: &Principal) -> Result<String, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Export)?;
    let chart = chart(kernel, who)?;
    let all = ListQuery {
        limit: usize::MAX,
        ..Default::default()
    };
    let entries = Row::<JournalEntryRecord>::all(&kernel.list(who, &JOURNAL_ENTRY, &all)?.rows)?;
    let mut lines: BTreeMap<u64, Vec<(i64, Line)>> = BTreeMap::new();
    for l in Row::<JournalLineRecord>::all(&kernel.list(who, &JOURNAL_LINE, &all)?.rows)? {
        let line = Line {
            account: l.account,
            amount: l.debit.unwrap_or(0) - l.credit.unwrap_or(0),
            foreign: foreign_of(&l)?,
        };
        lines.entry(l.entry).or_default().push((l.line, line));
    }
    let company = kernel.read::<Company>(who, who.company)?;
    let mut posted = Vec::with_capacity(entries.len());
    for e in entries {
        if !matches!(e.status, JournalStatus::Posted | JournalStatus::Cancelled) {
            continue;
        }
        let mut ls = lines.remove(&e.id).unwrap_or_default();
        ls.sort_by_key(|(n, _)| *n);
        let kind = match (e.kind, e.reverses) {
            (JournalKind::Reversal, Some(of)) => EntryKind::Reversal { of },
            (JournalKind::Closing, _) => EntryKind::Closing,
            _ => EntryKind::Regular,
        };
        let entry = JournalEntry {
            id: e.id,
            currency: chart.currency(),
            date: e.date,
            narration: e.narration.clone(),
            reference: e.reference.clone().unwrap_or_default(),
            kind,
            lines: ls.into_iter().map(|(_, l)| l).collect(),
        };
        posted.push(
            PostedEntry::post(entry, &chart, None)
                .map_err(|err| KernelError::Internal(format!("{}: {err}", e.number)))?,
        );
    }
    posted.sort_by_key(|p| (p.date, p.id));
    crate::beancount::export(&company.name, &chart, &posted)
        .map_err(|e| KernelError::Internal(e.to_string()))
}

/// The profit and loss account of the months `from..=to`.
pub fn profit_and_loss(
    kernel: &Kernel,
    who: &Principal,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<(Chart, ProfitAndLoss), KernelError> {
    let chart = chart(kernel, who)?;
    let totals = totals(kernel, who, chart.currency())?;
    let pl = crate::profit_and_loss(&chart, &totals, from, to)
        .map_err(|e| KernelError::BadRequest(e.to_string()))?;
    Ok((chart, pl))
}

/// The balance sheet at the end of month `at`.
pub fn balance_sheet(
    kernel: &Kernel,
    who: &Principal,
    at: PeriodKey,
) -> Result<(Chart, BalanceSheet), KernelError> {
    let chart = chart(kernel, who)?;
    let totals = totals(kernel, who, chart.currency())?;
    let sheet = crate::balance_sheet(&chart, &totals, at)
        .map_err(|e| KernelError::Internal(e.to_string()))?;
    Ok((chart, sheet))
}

/// One line of an account's general ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerLine {
    /// The journal line's record.
    pub line: u64,
    /// Its entry's record, number and narration.
    pub entry: u64,
    pub number: String,
    pub narration: String,
    pub date: Date,
    pub memo: String,
    pub debit: i64,
    pub credit: i64,
    /// The account's balance after this line (debit positive).
    pub balance: i64,
}

/// An account's general ledger over a range of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneralLedger {
    pub account: Account,
    pub currency: Currency,
    /// The balance before `from` (debit positive).
    pub opening: i64,
    pub lines: Vec<LedgerLine>,
    pub debit: i64,
    pub credit: i64,
    pub closing: i64,
}

/// Every line posted to `account` from `from` to `to` (inclusive) in date order, with
/// the running balance. The opening balance comes from the maintained totals of the
/// months before `from`'s month plus the lines of that month dated before `from`.
pub fn general_ledger(
    kernel: &Kernel,
    who: &Principal,
    account: u64,
    from: Date,
    to: Date,
) -> Result<GeneralLedger, KernelError> {
    kernel.authorize(who, &JOURNAL_LINE, Action::Read)?;
    if from > to {
        return Err(KernelError::BadRequest(format!(
            "the range starts ({from}) after it ends ({to})"
        )));
    }
    let chart = chart(kernel, who)?;
    let acc = chart
        .get(account)
        .cloned()
        .ok_or_else(|| KernelError::NotFound(format!("there is no account #{account}")))?;
    if acc.is_group {
        return Err(KernelError::BadRequest(format!(
            "{} is a group: open one of the accounts under it",
            acc.label()
        )));
    }
    let first_month = PeriodKey::of(from).map_err(|e| KernelError::BadRequest(e.to_string()))?;
    let totals = totals(kernel, who, chart.currency())?;
    let mut opening: i64 = 0;
    for (a, period, t) in totals.iter() {
        if a == account && period < first_month {
            let all = t.all().map_err(refuse)?;
            opening = opening.saturating_add(all.debit).saturating_sub(all.credit);
        }
    }
    let rows = kernel
        .list(
            who,
            &JOURNAL_LINE,
            &ListQuery {
                filters: vec![("account".into(), account.to_string())],
                limit: usize::MAX,
                ..Default::default()
            },
        )?
        .rows;
    let rows = Row::<JournalLineRecord>::all(&rows)?;
    let mut lines = Vec::new();
    for r in &rows {
        let date = r.date;
        if date < first_month.first_day() || date > to {
            continue;
        }
        let (debit, credit) = (r.debit.unwrap_or(0), r.credit.unwrap_or(0));
        if date < from {
            opening = opening.saturating_add(debit).saturating_sub(credit);
            continue;
        }
        lines.push((date, r.id, r.entry, r, debit, credit));
    }
    lines.sort_by_key(|(date, id, ..)| (*date, *id));
    let mut entries: BTreeMap<u64, Row<JournalEntryRecord>> = BTreeMap::new();
    let mut balance = opening;
    let (mut debit, mut credit) = (0i64, 0i64);
    let mut out = Vec::with_capacity(lines.len());
    for (date, id, entry, r, d, c) in lines {
        if let std::collections::btree_map::Entry::Vacant(v) = entries.entry(entry) {
            v.insert(kernel.read::<JournalEntryRecord>(who, entry)?);
        }
        let e = entries.get(&entry);
        balance = balance.saturating_add(d).saturating_sub(c);
        debit = debit.saturating_add(d);
        credit = credit.saturating_add(c);
        out.push(LedgerLine {
            line: id,
            entry,
            number: e.map(|e| e.number.clone()).unwrap_or_default(),
            narration: e.map(|e| e.narration.clone()).unwrap_or_default(),
            date,
            memo: r.memo.clone().unwrap_or_default(),
            debit: d,
            credit: c,
            balance,
        });
    }
    Ok(GeneralLedger {
        account: acc,
        currency: chart.currency(),
        opening,
        lines: out,
        debit,
        credit,
        closing: balance,
    })
}
