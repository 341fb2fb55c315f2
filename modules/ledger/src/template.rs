//! A chart of accounts for a small firm, in the usual numbering: 1000 assets,
//! 2000 liabilities, 3000 equity, 4000 income, 5000 cost of sales, 6000 expenses.

use std::collections::BTreeMap;

use crate::{Account, AccountClass, AccountId, AccountType, Chart, Currency};

use AccountClass::{Asset, Equity, Expense, Income, Liability};
use AccountType::{
    Bank, Cash, CostOfGoodsSold, FixedAsset, FxGainLoss, General, Payable, Payroll, Receivable,
    RetainedEarnings, Stock, Tax,
};

/// `(code, name, class, type, parent code, is group)`, parents before children.
type Row = (
    &'static str,
    &'static str,
    AccountClass,
    AccountType,
    Option<&'static str>,
    bool,
);

const GROUP: bool = true;
const LEAF: bool = false;

#[rustfmt::skip]
const SMALL_FIRM: &[Row] = &[
    ("1000", "Assets",                    Asset,     General,          None,         GROUP),
    ("1100", "Cash and bank",             Asset,     General,          Some("1000"), GROUP),
    ("1110", "Cash",                      Asset,     Cash,             Some("1100"), LEAF),
    ("1120", "Bank account",              Asset,     Bank,             Some("1100"), LEAF),
    ("1130", "Savings account",           Asset,     Bank,             Some("1100"), LEAF),
    ("1200", "Receivables",               Asset,     General,          Some("1000"), GROUP),
    ("1210", "Trade debtors",             Asset,     Receivable,       Some("1200"), LEAF),
    ("1220", "Other receivables",         Asset,     General,          Some("1200"), LEAF),
    ("1300", "Stock",                     Asset,     Stock,            Some("1000"), LEAF),
    ("1400", "VAT receivable",            Asset,     Tax,              Some("1000"), LEAF),
    ("1500", "Prepayments",               Asset,     General,          Some("1000"), LEAF),
    ("1600", "Fixed assets",              Asset,     General,          Some("1000"), GROUP),
    ("1610", "Equipment",                 Asset,     FixedAsset,       Some("1600"), LEAF),
    ("1620", "Accumulated depreciation",  Asset,     FixedAsset,       Some("1600"), LEAF),
    ("2000", "Liabilities",               Liability, General,          None,         GROUP),
    ("2100", "Payables",                  Liability, General,          Some("2000"), GROUP),
    ("2110", "Trade creditors",           Liability, Payable,          Some("2100"), LEAF),
    ("2120", "Accrued expenses",          Liability, General,          Some("2100"), LEAF),
    ("2130", "Goods received not invoiced", Liability, General,        Some("2100"), LEAF),
    ("2200", "Taxes",                     Liability, General,          Some("2000"), GROUP),
    ("2210", "VAT payable",               Liability, Tax,              Some("2200"), LEAF),
    ("2220", "Income tax payable",        Liability, Tax,              Some("2200"), LEAF),
    ("2300", "Payroll liabilities",       Liability, General,          Some("2000"), GROUP),
    ("2310", "Wages payable",             Liability, Payroll,          Some("2300"), LEAF),
    ("2320", "Payroll taxes payable",     Liability, Payroll,          Some("2300"), LEAF),
    ("2400", "Loans",                     Liability, General,          Some("2000"), LEAF),
    ("3000", "Equity",                    Equity,    General,          None,         GROUP),
    ("3100", "Share capital",             Equity,    General,          Some("3000"), LEAF),
    ("3200", "Retained earnings",         Equity,    RetainedEarnings, Some("3000"), LEAF),
    ("3300", "Owner drawings",            Equity,    General,          Some("3000"), LEAF),
    ("4000", "Income",                    Income,    General,          None,         GROUP),
    ("4100", "Sales of goods",            Income,    General,          Some("4000"), LEAF),
    ("4200", "Services",                  Income,    General,          Some("4000"), LEAF),
    ("4300", "Other income",              Income,    General,          Some("4000"), LEAF),
    ("4400", "Exchange gains",            Income,    FxGainLoss,       Some("4000"), LEAF),
    ("5000", "Cost of sales",             Expense,   General,          None,         GROUP),
    ("5100", "Cost of goods sold",        Expense,   CostOfGoodsSold,  Some("5000"), LEAF),
    ("5200", "Freight in",                Expense,   CostOfGoodsSold,  Some("5000"), LEAF),
    ("6000", "Operating expenses",        Expense,   General,          None,         GROUP),
    ("6100", "Wages and salaries",        Expense,   General,          Some("6000"), LEAF),
    ("6150", "Employer payroll taxes",    Expense,   General,          Some("6000"), LEAF),
    ("6200", "Rent",                      Expense,   General,          Some("6000"), LEAF),
    ("6300", "Utilities",                 Expense,   General,          Some("6000"), LEAF),
    ("6400", "Office supplies",           Expense,   General,          Some("6000"), LEAF),
    ("6500", "Insurance",                 Expense,   General,          Some("6000"), LEAF),
    ("6600", "Professional fees",         Expense,   General,          Some("6000"), LEAF),
    ("6700", "Bank fees",                 Expense,   General,          Some("6000"), LEAF),
    ("6800", "Depreciation",              Expense,   General,          Some("6000"), LEAF),
    ("6900", "Exchange losses",           Expense,   FxGainLoss,       Some("6000"), LEAF),
    ("6950", "Income tax",                Expense,   General,          Some("6000"), LEAF),
];

/// The small-firm accounts, with ids 1, 2, 3… in code order. All are kept in the
/// company currency.
pub fn small_firm_accounts() -> Vec<Account> {
    let id_of = |code: &str| -> Option<AccountId> {
        SMALL_FIRM
            .iter()
            .position(|row| row.0 == code)
            .map(|index| index as AccountId + 1)
    };
    SMALL_FIRM
        .iter()
        .zip(1..)
        .map(
            |(&(code, name, class, kind, parent, is_group), id)| Account {
                id,
                code: code.to_owned(),
                name: name.to_owned(),
                class,
                kind,
                parent: parent.and_then(id_of),
                currency: None,
                is_group,
            },
        )
        .collect()
}

impl Chart {
    /// The small-firm chart ([`small_firm_accounts`]) for a company keeping its books in
    /// `currency`. To add accounts, pass `small_firm_accounts()` and yours to
    /// [`Chart::new`].
    pub fn small_firm_template(currency: Currency) -> Chart {
        // The template is valid: `template_is_a_valid_chart` checks it through
        // `Chart::new`, so it skips validation here rather than unwrap a result.
        let accounts: BTreeMap<AccountId, Account> = small_firm_accounts()
            .into_iter()
            .map(|account| (account.id, account))
            .collect();
        Chart::from_valid(currency, accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_a_valid_chart() {
        let checked = Chart::new(Currency::EUR, small_firm_accounts()).unwrap();
        assert_eq!(checked, Chart::small_firm_template(Currency::EUR));
        assert_eq!(checked.len(), SMALL_FIRM.len());
        // Every parent code resolved to an id.
        for (row, account) in SMALL_FIRM.iter().zip(small_firm_accounts()) {
            assert_eq!(row.4.is_some(), account.parent.is_some(), "{}", row.0);
        }
        let postable = checked.accounts().filter(|a| !a.is_group).count();
        assert_eq!(postable, 38);
        let retained = checked.by_code("3200").unwrap();
        assert_eq!(retained.kind, AccountType::RetainedEarnings);
    }
}
