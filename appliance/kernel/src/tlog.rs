//! The transparency log: the event log as the leaves of an RFC 6962 Merkle tree
//! (leaf `i` is the stored bytes of event `i + 1`), kept in [`Table::Merkle`] in the
//! same transaction as each event, so that every committed change is in the tree the
//! moment it is visible. From it the box proves, to someone who trusts only its
//! signing key, that an entry is in a signed checkpoint (inclusion) and that a later
//! checkpoint extends an earlier one (consistency). Signing needs the box's key, which
//! the server holds; the kernel keeps the tree and the checkpoints it was given.

use nexus_store::{Reader, Table, Txn, decode_u64, u64_key};
use nexus_tlog::merkle::{self, Hash, Nodes, ProofError};

use crate::Kernel;
use crate::error::KernelError;

/// Set only by `nexus-bench tlog` to measure the write path without the tree (see
/// [`crate::bench_support`]); a tree left behind catches up on the next write.
pub(crate) static SKIP_FOR_BENCHMARK: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// How many old events one catch-up command adds to the tree.
const CATCH_UP_BATCH: u64 = 5_000;

fn node_key(level: u8, index: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(10);
    k.push(b'n');
    k.push(level);
    k.extend(index.to_be_bytes());
    k
}

fn checkpoint_key(size: u64) -> Vec<u8> {
    let mut k = vec![b'c'];
    k.extend(size.to_be_bytes());
    k
}

fn missing(level: u8, index: u64) -> KernelError {
    KernelError::Internal(format!(
        "the transparency log lacks its node {level}/{index}: the store is damaged"
    ))
}

impl From<ProofError> for KernelError {
    fn from(e: ProofError) -> KernelError {
        KernelError::invalid("size", e.to_string())
    }
}

/// The tree as a store holds it. Leaves are not stored twice: leaf `i` is the hash of
/// event `i + 1`'s bytes in the change log; inner nodes are in `Table::Merkle`.
struct StoredTree<'r, R: Reader>(&'r R);

impl<R: Reader> Nodes for StoredTree<'_, R> {
    type Error = KernelError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, KernelError> {
        if level == 0 {
            return self
                .0
                .get(Table::ChangeLog, &u64_key(index + 1))?
                .map(|bytes| merkle::leaf_hash(&bytes))
                .ok_or_else(|| missing(0, index));
        }
        self.0
            .get(Table::Merkle, &node_key(level, index))?
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| missing(level, index))
    }
}

fn has_pair(r: &impl Reader, k: u64) -> Result<bool, KernelError> {
    Ok(r.get(Table::Merkle, &node_key(1, k))?.is_some())
}

/// How many of the first `head` events the tree holds. Only an odd leaf index closes
/// nodes (its pair at level 1, and above), so the tree holds every event up to `head`
/// exactly when the pair of the last odd index below `head` is there; otherwise the
/// pairs present are a prefix, found by bisection.
fn size_in(r: &impl Reader, head: u64) -> Result<u64, KernelError> {
    if head < 2 {
        return Ok(head);
    }
    let pairs = head / 2;
    if has_pair(r, pairs - 1)? {
        return Ok(head);
    }
    // The first missing pair in 0..pairs.
    let (mut lo, mut hi) = (0u64, pairs - 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if has_pair(r, mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    // Pairs 0..lo are there: leaves 0..2·lo, and the even leaf 2·lo needs nothing.
    Ok(head.min(2 * lo + 1))
}

/// Adds event `seq`'s stored bytes to the tree, in the command that appends it. A tree
/// behind the log (a store from before the tree existed, whose catch-up has not
/// finished) first takes the events it lacks.
pub(crate) fn append(txn: &mut Txn<'_, '_>, seq: u64, bytes: &[u8]) -> Result<(), KernelError> {
    if SKIP_FOR_BENCHMARK.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    let held = size_in(txn, seq - 1)?;
    for earlier in held + 1..seq {
        let old = txn
            .get(Table::ChangeLog, &u64_key(earlier))?
            .ok_or_else(|| missing(0, earlier - 1))?;
        add_leaf(txn, earlier, &old)?;
    }
    add_leaf(txn, seq, bytes)
}

/// Writes the nodes leaf `seq - 1` closes (none for an even index).
fn add_leaf(txn: &mut Txn<'_, '_>, seq: u64, bytes: &[u8]) -> Result<(), KernelError> {
    let index = seq - 1;
    if index.is_multiple_of(2) {
        return Ok(());
    }
    let made = merkle::append_nodes(index, merkle::leaf_hash(bytes), |level, i| {
        StoredTree(&*txn).node(level, i)
    })?;
    for (level, i, hash) in made.into_iter().filter(|(level, _, _)| *level > 0) {
        txn.put(Table::Merkle, node_key(level, i), hash.to_vec());
    }
    Ok(())
}

/// The last sequence number of the change log in this snapshot.
fn log_end(read: &nexus_store::ReadTxn) -> Result<u64, KernelError> {
    let mut end = 0;
    read.scan(Table::ChangeLog, .., true, |k, _| {
        end = decode_u64(k).unwrap_or(0);
        std::ops::ControlFlow::Break(())
    })?;
    Ok(end)
}

/// What the tree says at a size: its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

impl Kernel {
    /// Adds to the tree the events written before it existed (a store from an earlier
    /// release), a batch per command; returns how many. Boot runs it before serving.
    pub async fn catch_up_transparency_log(&self) -> Result<u64, KernelError> {
        let mut added = 0;
        loop {
            let (size, head) = {
                let read = self.store().read()?;
                let head = log_end(&read)?;
                (size_in(&read, head)?, head)
            };
            if size >= head {
                return Ok(added);
            }
            let upto = head.min(size + CATCH_UP_BATCH);
            self.store()
                .write(move |txn| {
                    let from = size_in(txn, upto)?;
                    for seq in from + 1..=upto {
                        let bytes = txn
                            .get(Table::ChangeLog, &u64_key(seq))?
                            .ok_or_else(|| missing(0, seq - 1))?;
                        add_leaf(txn, seq, &bytes)?;
                    }
                    Ok::<_, KernelError>(())
                })
                .await?;
            added += upto - size;
        }
    }

    /// The tree's current size and root (every committed event is in it).
    pub fn tree_head(&self) -> Result<TreeHead, KernelError> {
        let read = self.store().read()?;
        let size = size_in(&read, log_end(&read)?)?;
        Ok(TreeHead {
            size,
            root: merkle::root(&StoredTree(&read), size)?,
        })
    }

    /// The root of the tree when it held `size` entries.
    pub fn tree_root(&self, size: u64) -> Result<Hash, KernelError> {
        let read = self.store().read()?;
        self.check_size(&read, size)?;
        merkle::root(&StoredTree(&read), size)
    }

    fn check_size(&self, read: &nexus_store::ReadTxn, size: u64) -> Result<(), KernelError> {
        let now = size_in(read, log_end(read)?)?;
        if size > now {
            return Err(KernelError::invalid(
                "size",
                format!("the log holds {now} entries, not {size}"),
            ));
        }
        Ok(())
    }

    /// The proof that event `seq` is in the tree of `size` entries.
    pub fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<Hash>, KernelError> {
        let read = self.store().read()?;
        self.check_size(&read, size)?;
        if seq == 0 || seq > size {
            return Err(KernelError::invalid(
                "seq",
                format!("entry {seq} is not in a tree of {size} entries"),
            ));
        }
        merkle::inclusion_proof(&StoredTree(&read), seq - 1, size)
    }

    /// The proof that the tree of `from` entries is a prefix of the tree of `to`.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, KernelError> {
        let read = self.store().read()?;
        self.check_size(&read, to)?;
        merkle::consistency_proof(&StoredTree(&read), from, to)
    }

    /// The stored bytes of events `from..=to` (the tree's leaves), in order.
    pub fn log_leaves(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, KernelError> {
        let read = self.store().read()?;
        let mut out = Vec::new();
        let (lo, hi) = (u64_key(from.max(1)), u64_key(to));
        if from.max(1) > to {
            return Ok(out);
        }
        read.scan(Table::ChangeLog, &lo[..]..=&hi[..], false, |k, v| {
            if let Some(seq) = decode_u64(k) {
                out.push((seq, v.to_vec()));
            }
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Keeps a checkpoint the box signed (a C2SP signed note) for the tree of `size`.
    pub async fn keep_checkpoint(&self, size: u64, note: String) -> Result<(), KernelError> {
        self.store()
            .write(move |txn| {
                txn.put(Table::Merkle, checkpoint_key(size), note.into_bytes());
                Ok::<_, KernelError>(())
            })
            .await
    }

    /// Whether the box kept a checkpoint of the tree of `size`.
    pub fn has_checkpoint(&self, size: u64) -> Result<bool, KernelError> {
        Ok(self
            .store()
            .read()?
            .get(Table::Merkle, &checkpoint_key(size))?
            .is_some())
    }

    /// The checkpoints the box published, oldest first: (size, signed note).
    pub fn checkpoints(&self) -> Result<Vec<(u64, String)>, KernelError> {
        let read = self.store().read()?;
        read.scan_prefix(Table::Merkle, b"c")?
            .into_iter()
            .map(|(k, v)| {
                let size = k.get(1..).and_then(decode_u64).unwrap_or(0);
                let note = String::from_utf8(v)
                    .map_err(|_| KernelError::Internal("a stored checkpoint is damaged".into()))?;
                Ok((size, note))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use nexus_tlog::MemoryTree;
    use nexus_tlog::merkle::{leaf_hash, verify_consistency, verify_inclusion};

    use super::*;
    use crate::test_entities::CUSTOMER;
    use crate::tests::{fixture, form};

    async fn customers(f: &crate::tests::Fixture, n: usize) {
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let mut writes = Vec::new();
        for _ in 0..n {
            let i = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (k, who) = (f.kernel.clone(), f.admin.clone());
            writes.push(tokio::spawn(async move {
                k.create(
                    &who,
                    &CUSTOMER,
                    form(&[("name", &format!("Customer {i}")), ("status", "Lead")]),
                )
                .await
            }));
        }
        for w in writes {
            w.await.expect("join").expect("create");
        }
    }

    fn rebuilt(f: &crate::tests::Fixture) -> MemoryTree {
        let mut t = MemoryTree::new();
        for (_, bytes) in f.kernel.log_leaves(1, u64::MAX).expect("leaves") {
            t.push(leaf_hash(&bytes));
        }
        t
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_committed_event_is_a_leaf_with_proofs() {
        let f = fixture().await;
        customers(&f, 10).await;
        let early = f.kernel.tree_head().expect("head");
        // Concurrent writes share batches: the tree follows the log through them.
        customers(&f, 60).await;
        let head = f.kernel.tree_head().expect("head");
        assert_eq!(head.size, f.kernel.log_head());
        let t = rebuilt(&f);
        assert_eq!(t.root_at(head.size).expect("root"), head.root);
        assert_eq!(f.kernel.tree_root(early.size).expect("early"), early.root);
        for (seq, bytes) in f.kernel.log_leaves(1, head.size).expect("leaves") {
            let proof = f.kernel.inclusion_proof(seq, head.size).expect("proof");
            verify_inclusion(&leaf_hash(&bytes), seq - 1, head.size, &proof, &head.root)
                .expect("inclusion");
        }
        let proof = f
            .kernel
            .consistency_proof(early.size, head.size)
            .expect("consistency");
        verify_consistency(early.size, head.size, &early.root, &head.root, &proof)
            .expect("consistent");
        // Sizes beyond the log are refused with the reason.
        let e = f
            .kernel
            .inclusion_proof(1, head.size + 1)
            .expect_err("too big");
        assert!(e.to_string().contains("not") || matches!(e, KernelError::Invalid(_)));
        assert!(f.kernel.inclusion_proof(0, head.size).is_err());
        assert!(f.kernel.consistency_proof(head.size, early.size).is_err());
    }

    /// Leaves the store as an earlier release left it: events, and no tree.
    async fn strip_tree(f: &crate::tests::Fixture) {
        f.kernel
            .store()
            .write(|txn| {
                for (k, _) in txn.scan_prefix(Table::Merkle, b"n")? {
                    txn.delete(Table::Merkle, k);
                }
                Ok::<_, KernelError>(())
            })
            .await
            .expect("strip");
    }

    #[tokio::test]
    async fn a_store_from_before_the_tree_catches_up() {
        let f = fixture().await;
        customers(&f, 12).await;
        let head = f.kernel.tree_head().expect("head");
        strip_tree(&f).await;
        // Only the first leaf, which closes no node, is still "in" it.
        assert_eq!(f.kernel.tree_head().expect("stripped").size, 1);
        assert_eq!(
            f.kernel
                .catch_up_transparency_log()
                .await
                .expect("catch up"),
            head.size - 1
        );
        assert_eq!(f.kernel.tree_head().expect("head"), head);
        // A write on a tree that is behind adds what it lacks first.
        strip_tree(&f).await;
        customers(&f, 1).await;
        let now = f.kernel.tree_head().expect("head");
        assert_eq!(now.size, head.size + 1);
        assert_eq!(rebuilt(&f).root_at(now.size).expect("root"), now.root);
    }
}
