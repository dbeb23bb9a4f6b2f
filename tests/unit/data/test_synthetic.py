"""Synthetic generator: exact shapes, power laws, and writer -> reader round trips."""

from __future__ import annotations

import numpy as np
import pytest

from kgcl_lib.data import DatasetError, read_kgcn, read_ml20m_raw, read_recbole
from kgcl_lib.data.synthetic import (
    SHAPES,
    SyntheticShape,
    allocate,
    make_kg,
    make_ml20m_raw,
    make_synthetic,
    write_kgcn,
    write_ml20m_raw,
    write_recbole,
)

SMALL = SyntheticShape("small", n_users=60, n_items=150, n_rows=1500, n_entities=300, n_relations=4, n_triples=600)


def expected_stats(shape):
    return {
        "users": shape.n_users,
        "contents": shape.n_items,
        "uc_rows": shape.n_rows,
        "entities": shape.n_entities,
        "relations": shape.n_relations,
        "kg_triples": shape.n_triples,
    }


@pytest.mark.parametrize("shape", [SHAPES["tiny"], SMALL, SHAPES["ml-100k"], SHAPES["book-crossing"]], ids=lambda s: s.name)
def test_exact_shape(shape):
    ds = make_synthetic(shape, np.random.default_rng(0))
    assert ds.stats() == expected_stats(shape)
    r = ds.ratings
    # one negative per positive for every user, never on a positive item, no duplicate pairs
    pos, neg = r[r[:, 2] == 1], r[r[:, 2] == 0]
    assert np.array_equal(np.bincount(pos[:, 0], minlength=ds.n_users), np.bincount(neg[:, 0], minlength=ds.n_users))
    assert np.bincount(pos[:, 0], minlength=ds.n_users).min() >= 1
    keys = r[:, 0] * ds.n_items + r[:, 1]
    assert len(np.unique(keys)) == len(keys)
    kg_keys = ds.kg[:, 0] * ds.n_entities + ds.kg[:, 2]
    assert len(np.unique(kg_keys)) == len(kg_keys)


def test_seeded_and_seed_alias():
    a = make_synthetic("tiny", np.random.default_rng(5))
    b = make_synthetic("tiny", seed=5)
    c = make_synthetic("tiny", 6)
    assert np.array_equal(a.ratings, b.ratings) and np.array_equal(a.kg, b.kg)
    assert a.items.equals(b.items)
    assert not np.array_equal(a.ratings, c.ratings)


def test_power_law_activity_and_popularity():
    ds = make_synthetic(SHAPES["book-crossing"], 0)
    pos = ds.positives
    act = np.sort(np.bincount(pos[:, 0], minlength=ds.n_users))[::-1]
    pop = np.sort(np.bincount(pos[:, 1], minlength=ds.n_items))[::-1]
    # heavy tails: the top 1% of users / items hold far more than 1% of the positives
    assert act[: ds.n_users // 100].sum() > 0.10 * len(pos)
    assert pop[: ds.n_items // 100].sum() > 0.10 * len(pos)
    assert act[-1] == 1  # the long tail reaches single-interaction users


def test_metadata_has_missing_values():
    ds = make_synthetic(SHAPES["ml-100k"], 0)
    cov = ds.metadata_coverage()
    assert cov["items"] == 1598 and 0 < cov["synopsis"] < 1598 and 0 < cov["year"] < 1598 and 0 < cov["genres"] < 1598
    g = ds.items["genres"]
    assert g.map(len).max() <= 3 and all(isinstance(t, tuple) for t in g)


def test_allocate():
    w = np.array([8.0, 4.0, 2.0, 1.0, 1.0])
    c = allocate(20, w, cap=6, minimum=1)
    assert c.sum() == 20 and c.min() >= 1 and c.max() <= 6
    assert c[0] == 6 and list(c) == sorted(c, reverse=True)
    assert allocate(5, w, cap=6).tolist() == [1, 1, 1, 1, 1]
    assert allocate(30, w, cap=6).tolist() == [6] * 5
    with pytest.raises(DatasetError):
        allocate(31, w, cap=6)


def test_make_kg_covers_every_entity_and_relation():
    kg = make_kg(10, 40, 5, 80, np.random.default_rng(0))
    assert len(kg) == 80
    assert set(kg[:, 2].tolist()) >= set(range(10, 40))  # every non-item entity appears
    assert set(kg[:, 1].tolist()) == set(range(5))
    assert kg[:, 0].max() < 10
    # one relation type per tail entity
    rel_of = {}
    for _, r, t in kg.tolist():
        assert rel_of.setdefault(t, r) == r
    with pytest.raises(DatasetError, match="infeasible"):
        make_kg(10, 40, 5, 20, np.random.default_rng(0))


def test_round_trip_kgcn(tmp_path):
    ds = make_synthetic(SMALL, 1)
    back = read_kgcn(write_kgcn(ds, tmp_path / "k"))
    assert np.array_equal(back.ratings, ds.ratings) and np.array_equal(back.kg, ds.kg)
    assert back.items["raw_id"].tolist() == ds.items["raw_id"].tolist()
    assert back.stats() == ds.stats()


def _named_triples(d):
    ent, rel = np.asarray(d.entity_raw_ids), np.asarray(d.relation_names)
    return {(ent[h], rel[r], ent[t]) for h, r, t in d.kg.tolist()}


def _named_positives(d):
    users, items = np.asarray(d.user_raw_ids), d.items["raw_id"].to_numpy()
    return {(users[u], items[i]) for u, i in d.positives.tolist()}


@pytest.mark.parametrize("fmt", ["recbole", "ml20m-raw"])
def test_round_trip_raw_formats(tmp_path, fmt):
    ds = make_synthetic(SMALL, 2)
    rng = np.random.default_rng(0)
    if fmt == "recbole":
        back = read_recbole(write_recbole(ds, tmp_path / "r", name="small", rng=rng), seed=3)
    else:
        back = read_ml20m_raw(write_ml20m_raw(ds, tmp_path / "m", rng=rng), seed=3)
    assert back.stats() == ds.stats()
    assert _named_positives(back) == _named_positives(ds)
    assert _named_triples(back) == _named_triples(ds)
    cols = ["raw_id", "title", "year", "genres"] + (["synopsis"] if fmt == "recbole" else [])
    assert back.items[cols].equals(ds.items[cols])
    # resampled negatives: one per positive, never a positive
    r = back.ratings
    pos_keys = set((r[r[:, 2] == 1, 0] * back.n_items + r[r[:, 2] == 1, 1]).tolist())
    assert not pos_keys & set((r[r[:, 2] == 0, 0] * back.n_items + r[r[:, 2] == 0, 1]).tolist())


def test_ml20m_raw_generator_small(tmp_path):
    info = make_ml20m_raw(tmp_path, 0, n_ratings=30_000, n_users=500, n_movies=900, n_linked=600,
                          n_entities=1_500, n_relations=6, n_triples=3_000, progress=False)
    assert info["ratings"] == 30_000
    lines = (tmp_path / "ratings.csv").read_text().splitlines()
    assert lines[0] == "userId,movieId,rating,timestamp" and len(lines) == 30_001
    ds = read_ml20m_raw(tmp_path)
    assert ds.n_items == 600 and ds.n_entities == 1_500 and ds.n_relations == 6 and len(ds.kg) == 3_000
    # reference counts straight from the CSV with pandas (independent of the reader)
    import pandas as pd

    raw = pd.read_csv(tmp_path / "ratings.csv")
    linked = set(pd.read_csv(tmp_path / "item_index2entity_id.txt", sep="\t", header=None)[0])
    pos = raw[raw.movieId.isin(linked) & (raw.rating >= 4)]
    assert len(ds.positives) == len(pos) and ds.n_users == pos.userId.nunique()
    assert len(ds.ratings) == 2 * len(pos)
    assert ds.items["title"].str.endswith(", The").sum() > 0  # quoted titles parsed back
