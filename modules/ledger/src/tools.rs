//! The ledger's read-only tools for the assistant and the API: the trial balance, an
//! account's ledger and the open items. Each answers as the caller, from the same
//! functions the pages use, with amounts as exact decimal strings.

use nexus_kernel::tools::{count_arg, date_arg, text_arg};
use nexus_kernel::{KernelError, Param, ParamKind, Principal, Tool};
use serde_json::{Map, Value as J, json};
use time::Date;

use crate::entities::{ACCOUNT, JOURNAL_ENTRY, JOURNAL_LINE};
use crate::receivables::Ledger;
use crate::receivables::books as ar;
use crate::receivables::entities::{INVOICE, PAYMENT};
use crate::{Money, PeriodKey};

const FROM: Param = Param {
    name: "from",
    kind: ParamKind::Date,
    required: true,
    description: "the first day, YYYY-MM-DD",
};

const TO: Param = Param {
    name: "to",
    kind: ParamKind::Date,
    required: true,
    description: "the last day, YYYY-MM-DD",
};

pub static TOOLS: &[Tool] = &[
    Tool {
        name: "ledger.trial_balance",
        description: "The trial balance of the months from `from` to `to`: for each \
                      account its opening balance, debits, credits and closing balance.",
        params: &[FROM, TO],
        reads: &[&ACCOUNT, &JOURNAL_LINE],
        run: trial_balance,
    },
    Tool {
        name: "ledger.account_ledger",
        description: "Every line posted to one account (by its code, such as 1120) \
                      between two days, with the entry, the narration and the running \
                      balance.",
        params: &[
            Param {
                name: "account",
                kind: ParamKind::Text,
                required: true,
                description: "the account's code, such as 1120",
            },
            FROM,
            TO,
        ],
        reads: &[&ACCOUNT, &JOURNAL_LINE, &JOURNAL_ENTRY],
        run: account_ledger,
    },
    Tool {
        name: "ledger.open_items",
        description: "What customers owe (receivable) or what is owed to suppliers \
                      (payable): each open invoice, credit note or payment on account, \
                      with its party, date, open amount and due date.",
        params: &[
            Param {
                name: "ledger",
                kind: ParamKind::OneOf(&["receivable", "payable"]),
                required: true,
                description: "receivable (customers) or payable (suppliers)",
            },
            Param {
                name: "party",
                kind: ParamKind::Count,
                required: false,
                description: "only this customer's or supplier's items (its record id)",
            },
        ],
        reads: &[&INVOICE, &PAYMENT],
        run: open_items,
    },
];

fn dates(args: &Map<String, J>) -> Result<(Date, Date), KernelError> {
    match (date_arg(args, "from")?, date_arg(args, "to")?) {
        (Some(from), Some(to)) if from <= to => Ok((from, to)),
        (Some(from), Some(to)) => Err(KernelError::invalid(
            "to",
            format!("the range starts ({from}) after it ends ({to})"),
        )),
        _ => Err(KernelError::invalid(
            "from",
            "give the first and the last day",
        )),
    }
}

fn month(date: Date, field: &'static str) -> Result<PeriodKey, KernelError> {
    PeriodKey::of(date).map_err(|e| KernelError::invalid(field, e.to_string()))
}

fn trial_balance(
    kernel: &nexus_kernel::Kernel,
    who: &Principal,
    args: &Map<String, J>,
) -> Result<J, KernelError> {
    let (from, to) = dates(args)?;
    let (chart, rows) =
        crate::books::trial_balance(kernel, who, month(from, "from")?, month(to, "to")?)?;
    let money = |m: i64| Money::new(m, chart.currency()).decimal();
    let rows: Vec<J> = rows
        .iter()
        .filter_map(|r| {
            let a = chart.get(r.account)?;
            Some(json!({
                "code": a.code,
                "name": a.name,
                "group": a.is_group,
                "opening": money(r.opening),
                "debit": money(r.debit),
                "credit": money(r.credit),
                "closing": money(r.closing),
            }))
        })
        .collect();
    Ok(json!({
        "currency": chart.currency().code(),
        "from": month(from, "from")?.first_day().to_string(),
        "to": to.to_string(),
        "accounts": rows,
    }))
}

fn account_ledger(
    kernel: &nexus_kernel::Kernel,
    who: &Principal,
    args: &Map<String, J>,
) -> Result<J, KernelError> {
    let (from, to) = dates(args)?;
    let code = text_arg(args, "account").unwrap_or_default().trim();
    let chart = crate::books::chart(kernel, who)?;
    let account = chart
        .by_code(code)
        .ok_or_else(|| KernelError::invalid("account", format!("there is no account {code}")))?;
    let gl = crate::books::general_ledger(kernel, who, account.id, from, to)?;
    let money = |m: i64| Money::new(m, gl.currency).decimal();
    let lines: Vec<J> = gl
        .lines
        .iter()
        .map(|l| {
            json!({
                "date": l.date.to_string(),
                "entry": l.number,
                "narration": l.narration,
                "memo": l.memo,
                "debit": money(l.debit),
                "credit": money(l.credit),
                "balance": money(l.balance),
            })
        })
        .collect();
    Ok(json!({
        "account": gl.account.label(),
        "currency": gl.currency.code(),
        "opening": money(gl.opening),
        "debit": money(gl.debit),
        "credit": money(gl.credit),
        "closing": money(gl.closing),
        "lines": lines,
    }))
}

fn open_items(
    kernel: &nexus_kernel::Kernel,
    who: &Principal,
    args: &Map<String, J>,
) -> Result<J, KernelError> {
    let ledger = match text_arg(args, "ledger") {
        Some("payable") => Ledger::Payable,
        _ => Ledger::Receivable,
    };
    let party = count_arg(args, "party");
    let mut items = Vec::new();
    for item in ar::open_items(kernel, who, ledger)? {
        if party.is_some_and(|p| p != item.party) {
            continue;
        }
        // The party's name where the caller may read it, else its id.
        let name = ar::party_name(kernel, who, ledger, item.party)
            .unwrap_or_else(|_| format!("#{}", item.party));
        items.push(json!({
            "number": item.number,
            "party": { "id": item.party, "name": name },
            "date": item.date.to_string(),
            "currency": item.currency.code(),
            "amount": Money::new(item.amount, item.currency).decimal(),
            "open": item.open_money().decimal(),
            "due": item.due.first().map(|(d, _)| d.to_string()),
        }));
    }
    Ok(json!({ "ledger": text_arg(args, "ledger"), "items": items }))
}
