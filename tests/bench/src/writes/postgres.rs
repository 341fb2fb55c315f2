//! The PostgreSQL side of `writes`: the same work as a nexus create done the usual way —
//! one transaction that inserts the customer, an audit row and an outbox row.

use std::time::{Duration, SystemTime};

use nexus_kernel::{Clock, SystemClock};
use tokio::runtime::Runtime;
use tokio_postgres::{Client as PgClient, Statement};

use super::sample;
use crate::error::{Context, Error, Result};
use crate::load::{self, Client, Run};
use crate::pg::Cluster;

/// The company every customer belongs to, and the acting user (the system, as for
/// nexus).
const COMPANY: i64 = 1;
const ACTOR: i64 = 0;

/// A fresh schema per concurrency level: what the kernel keeps for a customer create.
/// The four secondary indexes mirror the kernel's sort indexes on the fields the
/// benchmark fills in.
const SCHEMA: &str = "
DROP TABLE IF EXISTS customer, audit, outbox;
CREATE TABLE customer (
    id bigserial PRIMARY KEY,
    company bigint NOT NULL,
    version bigint NOT NULL,
    name text NOT NULL,
    email text,
    city text,
    status text NOT NULL,
    credit_limit_cents bigint,
    created_at timestamptz NOT NULL,
    UNIQUE (company, name)
);
CREATE INDEX customer_email ON customer (company, email);
CREATE INDEX customer_city ON customer (company, city);
CREATE INDEX customer_status ON customer (company, status);
CREATE INDEX customer_credit_limit ON customer (company, credit_limit_cents);
CREATE TABLE audit (
    seq bigserial PRIMARY KEY,
    at timestamptz,
    actor bigint,
    entity text,
    record bigint,
    action text,
    after jsonb,
    prev_hash text,
    hash text
);
CREATE TABLE outbox (
    seq bigserial PRIMARY KEY,
    entity text,
    company bigint,
    record bigint,
    op text,
    version bigint,
    at timestamptz
);
";

const INSERT_CUSTOMER: &str = "INSERT INTO customer \
    (company, version, name, email, city, status, credit_limit_cents, created_at) \
    VALUES ($1, 1, $2, $3, $4, $5, $6, $7) RETURNING id";
/// Not hash-chained: see the notes printed with the results.
const INSERT_AUDIT: &str = "INSERT INTO audit (at, actor, entity, record, action, after) \
    VALUES ($1, $2, 'customer', $3, 'create', $4::text::jsonb)";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (entity, company, record, op, version, at) \
    VALUES ('customer', $1, $2, 'create', 1, $3)";
/// `budget`, on a fresh schema.
/// Runs the customer/audit/outbox transaction from `clients` connections for
/// `budget`, on a fresh schema.
pub fn measure(rt: &Runtime, cluster: &Cluster, clients: usize, budget: Duration) -> Result<Run> {
    rt.block_on(async {
        let admin = cluster.connect().await?;
        admin
            .batch_execute(SCHEMA)
            .await
            .context(|| "creating the schema")?;
        // Start from a clean slate, as nexus does with its fresh store.
        admin
            .batch_execute("CHECKPOINT")
            .await
            .context(|| "checkpointing")?;
        let mut inserters = Vec::with_capacity(clients);
        for task in 0..clients {
            inserters.push(Inserter::connect(cluster, task).await?);
        }
        let run = load::drive(inserters, budget).await?;
        check_rows(&admin, run.ops).await?;
        Ok(run)
    })
}

/// Every acknowledged transaction must have left exactly one row in each table.
async fn check_rows(admin: &PgClient, ops: u64) -> Result<()> {
    for table in ["customer", "audit", "outbox"] {
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .and_then(|row| row.try_get(0))
            .context(|| format!("counting the rows of {table}"))?;
        if u64::try_from(rows).ok() != Some(ops) {
            return Err(Error::msg(format!(
                "the clients saw {ops} transactions commit, but {table} holds {rows} rows"
            )));
        }
    }
    Ok(())
}

/// One client: its own connection and prepared statements.
struct Inserter {
    client: PgClient,
    customer: Statement,
    audit: Statement,
    outbox: Statement,
    task: usize,
}

impl Inserter {
    async fn connect(cluster: &Cluster, task: usize) -> Result<Inserter> {
        let client = cluster.connect().await?;
        let prepare = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .prepare(sql)
                    .await
                    .context(|| format!("preparing {sql}"))
            }
        };
        let customer = prepare(INSERT_CUSTOMER).await?;
        let audit = prepare(INSERT_AUDIT).await?;
        let outbox = prepare(INSERT_OUTBOX).await?;
        Ok(Inserter {
            client,
            customer,
            audit,
            outbox,
            task,
        })
    }
}

impl Client for Inserter {
    async fn op(&mut self, seq: u64) -> Result<()> {
        let name = sample::name(self.task, seq);
        let at = SystemTime::from(SystemClock.now());
        let after = serde_json::json!({
            "name": name,
            "status": sample::STATUS,
            "email": sample::EMAIL,
            "city": sample::CITY,
            "credit_limit": sample::CREDIT_LIMIT,
        })
        .to_string();
        let task = self.task;
        let what = || format!("client {task}: transaction #{seq}");
        let tx = self.client.transaction().await.context(what)?;
        let id: i64 = tx
            .query_one(
                &self.customer,
                &[
                    &COMPANY,
                    &name,
                    &sample::EMAIL,
                    &sample::CITY,
                    &sample::STATUS,
                    &sample::CREDIT_LIMIT_CENTS,
                    &at,
                ],
            )
            .await
            .and_then(|row| row.try_get(0))
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
