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

use nexus_kernel::bytes::{decode_u64, prefix_end, u64_key};
use nexus_kernel::{
    Action, Command, Kernel, KernelError, ListQuery, Principal, Record, Value, builtin,
};
use time::Date;

use crate::entities::{ACCOUNT, JOURNAL_ENTRY, JOURNAL_LINE, class_name, class_of, type_of};
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
pub(crate) fn company_currency(company: &Record) -> Result<Currency, KernelError> {
    let code = company.get("currency").as_text().unwrap_or("USD");
    Currency::new(code).map_err(|e| KernelError::Internal(e.to_string()))
}

/// An account record as the domain sees it.
pub(crate) fn account_of(rec: &Record) -> Result<Account, KernelError> {
    let damaged =
        |what: &str| KernelError::Internal(format!("account {} has no valid {what}", rec.id));
    Ok(Account {
        id: rec.id,
        code: rec.get("code").as_text().unwrap_or_default().to_owned(),
        name: rec.get("name").as_text().unwrap_or_default().to_owned(),
        class: rec
            .get("class")
            .as_text()
            .and_then(class_of)
            .ok_or_else(|| damaged("class"))?,
        kind: rec
            .get("type")
            .as_text()
            .and_then(type_of)
            .ok_or_else(|| damaged("type"))?,
        parent: rec.get("parent").as_ref_id(),
        currency: None,
        is_group: rec.get("group") == &Value::Bool(true),
    })
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
                let mut values = BTreeMap::from([
                    ("code", Value::Text(a.code.clone())),
                    ("name", Value::Text(a.name.clone())),
                    ("class", Value::Text(class_name(a.class).to_owned())),
                    ("type", Value::Text(a.kind.name().to_owned())),
                    ("group", Value::Bool(a.is_group)),
                ]);
                if let Some(p) = a.parent.and_then(|p| ids.get(&p)) {
                    values.insert("parent", Value::Ref(*p));
                }
                let rec = cmd.create(&ACCOUNT, values)?;
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
            let Some(rec) = cmd.load(&ACCOUNT, id)? else {
                return Err(KernelError::invalid(
                    "lines",
                    format!(
                        "line {}: there is no account with id {id} in your company",
                        i + 1
                    ),
                ));
            };
            let account = account_of(&rec)?;
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
) -> Result<Record, KernelError> {
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
) -> Result<Record, KernelError> {
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
) -> Result<Record, KernelError> {
    let company = cmd.who().company;
    let company_rec = cmd.require(&builtin::COMPANY, company)?;
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
    let mut values = BTreeMap::from([
        ("number", Value::Text(format!("JE-{number:06}"))),
        ("date", Value::Date(input.date)),
        ("narration", Value::Text(input.narration)),
        ("reference", Value::Text(input.reference)),
        ("total", Value::Money(total)),
        ("status", Value::Text("Posted".into())),
        ("kind", Value::Text(kind_name(kind).into())),
    ]);
    if let Some(r) = reverses {
        values.insert("reverses", Value::Ref(r));
    }
    if let Some(source) = source {
        values.insert("source", Value::Text(source.to_owned()));
    }
    let rec = match draft {
        Some(id) => {
            values.insert("draft_lines", Value::Empty);
            cmd.update(&JOURNAL_ENTRY, id, values)?
        }
        None => cmd.create(&JOURNAL_ENTRY, values)?,
    };
    let mut line_ids = Vec::with_capacity(input.lines.len() * 8);
    for (i, l) in input.lines.into_iter().enumerate() {
        let line = cmd.create(
            &JOURNAL_LINE,
            BTreeMap::from([
                ("entry", Value::Ref(rec.id)),
                ("date", Value::Date(input.date)),
                ("account", Value::Ref(l.account)),
                ("debit", money_or_empty(l.debit)),
                ("credit", money_or_empty(l.credit)),
                ("currency", foreign_currency(&l)),
                ("amount_fx", foreign_amount(&l)),
                ("rate", foreign_rate(&l)),
                ("memo", Value::Text(l.memo)),
                ("line", Value::Int(i as i64 + 1)),
            ]),
        )?;
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
) -> Result<Record, KernelError> {
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

fn foreign_currency(l: &LineInput) -> Value {
    l.foreign.map_or(Value::Empty, |f| {
        Value::Text(f.amount.currency().code().to_owned())
    })
}

/// The foreign amount as a positive number of the transaction currency's minor units.
fn foreign_amount(l: &LineInput) -> Value {
    l.foreign.map_or(Value::Empty, |f| {
        Value::Money(f.amount.minor().saturating_abs())
    })
}

fn foreign_rate(l: &LineInput) -> Value {
    l.foreign
        .map_or(Value::Empty, |f| Value::Text(f.rate.to_string()))
}

/// A journal line record's foreign amount and rate, if it has them.
fn foreign_of(rec: &Record, debit_side: bool) -> Result<Option<Foreign>, KernelError> {
    let (Some(code), Value::Money(minor), Some(rate)) = (
        rec.get("currency").as_text(),
        rec.get("amount_fx"),
        rec.get("rate").as_text(),
    ) else {
        return Ok(None);
    };
    let damaged = |e: LedgerError| {
        KernelError::Internal(format!("journal line #{}'s foreign amount: {e}", rec.id))
    };
    let currency = Currency::new(code).map_err(damaged)?;
    let signed = if debit_side { *minor } else { -*minor };
    Ok(Some(Foreign {
        amount: crate::Money::new(signed, currency),
        rate: crate::Rate::parse(rate).map_err(damaged)?,
    }))
}

fn money_or_empty(minor: i64) -> Value {
    if minor == 0 {
        Value::Empty
    } else {
        Value::Money(minor)
    }
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Regular => "Regular",
        EntryKind::Reversal { .. } => "Reversal",
        EntryKind::Closing => "Closing",
    }
}

/// Cancels a posted entry by posting its reversal dated `date`; returns the reversal.
pub async fn cancel(
    kernel: &Kernel,
    who: &Principal,
    entry: u64,
    date: Date,
) -> Result<Record, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let original = cmd.require(&JOURNAL_ENTRY, entry)?;
            if original.get("status").as_text() != Some("Posted") {
                return Err(KernelError::Conflict(format!(
                    "{} is already cancelled",
                    original.title(&JOURNAL_ENTRY)
                )));
            }
            if let Some(source) = original.get("source").as_text().filter(|s| !s.is_empty()) {
                return Err(KernelError::Conflict(format!(
                    "{} was posted by {source}; undo it there (a credit note for an \
                     invoice, a refund for a payment, the reverse move for stock)",
                    original.title(&JOURNAL_ENTRY)
                )));
            }
            if original.get("kind").as_text() == Some("Reversal") {
                return Err(KernelError::Conflict(
                    "a reversal cannot itself be cancelled; post a new entry instead".into(),
                ));
            }
            let ids = cmd
                .get(&entry_key(cmd.who().company, entry))?
                .unwrap_or_default();
            let mut lines = Vec::new();
            for id in ids.chunks_exact(8).filter_map(decode_u64) {
                let line = cmd.require(&JOURNAL_LINE, id)?;
                let amount = |f: &str| match line.get(f) {
                    Value::Money(m) => *m,
                    _ => 0,
                };
                // The reversal's foreign amount is the original's, negated.
                let foreign = match foreign_of(&line, amount("debit") != 0)? {
                    Some(f) => Some(Foreign {
                        amount: f.amount.checked_neg().map_err(refuse)?,
                        rate: f.rate,
                    }),
                    None => None,
                };
                lines.push(LineInput {
                    account: line.get("account").as_ref_id().unwrap_or_default(),
                    debit: amount("credit"),
                    credit: amount("debit"),
                    memo: line.get("memo").as_text().unwrap_or_default().to_owned(),
                    foreign,
                });
            }
            let number = original.title(&JOURNAL_ENTRY);
            if let Value::Date(d) = original.get("date")
                && date < *d
            {
                return Err(KernelError::invalid(
                    "date",
                    format!("the reversal cannot be dated before {number} ({d})"),
                ));
            }
            let input = EntryInput {
                date,
                narration: format!("Reversal of {number}"),
                reference: number.clone(),
                lines,
            };
            let reversal = post_in(cmd, input, EntryKind::Reversal { of: entry }, Some(entry))?;
            cmd.update(
                &JOURNAL_ENTRY,
                entry,
                BTreeMap::from([
                    ("status", Value::Text("Cancelled".into())),
                    ("reversed_by", Value::Ref(reversal.id)),
                ]),
            )?;
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
    let company = kernel.get(who, &builtin::COMPANY, who.company)?;
    let currency = company_currency(&company)?;
    let page = kernel.list(
        who,
        &ACCOUNT,
        &ListQuery {
            limit: usize::MAX,
            ..Default::default()
        },
    )?;
    let accounts = page
        .rows
        .iter()
        .map(account_of)
        .collect::<Result<Vec<_>, _>>()?;
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
    let entries = kernel.list(who, &JOURNAL_ENTRY, &all)?.rows;
    let mut lines: BTreeMap<u64, Vec<(i64, Line)>> = BTreeMap::new();
    for l in kernel.list(who, &JOURNAL_LINE, &all)?.rows {
        let amount = |f: &str| match l.get(f) {
            Value::Money(m) => *m,
            _ => 0,
        };
        let (Some(entry), Some(account)) =
            (l.get("entry").as_ref_id(), l.get("account").as_ref_id())
        else {
            continue;
        };
        let n = match l.get("line") {
            Value::Int(n) => *n,
            _ => 0,
        };
        let line = Line {
            account,
            amount: amount("debit") - amount("credit"),
            foreign: foreign_of(&l, amount("debit") != 0)?,
        };
        lines.entry(entry).or_default().push((n, line));
    }
    let company = kernel.get(who, &builtin::COMPANY, who.company)?;
    let mut posted = Vec::with_capacity(entries.len());
    for e in entries {
        let Value::Date(date) = *e.get("date") else {
            continue;
        };
        if !matches!(e.get("status").as_text(), Some("Posted" | "Cancelled")) {
            continue;
        }
        let mut ls = lines.remove(&e.id).unwrap_or_default();
        ls.sort_by_key(|(n, _)| *n);
        let kind = match (e.get("kind").as_text(), e.get("reverses").as_ref_id()) {
            (Some("Reversal"), Some(of)) => EntryKind::Reversal { of },
            (Some("Closing"), _) => EntryKind::Closing,
            _ => EntryKind::Regular,
        };
        let entry = JournalEntry {
            id: e.id,
            currency: chart.currency(),
            date,
            narration: e.get("narration").as_text().unwrap_or_default().to_owned(),
            reference: e.get("reference").as_text().unwrap_or_default().to_owned(),
            kind,
            lines: ls.into_iter().map(|(_, l)| l).collect(),
        };
        posted.push(
            PostedEntry::post(entry, &chart, None).map_err(|err| {
                KernelError::Internal(format!("{}: {err}", e.title(&JOURNAL_ENTRY)))
            })?,
        );
    }
    posted.sort_by_key(|p| (p.date, p.id));
    crate::beancount::export(&company.title(&builtin::COMPANY), &chart, &posted)
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
    let amount = |r: &Record, f: &str| match r.get(f) {
        Value::Money(m) => *m,
        _ => 0,
    };
    let mut lines = Vec::new();
    for r in &rows {
        let Value::Date(date) = *r.get("date") else {
            continue;
        };
        if date < first_month.first_day() || date > to {
            continue;
        }
        let (debit, credit) = (amount(r, "debit"), amount(r, "credit"));
        if date < from {
            opening = opening.saturating_add(debit).saturating_sub(credit);
            continue;
        }
        lines.push((
            date,
            r.id,
            r.get("entry").as_ref_id().unwrap_or(0),
            r,
            debit,
            credit,
        ));
    }
    lines.sort_by_key(|(date, id, ..)| (*date, *id));
    let mut entries: BTreeMap<u64, Record> = BTreeMap::new();
    let mut balance = opening;
    let (mut debit, mut credit) = (0i64, 0i64);
    let mut out = Vec::with_capacity(lines.len());
    for (date, id, entry, r, d, c) in lines {
        if let std::collections::btree_map::Entry::Vacant(v) = entries.entry(entry) {
            v.insert(kernel.get(who, &JOURNAL_ENTRY, entry)?);
        }
        let e = entries.get(&entry);
        balance = balance.saturating_add(d).saturating_sub(c);
        debit = debit.saturating_add(d);
        credit = credit.saturating_add(c);
        out.push(LedgerLine {
            line: id,
            entry,
            number: e.map(|e| e.title(&JOURNAL_ENTRY)).unwrap_or_default(),
            narration: e
                .and_then(|e| e.get("narration").as_text())
                .unwrap_or_default()
                .to_owned(),
            date,
            memo: r.get("memo").as_text().unwrap_or_default().to_owned(),
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
