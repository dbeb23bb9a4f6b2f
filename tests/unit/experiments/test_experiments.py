"""kgcl_lib.experiments: specs and run ids, train configs, the results store and its summaries, the
evaluation mask, captions. The runner (profiles, executing notebooks) is tested in
tests/unit/runner/test_runner.py; training end to end in tests/integration/test_notebooks.py."""

import json

import numpy as np
import pandas as pd
import pytest

from kgcl_lib import experiments as X
from kgcl_lib.storage import write_json


# ---------------------------------------------------------------------------------- specs
def test_run_id_stable_and_sensitive():
    a = X.RunSpec("ml-100k", "cl_genre", "with", 3, None, (("epochs", 2),))
    b = X.RunSpec("ml-100k", "cl_genre", "with", 3, None, {"epochs": 2}.items())
    assert a.run_id == b.run_id and a.run_id.startswith("ml-100k-cl_genre-with-s3-")
    assert a.run_id != X.RunSpec("ml-100k", "cl_genre", "with", 3, 0.8, (("epochs", 2),)).run_id
    assert a.run_id != X.RunSpec("ml-100k", "cl_genre", "with", 4, None, (("epochs", 2),)).run_id
    # a hash fixed across sessions: computed independently from the documented key
    import hashlib

    key = {"dataset": "ml-100k", "variant": "cl_genre", "text": "with", "seed": 3, "gamma": None,
           "overrides": [["epochs", 2]]}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:8]
    assert a.run_id.endswith(digest)
    with pytest.raises(ValueError):
        X.RunSpec("ml-100k", "cl_bogus")


def test_grid_specs_product_and_overrides():
    specs = X.grid_specs(["a", "b"], seeds=[0, 1], overrides={"*": {"epochs": 2}, "b": {"lr": 0.1}})
    assert len(specs) == 2 * (2 * 3 + 1) * 2  # datasets x (texts x CL variants + kgcn_original without text) x seeds
    assert dict(specs[0].overrides) == {"epochs": 2}
    assert dict(specs[-1].overrides) == {"epochs": 2, "lr": 0.1}
    assert len(X.grid_specs(["a"], ["base"], ["with"], [0], gammas=[0.2, 0.4])) == 2


def test_train_config_layers():
    from kgcl_lib.train import TrainConfig

    spec = X.RunSpec("ml-100k", "cl_title_genre", "with", 5, 0.4, (("epochs", 3),))
    cfg = X.train_config(spec, "ml-100k", pair_n=7)
    assert isinstance(cfg, TrainConfig)
    assert (cfg.variant, cfg.text, cfg.seed, cfg.gamma, cfg.epochs, cfg.n_pairs) == ("cl_title_genre", "synopsis", 5, 0.4, 3, 7)
    assert cfg.aggregator == "concat"  # from the paper settings
    with pytest.raises(ValueError, match="no field"):
        X.train_config(X.RunSpec("ml-100k", "base", overrides=(("n_epochs", 1),)), "ml-100k")


# ---------------------------------------------------------------------------------- store
def _fake_store(root, n_seeds=3):
    specs = X.grid_specs(["d"], ["base", "cl_genre", "cl_title_genre"], seeds=range(n_seeds))
    rng = np.random.default_rng(0)
    for s in specs:
        d = root / "runs" / s.run_id
        write_json(d / "config.json", {"run_id": s.run_id, "spec": s.key(), "train_config": {"gamma": 0.8},
                                       "scoring": "kgcn", "text_model": "m", "synopses": "human",
                                       "text_source": "none" if s.text == "without" else "human"})
        bump = 0.01 * X.VARIANTS.index(s.variant)
        write_json(d / "metrics.json", {"test_auc": 0.9 + bump + rng.normal(0, 1e-3), "ndcg@100": 0.2 + bump,
                                        "cold_ndcg@100_p1": 0.1 + bump, "cold_ndcg@100_p100": 0.2 + bump})
        X.mark_complete(d, s.run_id, "fake")
    return specs


def test_load_results_summarize_ttests(tmp_path):
    specs = _fake_store(tmp_path)
    X.save_manifest(tmp_path, "grid", specs, seeds=[0, 1, 2])
    df, info = X.load_manifest(tmp_path, "grid")
    assert len(df) == len(specs) and info["seeds"] == [0, 1, 2] and (df["gamma"] == 0.8).all()
    long = X.summarize(df, ["test_auc"])
    g = df[(df.text == "with") & (df.variant == "cl_genre")]["test_auc"]
    got = long[(long.text == "with") & (long.variant == "cl_genre")]
    assert got["value"].item() == pytest.approx(g.mean()) and got["std"].item() == pytest.approx(g.std())
    assert got["n"].item() == 3

    from scipy import stats

    p = X.ttests(df, ["test_auc"])
    base = df[(df.text == "without") & (df.variant == "base")]["test_auc"]
    want = stats.ttest_ind(g, base, equal_var=False).pvalue
    assert p[(p.text == "with") & (p.variant == "cl_genre")]["p_value"].item() == pytest.approx(want, rel=1e-6)
    assert np.isnan(p[(p.text == "without") & (p.variant == "base")]["p_value"].item())

    assert X.best_model(df, "ndcg@100") == {"d": ("with", "cl_title_genre")} or \
        X.best_model(df, "ndcg@100")["d"][1] == "cl_title_genre"
    cold = X.cold_start_frame(df, {"base": ("without", "base")})
    assert sorted(cold["percentile"].unique()) == [1.0, 100.0] and len(cold) == 2 * 3
    assert cold[cold.percentile == 1.0]["value"].tolist() == pytest.approx([0.1] * 3)


def test_missing_manifest_names_the_notebook(tmp_path):
    with pytest.raises(FileNotFoundError, match="04_train"):
        X.load_manifest(tmp_path, "grid")


def test_is_finished_checks_config_key(tmp_path):
    s = X.RunSpec("d", "base")
    assert not X.is_finished(tmp_path, s)
    write_json(X.run_dir(tmp_path, s) / "config.json", {"config_key": "abc"})
    write_json(X.run_dir(tmp_path, s) / "metrics.json", {})
    assert not X.is_finished(tmp_path, s)  # no completion marker: an interrupted writer's folder
    X.mark_complete(X.run_dir(tmp_path, s), s.run_id, "abc")
    assert X.is_finished(tmp_path, s) and X.is_finished(tmp_path, s, "abc") and not X.is_finished(tmp_path, s, "xyz")


# ---------------------------------------------------------------------------------- evaluation and captions
def test_pairs_source_names_sampler_and_models():
    from kgcl_lib.experiments import caption_info, pairs_source

    assert pairs_source("bx", None) is None
    assert "KG-attribute" in pairs_source("bx", {"sampler": "kg"})
    text = {"sampler": "text", "bi_encoder": {"name": "mini"}, "cross_encoder": {"name": None, "skipped": "offline"}}
    assert pairs_source("ml", text) == "ml: pairs from bi-encoder mini, no cross-encoder (bi-encoder ranking)"
    # older runs stored the encoder entries as the repr of a dict
    text_repr = {"sampler": "text", "bi_encoder": "{'name': 'mini'}", "cross_encoder": "{'name': 'ce'}"}
    assert pairs_source("ml", text_repr) == "ml: pairs from bi-encoder mini, cross-encoder ce"
    df = pd.DataFrame({"dataset": ["ml", "ml"], "seed": [0, 1], "pairs": [None, "ml: X"]})
    info = caption_info(df, {"scoring": "dot"}, extra="LLM: tiny")
    assert info["extra"] == "LLM: tiny. CL pairs: ml: X" and info["scoring"] == "dot"


def test_eval_mask_train_records_is_kgcns():
    """KGCN's top-K mask removes every item of the user's training rows (labels 0 and 1), not
    valid rows; the earlier mask removes train + valid positives only."""
    from kgcl_lib.data import Split
    from kgcl_lib.experiments import EvalConfig, test_users_and_truth

    train = np.array([[0, 1, 1], [0, 2, 0], [1, 0, 1]])
    valid = np.array([[0, 3, 1], [0, 5, 0]])
    test = np.array([[0, 4, 1], [1, 2, 1]])
    split = Split(train, valid, test)
    assert EvalConfig().mask == "train_records"
    users, truth, ex = test_users_and_truth(split, 2, 6)
    assert users.tolist() == [0, 1]
    assert sorted(ex[0].indices.tolist()) == [1, 2] and ex[1].indices.tolist() == [0]
    _, _, ex_old = test_users_and_truth(split, 2, 6, mask="train_valid_positives")
    assert sorted(ex_old[0].indices.tolist()) == [1, 3]
    with pytest.raises(ValueError, match="mask"):
        EvalConfig(mask="everything")


def test_kgcn_original_variant_uses_kgcns_settings_without_text():
    """The "KGCN (original settings)" row: KGCN's published settings (books: sum, K = 8, d = 64,
    L = 1, η = 2e-4, λ = 2e-5, batch 256; movies: sum, K = 4, d = 32, L = 2, η = 2e-2,
    λ = 1e-7), L_base only, and only without text."""
    specs = X.grid_specs(["book-crossing"], ["base", "kgcn_original"], ["without", "with"], seeds=[0])
    assert sorted((s.variant, s.text) for s in specs) == [("base", "with"), ("base", "without"), ("kgcn_original", "without")]
    ko = next(s for s in specs if s.variant == "kgcn_original")
    cfg = X.train_config(ko, "book-crossing")
    assert (cfg.variant, cfg.text, cfg.aggregator, cfg.n_neighbors, cfg.dim, cfg.n_iter, cfg.lr, cfg.l2, cfg.batch_size) == (
        "base", "none", "sum", 8, 64, 1, 2e-4, 2e-5, 256)
    base = X.train_config(next(s for s in specs if s.variant == "base" and s.text == "without"), "book-crossing")
    assert (base.aggregator, base.n_neighbors) == ("concat", 4)
    mv = X.train_config(X.RunSpec("ml-20m", "kgcn_original"), "ml-20m")
    assert (mv.aggregator, mv.n_neighbors, mv.dim, mv.n_iter, mv.lr, mv.l2) == ("sum", 4, 32, 2, 2e-2, 1e-7)
    with pytest.raises(ValueError, match="no text"):
        X.RunSpec("ml-100k", "kgcn_original", text="with")
