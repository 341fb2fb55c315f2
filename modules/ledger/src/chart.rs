//! The chart of accounts: classes, types, accounts, and the validated tree of them.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use crate::{Currency, LedgerError};

/// An account's id: stable, never reused, never shown to people (they see the code).
pub type AccountId = u64;

/// The side of an entry: debit (left) or credit (right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The left side: increases assets and expenses.
    Debit,
    /// The right side: increases liabilities, equity and income.
    Credit,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Debit => "debit",
            Side::Credit => "credit",
        })
    }
}

/// The five classes every account belongs to. The balance sheet holds assets,
/// liabilities and equity; the profit and loss account holds income and expenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountClass {
    /// What the firm owns or is owed. Normal balance: debit.
    Asset,
    /// What the firm owes. Normal balance: credit.
    Liability,
    /// What the owners have put in and left in. Normal balance: credit.
    Equity,
    /// What the firm earns. Normal balance: credit.
    Income,
    /// What the firm spends to earn it. Normal balance: debit.
    Expense,
}

impl AccountClass {
    /// All classes, in the order of the chart's numbering (1 to 5).
    pub const ALL: [AccountClass; 5] = [
        AccountClass::Asset,
        AccountClass::Liability,
        AccountClass::Equity,
        AccountClass::Income,
        AccountClass::Expense,
    ];

    /// The side an account of this class normally has its balance on.
    pub const fn normal_side(self) -> Side {
        match self {
            AccountClass::Asset | AccountClass::Expense => Side::Debit,
            AccountClass::Liability | AccountClass::Equity | AccountClass::Income => Side::Credit,
        }
    }

    /// Whether balances carry over from year to year (assets, liabilities, equity);
    /// income and expenses are closed into equity at year end instead.
    pub const fn is_balance_sheet(self) -> bool {
        matches!(
            self,
            AccountClass::Asset | AccountClass::Liability | AccountClass::Equity
        )
    }

    /// `"an asset"`, for messages.
    pub const fn label(self) -> &'static str {
        match self {
            AccountClass::Asset => "an asset",
            AccountClass::Liability => "a liability",
            AccountClass::Equity => "equity",
            AccountClass::Income => "income",
            AccountClass::Expense => "an expense",
        }
    }
}

/// What an account is used for, beyond its class. Modules find "the receivables
/// account" or "the bank accounts" by type; the type also fixes which classes fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountType {
    /// No special use. Any class.
    General,
    /// Cash in hand. Asset.
    Cash,
    /// A bank account. Asset.
    Bank,
    /// Amounts customers owe. Asset.
    Receivable,
    /// Goods held for sale. Asset.
    Stock,
    /// Equipment, vehicles, buildings and their accumulated depreciation. Asset.
    FixedAsset,
    /// Amounts owed to suppliers. Liability.
    Payable,
    /// Wages and payroll taxes owed. Liability.
    Payroll,
    /// Taxes receivable (input VAT) or payable (output VAT). Asset or liability.
    Tax,
    /// The accumulated results of past years. Equity.
    RetainedEarnings,
    /// The cost of the goods sold. Expense.
    CostOfGoodsSold,
    /// Realised exchange gains (income) or losses (expense).
    FxGainLoss,
}

impl AccountType {
    /// Whether an account of this type may belong to `class`.
    pub const fn fits(self, class: AccountClass) -> bool {
        use AccountClass as C;
        match self {
            AccountType::General => true,
            AccountType::Cash
            | AccountType::Bank
            | AccountType::Receivable
            | AccountType::Stock
            | AccountType::FixedAsset => matches!(class, C::Asset),
            AccountType::Payable | AccountType::Payroll => matches!(class, C::Liability),
            AccountType::Tax => matches!(class, C::Asset | C::Liability),
            AccountType::RetainedEarnings => matches!(class, C::Equity),
            AccountType::CostOfGoodsSold => matches!(class, C::Expense),
            AccountType::FxGainLoss => matches!(class, C::Income | C::Expense),
        }
    }

    /// The type's name in one word, such as `"CostOfGoodsSold"`.
    pub const fn name(self) -> &'static str {
        match self {
            AccountType::General => "General",
            AccountType::Cash => "Cash",
            AccountType::Bank => "Bank",
            AccountType::Receivable => "Receivable",
            AccountType::Stock => "Stock",
            AccountType::FixedAsset => "FixedAsset",
            AccountType::Payable => "Payable",
            AccountType::Payroll => "Payroll",
            AccountType::Tax => "Tax",
            AccountType::RetainedEarnings => "RetainedEarnings",
            AccountType::CostOfGoodsSold => "CostOfGoodsSold",
            AccountType::FxGainLoss => "FxGainLoss",
        }
    }

    /// `"receivable"`, for messages.
    pub const fn label(self) -> &'static str {
        match self {
            AccountType::General => "general",
            AccountType::Cash => "cash",
            AccountType::Bank => "bank",
            AccountType::Receivable => "receivable",
            AccountType::Stock => "stock",
            AccountType::FixedAsset => "fixed-asset",
            AccountType::Payable => "payable",
            AccountType::Payroll => "payroll",
            AccountType::Tax => "tax",
            AccountType::RetainedEarnings => "retained-earnings",
            AccountType::CostOfGoodsSold => "cost-of-goods-sold",
            AccountType::FxGainLoss => "exchange gain/loss",
        }
    }
}

/// One account of the chart.
///
/// A *group* account only sums the accounts filed under it; entries post to the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Stable id; see [`AccountId`].
    pub id: AccountId,
    /// What people call it, such as `"1200"`: 1 to 20 ASCII letters and digits, unique
    /// in the chart without regard to case.
    pub code: String,
    /// Such as `"Trade debtors"`; not empty.
    pub name: String,
    /// Asset, liability, equity, income or expense.
    pub class: AccountClass,
    /// What it is used for; must fit the class ([`AccountType::fits`]).
    pub kind: AccountType,
    /// The group it is filed under: a group of the same class. `None` for top level.
    pub parent: Option<AccountId>,
    /// The currency the account is kept in; `None` means the company currency. Lines
    /// to an account kept in a foreign currency must carry an amount in that currency.
    pub currency: Option<Currency>,
    /// Whether this is a group (sums its children, takes no postings).
    pub is_group: bool,
}

impl Account {
    /// `"1200 Trade debtors"`, for messages and reports.
    pub fn label(&self) -> String {
        format!("{} {}", self.code, self.name)
    }
}

/// A validated chart of accounts for one company.
///
/// Invariants, checked by [`Chart::new`]:
/// * ids and codes are unique (codes without regard to case), codes are 1 to 20 ASCII
///   letters and digits, names are not empty;
/// * every parent exists, is a group, and has the same class as its children, so the
///   accounts form a forest with one class per tree (no cycles);
/// * every account's type fits its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    currency: Currency,
    accounts: BTreeMap<AccountId, Account>,
    /// Ids ordered by code, the order of reports.
    by_code: Vec<AccountId>,
}

impl Chart {
    /// The longest account code.
    pub const MAX_CODE_LEN: usize = 20;

    /// Validates `accounts` as the chart of a company that keeps its books in `currency`.
    pub fn new(
        currency: Currency,
        accounts: impl IntoIterator<Item = Account>,
    ) -> Result<Chart, LedgerError> {
        let mut map = BTreeMap::new();
        let mut codes = HashSet::new();
        for account in accounts {
            let code = &account.code;
            if code.is_empty()
                || code.len() > Self::MAX_CODE_LEN
                || !code.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(LedgerError::InvalidCode { code: code.clone() });
            }
            if account.name.trim().is_empty() {
                return Err(LedgerError::EmptyName { code: code.clone() });
            }
            if !codes.insert(code.to_ascii_uppercase()) {
                return Err(LedgerError::DuplicateCode { code: code.clone() });
            }
            if !account.kind.fits(account.class) {
                return Err(LedgerError::TypeClassMismatch {
                    account: account.label(),
                    kind: account.kind,
                    class: account.class,
                });
            }
            if let Some(previous) = map.insert(account.id, account) {
                return Err(LedgerError::DuplicateAccountId { id: previous.id });
            }
        }
        for account in map.values() {
            let Some(parent_id) = account.parent else {
                continue;
            };
            let parent = map
                .get(&parent_id)
                .ok_or_else(|| LedgerError::UnknownParent {
                    account: account.label(),
                    parent: parent_id,
                })?;
            if !parent.is_group {
                return Err(LedgerError::ParentNotGroup {
                    account: account.label(),
                    parent: parent.label(),
                });
            }
            if parent.class != account.class {
                return Err(LedgerError::ParentClassMismatch {
                    account: account.label(),
                    class: account.class,
                    parent: parent.label(),
                    parent_class: parent.class,
                });
            }
        }
        // Every parent exists; a walk up that takes more steps than there are accounts
        // has gone round a loop.
        for account in map.values() {
            let mut steps = 0;
            let mut next = account.parent;
            while let Some(id) = next {
                steps += 1;
                if steps > map.len() || id == account.id {
                    return Err(LedgerError::ParentCycle {
                        account: account.label(),
                    });
                }
                next = map.get(&id).and_then(|parent| parent.parent);
            }
        }
        Ok(Self::from_valid(currency, map))
    }

    /// Builds the chart from accounts already known to be valid.
    pub(crate) fn from_valid(currency: Currency, accounts: BTreeMap<AccountId, Account>) -> Chart {
        let mut by_code: Vec<AccountId> = accounts.keys().copied().collect();
        by_code.sort_by(|a, b| {
            let code = |id| {
                accounts
                    .get(id)
                    .map(|account: &Account| account.code.as_str())
            };
            code(a).cmp(&code(b))
        });
        Chart {
            currency,
            accounts,
            by_code,
        }
    }

    /// The currency the company keeps its books in.
    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The account with this id.
    pub fn get(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// The account with this id, or [`LedgerError::NoSuchAccount`].
    pub fn account(&self, id: AccountId) -> Result<&Account, LedgerError> {
        self.get(id)
            .ok_or(LedgerError::NoSuchAccount { account: id })
    }

    /// The account with this code (compared without regard to case).
    pub fn by_code(&self, code: &str) -> Option<&Account> {
        self.accounts
            .values()
            .find(|account| account.code.eq_ignore_ascii_case(code))
    }

    /// All accounts, ordered by code.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.by_code.iter().filter_map(|id| self.accounts.get(id))
    }

    /// The accounts filed directly under `group`, ordered by code.
    pub fn children(&self, group: AccountId) -> impl Iterator<Item = &Account> {
        self.accounts()
            .filter(move |account| account.parent == Some(group))
    }

    /// The groups `id` is filed under, nearest first.
    pub fn ancestors(&self, id: AccountId) -> impl Iterator<Item = &Account> {
        // The chart has no cycles, so the walk ends at a top-level account.
        std::iter::successors(
            self.get(id)
                .and_then(|account| account.parent)
                .and_then(|p| self.get(p)),
            |account| account.parent.and_then(|p| self.get(p)),
        )
    }

    /// The number of accounts.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// Whether the chart has no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(
        id: AccountId,
        code: &str,
        class: AccountClass,
        parent: Option<AccountId>,
    ) -> Account {
        Account {
            id,
            code: code.to_owned(),
            name: format!("Account {code}"),
            class,
            kind: AccountType::General,
            parent,
            currency: None,
            is_group: false,
        }
    }

    fn group(id: AccountId, code: &str, class: AccountClass, parent: Option<AccountId>) -> Account {
        Account {
            is_group: true,
            ..account(id, code, class, parent)
        }
    }

    fn check(accounts: Vec<Account>) -> Result<Chart, String> {
        Chart::new(Currency::USD, accounts).map_err(|e| e.to_string())
    }

    use AccountClass::{Asset, Expense, Income};

    #[test]
    fn a_valid_tree_is_ordered_by_code() {
        let chart = check(vec![
            account(3, "1200", Asset, Some(1)),
            group(1, "1000", Asset, None),
            account(2, "1100", Asset, Some(1)),
        ])
        .unwrap();
        let codes: Vec<_> = chart.accounts().map(|a| a.code.as_str()).collect();
        assert_eq!(codes, ["1000", "1100", "1200"]);
        assert_eq!(chart.children(1).count(), 2);
        assert_eq!(chart.ancestors(3).map(|a| a.id).collect::<Vec<_>>(), [1]);
        assert_eq!(chart.by_code("1100").map(|a| a.id), Some(2));
    }

    #[test]
    fn refuses_broken_trees() {
        let cases = [
            (
                vec![
                    account(1, "1000", Asset, None),
                    account(1, "1100", Asset, None),
                ],
                "two accounts have the id #1; ids must be unique",
            ),
            (
                vec![account(1, "A1", Asset, None), account(2, "a1", Asset, None)],
                "two accounts have the code a1; codes must be unique",
            ),
            (
                vec![account(1, "12.00", Asset, None)],
                "account code \"12.00\" is not valid: use 1 to 20 letters and digits, such as 1200",
            ),
            (
                vec![account(1, "1000", Asset, Some(9))],
                "account 1000 Account 1000 is filed under account #9, which is not in the chart",
            ),
            (
                vec![
                    account(1, "1000", Asset, None),
                    account(2, "1100", Asset, Some(1)),
                ],
                "account 1100 Account 1100 is filed under 1000 Account 1000, which is not a group account",
            ),
            (
                vec![
                    group(1, "4000", Income, None),
                    account(2, "6100", Expense, Some(1)),
                ],
                "account 6100 Account 6100 is an expense but its group 4000 Account 4000 is income",
            ),
            (
                vec![
                    group(1, "1000", Asset, Some(2)),
                    group(2, "1100", Asset, Some(1)),
                ],
                "account 1000 Account 1000 is filed under itself: its groups form a loop",
            ),
            (
                vec![group(1, "1000", Asset, Some(1))],
                "account 1000 Account 1000 is filed under itself: its groups form a loop",
            ),
            (
                vec![Account {
                    kind: AccountType::Receivable,
                    ..account(1, "4000", Income, None)
                }],
                "account 4000 Account 4000 is a receivable account, so it cannot be income",
            ),
            (
                vec![Account {
                    name: " ".to_owned(),
                    ..account(1, "4000", Income, None)
                }],
                "account 4000 has no name",
            ),
        ];
        for (accounts, message) in cases {
            assert_eq!(check(accounts).unwrap_err(), message);
        }
    }
}
