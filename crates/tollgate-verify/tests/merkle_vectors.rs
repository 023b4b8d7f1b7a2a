#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Merkle tree against RFC 6962 test vectors.
//!
//! Source of the vectors: the transparency-dev/merkle repository (Apache-2.0), the reference
//! RFC 6962 implementation behind Certificate Transparency's Go code:
//! `testonly/constants.go` (leaf inputs, node hashes, root hashes of trees of 0..=8 leaves) and
//! `proof/verify_test.go` (inclusion and consistency proofs). Only the data is used; the tests
//! around it are ours.

use tollgate_verify::merkle::{
    Hash, ProofError, consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root,
    root_from_inclusion_proof, verify_consistency, verify_inclusion,
};

fn h(hex_text: &str) -> Hash {
    hex::decode(hex_text).unwrap().try_into().unwrap()
}

const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Root hashes by tree size, 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Leaf hashes (level 0 of the node hashes).
const LEAF_HASHES: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];

/// (leaf index 0-based, tree size, proof)
fn inclusion_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (0, 1, vec![]),
    ]
}

/// (size1, size2, proof)
fn consistency_vectors() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (1, 1, vec![]),
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

fn leaves() -> Vec<Hash> {
    LEAF_INPUTS
        .iter()
        .map(|i| leaf_hash(&hex::decode(i).unwrap()))
        .collect()
}

#[test]
fn leaf_hashes_match_the_vectors() {
    for (got, want) in leaves().iter().zip(LEAF_HASHES) {
        assert_eq!(*got, h(want));
    }
    assert_eq!(empty_root(), h(ROOTS[0]));
}

#[test]
fn roots_of_every_size_match_the_vectors() {
    let leaves = leaves();
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..size]), h(want), "root of {size} leaves");
    }
}

#[test]
fn inclusion_proofs_are_generated_and_verified_as_published() {
    let leaves = leaves();
    for (index, size, proof) in inclusion_vectors() {
        let i = usize::try_from(index).unwrap();
        let n = usize::try_from(size).unwrap();
        assert_eq!(
            inclusion_proof(&leaves[..n], i).unwrap(),
            proof,
            "proof of leaf {index} in {size}"
        );
        let root = h(ROOTS[n]);
        verify_inclusion(index, size, &leaves[i], &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_are_generated_and_verified_as_published() {
    let leaves = leaves();
    for (size1, size2, proof) in consistency_vectors() {
        let (m, n) = (
            usize::try_from(size1).unwrap(),
            usize::try_from(size2).unwrap(),
        );
        assert_eq!(
            consistency_proof(&leaves[..n], m).unwrap(),
            proof,
            "consistency {size1} -> {size2}"
        );
        verify_consistency(size1, size2, &h(ROOTS[m]), &h(ROOTS[n]), &proof).unwrap();
    }
}

fn flip(hash: &Hash, bit: u8) -> Hash {
    let mut out = *hash;
    out[0] ^= bit;
    out
}

#[test]
fn corrupted_inclusion_proofs_are_refused() {
    let leaves = leaves();
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    for (index, size, proof) in inclusion_vectors().into_iter().filter(|v| !v.2.is_empty()) {
        let i = usize::try_from(index).unwrap();
        let root = h(ROOTS[usize::try_from(size).unwrap()]);
        let leaf = leaves[i];
        let refused = |idx: u64, sz: u64, lf: &Hash, pf: &[Hash], rt: &Hash, what: &str| {
            assert!(
                verify_inclusion(idx, sz, lf, pf, rt).is_err(),
                "{what} verified for leaf {index} in {size}"
            );
        };
        refused(
            index.wrapping_sub(1),
            size,
            &leaf,
            &proof,
            &root,
            "index - 1",
        );
        refused(index + 1, size, &leaf, &proof, &root, "index + 1");
        refused(index ^ 2, size, &leaf, &proof, &root, "index ^ 2");
        refused(index, size * 2, &leaf, &proof, &root, "size * 2");
        refused(index, size / 2, &leaf, &proof, &root, "size / 2");
        refused(
            index,
            size,
            &leaf_hash(b"WrongLeaf"),
            &proof,
            &root,
            "wrong leaf",
        );
        refused(index, size, &leaf, &proof, &empty_root(), "empty root");
        refused(index, size, &leaf, &proof, &some, "random root");
        let mut longer = proof.clone();
        longer.push(root);
        refused(index, size, &leaf, &longer, &root, "trailing root");
        let mut front = vec![root];
        front.extend_from_slice(&proof);
        refused(index, size, &leaf, &front, &root, "preceding root");
        refused(
            index,
            size,
            &leaf,
            &proof[..proof.len() - 1],
            &root,
            "removed",
        );
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], 8);
            refused(index, size, &leaf, &bad, &root, "a flipped bit");
        }
    }
}

#[test]
fn corrupted_consistency_proofs_are_refused() {
    for (size1, size2, proof) in consistency_vectors()
        .into_iter()
        .filter(|v| !v.2.is_empty())
    {
        let r1 = h(ROOTS[usize::try_from(size1).unwrap()]);
        let r2 = h(ROOTS[usize::try_from(size2).unwrap()]);
        let refused = |s1: u64, s2: u64, a: &Hash, b: &Hash, pf: &[Hash], what: &str| {
            assert!(
                verify_consistency(s1, s2, a, b, pf).is_err(),
                "{what} verified for {size1} -> {size2}"
            );
        };
        refused(size1 - 1, size2, &r1, &r2, &proof, "size1 - 1");
        refused(size1 + 1, size2, &r1, &r2, &proof, "size1 + 1");
        refused(size1 ^ 2, size2, &r1, &r2, &proof, "size1 ^ 2");
        refused(size1, size2 * 2, &r1, &r2, &proof, "size2 * 2");
        refused(size1, size2 / 2, &r1, &r2, &proof, "size2 / 2");
        refused(
            size1,
            size2,
            &leaf_hash(b"WrongRoot"),
            &r2,
            &proof,
            "wrong root1",
        );
        refused(
            size1,
            size2,
            &r1,
            &leaf_hash(b"WrongRoot"),
            &proof,
            "wrong root2",
        );
        refused(size1, size2, &r2, &r1, &proof, "swapped roots");
        refused(size1, size2, &r1, &r2, &[], "empty proof");
        for extra in [r1, r2] {
            let mut longer = proof.clone();
            longer.push(extra);
            refused(size1, size2, &r1, &r2, &longer, "trailing root");
            let mut front = vec![extra];
            front.extend_from_slice(&proof);
            refused(size1, size2, &r1, &r2, &front, "preceding root");
        }
        refused(
            size1,
            size2,
            &r1,
            &r2,
            &proof[..proof.len() - 1],
            "truncated",
        );
        for k in 0..proof.len() {
            let mut bad = proof.clone();
            bad[k] = flip(&bad[k], 16);
            refused(size1, size2, &r1, &r2, &bad, "a flipped bit");
        }
    }
}

#[test]
fn edge_sizes_follow_the_rfc() {
    let any = leaf_hash(b"x");
    // An index outside the tree, and the empty tree, have no inclusion proof.
    assert_eq!(
        verify_inclusion(0, 0, &any, &[], &empty_root()),
        Err(ProofError::OutOfRange)
    );
    assert_eq!(
        verify_inclusion(2, 1, &any, &[], &any),
        Err(ProofError::OutOfRange)
    );
    // A one-leaf tree's root is its leaf.
    assert_eq!(root_from_inclusion_proof(0, 1, &any, &[]), Ok(any));
    // The empty tree is consistent with every tree, with an empty proof only.
    verify_consistency(0, 5, &empty_root(), &any, &[]).unwrap();
    assert!(verify_consistency(0, 1, &empty_root(), &any, &[any]).is_err());
    // Equal sizes: equal roots, empty proof.
    verify_consistency(3, 3, &any, &any, &[]).unwrap();
    assert!(verify_consistency(3, 3, &any, &empty_root(), &[]).is_err());
    assert!(verify_consistency(2, 1, &any, &any, &[]).is_err());
    assert_eq!(node_hash(&any, &any), root(&[any, any]));
}

#[test]
fn generated_proofs_verify_for_every_index_and_pair_up_to_40() {
    let leaves: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for n in 1..=leaves.len() {
        let r = root(&leaves[..n]);
        for i in 0..n {
            let p = inclusion_proof(&leaves[..n], i).unwrap();
            verify_inclusion(i as u64, n as u64, &leaves[i], &p, &r).unwrap();
        }
        for m in 0..=n {
            let p = consistency_proof(&leaves[..n], m).unwrap();
            verify_consistency(m as u64, n as u64, &root(&leaves[..m]), &r, &p).unwrap();
        }
    }
}
