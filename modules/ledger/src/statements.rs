//! The profit and loss account and the balance sheet, from the period totals.
//!
//! Amounts are in minor units of the company currency with the sign a reader expects:
//! income, liabilities and equity are positive when they are on their normal (credit)
//! side, assets and expenses when on theirs (debit).

use std::collections::BTreeMap;

use crate::totals::{add, check_currency};
use crate::{
    AccountClass, AccountId, Chart, LedgerError, Money, PeriodKey, Side, Totals, Turnover,
};

/// One account's amount in a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementLine {
    /// A non-group account.
    pub account: AccountId,
    /// Minor units, positive on the account class's normal side.
    pub amount: i64,
}

/// What the firm earned and spent in a range of months.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfitAndLoss {
    /// Income accounts with a non-zero amount, by code.
    pub income: Vec<StatementLine>,
    /// Expense accounts with a non-zero amount, by code.
    pub expenses: Vec<StatementLine>,
    /// Sum of `income`.
    pub total_income: i64,
    /// Sum of `expenses`.
    pub total_expenses: i64,
    /// `total_income - total_expenses`: a loss is negative.
    pub net_profit: i64,
}

/// What the firm owns and owes at the end of a month.
///
/// Invariant: `total_assets == total_liabilities + total_equity + unclosed_result`
/// ([`balance_sheet`] refuses totals where it does not hold).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceSheet {
    /// Asset accounts with a non-zero balance, by code.
    pub assets: Vec<StatementLine>,
    /// Liability accounts with a non-zero balance, by code.
    pub liabilities: Vec<StatementLine>,
    /// Equity accounts with a non-zero balance, by code.
    pub equity: Vec<StatementLine>,
    /// Sum of `assets`.
    pub total_assets: i64,
    /// Sum of `liabilities`.
    pub total_liabilities: i64,
    /// Sum of `equity`.
    pub total_equity: i64,
    /// Income less expenses not yet closed into retained earnings: the current year's
    /// result once earlier years are closed.
    pub unclosed_result: i64,
}

/// The profit and loss account for the months `from` to `to` (inclusive). Closing
/// entries are left out, so a closed year still shows what it earned.
pub fn profit_and_loss(
    chart: &Chart,
    totals: &Totals,
    from: PeriodKey,
    to: PeriodKey,
) -> Result<ProfitAndLoss, LedgerError> {
    check_currency(chart, totals)?;
    let summary = totals.summarise(from, to, false)?;
    let amounts = natural_amounts(chart, &summary, |_, movement| movement.net())?;
    let income = lines_of(chart, &amounts, AccountClass::Income);
    let expenses = lines_of(chart, &amounts, AccountClass::Expense);
    let total_income = sum(&income)?;
    let total_expenses = sum(&expenses)?;
    let net_profit = total_income
        .checked_sub(total_expenses)
        .ok_or(LedgerError::Overflow {
            what: "the net profit".to_owned(),
        })?;
    Ok(ProfitAndLoss {
        income,
        expenses,
        total_income,
        total_expenses,
        net_profit,
    })
}

/// The balance sheet at the end of month `at`: every balance from the first posting
/// up to and including `at`, closing entries included.
pub fn balance_sheet(
    chart: &Chart,
    totals: &Totals,
    at: PeriodKey,
) -> Result<BalanceSheet, LedgerError> {
    check_currency(chart, totals)?;
    let summary = totals.summarise(PeriodKey::MIN, at, true)?;
    let amounts = natural_amounts(chart, &summary, |opening, movement| {
        add(opening, movement.net()?)
    })?;
    let assets = lines_of(chart, &amounts, AccountClass::Asset);
    let liabilities = lines_of(chart, &amounts, AccountClass::Liability);
    let equity = lines_of(chart, &amounts, AccountClass::Equity);
    let income = sum(&lines_of(chart, &amounts, AccountClass::Income))?;
    let expenses = sum(&lines_of(chart, &amounts, AccountClass::Expense))?;
    let sheet = BalanceSheet {
        total_assets: sum(&assets)?,
        total_liabilities: sum(&liabilities)?,
        total_equity: sum(&equity)?,
        unclosed_result: income.checked_sub(expenses).ok_or(LedgerError::Overflow {
            what: "the unclosed result".to_owned(),
        })?,
        assets,
        liabilities,
        equity,
    };
    let difference = i128::from(sheet.total_assets)
        - i128::from(sheet.total_liabilities)
        - i128::from(sheet.total_equity)
        - i128::from(sheet.unclosed_result);
    if difference != 0 {
        // A difference beyond i64 is shown as the largest amount: damage either way.
        let minor = i64::try_from(difference).unwrap_or(i64::MAX);
        return Err(LedgerError::OutOfBalance {
            difference: Money::new(minor, chart.currency()),
        });
    }
    Ok(sheet)
}

/// Each account's amount from `balance(opening, movement)` (debit positive), turned to
/// its class's normal side.
fn natural_amounts(
    chart: &Chart,
    summary: &BTreeMap<AccountId, (i64, Turnover)>,
    balance: impl Fn(i64, Turnover) -> Result<i64, LedgerError>,
) -> Result<BTreeMap<AccountId, i64>, LedgerError> {
    let mut amounts = BTreeMap::new();
    for (&id, &(opening, movement)) in summary {
        let account = chart.account(id)?;
        let debit_balance = balance(opening, movement)?;
        let amount = match account.class.normal_side() {
            Side::Debit => debit_balance,
            Side::Credit => debit_balance.checked_neg().ok_or(LedgerError::Overflow {
                what: format!("the balance of {}", account.label()),
            })?,
        };
        amounts.insert(id, amount);
    }
    Ok(amounts)
}

fn lines_of(
    chart: &Chart,
    amounts: &BTreeMap<AccountId, i64>,
    class: AccountClass,
) -> Vec<StatementLine> {
    chart
        .accounts()
        .filter(|account| account.class == class)
        .filter_map(|account| {
            let amount = amounts.get(&account.id).copied().unwrap_or(0);
            (amount != 0).then_some(StatementLine {
                account: account.id,
                amount,
            })
        })
        .collect()
}

fn sum(lines: &[StatementLine]) -> Result<i64, LedgerError> {
    lines
        .iter()
        .try_fold(0, |total, line| add(total, line.amount))
}
