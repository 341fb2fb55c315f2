//! The ledger's jobs: checking that the maintained totals (what every report reads)
//! still agree with the journal lines they were built from. Weekly by default, and on
//! demand from the trial balance page.

use std::collections::BTreeMap;

use nexus_kernel::{
    JobContext, JobError, JobFuture, JobHandler, JobSpec, Kernel, ListQuery, Principal, Row,
    ScheduleDef,
};
use serde_json::{Value as J, json};

use crate::entities::{JOURNAL_LINE, JournalLineRecord};
use crate::{Money, PeriodKey};

/// The job kind.
pub const VERIFY_TOTALS: &str = "ledger.verify_totals";

/// The checker, as the ledger module declares it.
pub static VERIFY: VerifyTotals = VerifyTotals;

/// Its schedule: once a week.
pub static SCHEDULES: &[ScheduleDef] = &[(
    "ledger-verify-totals",
    VERIFY_TOTALS,
    "Check the ledger's totals against its journal lines",
    7 * 24 * 3600,
)];

/// A check of the principal's company, as a person asks for it.
pub fn job_for_company() -> JobSpec {
    JobSpec::new(
        VERIFY_TOTALS,
        "Check the ledger's totals against its journal lines".to_owned(),
        J::Null,
    )
}

pub struct VerifyTotals;

impl JobHandler for VerifyTotals {
    fn kind(&self) -> &'static str {
        VERIFY_TOTALS
    }

    fn run(&self, ctx: JobContext) -> JobFuture<'_> {
        Box::pin(async move {
            // A schedule runs for the box: every company. A person's job: theirs.
            let companies: Vec<u64> = if ctx.who.company == 0 {
                ctx.kernel
                    .companies()?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect()
            } else {
                vec![ctx.who.company]
            };
            let mut lines = 0u64;
            let total = companies.len() as u64;
            for (i, company) in companies.into_iter().enumerate() {
                let who = if ctx.who.company == 0 {
                    Principal::system(company)
                } else {
                    ctx.who.clone()
                };
                lines += verify(&ctx.kernel, &who)?;
                ctx.progress(i as u64 + 1, total).await?;
            }
            Ok(json!({ "companies": total, "lines": lines, "agree": true }))
        })
    }
}

/// Checks one company; returns how many lines it summed, or fails naming the first
/// account and month whose totals differ from its lines.
fn verify(kernel: &Kernel, who: &Principal) -> Result<u64, JobError> {
    let chart = crate::books::chart(kernel, who)?;
    let totals = crate::books::totals(kernel, who, chart.currency())?;
    let all = ListQuery {
        limit: usize::MAX,
        ..Default::default()
    };
    let rows = Row::<JournalLineRecord>::all(&kernel.list(who, &JOURNAL_LINE, &all)?.rows)?;
    let mut from_lines: BTreeMap<(u64, PeriodKey), (i64, i64)> = BTreeMap::new();
    for l in &rows {
        let period = PeriodKey::of(l.date).map_err(|e| JobError::Fail(e.to_string()))?;
        let sum = from_lines.entry((l.account, period)).or_default();
        sum.0 = sum.0.saturating_add(l.debit.unwrap_or(0));
        sum.1 = sum.1.saturating_add(l.credit.unwrap_or(0));
    }
    let mut from_totals: BTreeMap<(u64, PeriodKey), (i64, i64)> = BTreeMap::new();
    for (account, period, t) in totals.iter() {
        let t = t.all().map_err(|e| JobError::Fail(e.to_string()))?;
        if (t.debit, t.credit) != (0, 0) {
            from_totals.insert((account, period), (t.debit, t.credit));
        }
    }
    if from_lines != from_totals {
        let money = |m: i64| Money::new(m, chart.currency()).decimal();
        let keys: std::collections::BTreeSet<_> = from_lines
            .keys()
            .chain(from_totals.keys())
            .copied()
            .collect();
        for key in keys {
            let (a, b) = (
                from_lines.get(&key).copied().unwrap_or_default(),
                from_totals.get(&key).copied().unwrap_or_default(),
            );
            if a != b {
                let account = chart
                    .get(key.0)
                    .map_or_else(|| format!("#{}", key.0), |acc| acc.label());
                return Err(JobError::Fail(format!(
                    "company #{}: the totals of {account} in {} (debit {}, credit {}) \
                     differ from its journal lines (debit {}, credit {}); the reports of \
                     that month are wrong: tell your vendor",
                    who.company,
                    key.1,
                    money(b.0),
                    money(b.1),
                    money(a.0),
                    money(a.1)
                )));
            }
        }
    }
    Ok(rows.len() as u64)
}
