//! RFC 6962 (and RFC 9162 section 2.1) Merkle tree hashing, and the proofs over it.
//!
//! A leaf's hash is `SHA-256(0x00 || entry)`, an interior node's `SHA-256(0x01 || left || right)`,
//! the empty tree's `SHA-256("")`. A tree of `n > 1` leaves splits at `k`, the largest power of
//! two below `n`. Proofs are lists of 32-byte hashes; the verifiers follow RFC 9162's
//! algorithms step for step, so a proof made by any RFC 6962 log verifies here and back.

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf, a node or a root.
pub type Hash = [u8; 32];

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The index or sizes cannot be in such a proof (an index past the end, a tree that shrank).
    #[error("the proof's index or sizes are out of range")]
    OutOfRange,
    /// The proof has the wrong number of hashes for its sizes.
    #[error("the proof has the wrong length")]
    WrongLength,
    /// The hashes do not lead to the expected root(s).
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// The hash of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A leaf's hash: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// An interior node's hash: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly below `n` (`n >= 2`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root of the tree over these leaf hashes (MTH in RFC 6962 section 2.1).
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The inclusion proof (audit path, RFC 6962 section 2.1.1) of leaf `index` in the tree over
/// `leaves`; `None` when the index is outside the tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, leaves, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof (RFC 6962 section 2.1.2) between the tree of the first `size1` leaves
/// and the tree over all `leaves`; `None` when `size1` is past the end.
pub fn consistency_proof(leaves: &[Hash], size1: usize) -> Option<Vec<Hash>> {
    if size1 > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    if size1 > 0 && size1 < leaves.len() {
        subproof(size1, leaves, true, &mut proof);
    }
    Some(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// The root an inclusion proof leads to (RFC 9162 section 2.1.3.2).
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange);
    }
    let mut f = index;
    let mut s = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Checks that the leaf with this hash is at `index` in the tree of `size` leaves with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Checks that the tree of `size2` leaves with `root2` extends the tree of `size1` leaves with
/// `root1` (RFC 9162 section 2.1.4.2): nothing in the first was changed or removed.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if size1 > size2 {
        return Err(ProofError::OutOfRange);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if size1 == 0 {
        // The empty tree is a prefix of every tree; the proof is empty.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    let (first, rest) = match proof.split_first() {
        Some(split) => split,
        None => return Err(ProofError::WrongLength),
    };
    // When size1 is a power of two, its root is a node of the second tree: the path starts there.
    let (start, path) = if size1.is_power_of_two() {
        (*root1, proof)
    } else {
        (*first, rest)
    };
    let mut f = size1 - 1;
    let mut s = size2 - 1;
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut fr = start;
    let mut sr = start;
    for c in path {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *root1 && sr == *root2 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest (leftmost)
/// first, one per set bit of its size. A log appends leaves and reads its root from it without
/// reading the leaves it already holds (at most 64 hashes, whatever the size).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A range from a stored size and peaks; `None` when they do not fit (one peak per set bit).
    pub fn from_parts(size: u64, peaks: Vec<Hash>) -> Option<Self> {
        (peaks.len() == size.count_ones() as usize).then_some(CompactRange { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// Appends a leaf (its leaf hash): equal subtrees merge, as carries in binary addition.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().unwrap_or_else(empty_root);
            hash = node_hash(&left, &hash);
            size >>= 1;
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The root over every leaf appended: the peaks folded from the right, which is RFC 6962's
    /// split at the largest power of two below the size.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// A whole tree held in memory with every perfect subtree's hash, for a log that answers many
/// inclusion proofs of one tree size (an invoice's events, a report): built once in `O(n)`
/// hashes, each proof then costs `O(log² n)` instead of [`inclusion_proof`]'s `O(n)`.
#[derive(Debug, Clone)]
pub struct Tree {
    /// `levels[h][i]`: the root of leaves `i·2^h .. (i+1)·2^h` (only whole subtrees).
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over these leaf hashes.
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        while let Some(below) = levels.last().filter(|l| l.len() > 1) {
            let above = below
                .chunks_exact(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
            levels.push(above);
        }
        Tree { levels }
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The tree's root (the same as [`root`] over its leaves).
    pub fn root(&self) -> Hash {
        self.range_root(0, self.size())
    }

    /// The root of leaves `start..end`, where `start` is a multiple of the largest power of two
    /// below `end - start` (true of every subtree RFC 6962's split makes).
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() {
            let height = n.trailing_zeros() as usize;
            return self.levels[height][start >> height];
        }
        let k = split(n);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }

    /// The inclusion proof of leaf `index` (equal to [`inclusion_proof`] over the same leaves);
    /// `None` when the index is outside the tree.
    pub fn inclusion_proof(&self, index: usize) -> Option<Vec<Hash>> {
        if index >= self.size() {
            return None;
        }
        let mut proof = Vec::new();
        let (mut start, mut end) = (0, self.size());
        let mut siblings = Vec::new();
        while end - start > 1 {
            let k = split(end - start);
            if index < start + k {
                siblings.push((start + k, end));
                end = start + k;
            } else {
                siblings.push((start, start + k));
                start += k;
            }
        }
        for (s, e) in siblings.into_iter().rev() {
            proof.push(self.range_root(s, e));
        }
        Some(proof)
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;

    #[test]
    fn its_proofs_and_root_equal_the_direct_ones_at_every_size() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        assert_eq!(Tree::new(Vec::new()).root(), root(&[]));
        for n in 1..=leaves.len() {
            let tree = Tree::new(leaves[..n].to_vec());
            assert_eq!(tree.root(), root(&leaves[..n]), "size {n}");
            for i in 0..n {
                assert_eq!(
                    tree.inclusion_proof(i),
                    inclusion_proof(&leaves[..n], i),
                    "size {n}, leaf {i}"
                );
            }
            assert_eq!(tree.inclusion_proof(n), None);
        }
    }
}

#[cfg(test)]
mod compact_range_tests {
    use super::*;

    #[test]
    fn its_root_is_the_tree_root_at_every_size() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut range = CompactRange::new();
        assert_eq!(range.root(), root(&[]));
        for (n, leaf) in leaves.iter().enumerate() {
            range.push(*leaf);
            assert_eq!(range.root(), root(&leaves[..=n]), "size {}", n + 1);
            assert_eq!(range.peaks().len(), (n + 1).count_ones() as usize);
        }
        let stored = CompactRange::from_parts(range.size(), range.peaks().to_vec()).unwrap();
        assert_eq!(stored, range);
        assert!(CompactRange::from_parts(3, vec![range.root()]).is_none());
    }
}
