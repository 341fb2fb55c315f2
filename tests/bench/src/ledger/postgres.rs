//! The PostgreSQL side: the same journal entry posted the usual way — one transaction
//! that inserts the header and its four lines, adds them to per-account, per-month
//! balances, and writes an audit row and an outbox row; and the trial balance read
//! from those balances (and, for reference, summed from the lines).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use nexus_kernel::{Clock, SystemClock};
use time::Date;
use tokio::runtime::Runtime;
use tokio_postgres::{Client as PgClient, Statement};

use super::sample;
use crate::error::{Context, Error, Result};
use crate::load::{self, Client, Latency, Run};
use crate::pg::Cluster;

const COMPANY: i64 = 1;
const ACTOR: i64 = 0;

/// A fresh schema per run: what the ledger keeps for a posted entry.
const SCHEMA: &str = "
DROP TABLE IF EXISTS journal_line, journal_entry, account_period, account, audit, outbox;
DROP SEQUENCE IF EXISTS entry_number;
CREATE SEQUENCE entry_number;
CREATE TABLE account (
    id bigint PRIMARY KEY,
    company bigint NOT NULL,
    code text NOT NULL,
    UNIQUE (company, code)
);
CREATE TABLE journal_entry (
    id bigserial PRIMARY KEY,
    company bigint NOT NULL,
    number text NOT NULL,
    date date NOT NULL,
    narration text NOT NULL,
    reference text NOT NULL,
    total_cents bigint NOT NULL,
    status text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (company, number)
);
CREATE INDEX journal_entry_date ON journal_entry (company, date);
CREATE TABLE journal_line (
    id bigserial PRIMARY KEY,
    entry bigint NOT NULL REFERENCES journal_entry,
    company bigint NOT NULL,
    line int NOT NULL,
    account bigint NOT NULL REFERENCES account,
    date date NOT NULL,
    debit_cents bigint NOT NULL,
    credit_cents bigint NOT NULL,
    memo text NOT NULL
);
CREATE INDEX journal_line_entry ON journal_line (entry);
CREATE INDEX journal_line_account ON journal_line (company, account, date);
CREATE TABLE account_period (
    company bigint NOT NULL,
    account bigint NOT NULL,
    period int NOT NULL,
    debit bigint NOT NULL,
    credit bigint NOT NULL,
    PRIMARY KEY (company, account, period)
);
CREATE TABLE audit (
    seq bigserial PRIMARY KEY,
    at timestamptz,
    actor bigint,
    entity text,
    record bigint,
    action text,
    after jsonb
);
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    entity text,
    company bigint,
    record bigint,
    op text,
    at timestamptz
);
";

const INSERT_ENTRY: &str = "INSERT INTO journal_entry \
    (company, number, date, narration, reference, total_cents, status, created_at) \
    VALUES ($1, 'JE-' || lpad(nextval('entry_number')::text, 6, '0'), $2::text::date, $3, '', \
    $4, 'Posted', $5) RETURNING id";
const INSERT_LINES: &str = "INSERT INTO journal_line \
    (entry, company, line, account, date, debit_cents, credit_cents, memo) \
    SELECT $1, $2, l, a, $3::text::date, d, c, '' \
    FROM unnest($4::int[], $5::bigint[], $6::bigint[], $7::bigint[]) AS t(l, a, d, c)";
/// Rows go in account order, so concurrent transactions lock balances in one order.
const ADD_BALANCES: &str = "INSERT INTO account_period (company, account, period, debit, credit) \
    SELECT $1, a, $2, d, c FROM unnest($3::bigint[], $4::bigint[], $5::bigint[]) AS t(a, d, c) \
    ORDER BY a \
    ON CONFLICT (company, account, period) DO UPDATE \
    SET debit = account_period.debit + excluded.debit, \
        credit = account_period.credit + excluded.credit";
const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, entity, record, action, after) \
    VALUES ($1, $2, 'journal_entry', $3, 'post', $4::text::jsonb)";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (entity, company, record, op, at) \
    VALUES ('journal_entry', $1, $2, 'post', $3)";

/// Opening balance and the months' turnover per account, from the maintained
/// balances: $1 company, $2 first month, $3 last month (YYYYMM).
const TB_FROM_BALANCES: &str = "SELECT a.code, \
    coalesce(sum(p.debit - p.credit) FILTER (WHERE p.period < $2), 0)::bigint, \
    coalesce(sum(p.debit) FILTER (WHERE p.period >= $2), 0)::bigint, \
    coalesce(sum(p.credit) FILTER (WHERE p.period >= $2), 0)::bigint \
    FROM account a LEFT JOIN account_period p \
    ON p.company = a.company AND p.account = a.id AND p.period <= $3 \
    WHERE a.company = $1 GROUP BY a.code ORDER BY a.code";
/// The same, summed from every line: $2 first day, $3 last day.
const TB_FROM_LINES: &str = "SELECT a.code, \
    coalesce(sum(l.debit_cents - l.credit_cents) FILTER (WHERE l.date < $2::text::date), 0)::bigint, \
    coalesce(sum(l.debit_cents) FILTER (WHERE l.date >= $2::text::date), 0)::bigint, \
    coalesce(sum(l.credit_cents) FILTER (WHERE l.date >= $2::text::date), 0)::bigint \
    FROM account a LEFT JOIN journal_line l \
    ON l.company = a.company AND l.account = a.id AND l.date <= $3::text::date \
    WHERE a.company = $1 GROUP BY a.code ORDER BY a.code";

/// One account's row of a trial balance: opening, debit, credit (cents).
pub type TbRow = (i64, i64, i64);

/// Creates the schema and the accounts (ids as nexus gave them, by code).
async fn prepare(admin: &PgClient, accounts: &BTreeMap<&'static str, u64>) -> Result<()> {
    admin
        .batch_execute(SCHEMA)
        .await
        .context(|| "creating the ledger schema")?;
    let mut sql = String::from("INSERT INTO account (id, company, code) VALUES ");
    for (i, (code, id)) in accounts.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(sql, "{sep}({id}, {COMPANY}, '{code}')");
    }
    admin
        .batch_execute(&sql)
        .await
        .context(|| "creating the accounts")?;
    admin
        .batch_execute("CHECKPOINT")
        .await
        .context(|| "checkpointing")
}

/// Posts entries dated `day` from `clients` connections for `budget`.
pub fn measure(
    rt: &Runtime,
    cluster: &Cluster,
    accounts: &BTreeMap<&'static str, u64>,
    clients: usize,
    budget: Duration,
    day: Date,
) -> Result<Run> {
    rt.block_on(async {
        let admin = cluster.connect().await?;
        prepare(&admin, accounts).await?;
        let accounts = Arc::new(accounts.clone());
        let mut posters = Vec::with_capacity(clients);
        for task in 0..clients {
            posters.push(Poster::connect(cluster, task, accounts.clone(), day).await?);
        }
        let run = load::drive(posters, budget).await?;
        check_rows(&admin, run.ops).await?;
        Ok(run)
    })
}

/// Every acknowledged transaction left its header, four lines, an audit and an
/// outbox row, and the balances balance.
async fn check_rows(admin: &PgClient, ops: u64) -> Result<()> {
    for (table, per_entry) in [
        ("journal_entry", 1),
        ("journal_line", 4),
        ("audit", 1),
        ("outbox", 1),
    ] {
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .and_then(|row| row.try_get(0))
            .context(|| format!("counting the rows of {table}"))?;
        if u64::try_from(rows).ok() != Some(ops * per_entry) {
            return Err(Error::msg(format!(
                "the clients saw {ops} entries commit, but {table} holds {rows} rows"
            )));
        }
    }
    let row = admin
        .query_one(
            "SELECT coalesce(sum(debit), 0)::bigint, coalesce(sum(credit), 0)::bigint \
             FROM account_period",
            &[],
        )
        .await
        .context(|| "summing the balances")?;
    let (debit, credit): (i64, i64) = (
        row.try_get(0).context(|| "reading debits")?,
        row.try_get(1).context(|| "reading credits")?,
    );
    if debit != credit {
        return Err(Error::msg(format!(
            "postgres's balances do not balance: debits {debit}, credits {credit}"
        )));
    }
    Ok(())
}

/// One client: its own connection and prepared statements.
struct Poster {
    client: PgClient,
    entry: Statement,
    lines: Statement,
    balances: Statement,
    audit: Statement,
    outbox: Statement,
    accounts: Arc<BTreeMap<&'static str, u64>>,
    task: usize,
    day: Date,
}

impl Poster {
    async fn connect(
        cluster: &Cluster,
        task: usize,
        accounts: Arc<BTreeMap<&'static str, u64>>,
        day: Date,
    ) -> Result<Poster> {
        let client = cluster.connect().await?;
        let mut statements = Vec::with_capacity(5);
        for sql in [
            INSERT_ENTRY,
            INSERT_LINES,
            ADD_BALANCES,
            INSERT_AUDIT,
            INSERT_OUTBOX,
        ] {
            statements.push(
                client
                    .prepare(sql)
                    .await
                    .context(|| format!("preparing {sql}"))?,
            );
        }
        let mut s = statements.into_iter();
        let mut next = || s.next().ok_or_else(|| Error::msg("a statement is missing"));
        Ok(Poster {
            entry: next()?,
            lines: next()?,
            balances: next()?,
            audit: next()?,
            outbox: next()?,
            client,
            accounts,
            task,
            day,
        })
    }
}

impl Client for Poster {
    async fn op(&mut self, seq: u64) -> Result<()> {
        let e = sample::entry(self.task, seq, self.day);
        let date = e.date.to_string();
        let period = period_of(e.date);
        let mut numbers = Vec::with_capacity(4);
        let mut accounts = Vec::with_capacity(4);
        let mut debits = Vec::with_capacity(4);
        let mut credits = Vec::with_capacity(4);
        for (i, l) in e.lines.iter().enumerate() {
            let id = self
                .accounts
                .get(l.code)
                .ok_or_else(|| Error::msg(format!("no account {}", l.code)))?;
            numbers.push(i as i32 + 1);
            accounts.push(*id as i64);
            debits.push(l.debit);
            credits.push(l.credit);
        }
        let total: i64 = debits.iter().sum();
        let at = SystemTime::from(SystemClock.now());
        let after = serde_json::json!({
            "date": date,
            "narration": e.narration,
            "total": total,
            "lines": e.lines.iter().map(|l| serde_json::json!({
                "account": l.code, "debit": l.debit, "credit": l.credit,
            })).collect::<Vec<_>>(),
        })
        .to_string();
        let task = self.task;
        let what = || format!("client {task}: entry #{seq}");
        let tx = self.client.transaction().await.context(what)?;
        let id: i64 = tx
            .query_one(&self.entry, &[&COMPANY, &date, &e.narration, &total, &at])
            .await
            .and_then(|row| row.try_get(0))
            .context(what)?;
        tx.execute(
            &self.lines,
            &[&id, &COMPANY, &date, &numbers, &accounts, &debits, &credits],
        )
        .await
        .context(what)?;
        tx.execute(
            &self.balances,
            &[&COMPANY, &period, &accounts, &debits, &credits],
        )
        .await
        .context(what)?;
        tx.execute(&self.audit, &[&at, &ACTOR, &id, &after])
            .await
            .context(what)?;
        tx.execute(&self.outbox, &[&COMPANY, &id, &at])
            .await
            .context(what)?;
        tx.commit().await.context(what)
    }
}

/// `YYYYMM`.
fn period_of(date: Date) -> i32 {
    date.year() * 100 + i32::from(u8::from(date.month()))
}

/// Loads the same `entries` entries the nexus side posted for the trial balance
/// ([`sample::entry`] of client 0, dated [`sample::load_date`]), in large batches,
/// then derives the balances from the lines; returns how long it took.
pub fn load(
    rt: &Runtime,
    cluster: &Cluster,
    accounts: &BTreeMap<&'static str, u64>,
    entries: u64,
    year: i32,
) -> Result<Duration> {
    const BATCH: u64 = 5_000;
    rt.block_on(async {
        let admin = cluster.connect().await?;
        prepare(&admin, accounts).await?;
        let started = Instant::now();
        let mut first = 0;
        while first < entries {
            crate::interrupt::check()?;
            let last = (first + BATCH).min(entries);
            let (headers, lines) = load_batch(accounts, first..last, year)?;
            admin
                .batch_execute(&format!("BEGIN; {headers}; {lines}; COMMIT"))
                .await
                .context(|| format!("loading entries {first}..{last}"))?;
            first = last;
        }
        admin
            .batch_execute(
                "INSERT INTO account_period (company, account, period, debit, credit) \
                 SELECT company, account, \
                 (extract(year FROM date) * 100 + extract(month FROM date))::int, \
                 sum(debit_cents), sum(credit_cents) \
                 FROM journal_line GROUP BY 1, 2, 3; \
                 SELECT setval('entry_number', (SELECT max(id) FROM journal_entry))",
            )
            .await
            .context(|| "deriving the balances")?;
        // On its own: VACUUM cannot run in the implicit transaction of a multi-statement
        // query.
        admin
            .batch_execute("VACUUM ANALYZE")
            .await
            .context(|| "vacuuming")?;
        Ok(started.elapsed())
    })
}

/// The INSERT statements for load entries `range`: headers, then lines.
fn load_batch(
    accounts: &BTreeMap<&'static str, u64>,
    range: std::ops::Range<u64>,
    year: i32,
) -> Result<(String, String)> {
    let mut headers = String::from(
        "INSERT INTO journal_entry (id, company, number, date, narration, reference, \
         total_cents, status, created_at) VALUES ",
    );
    let mut lines = String::from(
        "INSERT INTO journal_line (entry, company, line, account, date, debit_cents, \
         credit_cents, memo) VALUES ",
    );
    for (i, seq) in range.enumerate() {
        let e = sample::entry(0, seq, sample::load_date(year, seq));
        let id = seq + 1;
        let total: i64 = e.lines.iter().map(|l| l.debit).sum();
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            headers,
            "{sep}({id}, {COMPANY}, 'JE-{id:06}', '{}', '{}', '', {total}, 'Posted', now())",
            e.date, e.narration
        );
        for (n, l) in e.lines.iter().enumerate() {
            let account = accounts
                .get(l.code)
                .ok_or_else(|| Error::msg(format!("no account {}", l.code)))?;
            let sep = if i == 0 && n == 0 { "" } else { "," };
            let _ = write!(
                lines,
                "{sep}({id}, {COMPANY}, {}, {account}, '{}', {}, {}, '')",
                n + 1,
                e.date,
                l.debit,
                l.credit
            );
        }
    }
    Ok((headers, lines))
}

/// How to read the trial balance.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// From the maintained per-account, per-month balances.
    Balances,
    /// Summed from every journal line.
    Lines,
}

/// Reads the trial balance of `from..=to` `runs` times; the latency of each read and
/// the last result (account code → opening, debit, credit).
pub fn time_trial_balance(
    rt: &Runtime,
    cluster: &Cluster,
    source: Source,
    (from, to): (Date, Date),
    runs: usize,
) -> Result<(Latency, BTreeMap<String, TbRow>)> {
    rt.block_on(async {
        let client = cluster.connect().await?;
        let (sql, months, days) = match source {
            Source::Balances => (TB_FROM_BALANCES, (period_of(from), period_of(to)), None),
            Source::Lines => (
                TB_FROM_LINES,
                (0, 0),
                Some((from.to_string(), to.to_string())),
            ),
        };
        let statement = client
            .prepare(sql)
            .await
            .context(|| "preparing the trial balance")?;
        let mut samples = Vec::with_capacity(runs);
        let mut last_rows = BTreeMap::new();
        for _ in 0..runs {
            let began = Instant::now();
            let rows = match &days {
                None => {
                    client
                        .query(&statement, &[&COMPANY, &months.0, &months.1])
                        .await
                }
                Some((first, last)) => client.query(&statement, &[&COMPANY, first, last]).await,
            }
            .context(|| "reading the trial balance")?;
            let mut result = BTreeMap::new();
            for row in rows {
                let code: String = row.try_get(0).context(|| "reading a code")?;
                let opening: i64 = row.try_get(1).context(|| "reading an opening")?;
                let debit: i64 = row.try_get(2).context(|| "reading a debit")?;
                let credit: i64 = row.try_get(3).context(|| "reading a credit")?;
                result.insert(code, (opening, debit, credit));
            }
            samples.push(began.elapsed());
            last_rows = result;
        }
        Ok((load::latency_of(samples), last_rows))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_are_year_and_month() {
        assert_eq!(period_of(date!(2025 - 03 - 31)), 202503);
        assert_eq!(period_of(date!(2025 - 12 - 01)), 202512);
    }

    #[test]
    fn load_batches_are_one_statement_each() {
        let accounts: BTreeMap<&'static str, u64> =
            sample::codes().into_iter().zip(1u64..).collect();
        let (headers, lines) = load_batch(&accounts, 10..13, 2025).unwrap();
        assert_eq!(headers.matches("'Posted'").count(), 3);
        assert_eq!(lines.matches("''),").count() + 1, 12);
        assert!(headers.contains("(11, 1, 'JE-000011'"), "{headers}");
        assert!(load_batch(&BTreeMap::new(), 0..1, 2025).is_err());
    }
}
