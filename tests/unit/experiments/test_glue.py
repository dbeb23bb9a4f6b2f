"""The glue between the library's parts that produces every table number, on hand-built inputs.

* :func:`kgcl_lib.experiments.evaluate` on a KGCN whose scores are set by hand (known top-K ->
  known Recall/NDCG, diversity, alignment, uniformity, cold-start NDCG);
* :func:`~kgcl_lib.experiments.test_users_and_truth` (which users are evaluated, what is masked);
* :func:`~kgcl_lib.experiments.content_pairs`' fallback to KG-attribute pairs;
* :func:`~kgcl_lib.experiments.with_substitute_text`;
* the batch plan's mapping of contrastive pair items to local rows (compiled and pure torch);
* :func:`~kgcl_lib.experiments.ensure_llm_synopses` with stand-in and tiny generators;
* :func:`kgcl_lib.report.format_table`'s merged-cell row labels (Markdown and LaTeX alike).
"""

from __future__ import annotations

import dataclasses
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from kgcl_lib import experiments as X
from kgcl_lib.data import DatasetError
from kgcl_lib.data.split import Split
from kgcl_lib.model import KGCN, ModelConfig

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- evaluate
# Item representations r_i (what the KGCN propagation yields, see scored_model) and users u:
# the KGCN score of (u, i) is sigmoid(u · r_i).
R = np.array([[0.9, -0.5], [0.7, 0.8], [0.5, 0.1], [0.3, 0.6], [0.1, 0.9], [-0.2, 0.2]])
U = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])


def scored_model() -> KGCN:
    """A KGCN whose scores are ``sigmoid(U[u] · R[i])`` exactly.

    L = 1, K = 1, ``sum`` aggregator, W = −I, b = 0; every entity's only neighbour is entity 6
    whose row is 0, so ``v_u = tanh(W (e_i + 0)) = tanh(−e_i)``; with ``e_i = −atanh(R[i])``
    that is ``R[i]``.  The content embeddings (the entity rows) are ``−atanh(R)``, so the ``dot``
    scoring ``u · e_i`` ranks the items in the opposite order.
    """
    n_items, n_entities = 6, 7
    adj = torch.full((n_entities, 1), 6, dtype=torch.int64)
    m = KGCN(ModelConfig(dim=2, n_iter=1, n_neighbors=1, aggregator="sum"), n_users=4, n_entities=n_entities,
             n_relations=1, n_items=n_items, adj_entity=adj, adj_relation=torch.zeros_like(adj))
    with torch.no_grad():
        m.user_emb.copy_(torch.tensor(U, dtype=torch.float32))
        m.entity_emb.copy_(torch.tensor(np.vstack([-np.arctanh(R), [[0.0, 0.0]]]), dtype=torch.float32))
        m.agg_weights[0].copy_(-torch.eye(2))
        m.agg_biases[0].zero_()
    return m


def hand_split() -> Split:
    """Rows ``(user, item, label)``.

    * train: u0 +0; u1 +4 +2; u2 −2 (a negative: neither masked nor activity); u3 +1
    * valid: u0 +1; u2 +1
    * test:  u0 +3 −5; u1 +1 +5; u2 +4; u3 −0 (no test positive: not a test user)
    """
    a = lambda rows: np.array(rows, dtype=np.int64)  # noqa: E731
    return Split(train=a([[0, 0, 1], [1, 4, 1], [1, 2, 1], [2, 2, 0], [3, 1, 1]]),
                 valid=a([[0, 1, 1], [2, 1, 1]]),
                 test=a([[0, 3, 1], [0, 5, 0], [1, 1, 1], [1, 5, 1], [2, 4, 1], [3, 0, 0]]))


def test_test_users_and_truth_masking():
    users, truth, exclude = X.test_users_and_truth(hand_split(), n_users=4, n_items=6)
    np.testing.assert_array_equal(users, [0, 1, 2])  # u3 has only a test negative
    assert truth.shape == (3, 6) and exclude.shape == (4, 6)
    assert [sorted(truth[i].indices.tolist()) for i in range(3)] == [[3], [1, 5], [4]]
    # default (KGCN's topk_eval): every item of the user's training rows, the negative u2 −2
    # included; valid and test rows are not masked
    assert [sorted(exclude[u].indices.tolist()) for u in range(4)] == [[0], [2, 4], [2], [1]]
    # the earlier mask: train + valid positives; negatives (u2's item 2) and test rows are not masked
    _, _, old = X.test_users_and_truth(hand_split(), n_users=4, n_items=6, mask="train_valid_positives")
    assert [sorted(old[u].indices.tolist()) for u in range(4)] == [[0, 1], [2, 4], [1], [1]]


def test_test_users_and_truth_duplicates_and_row_alignment():
    """Row i of truth belongs to users[i] even when users are not 0..n−1; repeated rows collapse."""
    a = lambda rows: np.array(rows, dtype=np.int64)  # noqa: E731
    split = Split(train=a([[5, 0, 1], [5, 0, 1]]), valid=a([[2, 3, 0]]), test=a([[5, 2, 1], [2, 1, 1], [2, 1, 1], [7, 0, 0]]))
    users, truth, exclude = X.test_users_and_truth(split, n_users=8, n_items=4)
    np.testing.assert_array_equal(users, [2, 5])
    assert truth[0].indices.tolist() == [1] and truth[1].indices.tolist() == [2]
    assert truth.nnz == 2
    assert exclude[5].indices.tolist() == [0] and exclude[2].nnz == 0 and exclude.nnz == 1


def test_scored_model_scores_are_the_planted_ones():

    got = scored_model().score_all(torch.arange(4)).numpy()
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(U @ R.T))), atol=1e-6)


def test_evaluate_hand_computed():
    ds = SimpleNamespace(n_users=4, n_items=6)
    # the train+valid-positive mask (the hand computation below); it also checks that evaluate
    # passes ev.mask on (KGCN's default mask would give other lists, see the masking test)
    ev = X.EvalConfig(ks=(1, 2), diversity_k=2, topk=3, scoring="kgcn", ndcg="jurity", percentiles=(50, 100), cold_k=3,
                      mask="train_valid_positives")
    model = scored_model()
    align_pairs = np.array([[0, 1], [2, 3]])
    metrics, arrays = X.evaluate(ds, hand_split(), model, ev, align_pairs)

    # Ranking by U·R minus train+valid positives:
    #   u0 (by r[:,0]): 0 1 2 3 4 5, minus {0,1} -> 2 3 4
    #   u1 (by r[:,1]): 4 1 3 5 2 0, minus {2,4} -> 1 3 5
    #   u2 (by sum):    1 4 3 2 0 5, minus {1}   -> 4 3 2
    np.testing.assert_array_equal(arrays["topk"], [[2, 3, 4], [1, 3, 5], [4, 3, 2]])
    np.testing.assert_array_equal(arrays["test_users"], [0, 1, 2])
    assert metrics["n_test_users"] == 3
    # truth: u0 {3}, u1 {1, 5}, u2 {4}
    inv = 1 / math.log2(3)  # discount of rank 2
    assert metrics["recall@1"] == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert metrics["recall@2"] == pytest.approx((1 + 1 / 2 + 1) / 3)
    # jurity NDCG: IDCG over all of a user's positives (u1: 1 + 1/log2 3)
    assert metrics["ndcg@1"] == pytest.approx((0 + 1 / (1 + inv) + 1) / 3)
    assert metrics["ndcg@2"] == pytest.approx((inv + 1 / (1 + inv) + 1) / 3)
    # Inter@2 over lists {2,3}, {1,3}, {4,3}: every pair shares one of two items -> 1 − 1/2
    assert metrics["inter@2"] == pytest.approx(0.5)
    emb = -np.arctanh(R)  # content embeddings = entity rows (no text)
    np.testing.assert_allclose(arrays["content_emb"], emb, atol=1e-6)

    def cos(i, j):
        return emb[i] @ emb[j] / np.linalg.norm(emb[i]) / np.linalg.norm(emb[j])

    assert metrics["intra@2"] == pytest.approx(np.mean([1 - cos(2, 3), 1 - cos(1, 3), 1 - cos(4, 3)]), abs=1e-6)
    assert metrics["alignment"] == pytest.approx(np.mean([2 - 2 * cos(0, 1), 2 - 2 * cos(2, 3)]), abs=1e-6)
    pair_terms = [math.exp(-2 * (2 - 2 * cos(i, j))) for i in range(6) for j in range(i + 1, 6)]
    assert metrics["uniformity"] == pytest.approx(math.log(np.mean(pair_terms)), abs=1e-6)
    # Cold start, NDCG@3: u0 hit at rank 2 -> 1/log2 3; u1 hits at ranks 1, 3 -> (1 + 1/2) / (1 + 1/log2 3);
    # u2 -> 1.  Train positives (activity): u0 1, u1 2, u2 0 -> 50 % bucket = ceil(1.5) = 2 least
    # active = {u2, u0}; 100 % = all.
    nd = [inv, 1.5 / (1 + inv), 1.0]
    assert metrics["cold_ndcg@3_p50"] == pytest.approx((nd[2] + nd[0]) / 2)
    assert metrics["cold_ndcg@3_p100"] == pytest.approx(np.mean(nd))
    assert metrics["ndcg_convention"] == "jurity"


def test_evaluate_passes_scoring_mode_and_convention():
    """``dot`` scoring ranks by u · e_i = −u · atanh(r_i) (reversed); ``standard`` NDCG@1 of u1 is 1."""
    ds = SimpleNamespace(n_users=4, n_items=6)
    ev = X.EvalConfig(ks=(1,), diversity_k=2, topk=3, scoring="dot", ndcg="standard", percentiles=(100,), cold_k=3,
                      mask="train_valid_positives")
    metrics, arrays = X.evaluate(ds, hand_split(), scored_model(), ev, None)
    # u0: 5 4 3 (2 1 0); u1: 0 (2) 5 3 1 (4); u2: 5 2 0 3 4 (1)  -- parentheses: masked
    np.testing.assert_array_equal(arrays["topk"], [[5, 4, 3], [0, 5, 3], [5, 2, 0]])
    assert math.isnan(metrics["alignment"])  # no pairs given
    ev2 = dataclasses.replace(ev, scoring="kgcn")
    metrics2, _ = X.evaluate(ds, hand_split(), scored_model(), ev2, None)
    assert metrics2["ndcg@1"] == pytest.approx((0 + 1 + 1) / 3)  # standard IDCG: min(K, |P|) = 1 positive
    assert metrics2["ndcg_convention"] == "standard"


# ----------------------------------------------------------------------------- content pairs
def _no_metadata(ds):
    items = ds.items.copy()
    items["genres"] = [()] * len(items)
    items["title"] = pd.array([pd.NA] * len(items), dtype=object)
    return dataclasses.replace(ds, items=items)


def test_content_pairs_falls_back_to_kg_pairs(tiny_dataset, tmp_path, kgcl_cache, monkeypatch):
    """n = 3 needs 2n+1 = 7 items with genres; tiny has 5 -> DatasetError -> KG-attribute pairs.

    Item attributes (KG neighbours, both directions): 0 {6, 8}, 1 {6}, 2 {7, 8}, 3 {7}, 4 {6};
    item 5 has none.  Positives = top-3 with Jaccard > 0: 0 -> 1 (1/2), 4 (1/2), 2 (1/3);
    1 -> 4 (1), 0 (1/2); 2 -> 3 (1/2), 0 (1/3); 3 -> 2 (1/2); 4 -> 1 (1), 0 (1/2).
    """
    pairs = X.content_pairs(tmp_path, tiny_dataset, "genre", n=3)
    t = pairs.table
    assert pairs.provenance["sampler"] == "kg"
    pos = set(map(tuple, t.loc[t["label"] == 1, ["anchor", "other"]].to_numpy().tolist()))
    assert pos == {(0, 1), (0, 4), (0, 2), (1, 4), (1, 0), (2, 3), (2, 0), (3, 2), (4, 1), (4, 0)}
    attrs = {0: {6, 8}, 1: {6}, 2: {7, 8}, 3: {7}, 4: {6}, 5: set()}
    neg = t.loc[t["label"] == 0, ["anchor", "other"]].to_numpy()
    assert len(neg) and all(not (attrs[a] & attrs[o]) and a != o for a, o in neg)
    # stored under results_dir and reused: a second call does not build again
    assert (tmp_path / "pairs" / "tiny__genre.parquet").is_file()

    def boom(*a, **k):
        raise AssertionError("build_pairs called although the stored pairs match")

    monkeypatch.setattr("kgcl_lib.experiments.inputs.build_pairs", boom)
    again = X.content_pairs(tmp_path, tiny_dataset, "genre", n=3)
    pd.testing.assert_frame_equal(again.table, t)
    assert again.provenance == json.loads(json.dumps(pairs.provenance, default=str))


def test_content_pairs_fallback_keeps_the_other_options(tiny_dataset, tmp_path, monkeypatch):
    from kgcl_lib.pairs import ContentPairs

    calls = []

    def one_pair():
        return ContentPairs(pd.DataFrame({"anchor": [0], "other": [1], "label": np.int8([1]), "score": np.float32([1.0])}),
                            {"sampler": "kg"})

    def fake_build_pairs(ds, **kw):
        calls.append(kw)
        if kw.get("sampler", "text") != "kg":
            raise DatasetError("too little metadata")
        return one_pair()

    monkeypatch.setattr("kgcl_lib.experiments.inputs.build_pairs", fake_build_pairs)
    X.content_pairs(tmp_path, tiny_dataset, "title_genre", n=2, seed=5)
    assert calls == [{"template": "title_genre", "n": 2, "seed": 5, "domain": "movie"},
                     {"template": "title_genre", "n": 2, "seed": 5, "domain": "movie", "sampler": "kg"}]
    # metadata present and the text sampler succeeds: no fallback call
    calls.clear()
    monkeypatch.setattr("kgcl_lib.experiments.inputs.build_pairs", lambda ds, **kw: calls.append(kw) or one_pair())
    X.content_pairs(tmp_path, tiny_dataset, "genre", n=2)
    assert calls == [{"template": "genre", "n": 2, "domain": "movie"}]


# ----------------------------------------------------------------------------- substitute text
def test_with_substitute_text(tiny_dataset):
    assert X.with_substitute_text(tiny_dataset) is tiny_dataset  # has synopses: unchanged
    items = tiny_dataset.items.copy()
    items["synopsis"] = pd.array([pd.NA] * len(items), dtype=object)
    bare = dataclasses.replace(tiny_dataset, name="ml-tiny", items=items)
    sub = X.with_substitute_text(bare)
    assert sub is not bare and bare.items["synopsis"].isna().all()  # the input is not modified
    assert sub.items["synopsis"].tolist()[:4] == [
        "A movie title is Toy Story (1995). The genre(s) of the film are Animation, Comedy.",
        "A movie title is GoldenEye (1995). The genre(s) of the film are Action, Thriller.",
        "A movie title is Four Rooms. The genre(s) of the film is Comedy.",  # no year
        "A movie title is Get Shorty (1995). The genre(s) of the film are Comedy, Drama.",
    ]
    assert pd.isna(sub.items["synopsis"].iloc[5])  # item 5 has no genres: no substitute
    book = X.with_substitute_text(dataclasses.replace(bare, name="book-tiny"))
    assert book.items["synopsis"].iloc[2] == "A book title is Four Rooms. The genre(s) of the book is Comedy."
    no_titles = _no_metadata(bare)
    assert X.with_substitute_text(no_titles) is no_titles  # nothing to verbalise


# ----------------------------------------------------------------------------- batch plan
def _plan_model():
    from kgcl_lib.data import sample_neighbors

    rng = np.random.default_rng(3)
    n_entities, n_items = 30, 12
    kg = np.stack([rng.integers(0, n_entities, 60), rng.integers(0, 3, 60), rng.integers(0, n_entities, 60)], 1)
    nt = sample_neighbors(kg, n_entities, 3, 2, rng)
    has_text = torch.tensor([i % 3 != 0 for i in range(n_items)])
    tv = torch.randn(n_items, 5, generator=torch.Generator().manual_seed(0)) * has_text[:, None]
    return KGCN(ModelConfig(dim=4, n_iter=2, n_neighbors=2, text_dim=5), n_users=7, n_entities=n_entities, n_relations=3,
                n_items=n_items, adj_entity=torch.from_numpy(nt.entities), adj_relation=torch.from_numpy(nt.relations),
                text_vectors=tv, has_text=has_text)


@pytest.mark.parametrize("compiled", [True, False])
def test_plan_maps_pair_items_to_their_local_rows(compiled):
    """Every content-pair item's local row is that item's row: in ``text_ids`` for text items,
    in ``plain_ids`` (after the text block) otherwise -- also for items outside the batch's
    receptive fields and for repeats; the local table row equals the item's content embedding."""
    from kgcl_lib.model import kernels

    if compiled and kernels.cpp_kernels() is None:
        pytest.skip("compiled kernels unavailable")
    m = _plan_model()
    m.use_kernels = compiled
    users, items = torch.tensor([6, 1, 6, 3]), torch.tensor([0, 4, 4, 7])
    extra = torch.tensor([11, 0, 5, 11, 9, 3, 2])  # anchors then others; 11 twice; 0 also a batch item
    plan = m.plan(users, items, extra)
    n_t = len(plan.text_ids)
    local_to_global = torch.cat([plan.text_ids, plan.plain_ids])
    assert torch.equal(local_to_global[plan.extra], extra)
    assert bool(m.text_entity[plan.text_ids].all()) and not bool(m.text_entity[plan.plain_ids].any())
    assert torch.equal(plan.text_ids, plan.text_ids.sort().values) and torch.equal(plan.plain_ids, plan.plain_ids.sort().values)
    assert (plan.extra[m.text_entity[extra]] < n_t).all() and (plan.extra[~m.text_entity[extra]] >= n_t).all()
    # receptive field and users map back to the global ones
    field, relations = m.receptive_field(items)
    assert torch.equal(local_to_global[plan.field], field) and torch.equal(plan.relations, relations)
    assert torch.equal(plan.user_ids[plan.users], users) and torch.equal(plan.user_ids, torch.tensor([1, 3, 6]))
    with torch.no_grad():
        table = m.local_table(plan, m.entity_emb.index_select(0, plan.plain_ids))
        torch.testing.assert_close(table[plan.extra], m.content_embeddings(extra))


def test_compiled_plan_equals_pure_torch_plan():
    from kgcl_lib.model import kernels

    if kernels.cpp_kernels() is None:
        pytest.skip("compiled kernels unavailable")
    m = _plan_model()
    users, items = torch.tensor([2, 2, 0, 5, 1]), torch.tensor([3, 8, 8, 11, 0])
    extra = torch.tensor([1, 2, 10, 6, 1, 5])
    plans = []
    for compiled in (True, False):
        m.use_kernels = compiled
        plans.append(m.plan(users, items, extra))
    for f in dataclasses.fields(plans[0]):
        assert torch.equal(getattr(plans[0], f.name), getattr(plans[1], f.name)), f.name


# ----------------------------------------------------------------------------- LLM synopses
def _fake_generated(items: pd.DataFrame, model="fake-llm"):
    """What :func:`generate_synopses` returns: one row per item, NA where a synopsis was dropped."""
    from kgcl_lib.text.generate import GeneratedSynopses

    syn = [f"About {t}." if i % 2 == 0 else pd.NA for i, t in zip(items.index, items["title"])]
    table = pd.DataFrame({"item": items.index.to_numpy(), "title": items["title"].to_numpy(), "synopsis": syn})
    return GeneratedSynopses(table=table, model=model, provenance={"stand_in": True})


def test_ensure_llm_synopses_with_a_stand_in_generator(tiny_dataset, tmp_path, monkeypatch):
    calls = []

    def fake(items, model, *, domain, progress):
        calls.append((items.index.tolist(), model, domain))
        return _fake_generated(items)

    monkeypatch.setattr("kgcl_lib.experiments.grid.generate_synopses", fake)
    out = X.ensure_llm_synopses(tmp_path, tiny_dataset, "some-llm", max_items=4)
    assert calls == [([0, 1, 2, 3], "some-llm", "movie")]
    # items 0 and 2 got a synopsis (the stand-in drops odd ones)
    assert out == {"ok": True, "model": "fake-llm", "n_synopses": 2, "n_prompted": 4, "message": "2 of 4 prompted items kept"}
    path = X.llm_synopses_path(tmp_path, "tiny")
    assert path.read_text() == "item\tsynopsis\n0\tAbout Toy Story.\n2\tAbout Four Rooms.\n"
    assert X.llm_synopses(tmp_path, tiny_dataset).to_dict() == {0: "About Toy Story.", 2: "About Four Rooms."}
    # the same request is served from the stored file; another request generates again
    assert X.ensure_llm_synopses(tmp_path, tiny_dataset, "some-llm", max_items=4) == out and len(calls) == 1
    X.ensure_llm_synopses(tmp_path, tiny_dataset, "some-llm", max_items=None)
    assert len(calls) == 2 and calls[-1][0] == [0, 1, 2, 3, 4, 5]
    X.ensure_llm_synopses(tmp_path, tiny_dataset, "some-llm", max_items=None, force=True)
    assert len(calls) == 3


def test_ensure_llm_synopses_says_why_not(tiny_dataset, tmp_path, monkeypatch):
    def broken(items, model, **kw):
        raise RuntimeError("no such model: some-llm")

    monkeypatch.setattr("kgcl_lib.experiments.grid.generate_synopses", broken)
    out = X.ensure_llm_synopses(tmp_path, tiny_dataset, "some-llm")
    assert out["ok"] is False and "RuntimeError: no such model: some-llm" in out["message"]
    assert X.ensure_llm_synopses(tmp_path, tiny_dataset, "none")["ok"] is False
    assert "disabled" in X.ensure_llm_synopses(tmp_path, tiny_dataset, None)["message"]
    assert "no item titles" in X.ensure_llm_synopses(tmp_path, _no_metadata(tiny_dataset), "some-llm")["message"]
    assert not X.llm_synopses_path(tmp_path, "tiny").exists()  # nothing written on failure
    with pytest.raises(FileNotFoundError, match="notebook 10"):
        X.llm_synopses(tmp_path, tiny_dataset)


def test_ensure_llm_synopses_with_a_tiny_llm(tiny_dataset, tmp_path, kgcl_cache):
    """The real generator on a tiny random Llama (as tests/unit/text/test_generate.py): one file row per kept synopsis."""
    pytest.importorskip("transformers")
    from tests.unit.text.test_generate import _tiny_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tiny_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=128, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)  # transformers initialises with the global generator; test-only
    model_dir = tmp_path / "tiny-llm"
    LlamaForCausalLM(cfg).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    out = X.ensure_llm_synopses(tmp_path / "res", tiny_dataset, str(model_dir), max_items=3)
    assert out["ok"] is True and out["n_prompted"] == 3, out
    stored = pd.read_csv(X.llm_synopses_path(tmp_path / "res", "tiny"), sep="\t")
    assert list(stored.columns) == ["item", "synopsis"] and len(stored) == out["n_synopses"]
    assert set(stored["item"]) <= {0, 1, 2} and stored["synopsis"].map(len).gt(0).all()


# ----------------------------------------------------------------------------- report rows
def test_format_table_blanks_repeated_row_labels_in_both_formats():
    from kgcl_lib.report import format_table

    keys = [("x", "p", "1"), ("x", "p", "2"), ("x", "q", "1"), ("y", "q", "1")]
    long = pd.DataFrame([{"a": a, "b": b, "c": c, "k": "m", "source": "ours", "metric": "auc", "value": 0.1 * (i + 1)}
                         for i, (a, b, c) in enumerate(keys)])
    md, tex = format_table(long, index=("a", "b", "c"), columns=("k",), compare_within=("k",))
    # a level is blank when it and every level before it repeat the row above; the last never is
    expected = [["x", "p", "1"], ["", "", "2"], ["", "q", "1"], ["y", "q", "1"]]
    md_rows = [[c.strip() for c in line.split("|")[1:4]] for line in md.splitlines() if line.startswith("|")][2:]
    assert md_rows == expected
    body = tex.split("\\midrule\n", 1)[1].split("\\bottomrule")[0].splitlines()
    assert body[3] == "\\midrule"  # between the 'x' block and the 'y' block only
    tex_rows = [line.split(" & ")[:3] for line in body if line != "\\midrule"]
    assert tex_rows == expected
