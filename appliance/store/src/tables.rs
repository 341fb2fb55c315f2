//! The one registry of every table in the store.
//!
//! Every table is a byte-keyed, byte-valued redb table. Keys are built by the owning
//! service with order-preserving encodings (big-endian integers), so range scans follow
//! the order a list wants. Adding a table means adding a variant here, nowhere else.

use redb::TableDefinition;

/// A table of the store. The owner named in each variant's doc is the only service
/// that writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    /// Counters and chain heads (`next_id`, the audit head, the change-log head).
    /// Owner: kernel.
    Meta,
    /// Records of every entity: `entity code u16 | company u64 | id u64` → encoded record.
    /// Owner: kernel (record service).
    Records,
    /// Secondary and unique indexes: `entity | company | field | sortable value | id` → `id`.
    /// Owner: kernel (record service).
    Index,
    /// Per-(entity, company) record counts, so an unfiltered list knows its size.
    /// Owner: kernel (record service).
    Counts,
    /// The event log, which is also the audit trail: `seq u64` → encoded, hash-chained
    /// event. Owner: the store's writer assigns the sequence; the kernel (events)
    /// encodes the payload.
    ChangeLog,
    /// Retired (format 1 kept audit entries here, apart from the change log). Never
    /// written; kept because the write-ahead log names tables by position.
    Audit,
    /// Password hashes: `user id u64` → argon2id PHC string. Owner: kernel (auth).
    Credentials,
    /// Login sessions: `blake3(token)` → encoded session. Owner: kernel (auth).
    Sessions,
    /// Record history: `entity | company | id | event seq` → empty, so a record's events
    /// are found without scanning the whole log. Owner: kernel (events).
    History,
    /// Positions of tailers whose derived state lives in this store: `tailer name` →
    /// last applied event sequence, written in the same command as that state.
    /// Owner: kernel (tail).
    Cursors,
    /// The store's own bookkeeping: `id` → this data file's random id (its write-ahead
    /// log must carry the same), `wal_lsn` → the last logged batch this file holds.
    /// Owner: the store's writer.
    Store,
    /// Modules' own state (the ledger's per-account, per-month totals, counters, open
    /// items): `module code u16 | the module's key` → the module's bytes. Owner: the
    /// kernel's module write path; each module reaches only its own prefix.
    ModuleState,
    /// API requests made idempotent by an `Idempotency-Key`: `company u64 | user u64 |
    /// key` → the request's fingerprint and, once answered, its response. Owner:
    /// kernel (idempotency).
    Idempotency,
    /// Durable jobs and schedules: `j | id` → job, `q | run after | id` → queued,
    /// `s | name` → schedule, `n` → last job id. Owner: kernel (jobs).
    Jobs,
    /// The transparency log's Merkle tree over the event log (RFC 6962): `'n' | level
    /// u8 | index u64` → the 32-byte root of every complete subtree of two leaves or
    /// more (a leaf's hash is that of its change-log entry, not stored twice), written
    /// with the event that closes it; `'c' | size u64` → a signed checkpoint the box
    /// published. Owner: kernel (events, tlog).
    Merkle,
    /// API tokens: `blake3(secret)` → encoded token (user, company, scopes, expiry;
    /// never the secret). Owner: kernel (tokens).
    Tokens,
    /// Second factors: `user id u64` → encoded TOTP enrolment (secret, last step used,
    /// hashes of the unused recovery codes). Owner: kernel (mfa).
    Mfa,
    /// Blob references: `sha256 [32]` → how many document versions name that blob
    /// (u64), changed with the versions; absent when none does. Owner: kernel
    /// (documents).
    Blobs,
}

impl Table {
    /// Every table, so opening a store can create all of them up front.
    ///
    /// The write-ahead log names tables by their position here: append new tables at
    /// the end, never reorder (a test pins the order).
    pub const ALL: [Table; 18] = [
        Table::Meta,
        Table::Records,
        Table::Index,
        Table::Counts,
        Table::ChangeLog,
        Table::Audit,
        Table::Credentials,
        Table::Sessions,
        Table::History,
        Table::Cursors,
        Table::Store,
        Table::ModuleState,
        Table::Idempotency,
        Table::Jobs,
        Table::Merkle,
        Table::Tokens,
        Table::Mfa,
        Table::Blobs,
    ];

    /// Position in [`Table::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The redb table name. Never rename one: it is the on-disk name.
    pub const fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Records => "records",
            Table::Index => "index",
            Table::Counts => "counts",
            Table::ChangeLog => "changelog",
            Table::Audit => "audit",
            Table::Credentials => "credentials",
            Table::Sessions => "sessions",
            Table::History => "history",
            Table::Cursors => "cursors",
            Table::Store => "store",
            Table::ModuleState => "module_state",
            Table::Idempotency => "idempotency",
            Table::Jobs => "jobs",
            Table::Merkle => "merkle",
            Table::Tokens => "tokens",
            Table::Mfa => "mfa",
            Table::Blobs => "blobs",
        }
    }

    pub(crate) const fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn all_lists_every_table_in_declaration_order() {
        for (i, t) in Table::ALL.iter().enumerate() {
            assert_eq!(t.index(), i, "{}", t.name());
        }
    }

    /// Logs written by an older build must replay into the same tables.
    #[test]
    fn the_order_of_the_registry_is_fixed() {
        let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "meta",
                "records",
                "index",
                "counts",
                "changelog",
                "audit",
                "credentials",
                "sessions",
                "history",
                "cursors",
                "store",
                "module_state",
                "idempotency",
                "jobs",
                "merkle",
                "tokens",
                "mfa",
                "blobs"
            ]
        );
    }
}
