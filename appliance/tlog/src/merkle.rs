//! Merkle trees as RFC 6962 / RFC 9162 define them: SHA-256, a leaf hashed as
//! `H(0x00 ‖ data)`, an inner node as `H(0x01 ‖ left ‖ right)`, the tree over `n`
//! leaves split at the largest power of two below `n`. Proofs are generated from a
//! [`Nodes`] source that holds the root of every *complete* aligned subtree (what the
//! appliance stores as it appends, and [`MemoryTree`] computes), and checked by
//! [`verify_inclusion`] and [`verify_consistency`] with no tree at hand.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("entry {index} is not in a tree of {size} entries")]
    OutOfRange { index: u64, size: u64 },
    #[error("a tree of {to} entries cannot extend one of {from}")]
    Shrinks { from: u64, to: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the tree's root")]
    Mismatch,
    #[error("a hash the proof needs is missing ({0})")]
    Missing(String),
}

/// The hash of a leaf: `SHA-256(0x00 ‖ data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (`n > 1`).
fn split(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where the roots of complete subtrees come from: `node(level, index)` is the root
/// of leaves `index·2^level .. (index+1)·2^level`, asked only for subtrees that are
/// complete in the tree being proved.
pub trait Nodes {
    type Error: From<ProofError>;
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// The root of leaves `lo..hi` (`lo < hi`), from complete subtrees.
pub fn subtree_root<N: Nodes>(nodes: &N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    let n = hi - lo;
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return nodes.node(n.trailing_zeros() as u8, lo / n);
    }
    let k = split(n);
    let left = subtree_root(nodes, lo, lo + k)?;
    let right = subtree_root(nodes, lo + k, hi)?;
    Ok(node_hash(&left, &right))
}

/// The root of a tree of `size` leaves.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    subtree_root(nodes, 0, size)
}

/// The audit path of leaf `index` in a tree of `size` leaves (RFC 9162 §2.1.3.1),
/// leaf-side first.
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size }.into());
    }
    let mut path = Vec::new();
    path_into(nodes, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_into<N: Nodes>(
    nodes: &N,
    m: u64,
    lo: u64,
    hi: u64,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = hi - lo;
    if n == 1 {
        return Ok(());
    }
    let k = split(n);
    if m < lo + k {
        path_into(nodes, m, lo, lo + k, out)?;
        out.push(subtree_root(nodes, lo + k, hi)?);
    } else {
        path_into(nodes, m, lo + k, hi, out)?;
        out.push(subtree_root(nodes, lo, lo + k)?);
    }
    Ok(())
}

/// The proof that the tree of `from` leaves is a prefix of the tree of `to` leaves
/// (RFC 9162 §2.1.4.1). Empty when `from` is 0 or equals `to`.
pub fn consistency_proof<N: Nodes>(nodes: &N, from: u64, to: u64) -> Result<Vec<Hash>, N::Error> {
    if from > to {
        return Err(ProofError::Shrinks { from, to }.into());
    }
    let mut out = Vec::new();
    if from > 0 && from < to {
        subproof(nodes, from, 0, to, true, &mut out)?;
    }
    Ok(out)
}

fn subproof<N: Nodes>(
    nodes: &N,
    m: u64,
    lo: u64,
    hi: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<(), N::Error> {
    let n = hi - lo;
    if m == n {
        if !whole {
            out.push(subtree_root(nodes, lo, hi)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, lo, lo + k, whole, out)?;
        out.push(subtree_root(nodes, lo + k, hi)?);
    } else {
        subproof(nodes, m - k, lo + k, hi, false, out)?;
        out.push(subtree_root(nodes, lo, lo + k)?);
    }
    Ok(())
}

/// Checks that `leaf` is entry `index` of the tree of `size` entries whose root is
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if r == *root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// Checks that the tree of `from` entries with root `from_root` is a prefix of the
/// tree of `to` entries with root `to_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::Shrinks { from, to });
    }
    if from == to {
        return match (proof.is_empty(), from_root == to_root) {
            (true, true) => Ok(()),
            (false, _) => Err(ProofError::WrongLength),
            (true, false) => Err(ProofError::Mismatch),
        };
    }
    if from == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *from_root && sr == *to_root {
        Ok(())
    } else {
        Err(ProofError::Mismatch)
    }
}

/// The nodes to store when leaf `index` with hash `leaf` is appended: the leaf itself
/// and every complete subtree it closes, as `(level, index, hash)`. `sibling(level, i)`
/// gives an already stored node (the left neighbours it completes).
pub fn append_nodes<E>(
    index: u64,
    leaf: Hash,
    mut sibling: impl FnMut(u8, u64) -> Result<Hash, E>,
) -> Result<Vec<(u8, u64, Hash)>, E> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut i, mut h) = (0u8, index, leaf);
    while i & 1 == 1 {
        let left = sibling(level, i - 1)?;
        h = node_hash(&left, &h);
        level += 1;
        i >>= 1;
        out.push((level, i, h));
    }
    Ok(out)
}

/// A tree held in memory: every complete subtree's root, level by level. For tests,
/// and for the verifier, which rebuilds the tree of a complete bundle.
#[derive(Debug, Default, Clone)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf (its hash, see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let index = self.len();
        let levels = &self.levels;
        let made = append_nodes(index, leaf, |level, i| {
            levels
                .get(level as usize)
                .and_then(|l| l.get(i as usize))
                .copied()
                .ok_or(ProofError::Missing(format!("node {level}/{i}")))
        });
        // A tree built only by `push` always holds the left neighbours.
        for (level, _, h) in made.unwrap_or_default() {
            let level = level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
        }
    }

    /// The root over the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.len() {
            return Err(ProofError::OutOfRange {
                index: size,
                size: self.len(),
            });
        }
        root(self, size)
    }
}

impl Nodes for MemoryTree {
    type Error = ProofError;
    fn node(&self, level: u8, index: u64) -> Result<Hash, ProofError> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or(ProofError::Missing(format!("node {level}/{index}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962's reference: MTH computed straight from the definition.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    /// The eight leaf inputs of the Certificate Transparency test vectors.
    fn ct_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
        .collect()
    }

    #[test]
    fn roots_match_the_certificate_transparency_vectors() {
        let mut tree = MemoryTree::new();
        for leaf in ct_leaves() {
            tree.push(leaf);
        }
        let expect = [
            (
                0,
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                1,
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            ),
            (
                2,
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            ),
            (
                3,
                "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            ),
            (
                4,
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ),
            (
                5,
                "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            ),
            (
                6,
                "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            ),
            (
                7,
                "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            ),
            (
                8,
                "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
            ),
        ];
        for (size, hex_root) in expect {
            assert_eq!(
                hex::encode(tree.root_at(size).expect("root")),
                hex_root,
                "size {size}"
            );
        }
    }

    #[test]
    fn every_inclusion_and_consistency_proof_of_small_trees_verifies() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut tree = MemoryTree::new();
        for l in &leaves {
            tree.push(*l);
        }
        for size in 1..=leaves.len() as u64 {
            let root = tree.root_at(size).expect("root");
            assert_eq!(
                root,
                reference_root(&leaves[..size as usize]),
                "size {size}"
            );
            for index in 0..size {
                let proof = inclusion_proof(&tree, index, size).expect("proof");
                let leaf = &leaves[index as usize];
                verify_inclusion(leaf, index, size, &proof, &root).expect("inclusion");
                // The wrong leaf, index, or size is refused.
                let other = leaf_hash(b"not this one");
                assert!(verify_inclusion(&other, index, size, &proof, &root).is_err());
                if size > 1 {
                    assert!(
                        verify_inclusion(leaf, (index + 1) % size, size, &proof, &root).is_err()
                    );
                }
                // A proof for one tree does not hold for the next one's root.
                if let Ok(next) = tree.root_at(size + 1) {
                    assert!(verify_inclusion(leaf, index, size + 1, &proof, &next).is_err());
                }
            }
            for from in 0..=size {
                let proof = consistency_proof(&tree, from, size).expect("consistency");
                let old = tree.root_at(from).expect("old root");
                verify_consistency(from, size, &old, &root, &proof).expect("consistent");
                if from > 0 && from < size {
                    let forged = leaf_hash(b"forged");
                    assert!(verify_consistency(from, size, &forged, &root, &proof).is_err());
                    assert!(verify_consistency(from, size, &old, &forged, &proof).is_err());
                    let mut cut = proof.clone();
                    cut.pop();
                    assert!(verify_consistency(from, size, &old, &root, &cut).is_err());
                }
            }
        }
    }

    #[test]
    fn a_tampered_proof_never_verifies() {
        let mut tree = MemoryTree::new();
        for i in 0u32..33 {
            tree.push(leaf_hash(&i.to_be_bytes()));
        }
        let root = tree.root_at(33).expect("root");
        let leaf = leaf_hash(&7u32.to_be_bytes());
        let proof = inclusion_proof(&tree, 7, 33).expect("proof");
        for i in 0..proof.len() {
            for bit in [0usize, 77, 255] {
                let mut bad = proof.clone();
                bad[i][bit / 8] ^= 1 << (bit % 8);
                assert_eq!(
                    verify_inclusion(&leaf, 7, 33, &bad, &root),
                    Err(ProofError::Mismatch)
                );
            }
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(verify_inclusion(&leaf, 7, 33, &longer, &root).is_err());
        assert_eq!(
            verify_inclusion(&leaf, 33, 33, &proof, &root),
            Err(ProofError::OutOfRange {
                index: 33,
                size: 33
            })
        );
    }
}
