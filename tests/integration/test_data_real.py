"""Smoke tests on the real data in ``$KGCL_DATA_DIR`` (skipped, with the reason, when absent).

Expected values are either the paper's Table 1 (Book-Crossing) or recomputed here from the
raw files with the standard library only (ML-100K), independently of the readers.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from kgcl_lib.data import load_dataset, read_kgcn, read_recbole, sample_neighbors
from kgcl_lib.data.__main__ import main

PAPER_BOOK_CROSSING = {"users": 17_860, "contents": 14_967, "uc_rows": 139_746, "entities": 77_903, "relations": 25, "kg_triples": 151_500}


@pytest.fixture(scope="module")
def ml100k_dir(data_dir):
    d = data_dir / "ml-100k"
    if not (d / "ml-100k.inter").is_file():
        pytest.skip(f"real data not available: no {d / 'ml-100k.inter'}")
    return d


@pytest.fixture(scope="module")
def bx_dir(data_dir):
    d = data_dir / "book-crossing"
    if not (d / "ratings_final.txt").is_file():
        pytest.skip(f"real data not available: no {d / 'ratings_final.txt'}")
    return d


def test_book_crossing_matches_paper_table1(bx_dir, kgcl_cache, capsys):
    ds = read_kgcn(bx_dir)
    assert ds.stats() == PAPER_BOOK_CROSSING
    assert ds.n_entities == 77_903 and ds.n_relations == 25
    assert ds.items.loc[0, "raw_id"] == "0002005018"  # ISBN of item 0, leading zeros kept
    assert main(["stats", "--dataset", "book-crossing", "--data-dir", str(bx_dir.parent), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == PAPER_BOOK_CROSSING


def _ml100k_reference(d):
    """Table-1 numbers of the KGCN conversion, recomputed with csv + sets."""

    def rows(name):
        with open(d / name, newline="", encoding="utf-8") as f:
            r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            next(r)
            return list(r)

    link = dict(rows("ml-100k.link"))  # item -> entity
    pos, users = set(), set()
    for u, i, rating, _ in rows("ml-100k.inter"):
        if i in link and float(rating) >= 4:
            pos.add((u, i))
            users.add(u)
    kg = rows("ml-100k.kg")
    entities = set(link.values()) | {h for h, _, _ in kg} | {t for _, _, t in kg}
    with open(d / "synopses.tsv", encoding="utf-8") as f:
        syn = {line.split("\t", 1)[0] for line in list(f)[1:] if line.split("\t", 1)[1].strip()}
    return {
        "users": len(users),
        "contents": len(link),
        "uc_rows": 2 * len(pos),
        "entities": len(entities),
        "relations": len({r for _, r, _ in kg}),
        "kg_triples": len(kg),
    }, pos, len(syn & set(link))


def test_ml100k_against_independent_count(ml100k_dir, kgcl_cache):
    ref, pos, n_syn = _ml100k_reference(ml100k_dir)
    ds = load_dataset("ml-100k", ml100k_dir.parent)
    assert ds.stats() == ref
    users, items = ds.user_raw_ids, ds.items["raw_id"].to_numpy()
    got = {(users[u], items[i]) for u, i in ds.positives.tolist()}
    assert got == pos
    assert ds.metadata_coverage()["synopsis"] == n_syn
    assert ds.items.loc[0, "title"] == "Toy Story" and ds.items.loc[0, "genres"] == ("Animation", "Children's", "Comedy")


def test_ml100k_negatives_never_rated(ml100k_dir):
    ds = read_recbole(ml100k_dir, seed=0)
    rated = set()
    with open(ml100k_dir / "ml-100k.inter", encoding="utf-8") as f:
        next(f)
        for line in f:
            u, i = line.split("\t")[:2]
            rated.add((u, i))
    users, items = ds.user_raw_ids, ds.items["raw_id"].to_numpy()
    neg = ds.ratings[ds.ratings[:, 2] == 0]
    assert not any((users[u], items[i]) in rated for u, i, _ in neg.tolist())
    assert np.array_equal(np.bincount(neg[:, 0], minlength=ds.n_users), np.bincount(ds.positives[:, 0], minlength=ds.n_users))


def test_real_neighbour_tables_hold_only_real_neighbours(bx_dir):
    ds = read_kgcn(bx_dir)
    nt = sample_neighbors(ds.kg, ds.n_entities, ds.n_relations, 8, np.random.default_rng(0))
    n, r = ds.n_entities, ds.n_relations + 1
    kg = ds.kg
    real = np.concatenate([(kg[:, 0] * r + kg[:, 1]) * n + kg[:, 2], (kg[:, 2] * r + kg[:, 1]) * n + kg[:, 0]])
    got = (np.arange(n)[:, None] * r + nt.relations) * n + nt.entities
    self_loop = nt.relations == ds.n_relations
    assert np.isin(got[~self_loop], real).all()
    assert (nt.entities[self_loop] == np.nonzero(self_loop)[0]).all()
