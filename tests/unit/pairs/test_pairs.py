"""Content-pair sampler (kgcl_lib.pairs): templates, selection, modes, KG sampler, cache, CLI.

No downloads: tiny random BERTs (tests/helpers/textmodels.py) for bi-/cross-encoders, a deterministic
hash "cross-encoder" where exact expectations are needed, and the packaged all-MiniLM-L6-v2 for
one semantic check.  Expectations come from naive per-anchor loops written here.
"""

from __future__ import annotations

import json
import os
import types
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kgcl_lib.pairs.build as build_mod
from kgcl_lib.data import DatasetError, KGDataset, empty_items
from kgcl_lib.pairs import (
    ContentPairs,
    CrossEncoderSkippedWarning,
    build_pairs,
    infer_domain,
    item_attributes,
    pair_keys,
    positive_overlap,
    top_k,
    verbalize,
)
from kgcl_lib.pairs.select import PairScoreMemo
from kgcl_lib.text import encode_texts
from tests.helpers.textmodels import title_pool, tiny_bert

torch.set_num_threads(1)

GENRES = ["Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Drama", "Fantasy", "Horror", "Musical",
          "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair-models")
    return {"bi": str(tiny_bert(root / "bi", head="st", seed=1)), "cross": str(tiny_bert(root / "cross", head="cross", seed=2))}


class HashScorer:
    """A deterministic stand-in cross-encoder: crc32 of the text pair, scaled to [0, 1)."""

    def __init__(self, fail_after: int | None = None):
        self.calls = 0
        self.pairs: list[tuple[str, str]] = []
        self.fail_after = fail_after

    @staticmethod
    def value(q: str, d: str) -> float:
        return zlib.crc32(f"{q}\0{d}".encode()) / 2**32

    def score(self, queries, docs, batch_size=64, progress=None):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated crash")
        self.pairs += list(zip(queries, docs))
        return np.array([self.value(q, d) for q, d in zip(queries, docs)], dtype=np.float64)

    def describe(self):
        return {"name": "hash-scorer", "fingerprint": "crc32-v1"}


def make_ds(genres, titles=None, years=None, kg=None, n_entities=None, name="ml-test") -> KGDataset:
    n = len(genres)
    items = empty_items(n)
    items["genres"] = pd.Series([tuple(g) for g in genres], dtype=object)
    if titles is not None:
        items["title"] = pd.Series(list(titles), dtype=object)
    if years is not None:
        items["year"] = pd.array(list(years), dtype="Int64")
    kg = np.zeros((0, 3), dtype=np.int64) if kg is None else np.asarray(kg, dtype=np.int64)
    n_ent = n_entities or max(n, int(kg[:, [0, 2]].max()) + 1 if len(kg) else n)
    return KGDataset(name=name, ratings=np.array([[0, 0, 1]], dtype=np.int64), kg=kg, n_users=1, n_items=n, n_entities=n_ent,
                     n_relations=int(kg[:, 1].max()) + 1 if len(kg) else 0, items=items, user_raw_ids=np.array(["u"], dtype=object),
                     relation_names=np.array([str(i) for i in range(int(kg[:, 1].max()) + 1 if len(kg) else 0)], dtype=object))


def random_ds(n=40, seed=0, missing=(3, 17), unique_titles=True) -> KGDataset:
    """``n`` movies with 1-3 random genres, distinct titles/years; items in ``missing`` lack genres."""
    rng = np.random.default_rng(seed)
    genres = [tuple(rng.choice(GENRES, size=rng.integers(1, 4), replace=False)) for _ in range(n)]
    for i in missing:
        genres[i] = ()
    titles = title_pool(n) if unique_titles else ["red night"] * n
    return make_ds(genres, titles=titles, years=rng.integers(1980, 2000, size=n))


# --------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------
def test_template_wording_exactly():
    ds = make_ds([("Comedy",), ("Action", "Comedy", "Drama"), (), ("unknown",), ("Animation", "Children's"), ("War",)],
                 titles=["Heat", "Get Shorty", "Nothing", "Unknown Film", "Toy Story (1995)", None],
                 years=[None, 1995, 1990, 1991, 1995, 1980])
    g = verbalize(ds, "genre")
    assert g.tolist() == ["The genre(s) of the film is Comedy.", "The genre(s) of the film are Action, Comedy, Drama.", None, None,
                          "The genre(s) of the film are Animation, Children's.", "The genre(s) of the film is War."]
    tg = verbalize(ds, "title_genre")
    assert tg.tolist() == [
        "A movie title is Heat. The genre(s) of the film is Comedy.",  # no year: the parenthesis is left out
        "A movie title is Get Shorty (1995). The genre(s) of the film are Action, Comedy, Drama.",
        None,  # no genre
        None,  # only the "unknown" placeholder
        "A movie title is Toy Story (1995). The genre(s) of the film are Animation, Children's.",  # year not repeated
        None,  # no title
    ]
    assert verbalize(ds, "genre", domain="book").iloc[0] == "The genre(s) of the book is Comedy."
    assert verbalize(ds, "title_genre", domain="book").iloc[1] == "A book title is Get Shorty (1995). The genre(s) of the book are Action, Comedy, Drama."
    assert isinstance(g.index, pd.RangeIndex) and len(g) == ds.n_items


def test_domain_inference_and_bad_arguments():
    assert infer_domain("ml-100k") == "movie" and infer_domain("ml-20m") == "movie" and infer_domain("book-crossing") == "book"
    with pytest.raises(ValueError, match="domain="):
        infer_domain("lastfm")
    ds = make_ds([("Comedy",)])
    with pytest.raises(ValueError, match="template"):
        verbalize(ds, "plot")
    with pytest.raises(ValueError, match="domain"):
        verbalize(ds, "genre", domain="music")


def test_missing_metadata_columns_are_a_clear_error():
    fake = types.SimpleNamespace(name="weird-movies", items=pd.DataFrame({"raw_id": ["1"], "title": ["x"]}))
    with pytest.raises(DatasetError, match=r"weird-movies: template 'title_genre' needs item column\(s\) \['year', 'genres'\]"):
        verbalize(fake, "title_genre")


def test_too_few_items_with_metadata(models):
    ds = make_ds([("Comedy",), ("War",), (), (), ()])
    with pytest.raises(DatasetError, match=r"only 2 of 5 items .* 2n\+1 = 3 .*sampler='kg'"):
        build_pairs(ds, n=1, bi_encoder=models["bi"], cross_encoder=None, cache=False, show_progress=False)


# --------------------------------------------------------------------------------------------
# Selection primitives
# --------------------------------------------------------------------------------------------
def test_top_k_matches_naive_sort_with_ties_and_exclusions():
    rng = np.random.default_rng(5)
    for _ in range(200):
        r, c = rng.integers(1, 5), rng.integers(2, 25)
        k = int(rng.integers(1, c))
        scores = rng.integers(0, 3, size=(r, c)).astype(float) if rng.random() < 0.6 else rng.normal(size=(r, c))
        keys = rng.random((r, c))
        excl = np.zeros((r, c), bool)
        excl[np.arange(r), rng.integers(0, c, size=r)] = True
        got = top_k(scores, k, keys, excl)
        for i in range(r):
            expect = sorted((j for j in range(c) if not excl[i, j]), key=lambda j: (-scores[i, j], keys[i, j]))[:k]
            assert got[i].tolist() == expect
    with pytest.raises(ValueError):
        top_k(np.zeros((1, 3)), 3, np.zeros((1, 3)), np.eye(1, 3, dtype=bool))


def test_pair_keys_are_seeded_uniform_and_order_sensitive():
    from scipy.stats import kstest

    a, b = np.meshgrid(np.arange(120), np.arange(120), indexing="ij")
    k = pair_keys(a, b, 7)
    assert k.shape == (120, 120) and k.min() >= 0 and k.max() < 1
    np.testing.assert_array_equal(k, pair_keys(a, b, 7))
    assert not np.array_equal(k, pair_keys(a, b, 8)) and not np.array_equal(k, k.T)
    assert len(np.unique(k)) == k.size
    assert kstest(k.ravel(), "uniform").pvalue > 1e-3


def test_score_memo_scores_each_distinct_pair_once():
    calls = []

    def scorer(q, d):
        calls.append(len(q))
        return q * 10.0 + d

    memo = PairScoreMemo(5)
    q = np.array([[0, 0, 1], [2, 0, 0]])
    d = np.array([[1, 1, 4], [3, 1, 2]])
    np.testing.assert_array_equal(memo(q, d, scorer), q * 10 + d)
    np.testing.assert_array_equal(memo(np.array([1, 0, 3]), np.array([4, 2, 3]), scorer), [14, 2, 33])
    assert calls == [4, 1] and memo.scored == 5  # (1, 4) and (0, 2) were known


# --------------------------------------------------------------------------------------------
# Text sampler
# --------------------------------------------------------------------------------------------
def _groups(table: pd.DataFrame, label: int) -> dict[int, list[int]]:
    t = table[table["label"] == label]
    return {int(a): g["other"].tolist() for a, g in t.groupby("anchor", sort=True)}


def _check_structure(pairs: ContentPairs, ds: KGDataset, template: str, n: int):
    t = pairs.table
    assert list(t.columns) == ["anchor", "other", "label", "score"]
    assert [str(x) for x in t.dtypes] == ["int64", "int64", "int8", "float32"]
    eligible = set(np.flatnonzero(verbalize(ds, template).notna().to_numpy()).tolist())
    assert set(t["anchor"]) == eligible and set(t["other"]) <= eligible  # items without metadata get no pairs
    assert not (t["anchor"] == t["other"]).any()  # no item is its own pair
    assert not t.duplicated(["anchor", "other"]).any()  # positives and negatives disjoint
    counts = t.groupby(["anchor", "label"]).size()
    assert (counts == n).all() and len(counts) == 2 * len(eligible)
    assert np.isfinite(t["score"]).all()


@pytest.mark.parametrize("mode", ["bi-encoder", "exhaustive", "retrieve-rerank"])
def test_every_mode_gives_well_formed_pairs(models, mode):
    ds = random_ds()
    kw = {"bi-encoder": dict(cross_encoder=None), "exhaustive": dict(cross_encoder=models["cross"], exhaustive=True),
          "retrieve-rerank": dict(cross_encoder=models["cross"], candidates=8)}[mode]
    p = build_pairs(ds, "title_genre", n=3, bi_encoder=models["bi"], cache=False, show_progress=False, **kw)
    assert p.provenance["mode"] == mode and p.provenance["items_with_metadata"] == 38
    assert p.provenance["bi_encoder"]["name"] == models["bi"] and p.provenance["paper_cc"] == 305_172
    _check_structure(p, ds, "title_genre", 3)


def _sentences_and_vectors(ds, template, bi):
    s = verbalize(ds, template)
    elig = np.flatnonzero(s.notna().to_numpy())
    vec = encode_texts(s.iloc[elig].tolist(), bi, show_progress=False)
    return elig, s.iloc[elig].tolist(), vec


def test_exhaustive_matches_naive_cross_ranking(models):
    ds = random_ds()
    scorer = HashScorer()
    p = build_pairs(ds, "title_genre", n=4, exhaustive=True, bi_encoder=models["bi"], cross_encoder=scorer, cache=False, show_progress=False)
    elig, sent, _ = _sentences_and_vectors(ds, "title_genre", models["bi"])
    pos, neg = _groups(p.table, 1), _groups(p.table, 0)
    for a, sa in zip(elig, sent):
        ranked = sorted(((HashScorer.value(sa, sb), int(b)) for b, sb in zip(elig, sent) if b != a), reverse=True)
        assert pos[a] == [b for _, b in ranked[:4]]  # best first
        assert sorted(neg[a]) == sorted(b for _, b in ranked[-4:])
    # Each ordered sentence pair reached the scorer at most once.
    assert len(scorer.pairs) == len(set(scorer.pairs))


def test_retrieve_then_rerank_matches_naive(models):
    ds = random_ds(seed=1)
    n, m_cand = 3, 7
    p = build_pairs(ds, "title_genre", n=n, candidates=m_cand, bi_encoder=models["bi"], cross_encoder=HashScorer(), cache=False,
                    show_progress=False)
    assert p.provenance["mode"] == "retrieve-rerank" and p.provenance["candidates"] == m_cand
    elig, sent, vec = _sentences_and_vectors(ds, "title_genre", models["bi"])
    pos, neg = _groups(p.table, 1), _groups(p.table, 0)
    for i, a in enumerate(elig):
        dots = sorted(((float(vec[i] @ vec[j]), j) for j in range(len(elig)) if j != i), reverse=True)
        cands = [j for _, j in dots[:m_cand]]
        reranked = sorted(cands, key=lambda j: -HashScorer.value(sent[i], sent[j]))
        assert pos[a] == [int(elig[j]) for j in reranked[:n]]
        assert sorted(neg[a]) == sorted(int(elig[j]) for _, j in dots[-n:])
    # The score column holds cross-encoder scores for negatives too.
    row = p.negatives.iloc[0]
    expect = HashScorer.value(sent[list(elig).index(row.anchor)], sent[list(elig).index(row.other)])
    assert row.score == pytest.approx(expect, rel=1e-6)


def test_candidates_covering_catalogue_switch_to_exhaustive(models):
    ds = random_ds()
    a = build_pairs(ds, "title_genre", n=3, candidates=40, bi_encoder=models["bi"], cross_encoder=HashScorer(), cache=False, show_progress=False)
    b = build_pairs(ds, "title_genre", n=3, exhaustive=True, bi_encoder=models["bi"], cross_encoder=HashScorer(), cache=False, show_progress=False)
    assert a.provenance["mode"] == "exhaustive"
    pd.testing.assert_frame_equal(a.table, b.table)
    assert positive_overlap(b, a) == {"anchors": 38, "overlap": 1.0, "overlap_tie_aware": 1.0}


def test_bi_encoder_only_ranking_matches_naive(models):
    ds = random_ds(seed=2)
    p = build_pairs(ds, "title_genre", n=2, bi_encoder=models["bi"], cross_encoder=None, cache=False, show_progress=False)
    assert p.provenance["cross_encoder"]["skipped"].startswith("disabled") and p.provenance["score"] == "bi-encoder dot product"
    elig, _, vec = _sentences_and_vectors(ds, "title_genre", models["bi"])
    pos = _groups(p.table, 1)
    for i, a in enumerate(elig):
        dots = sorted(((float(vec[i] @ vec[j]), int(elig[j])) for j in range(len(elig)) if j != i), reverse=True)
        assert pos[a] == [b for _, b in dots[:2]]
    first = p.positives.iloc[0]
    i, j = list(elig).index(first.anchor), list(elig).index(first.other)
    assert first.score == pytest.approx(float(vec[i] @ vec[j]), rel=1e-5)


def test_unloadable_cross_encoder_is_skipped_loudly(models):
    ds = random_ds()
    with pytest.warns(CrossEncoderSkippedWarning, match="no-such/cross-encoder"):
        p = build_pairs(ds, "genre", n=2, bi_encoder=models["bi"], cross_encoder="no-such/cross-encoder", cache=False, show_progress=False)
    prov = p.provenance
    assert prov["mode"] == "bi-encoder" and prov["cross_encoder"]["name"] is None
    assert prov["cross_encoder"]["requested"] == "no-such/cross-encoder" and "no-such/cross-encoder" in prov["cross_encoder"]["skipped"]
    assert p.summary()["cross_encoder"] is None


def test_deterministic_given_seed_and_ties_broken_by_seed(models):
    ds = random_ds(n=60, seed=4, missing=())  # genre template: many identical sentences -> ties
    kw = dict(n=5, bi_encoder=models["bi"], cross_encoder=models["cross"], candidates=12, cache=False, show_progress=False)
    a = build_pairs(ds, "genre", seed=7, **kw)
    b = build_pairs(ds, "genre", seed=7, **kw)
    c = build_pairs(ds, "genre", seed=np.random.default_rng(8), **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table["other"].equals(c.table["other"])
    _check_structure(c, ds, "genre", 5)
    assert c.provenance["seed"]["from_generator"] >= 0


@pytest.mark.parametrize("chunk", [1, 7, 256, 10**6])
@pytest.mark.parametrize("cross", ["hash", None])
def test_chunking_does_not_change_the_pairs(models, monkeypatch, chunk, cross):
    # The genre template repeats sentences: many exact ties that only the seeded key may break.
    ds = random_ds(n=50, seed=6, missing=(0,))
    kw = dict(n=3, candidates=9, bi_encoder=models["bi"], cache=False, show_progress=False)
    monkeypatch.setattr(build_mod, "ANCHOR_CHUNK", 10**6)
    whole = build_pairs(ds, "genre", cross_encoder=HashScorer() if cross else None, **kw)
    monkeypatch.setattr(build_mod, "ANCHOR_CHUNK", chunk)
    pd.testing.assert_frame_equal(build_pairs(ds, "genre", cross_encoder=HashScorer() if cross else None, **kw).table, whole.table)


def test_fixed_point_dot_products_are_exact_and_order_free():
    from kgcl_lib.pairs.select import fixed_point

    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 384)).astype(np.float32)
    x[7] = x[3]  # an identical sentence
    q, scale = fixed_point(x)
    assert np.array_equal(q, np.rint(q)) and np.abs(q).max() <= 2.0**21  # d = 384 -> q = 21 bits
    full = q @ q.T
    # any row chunking / summation order gives the same bits (integers below 2**53 add exactly)
    for rows in (slice(0, 1), slice(5, 12), slice(0, 40)):
        assert np.array_equal(q[rows] @ q.T, full[rows])
    perm = rng.permutation(384)
    assert np.array_equal(q[:, perm] @ q[:, perm].T, full)
    exact = np.array([[sum(int(a) * int(b) for a, b in zip(q[i], q[j])) for j in range(5)] for i in range(5)], dtype=np.float64)
    assert np.array_equal(full[:5, :5], exact)
    assert np.array_equal(full[7], full[3]) and full[3, 7] == full[3, 3]
    # and it approximates the float dot product to well below float32 resolution of the scores
    ref = x.astype(np.float64) @ x.astype(np.float64).T
    assert np.abs(full / scale**2 - ref).max() < 1e-4 * np.abs(ref).max()


def test_cache_hit_on_rerun_and_resume_after_crash(models, monkeypatch):
    monkeypatch.setattr(build_mod, "ANCHOR_CHUNK", 8)  # 38 anchors -> 5 checkpointed chunks
    ds = random_ds()
    kw = dict(n=3, candidates=6, bi_encoder=models["bi"], show_progress=False)
    fresh = build_pairs(ds, "title_genre", cross_encoder=HashScorer(), cache=False, **kw)
    full_calls = HashScorer()
    build_pairs(ds, "title_genre", cross_encoder=full_calls, cache=False, **kw)

    crashing = HashScorer(fail_after=5)  # two memo calls per chunk: dies in chunk 3
    with pytest.raises(KeyboardInterrupt):
        build_pairs(ds, "title_genre", cross_encoder=crashing, **kw)
    parts = list((Path(os.environ["KGCL_CACHE_DIR"]) / "pairs").glob("*.parts/text-*.npz"))
    assert len(parts) == 2
    resumed_scorer = HashScorer()
    resumed = build_pairs(ds, "title_genre", cross_encoder=resumed_scorer, **kw)
    assert resumed_scorer.calls == full_calls.calls - 4 and not resumed.provenance["cache_hit"]
    pd.testing.assert_frame_equal(resumed.table, fresh.table)
    assert resumed.path.is_file() and json.loads(resumed.path.with_suffix(".json").read_text())["pairs"] == len(fresh.table)
    assert not list((Path(os.environ["KGCL_CACHE_DIR"]) / "pairs").glob("*.parts"))

    untouched = HashScorer(fail_after=0)  # any scoring would raise
    hit = build_pairs(ds, "title_genre", cross_encoder=untouched, **kw)
    assert hit.provenance["cache_hit"] and untouched.calls == 0
    pd.testing.assert_frame_equal(hit.table, fresh.table)
    other_n = build_pairs(ds, "title_genre", cross_encoder=HashScorer(), **{**kw, "n": 2})
    assert not other_n.provenance["cache_hit"]  # parameters are part of the key


def test_semantic_check_with_packaged_minilm():
    ds = make_ds([("Animation", "Children's"), ("Animation", "Children's", "Musical"), ("War", "Drama"), ("Horror", "Thriller"),
                  ("Western",), ("Documentary",), ("Crime", "Film-Noir")])
    sent = verbalize(ds, "genre").tolist()
    vec = encode_texts(sent, "sentence-transformers/all-MiniLM-L6-v2", device="cpu", show_progress=False)
    assert vec[0] @ vec[1] > vec[0] @ vec[2] + 0.1  # Animation/Children's closer to Animation/Children's/Musical than to War/Drama
    p = build_pairs(ds, "genre", n=1, bi_encoder="sentence-transformers/all-MiniLM-L6-v2", cross_encoder=None, cache=False, show_progress=False)
    assert _groups(p.table, 1)[0] == [1] and _groups(p.table, 1)[1] == [0]


# --------------------------------------------------------------------------------------------
# KG-attribute sampler
# --------------------------------------------------------------------------------------------
def _kg_ds():
    # items 0..5, attribute entities 6..9; item 5 has no KG edge; (6, r, 2) points *to* the item.
    triples = [(0, 0, 6), (0, 1, 7), (1, 0, 6), (1, 1, 7), (6, 0, 2), (3, 0, 8), (4, 0, 9), (0, 0, 6)]
    genres = [("Comedy",), (), ("Drama",), (), ("War",), ("Comedy",)]
    return make_ds(genres, kg=triples, n_entities=10)


def test_item_attributes_are_kg_neighbours_as_a_set():
    a = item_attributes(_kg_ds()).toarray()
    expect = np.zeros((6, 10))
    for i, ents in {0: [6, 7], 1: [6, 7], 2: [6], 3: [8], 4: [9]}.items():
        expect[i, ents] = 1
    np.testing.assert_array_equal(a, expect)


def test_kg_sampler_jaccard_positives_and_zero_overlap_negatives():
    ds = _kg_ds()
    p = build_pairs(ds, sampler="kg", n=2, cache=False, show_progress=False)
    attrs = {0: {6, 7}, 1: {6, 7}, 2: {6}, 3: {8}, 4: {9}}

    def jac(a, b):
        return len(attrs[a] & attrs[b]) / len(attrs[a] | attrs[b])

    pos, neg = _groups(p.table, 1), _groups(p.table, 0)
    assert pos[0] == [1, 2] and pos[1] == [0, 2] and sorted(pos[2]) == [0, 1]
    assert 3 not in pos and 4 not in pos  # nothing shared -> no positive
    for a in attrs:
        assert len(neg[a]) == 2 and all(jac(a, b) == 0 for b in neg[a]) and a not in neg[a]
    assert 5 not in set(p.table["anchor"]) | set(p.table["other"])  # no attributes, no pairs
    s = p.positives.set_index(["anchor", "other"])["score"]
    assert s[(0, 1)] == pytest.approx(1.0) and s[(0, 2)] == pytest.approx(0.5) and s[(2, 1)] == pytest.approx(0.5)
    assert p.provenance["mode"] == "kg" and p.provenance["items_with_metadata"] == 5


def test_text_plus_kg_fills_items_without_genres(models):
    ds = _kg_ds()
    p = build_pairs(ds, "genre", sampler="text+kg", n=1, bi_encoder=models["bi"], cross_encoder=None, cache=False, show_progress=False)
    anchors = set(p.table["anchor"])
    assert anchors == {0, 2, 4, 5, 1, 3}  # text anchors 0, 2, 4, 5 (genres) + KG anchors 1, 3 (no genres)
    kg_rows = p.table[p.table["anchor"].isin([1, 3])]
    assert _groups(kg_rows, 1) == {1: [0]}  # item 1's best Jaccard partner; item 3 shares nothing
    assert p.provenance["kg_anchors"] == 2 and p.provenance["items_with_metadata"] == 4


# --------------------------------------------------------------------------------------------
# Overlap measure and CLI
# --------------------------------------------------------------------------------------------
def test_positive_overlap_hand_computed():
    ref = pd.DataFrame({"anchor": [0, 0, 0, 0, 1, 1], "other": [1, 2, 3, 9, 5, 6], "label": [1, 1, 1, 0, 1, 1], "score": [3, 2, 1, -5, 4, 4.0]})
    cand = pd.DataFrame({"anchor": [0, 0, 0, 1, 1], "other": [1, 2, 4, 6, 7], "label": [1, 1, 1, 1, 1], "score": [3, 2, 1, 4, 0.5]})
    got = positive_overlap(ref, cand)
    # anchor 0: {1,2} of {1,2,3} -> 2/3, item 4 ties the 3rd score -> 1; anchor 1: {6} of {5,6} -> 1/2 both ways.
    assert got["anchors"] == 2
    assert got["overlap"] == pytest.approx((2 / 3 + 1 / 2) / 2) and got["overlap_tie_aware"] == pytest.approx((1 + 1 / 2) / 2)
    assert positive_overlap(ref, ref)["overlap"] == 1.0


def test_cli_prints_the_required_json(models, monkeypatch, capsys):
    import kgcl_lib.pairs.__main__ as pairs_cli
    from kgcl_lib.pairs.__main__ import main

    seen = {}

    def fake_load(name, data_dir=None):
        seen.update(name=name, data_dir=data_dir)
        return random_ds()

    monkeypatch.setattr(pairs_cli, "load_dataset", fake_load)
    rc = main(["--dataset", "ml-test", "--data-dir", "somewhere", "--template", "genre", "--n", "2", "--candidates", "5",
               "--bi-encoder", models["bi"], "--cross-encoder", models["cross"], "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and seen == {"name": "ml-test", "data_dir": "somewhere"}
    for key in ("items_with_metadata", "pairs", "positives", "negatives", "bi_encoder", "cross_encoder", "seconds"):
        assert key in out
    assert out["items_with_metadata"] == 38 and out["pairs"] == 38 * 4 and out["positives"] == out["negatives"] == 76
    assert out["cross_encoder"] == models["cross"] and out["paper_cc"] == 336_176 and out["mode"] == "retrieve-rerank"
    rc = main(["--dataset", "ml-test", "--template", "genre", "--bi-encoder", models["bi"], "--cross-encoder", models["cross"], "--candidates", "12"])
    text = capsys.readouterr().out
    assert rc == 0 and "c-c pairs: 760" in text and "336,176" in text


@pytest.mark.slow
def test_cli_on_real_movielens_100k(capsys, data_dir):
    if not (data_dir / "ml-100k" / "ml-100k.item").is_file():
        pytest.skip(f"real data not found under {data_dir}/ml-100k")
    import kgcl_lib.data
    from kgcl_lib.pairs.__main__ import main

    args = ["--dataset", "ml-100k", "--data-dir", str(data_dir), "--bi-encoder", "sentence-transformers/all-MiniLM-L6-v2", "--cross-encoder", "none", "--json"]
    ds = kgcl_lib.data.load_dataset("ml-100k", data_dir=data_dir)
    # Independent counts: items with a real genre; with a title too for title_genre.
    has_genre = ds.items["genres"].map(lambda g: any(x.lower() != "unknown" for x in g)).to_numpy()
    has_title = ds.items["title"].map(lambda t: isinstance(t, str) and bool(t.strip())).to_numpy()
    for template, expect in (("genre", has_genre.sum()), ("title_genre", (has_genre & has_title).sum())):
        assert main([*args, "--template", template]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["items_with_metadata"] == expect and out["pairs"] == 20 * expect and out["positives"] == 10 * expect
        assert out["bi_encoder"] == "sentence-transformers/all-MiniLM-L6-v2" and out["cross_encoder"] is None
