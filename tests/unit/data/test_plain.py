"""The plain format (ratings.csv [+ items.csv] [+ kg.tsv]; docs/your-data.md): hand-checked
conversions, the KG built from item attributes, exports that read back identically, profiles that
register such datasets, and every bad input as a one-line error naming file, line and value."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgcl_lib.runner import notebooks as runner
from kgcl_lib.runner.__main__ import main as runner_main
from kgcl_lib.data import DatasetError, detect_format, load_dataset
from kgcl_lib.data.export import write_plain
from kgcl_lib.data.readers import kgcn_convert, read_plain
from kgcl_lib.data.synthetic import SHAPES, SyntheticShape, make_synthetic, write_recbole

from tests.helpers import REPO



def write(folder: Path, ratings: str, items: str | None = None, kg: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    if items is not None:
        (folder / "items.csv").write_text(items)
    if kg is not None:
        (folder / "kg.tsv").write_text(kg)
    return folder


RATINGS = """user,item,rating
u2,b,5
u1,a,4
u1,c,2
u2,a,1
u3,c,3
u1,d,5
"""
ITEMS = """item,title,year,genres,text,director
a,Alpha,1999,Drama|Comedy,A story.,Kim
b,Beta,,Drama,,Lee|Kim
c,Gamma,2001,,Another story.,
d,Delta,2003,Horror,,Park
"""
KG = "a\tdirected_by\tkim\nb\tdirected_by\tkim\nc\tin_genre\tdrama\nkim\tborn_in\tseoul\n"


# --- conversions, hand-checked -----------------------------------------------------------
def test_explicit_ratings_follow_kgcn_protocol(tmp_path):
    folder = write(tmp_path / "mine", RATINGS, ITEMS, KG)
    assert detect_format(folder) == "plain"
    (folder / "items.csv").write_text(ITEMS.replace("d,Delta,2003,Horror,,Park\n", ""))
    ds = read_plain(folder, threshold=4, seed=0)
    # kg.tsv links a, b, c; d is in no triple and not in items.csv: dropped as KGCN drops unlinked
    # items (its one rating)
    assert ds.items["raw_id"].tolist() == ["a", "b", "c"]
    assert ds.provenance["dropped_unlinked"] == 1 and ds.provenance["kg"] == "kg.tsv"
    # positives (>= 4) on linked items: u1-a, u2-b; u3 has none and is dropped; ids sorted as text
    assert ds.user_raw_ids.tolist() == ["u1", "u2"]
    pos = ds.ratings[ds.ratings[:, 2] == 1, :2].tolist()
    assert pos == [[0, 0], [1, 1]]
    # one negative per positive among the user's unrated linked items: u1 rated a, c -> b; u2 rated a, b -> c
    neg = ds.ratings[ds.ratings[:, 2] == 0, :2].tolist()
    assert neg == [[0, 1], [1, 2]]
    # entities: items 0..2, then kim (first seen in line 1), drama, seoul; relations by sorted name
    assert ds.entity_raw_ids.tolist() == ["a", "b", "c", "kim", "drama", "seoul"]
    assert ds.relation_names.tolist() == ["born_in", "directed_by", "in_genre"]
    assert ds.kg.tolist() == [[0, 1, 3], [1, 1, 3], [2, 2, 4], [3, 0, 5]]
    assert ds.stats() == {"users": 2, "contents": 3, "uc_rows": 4, "entities": 6, "relations": 3, "kg_triples": 4}
    it = ds.items
    assert it.loc[0, "title"] == "Alpha" and it.loc[0, "year"] == 1999 and it.loc[0, "genres"] == ("Drama", "Comedy")
    assert pd.isna(it.loc[1, "year"]) and pd.isna(it.loc[1, "synopsis"]) and it.loc[2, "synopsis"] == "Another story."
    assert it.loc[1, "director"] == "Lee|Kim"  # other columns stay as attributes
    # listed in items.csv (the catalogue), d stays: an item in no triple, an isolated entity
    (folder / "items.csv").write_text(ITEMS)
    full = read_plain(folder, threshold=4, seed=0)
    assert full.items["raw_id"].tolist() == ["a", "b", "c", "d"] and full.provenance["dropped_unlinked"] == 0
    assert full.entity_raw_ids.tolist()[:5] == ["a", "b", "c", "d", "kim"]


def test_same_negatives_as_kgcn_convert(tmp_path):
    """The reader's negatives are kgcn_convert's for the same input and seed (the shared protocol)."""
    rng = np.random.default_rng(5)
    users, items = rng.integers(0, 40, 600), rng.integers(0, 30, 600)
    df = pd.DataFrame({"user": users, "item": items, "rating": rng.integers(1, 6, 600)}).drop_duplicates(["user", "item"])
    write(tmp_path / "r", df.to_csv(index=False))
    ds = read_plain(tmp_path / "r", threshold=4, seed=7)
    item_raw = np.sort(df["item"].unique())
    ref, ref_users, _ = kgcn_convert(df["user"].to_numpy(), np.searchsorted(item_raw, df["item"].to_numpy()),
                                     df["rating"].to_numpy(float), len(item_raw), 4, np.random.default_rng(7))
    assert np.array_equal(ds.ratings, ref) and ds.user_raw_ids.tolist() == ref_users.tolist()
    assert ds.items["raw_id"].tolist() == [str(i) for i in item_raw]  # integer ids sort numerically


def test_labels_used_as_given(tmp_path):
    folder = write(tmp_path / "lab", "user,item,label\n2,x,1\n10,y,0\n2,y,0\n10,x,1\n3,y,0\n")
    ds = read_plain(folder)
    assert ds.provenance["ratings"] == "label" and ds.provenance["threshold"] is None
    assert ds.user_raw_ids.tolist() == ["2", "3", "10"]  # numeric order, every user kept
    assert sorted(map(tuple, ds.ratings.tolist())) == sorted([(0, 0, 1), (2, 1, 0), (0, 1, 0), (2, 0, 1), (1, 1, 0)])
    assert ds.users_without_positive() == 1


def test_implicit_positives_get_sampled_negatives(tmp_path):
    rows = "user,item\n" + "".join(f"u{u},i{i}\n" for u in range(5) for i in range(u + 1))
    ds = read_plain(write(tmp_path / "imp", rows), seed=3)
    assert ds.provenance["ratings"] == "implicit"
    pos, neg = ds.ratings[ds.ratings[:, 2] == 1], ds.ratings[ds.ratings[:, 2] == 0]
    assert len(pos) == 15
    # user k rated items 0..k: min(k + 1, 5 - (k + 1)) unrated negatives are possible
    assert np.bincount(neg[:, 0], minlength=5).tolist() == [1, 2, 2, 1, 0]
    rated = {(u, i) for u, i, _ in pos.tolist()}
    assert not any((u, i) in rated for u, i, _ in neg.tolist())


def test_kg_built_from_item_attributes(tmp_path):
    ds = read_plain(write(tmp_path / "attr", RATINGS, ITEMS), threshold=4)
    assert ds.items["raw_id"].tolist() == ["a", "b", "c", "d"]  # no kg.tsv: every rated item stays
    assert ds.provenance["kg"] == "KG built from item attributes (year, genres, director)"
    ent, rel = ds.entity_raw_ids, ds.relation_names
    triples = {(ent[h], rel[r], ent[t]) for h, r, t in ds.kg.tolist()}
    assert triples == {
        ("a", "year", "year=1999"), ("c", "year", "year=2001"), ("d", "year", "year=2003"),
        ("a", "genres", "genres=Drama"), ("a", "genres", "genres=Comedy"), ("b", "genres", "genres=Drama"),
        ("d", "genres", "genres=Horror"),
        ("a", "director", "director=Kim"), ("b", "director", "director=Lee"), ("b", "director", "director=Kim"),
        ("d", "director", "director=Park")}
    only = read_plain(tmp_path / "attr", kg_columns=["director"])
    assert only.stats()["kg_triples"] == 4 and only.relation_names.tolist() == ["director"]
    bare = read_plain(write(tmp_path / "bare", RATINGS))
    assert len(bare.kg) == 0 and bare.n_entities == bare.n_items == 4 and bare.provenance["kg"] == "none"


# --- bad input: one line naming file, line and value -------------------------------------
BAD = [
    ("missing column", "user,rating\nu1,4\n", None, None, r"ratings\.csv:1: header lacks column\(s\) \['item'\]"),
    ("duplicate rows", "user,item,rating\nu1,a,4\nu2,a,3\nu1,a,4\n", None, None,
     r"ratings\.csv:4: duplicate row for user 'u1' item 'a' \(first on line 2\)"),
    ("kg item without rating", "user,item,rating\nu1,a,4\n", "item,title\na,A\nz,Z\n", "a\tr\tx\nx\tr\tz\n",
     r"kg\.tsv:2: item 'z' \(listed in items\.csv\) is absent from ratings\.csv"),
    ("rating of text", "user,item,rating\nu1,a,4\nu1,b,good\n", None, None,
     r"ratings\.csv:3: rating 'good' is not a finite number"),
    ("label not 0/1", "user,item,label\nu1,a,1\nu1,b,2\n", None, None, r"ratings\.csv:3: label '2' is not 0 or 1"),
    ("empty id", "user,item\nu1,a\n,b\n", None, None, r"ratings\.csv:3: empty user id"),
    ("both rating and label", "user,item,rating,label\nu1,a,4,1\n", None, None, r"ratings\.csv:1: header has both"),
    ("kg line of two fields", "user,item,rating\nu1,a,4\n", None, "a\tr\tx\na\tr\n",
     r"kg\.tsv:2: malformed line 'a\\tr'"),
    ("items.csv duplicate", "user,item,rating\nu1,a,4\n", "item,title\na,A\na,B\n", None,
     r"items\.csv:3: duplicate item 'a'"),
    ("items.csv bad year", "user,item,rating\nu1,a,4\n", "item,year\na,19x9\n", None,
     r"items\.csv:2: year '19x9' is not an integer"),
    ("too many fields", "user,item,rating\nu1,a,4\nu2,b,4,extra\n", None, None,
     r"ratings\.csv:3: 4 comma-separated fields in 'u2,b,4,extra', the header has 3"),
    ("no positive", "user,item,rating\nu1,a,1\n", None, None, r"no positive ratings \(rating >= 4"),
]


@pytest.mark.parametrize("ratings, items, kg, pattern", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_one_line_naming_file_line_value(tmp_path, ratings, items, kg, pattern):
    folder = write(tmp_path / "bad", ratings, items, kg)
    with pytest.raises(DatasetError) as err:
        load_dataset(str(folder), cache=False)
    message = str(err.value)
    assert "\n" not in message and str(folder) in message
    assert re.search(pattern, message), message


def test_cli_error_is_one_line(tmp_path):
    folder = write(tmp_path / "bad", "user,item,rating\nu1,a,4\nu1,b,good\n")
    proc = subprocess.run([sys.executable, "-m", "kgcl_lib.data", "stats", "--dataset", str(folder), "--no-cache"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{folder / 'ratings.csv'}:3: rating 'good'" in lines[0], proc.stderr


# --- exports read back identically -------------------------------------------------------
def _same(a, b):
    assert np.array_equal(a.ratings, b.ratings) and np.array_equal(a.kg, b.kg)
    assert (a.n_users, a.n_items, a.n_entities, a.n_relations) == (b.n_users, b.n_items, b.n_entities, b.n_relations)
    assert a.stats() == b.stats()
    assert a.items["raw_id"].tolist() == b.items["raw_id"].tolist()


def test_export_of_recbole_files_reads_back_identically(tmp_path):
    """Explicit ratings: the plain reader reruns the conversion on the exported rows and gets the same
    indices and seeded negatives as the RecBole reader (the ML-100K path, on synthetic files)."""
    shape = SyntheticShape("small", 60, 100, 5000, 200, 4, 400)  # dense enough that every item is rated
    syn = make_synthetic(shape, np.random.default_rng(1))
    write_recbole(syn, tmp_path / "rb" / "small", name="small", rng=np.random.default_rng(2))
    src = load_dataset(str(tmp_path / "rb" / "small"), threshold=4, seed=3, cache=False)
    assert src.provenance["format"] == "recbole"
    inter = pd.read_csv(tmp_path / "rb" / "small" / "small.inter", sep="\t", dtype=str)
    assert inter["item_id:token"].nunique() == src.n_items  # every item has a rating: representable
    out = write_plain(src, tmp_path / "plain")
    header = (out / "ratings.csv").read_text().splitlines()[0]
    assert header == "user,item,rating"
    back = load_dataset(str(out), threshold=4, seed=3, cache=False)
    _same(src, back)
    assert back.items["synopsis"].fillna("").tolist() == src.items["synopsis"].fillna("").tolist()
    assert back.items["genres"].tolist() == src.items["genres"].tolist()
    # without kg.tsv / text: the same rows, a KG from the attributes, no text
    bare = load_dataset(str(write_plain(src, tmp_path / "bare", kg=False, text=False)), threshold=4, seed=3, cache=False)
    assert np.array_equal(bare.ratings, src.ratings) and bare.items["synopsis"].isna().all()
    assert bare.provenance["kg"].startswith("KG built from item attributes")


def test_export_warns_about_unrated_items(tmp_path):
    """The plain format's items are the rated ones: a KG item without ratings becomes a KG entity."""
    syn = make_synthetic(SHAPES["tiny"], np.random.default_rng(1))
    keep = syn.ratings[:, 1] != 0  # item 0 loses its rows
    import dataclasses

    ds = dataclasses.replace(syn, ratings=syn.ratings[keep])
    with pytest.warns(UserWarning, match=r"1 item\(s\) without any rating row \(e\.g\. '1'\)"):
        out = write_plain(ds, tmp_path / "p")
    back = load_dataset(str(out), cache=False)
    assert back.n_items == ds.n_items - 1 and "unrated:1" in set(back.entity_raw_ids)
    assert back.stats()["kg_triples"] == ds.stats()["kg_triples"]


def test_export_of_labelled_rows_reads_back_identically(tmp_path):
    syn = make_synthetic(SHAPES["tiny"], np.random.default_rng(4))
    back = load_dataset(str(write_plain(syn, tmp_path / "p")), cache=False)
    assert back.provenance["ratings"] == "label"
    # synthetic ids are 1..n in index order, so the numeric order reproduces the item/user indices;
    # synthetic entities are not numbered by first appearance: the same KG, other entity numbers
    assert np.array_equal(syn.ratings, back.ratings) and syn.stats() == back.stats()

    def named(ds):
        ent = ds.items["raw_id"].tolist() + [f"e{i}" for i in range(ds.n_items, ds.n_entities)]
        ent = np.asarray(ent if ds.name != "p" else ds.entity_raw_ids, dtype=object)
        return sorted(zip(ent[ds.kg[:, 0]], ds.relation_names[ds.kg[:, 1]], ent[ds.kg[:, 2]]))

    assert named(syn) == named(back)


def test_cache_and_stats_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    folder = write(tmp_path / "mine", RATINGS, ITEMS, KG)
    a = load_dataset(str(folder))
    assert "cache" in a.provenance and a.name == "mine"
    b = load_dataset("anything", path=folder)  # a profile's registered name
    assert b.name == "anything" and np.array_equal(a.ratings, b.ratings)
    proc = subprocess.run([sys.executable, "-m", "kgcl_lib.data", "stats", "--dataset", str(folder), "--json"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "KGCL_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == a.stats()


# --- profiles ----------------------------------------------------------------------------
def test_profile_dataset_entries(tmp_path):
    prof = tmp_path / "conf" / "my.yaml"
    prof.parent.mkdir()
    prof.write_text("datasets:\n  - name: mine\n    path: ../data/mine\n    threshold: 3\n"
                    "    settings: {epochs: 3, dim: 16}\n  - ml-100k\ntrain_overrides: {'*': {batch_size: 64}}\n")
    p = runner.load_profile(str(prof))
    assert p.name == "my"
    assert p.globals["datasets"] == ["mine", "ml-100k"]
    assert p.globals["dataset_options"] == {"mine": {"threshold": 3, "path": str((tmp_path / "data" / "mine").resolve())}}
    assert p.globals["train_overrides"] == {"*": {"batch_size": 64}, "mine": {"epochs": 3, "dim": 16}}
    prof.write_text("datasets:\n  - name: mine\n    path: x\n    settings: {epoch: 3}\n")
    with pytest.raises(ValueError, match=r"my\.yaml: datasets\[0\]: settings \['epoch'\] are not TrainConfig fields"):
        runner.load_profile(str(prof))
    prof.write_text("datasets:\n  - name: mine\n    folder: x\n")
    with pytest.raises(ValueError, match=r"datasets\[0\]: keys \['folder', 'name'\]"):
        runner.load_profile(str(prof))


def test_example_profile_declares_only_known_keys():
    p = runner.load_profile(str(REPO / "params" / "example-your-data.yaml"))
    nbs = runner.discover()
    runner.check_profile_keys(p, nbs, {nb: runner.declared_parameters(nb) for nb in nbs})
    assert p.globals["datasets"] == ["my-movies"]
    assert Path(p.globals["dataset_options"]["my-movies"]["path"]) == (REPO / "data" / "your-data" / "my-movies").resolve()


# --- ML-100K: the embedded dataset and its plain export (real data, minutes) ----------------
@pytest.mark.slow
def test_ml100k_plain_export_matches_embedded(tmp_path):
    """Table 1 counts and the L_base test AUC of seed 0 (same split, 2 epochs) of ML-100K exported
    to the plain format equal the embedded dataset's: with and without kg.tsv and items.csv text
    (without kg.tsv the KG is built from the item attributes, so only users/contents/rows and the
    split can match, and do)."""
    from kgcl_lib.data import split_ratings
    from kgcl_lib.train import TrainConfig, train

    if not os.environ.get("KGCL_DATA_DIR"):
        pytest.skip("needs KGCL_DATA_DIR with ml-100k/")
    emb = load_dataset("ml-100k")
    cfg = TrainConfig.for_dataset("ml-100k", epochs=2, threads=1, seed=0)

    def auc(ds):
        return train(ds, split_ratings(ds.ratings, np.random.default_rng(0)), cfg, progress=False).test_auc

    ref = auc(emb)
    for kg in (True, False):
        for text in (True, False):
            ds = load_dataset(str(write_plain(emb, tmp_path / f"kg{kg}-text{text}", kg=kg, text=text)), cache=False)
            assert np.array_equal(ds.ratings, emb.ratings)  # the same rows in the same order: the same split
            assert (ds.items["synopsis"].notna().sum() == emb.items["synopsis"].notna().sum()) == text
            if kg:
                assert ds.stats() == emb.stats() and np.array_equal(ds.kg, emb.kg)
                if text:  # L_base does not read the text: one run per KG suffices
                    assert abs(auc(ds) - ref) <= 1e-9
            else:
                assert {k: ds.stats()[k] for k in ("users", "contents", "uc_rows")} == \
                    {k: emb.stats()[k] for k in ("users", "contents", "uc_rows")}
                assert ds.provenance["kg"].startswith("KG built from item attributes")
