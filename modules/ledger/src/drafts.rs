//! Journal-entry drafts: an entry saved before it is posted, edited as often as needed,
//! then posted (validated, numbered, in the totals) or discarded.
//!
//! A draft is a journal-entry record with status `Draft` and a draft number
//! (`DRAFT-000001`); its lines are kept under `f | company | entry` in the `ledger`
//! table, not as journal-line records, so no report, list of lines or export ever sees
//! them. Posting turns the same record into a posted entry (status `Posted`, a journal
//! number) in one command with its lines and totals; a refused posting leaves the draft
//! as it was. A discarded draft keeps its record (status `Discarded`) for the history.

use crate::entities::LEDGER;
use nexus_kernel::bytes::{decode_u64, u64_key};
use nexus_kernel::{Action, Command, Kernel, KernelError, Principal, Row, format_money};

use crate::EntryKind;
use crate::books::{EntryInput, LineInput, check_input, company_key, post_into};
use crate::codec::{Reader, Writer};
use crate::entities::{JOURNAL_ENTRY, JournalEntryRecord, JournalKind, JournalStatus};

fn lines_key(company: u64, entry: u64) -> Vec<u8> {
    let mut k = company_key(b'f', company);
    k.extend_from_slice(&u64_key(entry));
    k
}

/// `count | (account, debit, credit, memo)…`, in the ledger's [`crate::codec`] layout.
fn encode(lines: &[LineInput]) -> Vec<u8> {
    let mut w = Writer::default();
    let n = w.count(lines.len());
    for l in lines.iter().take(n) {
        w.u64(l.account).i64(l.debit).i64(l.credit).str(&l.memo);
    }
    w.finish()
}

/// The lines as a person reads them in the record's history: one per line,
/// `#account debit|credit amount — memo`.
fn summary(lines: &[LineInput]) -> String {
    lines
        .iter()
        .map(|l| {
            let (side, amount) = if l.credit != 0 {
                ("credit", l.credit)
            } else {
                ("debit", l.debit)
            };
            let memo = if l.memo.is_empty() {
                String::new()
            } else {
                format!(" — {}", l.memo)
            };
            format!("#{} {side} {}{memo}", l.account, format_money(amount))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode(bytes: &[u8]) -> Result<Vec<LineInput>, KernelError> {
    let mut r = Reader::new(bytes, "a draft's lines");
    let count = r.count()?;
    let mut lines = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        lines.push(LineInput {
            account: r.u64()?,
            debit: r.i64()?,
            credit: r.i64()?,
            memo: r.str()?,
            foreign: None,
        });
    }
    if !r.is_empty() {
        return Err(r.damaged());
    }
    Ok(lines)
}

/// The draft `id` as the command sees it; refused unless it is still a draft.
fn require_draft(
    cmd: &Command<'_, '_, '_>,
    id: u64,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    let rec = cmd.fetch::<JournalEntryRecord>(id)?;
    if rec.status != JournalStatus::Draft {
        return Err(KernelError::Conflict(format!(
            "{} is {}, not a draft: it can no longer be edited, posted or discarded",
            rec.number,
            rec.status.to_string().to_lowercase()
        )));
    }
    Ok(rec)
}

/// Saves `input` as a new draft, or over draft `id`. Drafts need not balance; their
/// lines must still be debits or credits, not both, and not negative.
pub async fn save(
    kernel: &Kernel,
    who: &Principal,
    id: Option<u64>,
    input: EntryInput,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    check_input(&input)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let company = cmd.who().company;
            let total: i64 = input.lines.iter().map(|l| l.debit).sum();
            // The lines are part of the record too (as text), so that saving changed
            // lines alone is a new version with its event and its history.
            let draft_lines = Some(summary(&input.lines)).filter(|s| !s.is_empty());
            let reference = Some(input.reference.clone()).filter(|r| !r.is_empty());
            let rec = match id {
                Some(id) => {
                    require_draft(cmd, id)?;
                    cmd.modify(id, |e: &mut JournalEntryRecord| {
                        e.date = input.date;
                        e.narration = input.narration.clone();
                        e.reference = reference;
                        e.total = total;
                        e.draft_lines = draft_lines;
                    })?
                }
                None => {
                    let counter = company_key(b'g', company);
                    let n = cmd.get(&counter)?.and_then(|b| decode_u64(&b)).unwrap_or(0) + 1;
                    cmd.put(counter, u64_key(n).to_vec());
                    cmd.insert(&JournalEntryRecord {
                        number: format!("DRAFT-{n:06}"),
                        date: input.date,
                        narration: input.narration.clone(),
                        reference,
                        total,
                        status: JournalStatus::Draft,
                        kind: JournalKind::Regular,
                        reverses: None,
                        reversed_by: None,
                        source: None,
                        draft_lines,
                    })?
                }
            };
            cmd.put(lines_key(company, rec.id), encode(&input.lines));
            Ok(rec)
        })
        .await
}

/// The draft's lines.
pub fn lines(kernel: &Kernel, who: &Principal, id: u64) -> Result<Vec<LineInput>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Read)?;
    match kernel
        .module_state(&LEDGER)?
        .get(&lines_key(who.company, id))?
    {
        Some(b) => decode(&b),
        None => Ok(Vec::new()),
    }
}

/// Posts draft `id`: validated like any entry (balance, accounts, lock date, fiscal
/// year); on success the record is the posted entry, with its lines and totals.
pub async fn post(
    kernel: &Kernel,
    who: &Principal,
    id: u64,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            let rec = require_draft(cmd, id)?;
            let key = lines_key(cmd.who().company, id);
            let lines = match cmd.get(&key)? {
                Some(b) => decode(&b)?,
                None => Vec::new(),
            };
            let input = EntryInput {
                date: rec.date,
                narration: rec.narration.clone(),
                reference: rec.reference.clone().unwrap_or_default(),
                lines,
            };
            check_input(&input)?;
            let posted = post_into(cmd, input, EntryKind::Regular, None, Some(id), None)?;
            cmd.delete(key);
            Ok(posted)
        })
        .await
}

/// Discards draft `id`: it stays as a record, marked discarded, with no lines.
pub async fn discard(
    kernel: &Kernel,
    who: &Principal,
    id: u64,
) -> Result<Row<JournalEntryRecord>, KernelError> {
    kernel.authorize(who, &JOURNAL_ENTRY, Action::Create)?;
    kernel
        .command(&LEDGER, who, move |cmd| {
            require_draft(cmd, id)?;
            cmd.delete(lines_key(cmd.who().company, id));
            cmd.modify(id, |e: &mut JournalEntryRecord| {
                e.status = JournalStatus::Discarded;
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_lines_round_trip() {
        let lines = vec![
            LineInput {
                account: 7,
                debit: 12_345,
                credit: 0,
                memo: "Miete März — Büro".into(),
                foreign: None,
            },
            LineInput {
                account: 9,
                debit: 0,
                credit: 12_345,
                memo: String::new(),
                foreign: None,
            },
        ];
        let back = decode(&encode(&lines)).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[0].account, back[0].debit, back[0].memo.as_str()),
            (7, 12_345, "Miete März — Büro")
        );
        assert_eq!((back[1].account, back[1].credit), (9, 12_345));
        assert!(decode(&[0, 1, 2]).is_err());
        assert!(decode(&encode(&[])).unwrap().is_empty());
    }
}
