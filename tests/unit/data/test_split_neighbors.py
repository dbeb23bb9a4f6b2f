"""6:2:2 split, per-user training counts, and K-neighbour tables on hand-made data."""

from __future__ import annotations

import numpy as np
import pytest

from kgcl_lib.data import DatasetError, sample_neighbors, split_ratings, undirected_edges, user_train_counts


def rows(n):
    return np.stack([np.arange(n) % 3, np.arange(n), np.arange(n) % 2], axis=1).astype(np.int64)


@pytest.mark.parametrize("n,sizes", [(10, (6, 2, 2)), (7, (5, 1, 1)), (1, (1, 0, 0)), (139_746, (83_848, 27_949, 27_949))])
def test_split_sizes_hand_checked(n, sizes):
    s = split_ratings(rows(n), np.random.default_rng(0))
    assert (len(s.train), len(s.valid), len(s.test)) == sizes
    assert s.sizes() == dict(zip(("train", "valid", "test"), sizes))


def test_split_is_a_partition_and_seeded(tiny_dataset):
    r = tiny_dataset.ratings
    s = split_ratings(r, np.random.default_rng(1))
    both = np.concatenate([s.train, s.valid, s.test])
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, r.tolist()))
    again = split_ratings(r, np.random.default_rng(1))
    assert all(np.array_equal(getattr(s, f), getattr(again, f)) for f in ("train", "valid", "test"))
    other = split_ratings(r, np.random.default_rng(2))
    assert not np.array_equal(s.train, other.train)


def test_int_seed_equals_generator(tiny_dataset):
    ds = tiny_dataset
    assert np.array_equal(split_ratings(ds.ratings, 3).train, split_ratings(ds.ratings, np.random.default_rng(3)).train)
    a = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 2, 3)
    b = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 2, np.random.default_rng(3))
    assert np.array_equal(a.entities, b.entities)


def test_split_rejects_bad_ratios():
    with pytest.raises(DatasetError, match="ratios"):
        split_ratings(rows(5), np.random.default_rng(0), ratios=(0.5, 0.5, 0.5))


def test_user_train_counts_against_loop(tiny_dataset):
    train = split_ratings(tiny_dataset.ratings, np.random.default_rng(0)).train
    naive_pos = [sum(1 for u, _, lab in train.tolist() if u == user and lab == 1) for user in range(4)]
    naive_all = [sum(1 for u, _, _ in train.tolist() if u == user) for user in range(4)]
    assert user_train_counts(train, 4).tolist() == naive_pos
    assert user_train_counts(train, 4, positives_only=False).tolist() == naive_all
    assert user_train_counts(train, 6).tolist()[4:] == [0, 0]  # users without rows count 0


def neighbour_sets(kg):
    """entity -> set of (relation, neighbour), KG undirected, by a plain loop."""
    out = {}
    for h, r, t in kg.tolist():
        out.setdefault(h, set()).add((r, t))
        out.setdefault(t, set()).add((r, h))
    return out


@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_neighbour_tables_hold_only_real_neighbours(tiny_dataset, k):
    ds = tiny_dataset
    nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, k, np.random.default_rng(0))
    assert nt.entities.shape == nt.relations.shape == (ds.n_entities, k)
    nb = neighbour_sets(ds.kg)
    for e in range(ds.n_entities):
        pairs = set(zip(nt.relations[e].tolist(), nt.entities[e].tolist()))
        if e in nb:
            assert pairs <= nb[e]
        else:  # item 5 has no KG edge: K self-loops on the extra relation
            assert e == 5 and pairs == {(ds.n_relations, 5)}
    assert nt.isolated == 1 and nt.self_relation == ds.n_relations == 3


def test_without_replacement_when_degree_at_least_k(tiny_dataset):
    ds = tiny_dataset
    deg = np.bincount(undirected_edges(ds.kg)[:, 0], minlength=ds.n_entities)
    assert deg[6] == 3 and deg[8] == 3 and deg[0] == 2  # hand count: g.drama <- items 0,1,4; p.d1 <- 0,2 and -> 9
    for seed in range(20):
        nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 3, np.random.default_rng(seed))
        for e in np.flatnonzero(deg >= 3):
            assert len(set(nt.entities[e].tolist())) == 3  # all distinct
        nt2 = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 3, np.random.default_rng(seed))
        assert np.array_equal(nt.entities, nt2.entities) and np.array_equal(nt.relations, nt2.relations)


def test_sampling_is_uniform_over_edges(tiny_dataset):
    ds = tiny_dataset
    counts = {}
    trials = 3000
    for seed in range(trials):
        nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 2, np.random.default_rng(seed))
        for v in nt.entities[6].tolist():  # degree 3, K = 2: each neighbour with probability 2/3
            counts[v] = counts.get(v, 0) + 1
    assert set(counts) == {0, 1, 4}
    assert all(abs(c / trials - 2 / 3) < 0.05 for c in counts.values())
    # degree 2 < K = 5 (item 0): with replacement, each draw uniform over its 2 edges
    hits = sum(
        (sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 5, np.random.default_rng(s)).entities[0] == 6).sum()
        for s in range(600)
    )
    assert abs(hits / (600 * 5) - 0.5) < 0.05


def test_neighbour_errors(tiny_dataset):
    ds = tiny_dataset
    with pytest.raises(DatasetError, match="K must be >= 1"):
        sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 0, np.random.default_rng(0))
    with pytest.raises(DatasetError, match="out of range"):
        sample_neighbors(ds.kg, 5, ds.n_relations, 2, np.random.default_rng(0))
