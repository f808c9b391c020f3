"""RFC 9162 Merkle trees: the RFC/CT reference vectors, then properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.ledger import merkle as m

# The eight leaves of the Certificate Transparency reference test tree.
LEAVES = [bytes.fromhex(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                     "606162636465666768696a6b6c6d6e6f"]]
HASHES = [m.leaf_hash(x) for x in LEAVES]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_empty_tree_root_is_hash_of_nothing():
    assert m.root([]) == hashlib.sha256(b"").digest()


def test_leaf_hash_of_empty_string():
    assert m.leaf_hash(b"").hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(1, 9))
def test_reference_roots(size):
    assert m.root(HASHES[:size]).hex() == ROOTS[size - 1]


@pytest.mark.parametrize("index,size,path", [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
])
def test_reference_inclusion_proofs(index, size, path):
    proof = m.inclusion_proof(index, HASHES[:size])
    assert [p.hex() for p in proof] == path
    assert m.verify_inclusion(HASHES[index], index, size, proof, bytes.fromhex(ROOTS[size - 1]))


@pytest.mark.parametrize("old,new,path", [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
])
def test_reference_consistency_proofs(old, new, path):
    proof = m.consistency_proof(old, HASHES[:new])
    assert [p.hex() for p in proof] == path
    assert m.verify_consistency(old, new, bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1]), proof)


def _leaves(n: int) -> list[bytes]:
    return [m.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_every_inclusion_proof_verifies_and_no_other_leaf_does(case):
    n, i = case
    leaves = _leaves(n)
    r = m.root(leaves)
    proof = m.inclusion_proof(i, leaves)
    assert m.verify_inclusion(leaves[i], i, n, proof, r)
    assert not m.verify_inclusion(m.leaf_hash(b"other"), i, n, proof, r)
    if n > 1:
        assert not m.verify_inclusion(leaves[i], (i + 1) % n, n, proof, r)
    if proof:
        bad = list(proof)
        bad[0] = bytes(32)
        assert not m.verify_inclusion(leaves[i], i, n, bad, r)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 70).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_every_consistency_proof_verifies_and_a_forked_history_does_not(case):
    old, new = case
    leaves = _leaves(new)
    proof = m.consistency_proof(old, leaves)
    assert m.verify_consistency(old, new, m.root(leaves[:old]), m.root(leaves), proof)
    if 0 < old:
        forked = list(leaves)
        forked[old - 1] = m.leaf_hash(b"rewritten")
        assert not m.verify_consistency(old, new, m.root(forked[:old]), m.root(leaves), proof)
        if old < new:
            assert not m.verify_consistency(old, new, m.root(leaves[:old]), m.root(forked[:old] + leaves[old:]),
                                            proof)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=80))
def test_compact_range_matches_root_at_every_size(data):
    c = m.CompactRange()
    hashes = [m.leaf_hash(d) for d in data]
    assert c.root() == m.root([])
    for i, h in enumerate(hashes):
        c.append(h)
        assert c.root() == m.root(hashes[: i + 1])


def test_proof_arguments_are_checked():
    with pytest.raises(ValueError):
        m.inclusion_proof(3, HASHES[:3])
    with pytest.raises(ValueError):
        m.consistency_proof(4, HASHES[:3])
    assert not m.verify_inclusion(HASHES[0], 5, 3, [], m.root(HASHES[:3]))
    assert not m.verify_consistency(5, 3, b"", b"", [])
    assert not m.verify_consistency(3, 5, m.root(HASHES[:3]), m.root(HASHES[:5]), [])


def test_consistency_proofs_with_a_subtree_cache_equal_those_without():
    """The uploader keeps one cache per ledger while it grows; every proof must be the plain one."""
    import hashlib

    from kiosk.ledger import merkle as m

    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(700)]
    cache: dict = {}
    old = 0
    for new in (1, 3, 64, 65, 130, 256, 300, 511, 512, 513, 700):
        for o in {old, 1, new // 2, new - 1} - {0}:
            if o <= new:
                assert m.consistency_proof(o, leaves[:new], cache) == m.consistency_proof(o, leaves[:new])
        old = new
    assert cache and all(n >= m.CACHE_MIN_SUBTREE and n & (n - 1) == 0 for _, n in cache)


@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=300))
def test_a_proof_from_the_old_trees_compact_range_is_the_proof_from_all_its_leaves(old: int, more: int) -> None:
    """The uploader keeps only the compact range at the acknowledged size and the leaves since
    (kiosk/sync/source.py): its proofs must be the ones the whole list of leaves gives, and verify."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(old + more)]
    rng = m.CompactRange()
    for h in leaves[:old]:
        rng.append(h)
    proof = m.consistency_proof_from(rng, leaves[old:])
    assert proof == m.consistency_proof(old, leaves)
    assert m.verify_consistency(old, old + more, m.root(leaves[:old]), m.root(leaves), proof)
