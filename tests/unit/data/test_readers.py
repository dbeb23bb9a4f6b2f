"""Readers on tiny hand-made fixtures (tests/fixtures/data/): hand-checked counts, ids, metadata,
negative sampling, and every bad-input error."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from kgcl_lib.data import DatasetError, detect_format, read_folder, read_kgcn, read_ml20m_raw, read_recbole
from kgcl_lib.data.readers import kgcn_convert, sample_distinct_items, sorted_unique


@pytest.fixture
def fx(fixtures_dir):
    return fixtures_dir / "data"


def copy_fixture(fx, name, tmp_path):
    dest = tmp_path / name
    shutil.copytree(fx / name, dest)
    return dest


# --- KGCN processed ----------------------------------------------------------------------
def test_kgcn_reader_hand_checked(fx):
    ds = read_kgcn(fx / "kgcn")
    # 3 users, 5 items (5 lines in the item map, item 4 has no rating), entities 0..7, 2 relations
    assert ds.stats() == {"users": 3, "contents": 5, "uc_rows": 8, "entities": 8, "relations": 2, "kg_triples": 5}
    assert (ds.n_users, ds.n_items, ds.n_entities, ds.n_relations) == (3, 5, 8, 2)
    assert ds.ratings.tolist()[:3] == [[0, 1, 1], [0, 3, 0], [1, 0, 1]]
    assert ds.kg.tolist()[-1] == [5, 1, 7]
    # raw ids keep leading zeros and lose the CRLF of the item map
    assert ds.items["raw_id"].tolist() == ["0002005018", "0060973129", "0374157065", "0393045218", "0399135782"]
    # books.tsv: two books, one with only title + author
    assert ds.metadata_coverage() == {"items": 5, "title": 2, "year": 1, "genres": 1, "synopsis": 1}
    assert ds.items.loc[0, "genres"] == ("Fiction", "Canadian") and ds.items.loc[0, "year"] == 2001
    assert ds.items.loc[2, "author"] == "Gina Kolata" and ds.items["author"].isna().sum() == 3


def test_kgcn_without_item_map_or_books(fx, tmp_path):
    d = copy_fixture(fx, "kgcn", tmp_path)
    (d / "item_index2entity_id_rehashed.txt").unlink()
    (d / "books.tsv").unlink()
    ds = read_kgcn(d)
    assert ds.n_items == 4  # max item in ratings + 1
    assert ds.items["raw_id"].tolist() == ["0", "1", "2", "3"]
    assert ds.metadata_coverage()["title"] == 0


@pytest.mark.parametrize(
    "fname,line,expect",
    [
        ("ratings_final.txt", "1\t2\n", ":3: malformed line '1\\t2'"),
        ("ratings_final.txt", "1\tx\t1\n", ":3: malformed line '1\\tx\\t1'"),
        ("ratings_final.txt", "1\t2\t1\t9\n", ":3: malformed line"),
        ("kg_final.txt", "0\t0\n", ":3: malformed line '0\\t0'"),
    ],
)
def test_kgcn_malformed_line_names_file_and_line(fx, tmp_path, fname, line, expect):
    d = copy_fixture(fx, "kgcn", tmp_path)
    path = d / fname
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(2, line)
    path.write_text("".join(lines))
    with pytest.raises(DatasetError) as e:
        read_kgcn(d)
    assert fname + expect in str(e.value)


def test_kgcn_out_of_range_and_bad_labels(fx, tmp_path):
    d = copy_fixture(fx, "kgcn", tmp_path)
    p = d / "ratings_final.txt"
    p.write_text(p.read_text() + "2\t5\t1\n")  # item 5, but the map has 5 items (0..4)
    with pytest.raises(DatasetError, match=r"ratings_final.txt:9: item id 5 out of range 0..4"):
        read_kgcn(d)
    p.write_text("0\t1\t2\n")
    with pytest.raises(DatasetError, match=r"ratings_final.txt:1: label 2 is not 0 or 1"):
        read_kgcn(d)
    p.write_text("0\t-1\t1\n")
    with pytest.raises(DatasetError, match=r"ratings_final.txt:1: negative item id -1"):
        read_kgcn(d)
    p.write_text("")
    with pytest.raises(DatasetError, match="no labelled rows"):
        read_kgcn(d)


def test_missing_file_names_file_and_how(fx, tmp_path):
    d = copy_fixture(fx, "kgcn", tmp_path)
    (d / "kg_final.txt").unlink()
    with pytest.raises(DatasetError, match=r"missing file .*kg_final.txt\. run the fetch"):
        read_kgcn(d, how="run the fetch")


# --- RecBole atomic files ----------------------------------------------------------------
def test_recbole_reader_hand_checked(fx):
    ds = read_recbole(fx / "recbole", seed=0)
    # linked items 1,2,3,5,11 in numeric order; 4 and 6 are not linked and vanish
    assert ds.items["raw_id"].tolist() == ["1", "2", "3", "5", "11"]
    # user "2" has no rating >= 4: dropped; users ordered numerically: "7" < "10"
    assert ds.user_raw_ids.tolist() == ["7", "10"]
    pos = {tuple(r) for r in ds.ratings[ds.ratings[:, 2] == 1, :2].tolist()}
    assert pos == {(0, 3), (0, 4), (1, 0), (1, 1)}  # 7: items 5, 11; 10: items 1, 2
    neg = ds.ratings[ds.ratings[:, 2] == 0, :2]
    # user 10 rated linked items 1,2,3 -> the only unrated linked items are 5 and 11 (idx 3, 4)
    assert sorted(neg[neg[:, 0] == 1, 1].tolist()) == [3, 4]
    # user 7 rated 5 and 11 -> two distinct negatives among items 1,2,3 (idx 0,1,2)
    n7 = neg[neg[:, 0] == 0, 1]
    assert len(set(n7.tolist())) == 2 and set(n7.tolist()) <= {0, 1, 2}
    assert ds.provenance["dropped_unlinked"] == 2 and ds.provenance["negatives_short"] == 0
    # KG: items first, then entities by first appearance; relations by sorted name
    assert ds.entity_raw_ids.tolist() == ["m.1", "m.2", "m.3", "m.5", "m.11", "g.drama", "p.x", "g.comedy", "c.y"]
    assert ds.relation_names.tolist() == ["film.director", "film.genre", "people.born"]
    assert ds.kg.tolist() == [[0, 1, 5], [1, 1, 5], [2, 0, 6], [4, 1, 7], [6, 2, 8], [3, 0, 6]]
    assert ds.stats() == {"users": 2, "contents": 5, "uc_rows": 8, "entities": 9, "relations": 3, "kg_triples": 6}


def test_recbole_metadata(fx):
    it = read_recbole(fx / "recbole").items
    assert it.loc[0, "genres"] == ("Animation", "Children's", "Comedy")  # apostrophe token kept whole
    assert it.loc[4, "genres"] == ("Crime", "Film-Noir", "Sci-Fi")
    assert it.loc[2, "genres"] == () and pd.isna(it.loc[2, "year"])  # "unknown" genre, "unkonwn" year
    assert it.loc[4, "title"] == "Seven (Se7en)" and it.loc[0, "year"] == 1995
    assert it.loc[3, "synopsis"].startswith('"Copycat" killer')  # quotes are text, not CSV quoting
    assert it["synopsis"].notna().tolist() == [True, False, False, True, True]
    assert str(it["year"].dtype) == "Int64"


def test_recbole_seed_changes_only_negatives(fx):
    a, b = read_recbole(fx / "recbole", seed=0), read_recbole(fx / "recbole", seed=0)
    assert np.array_equal(a.ratings, b.ratings)
    pos = lambda d: d.ratings[d.ratings[:, 2] == 1].tolist()  # noqa: E731
    for s in range(1, 6):
        assert pos(read_recbole(fx / "recbole", seed=s)) == pos(a)


def test_recbole_threshold(fx):
    ds = read_recbole(fx / "recbole", threshold=3)
    # with threshold 3, user "2" (rating 3 on item 1) becomes a user
    assert ds.user_raw_ids.tolist() == ["2", "7", "10"]
    with pytest.raises(DatasetError, match="no positive ratings"):
        read_recbole(fx / "recbole", threshold=6)


def test_recbole_bad_input(fx, tmp_path):
    d = copy_fixture(fx, "recbole", tmp_path)
    inter = d / "tiny.inter"
    text = inter.read_text()
    inter.write_text(text + "7\t3\n")
    with pytest.raises(DatasetError, match=r"tiny.inter:11: malformed line '7\\t3'"):
        read_recbole(d)
    inter.write_text(text + "7\t3\tfive\t1\n")
    with pytest.raises(DatasetError, match=r"tiny.inter:11: rating 'five' is not a number"):
        read_recbole(d)
    inter.write_text(text)
    link = d / "tiny.link"
    link.write_text(link.read_text() + "2\tm.99\n")
    with pytest.raises(DatasetError, match=r"tiny.link:7: duplicate item id '2'"):
        read_recbole(d)
    link.write_text("item_id:token\tentity_id:token\n1\tm.1\n2\tm.1\n")
    with pytest.raises(DatasetError, match=r"tiny.link:3: duplicate entity id 'm.1'"):
        read_recbole(d)
    link.write_text("item:token\tentity_id:token\n1\tm.1\n")
    with pytest.raises(DatasetError, match=r"tiny.link:1: header lacks column\(s\) \['item_id'\]"):
        read_recbole(d)
    link.unlink()
    with pytest.raises(DatasetError, match=r"missing file .*tiny.link"):
        read_recbole(d)


def test_recbole_unlinked_ratings_only_is_empty(fx, tmp_path):
    d = copy_fixture(fx, "recbole", tmp_path)
    (d / "tiny.link").write_text("item_id:token\tentity_id:token\n6\tm.6\n")  # item 6: rated 4 by user 7
    with pytest.warns(UserWarning, match="1 negatives could not be sampled"):
        ds = read_recbole(d)
    assert ds.n_items == 1 and ds.user_raw_ids.tolist() == ["7"]
    # one positive, and no unrated linked item remains -> the shortfall is counted, with a warning
    assert ds.provenance["negatives_short"] == 1
    (d / "tiny.link").write_text("item_id:token\tentity_id:token\n4\tm.4\n")  # only user 10 rated 4 (a 5)
    with pytest.warns(UserWarning, match="could not be sampled"):
        assert read_recbole(d).user_raw_ids.tolist() == ["10"]
    (d / "tiny.link").write_text("item_id:token\tentity_id:token\n99\tm.99\n")  # nobody rated 99
    with pytest.raises(DatasetError, match="empty after filtering"):
        read_recbole(d)


# --- Raw MovieLens-20M ---------------------------------------------------------------------
def test_ml20m_reader_hand_checked(fx):
    ds = read_ml20m_raw(fx / "ml20m")
    # items in item_index2entity_id.txt line order: movies 5, 1, 2, 3; movie 10 is unlinked
    assert ds.items["raw_id"].tolist() == ["5", "1", "2", "3"]
    # user 3's only positive is on movie 10 (unlinked): not a user
    assert ds.user_raw_ids.tolist() == ["1", "2", "5"]
    r = ds.ratings
    assert r[r[:, 2] == 1].tolist() == [[0, 1, 1], [1, 2, 1], [2, 0, 1]]
    neg = {u: i for u, i, _ in r[r[:, 2] == 0].tolist()}
    assert neg[0] in (0, 3) and neg[1] in (0, 1) and neg[2] in (1, 2, 3)  # never a rated movie
    assert ds.kg.tolist() == [[1, 0, 4], [0, 0, 4], [2, 1, 5], [5, 2, 6]]
    assert ds.relation_names.tolist() == ["film.film.genre", "film.film.director", "people.person.nationality"]
    assert ds.entity_raw_ids.tolist() == ["100", "101", "102", "103", "200", "300", "400"]
    assert ds.stats() == {"users": 3, "contents": 4, "uc_rows": 6, "entities": 7, "relations": 3, "kg_triples": 4}


def test_ml20m_metadata(fx):
    it = read_ml20m_raw(fx / "ml20m").items
    assert list(it.columns) == ["raw_id", "title", "year", "genres", "synopsis", "imdb_id", "tmdb_id"]
    assert it.loc[3, "title"] == "American President, The" and it.loc[3, "year"] == 1995  # quoted CSV field
    assert it.loc[0, "title"] == "Father of the Bride Part II" and pd.isna(it.loc[0, "year"])
    assert it.loc[0, "genres"] == () and it.loc[1, "genres"][:2] == ("Adventure", "Animation")
    assert it["imdb_id"].tolist() == ["0113041", "0114709", "0113497", "0112346"]  # leading zeros kept
    assert pd.isna(it.loc[0, "tmdb_id"]) and it["tmdb_id"].tolist()[1:] == [862, 8844, 9087]
    assert it["synopsis"].notna().tolist() == [False, True, False, False]  # empty synopsis = missing


def test_ml20m_bad_input(fx, tmp_path):
    d = copy_fixture(fx, "ml20m", tmp_path)
    p = d / "ratings.csv"
    text = p.read_text()
    p.write_text(text + "6,5\n")
    with pytest.raises(DatasetError, match=r"ratings.csv:10: malformed line '6,5'"):
        read_ml20m_raw(d)
    p.write_text(text + "6,five,4.0,1\n")
    with pytest.raises(DatasetError, match=r"ratings.csv:10: malformed line '6,five,4.0,1'"):
        read_ml20m_raw(d)
    p.write_text("user,movie,rating\n1,1,4\n")
    with pytest.raises(DatasetError, match=r"ratings.csv:1: header"):
        read_ml20m_raw(d)
    p.write_text(text)
    m = d / "item_index2entity_id.txt"
    m.write_text(m.read_text() + "1\t999\n")
    with pytest.raises(DatasetError, match=r"item_index2entity_id.txt:5: duplicate movie id"):
        read_ml20m_raw(d)
    m.unlink()
    with pytest.raises(DatasetError, match=r"missing file .*item_index2entity_id.txt"):
        read_ml20m_raw(d)


def test_ml20m_optional_metadata_files(fx, tmp_path):
    d = copy_fixture(fx, "ml20m", tmp_path)
    for f in ("movies.csv", "links.csv", "synopses.tsv"):
        (d / f).unlink()
    ds = read_ml20m_raw(d)
    assert list(ds.items.columns) == ["raw_id", "title", "year", "genres", "synopsis"]
    assert ds.metadata_coverage() == {"items": 4, "title": 0, "year": 0, "genres": 0, "synopsis": 0}


def test_detect_format(fx, tmp_path):
    assert detect_format(fx / "kgcn") == "kgcn"
    assert detect_format(fx / "recbole") == "recbole"
    assert detect_format(fx / "ml20m") == "ml20m-raw"
    assert detect_format(tmp_path) is None and detect_format(tmp_path / "nope") is None
    with pytest.raises(DatasetError, match="no dataset files found"):
        read_folder(tmp_path)


# --- KGCN conversion and the sampler ---------------------------------------------------------
def naive_negative_pool(user, item, rating, n_items):
    """Per raw user: set of items rated (any rating) -- a plain-Python reference."""
    rated = {}
    for u, i, _ in zip(user, item, rating):
        if i >= 0:
            rated.setdefault(u, set()).add(i)
    return rated


def test_kgcn_convert_against_naive_reference():
    rng = np.random.default_rng(1)
    n, n_items = 4000, 60
    user = rng.integers(100, 300, n)
    item = rng.integers(-1, n_items, n)  # -1 = unlinked
    rating = rng.choice([1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0], n)
    ratings, user_raw, info = kgcn_convert(user, item, rating, n_items, 4.0, np.random.default_rng(0))
    rated = naive_negative_pool(user, item, rating, n_items)
    positives = {}
    for u, i, r in zip(user, item, rating):
        if i >= 0 and r >= 4:
            positives.setdefault(u, set()).add(i)
    assert user_raw.tolist() == [str(u) for u in sorted(positives)]
    got_pos, got_neg = {}, {}
    for u, i, lab in ratings.tolist():
        (got_pos if lab else got_neg).setdefault(int(user_raw[u]), []).append(i)
    assert {u: set(v) for u, v in got_pos.items()} == positives
    for u, negs in got_neg.items():
        assert len(negs) == len(set(negs)) == len(positives[u])  # distinct, one per positive
        assert not set(negs) & rated[u]  # never an item the user rated, whatever the rating
    assert info["positives"] == info["negatives"] == sum(map(len, positives.values()))
    assert info["dropped_unlinked"] == int((item < 0).sum())


def test_sample_distinct_items_properties_and_exactness():
    rng = np.random.default_rng(0)
    n_items = 50
    users = np.arange(30)
    excl = sorted_unique(rng.integers(0, 30, 600) * n_items + rng.integers(0, n_items, 600))
    n_excl = np.bincount(excl // n_items, minlength=30)
    need = np.minimum(rng.integers(0, 40, 30), n_items - n_excl)  # some users need everything left
    u, i = sample_distinct_items(users, need, n_items, np.random.default_rng(3), exclude_keys=excl)
    keys = u * n_items + i
    assert len(np.unique(keys)) == len(keys) == need.sum()
    assert not np.isin(keys, excl).any()
    assert np.array_equal(np.bincount(u, minlength=30), need)
    # asking for more than is available returns all that is left
    u2, i2 = sample_distinct_items(np.array([0]), np.array([n_items]), n_items, np.random.default_rng(0), exclude_keys=excl)
    assert sorted(i2.tolist()) == sorted(set(range(n_items)) - set((excl[excl < n_items]).tolist()))


def test_sample_distinct_items_is_uniform():
    # one user, 10 items, items 0-1 excluded, 3 draws: each allowed item has probability 3/8
    counts = np.zeros(10)
    trials = 4000
    for s in range(trials):
        _, i = sample_distinct_items(np.array([0]), np.array([3]), 10, np.random.default_rng(s), exclude_keys=np.array([0, 1]))
        counts[i] += 1
    assert counts[:2].sum() == 0
    freq = counts[2:] / trials
    assert np.allclose(freq, 3 / 8, atol=0.04)


def test_sample_distinct_items_weighted_prefers_popular():
    p = np.array([100.0] + [1.0] * 99)
    _, i = sample_distinct_items(np.arange(200), np.ones(200, dtype=np.int64), 100, np.random.default_rng(0), p=p)
    assert (i == 0).mean() > 0.4  # expected 100/199


def test_no_runtime_warnings_on_clean_fixture(fx):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_recbole(fx / "recbole")
        read_ml20m_raw(fx / "ml20m")
        read_kgcn(fx / "kgcn")
