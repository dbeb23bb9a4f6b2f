"""No duplicate runs, no fake comparisons (issue 16): a grid over a dataset without text or
metadata trains each distinct configuration once; the copies are n/a cells in every table."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from kgcl_lib import experiments as X
from kgcl_lib import report as R
from kgcl_lib.data.synthetic import SyntheticShape, make_synthetic

SHAPE = SyntheticShape("dedupe", 40, 60, 900, 120, 3, 300)
FAST = {"epochs": 2, "batch_size": 128}
EV = X.EvalConfig(ks=(5, 10, 20), topk=20, cold_k=20)  # 60 items: short lists


def bare(ds, *, keep_metadata: bool = False):
    """``ds`` without synopses (and without titles and genres unless ``keep_metadata``): Book-Crossing offline."""
    items = ds.items.copy()
    items["synopsis"] = None
    if not keep_metadata:
        items["genres"] = [()] * len(items)
        items["title"] = None
        items["year"] = pd.array([pd.NA] * len(items), dtype="Int64")
    return dataclasses.replace(ds, name="bare-books", items=items, provenance={**ds.provenance, "text_source": "none"})


@pytest.fixture
def counted(monkeypatch):
    """Count every call of the trainer, keyed by what it trained."""
    from kgcl_lib.experiments import execute as T

    calls, real = [], T.train

    def train(ds, split, cfg, pairs=None, text=None, **kw):
        calls.append((cfg.variant, cfg.text, cfg.seed, None if pairs is None else pairs.provenance.get("sampler"), text is not None))
        return real(ds, split, cfg, pairs=pairs, text=text, **kw)

    monkeypatch.setattr(T, "train", train)
    return calls


def test_grid_without_text_or_metadata_trains_nothing_twice(tmp_path, monkeypatch, counted):
    ds = bare(make_synthetic(SHAPE, 0))
    monkeypatch.setattr(X.execute, "open_dataset", lambda name, data_dir=None, **kw: ds)  # where run_grid opens it
    specs = X.grid_specs(["bare-books"], ("base", "cl_genre", "cl_title_genre"), seeds=[0, 1], overrides={"*": FAST})
    assert len(specs) == 12  # 2 text arms x 3 variants x 2 seeds
    df = X.run_grid(specs, tmp_path, pair_n=3, ev=EV, progress=False)

    # Distinct configurations: L_base and one KG-pair CL, per seed. Each trained exactly once.
    assert len(counted) == 4 and len(set(counted)) == 4
    assert sorted(counted) == [("base", "none", 0, None, False), ("base", "none", 1, None, False),
                               ("cl_genre", "none", 0, "kg", False), ("cl_genre", "none", 1, "kg", False)]
    done = X.trained(df)
    assert len(df) == 12 and len(done) == 4
    assert set(done["variant"]) == {"base", "cl_kg"}  # the KG-attribute CL is kept and named as such
    assert set(done["text_source"]) == {"none"}
    na = df[df["na_reason"].notna()].set_index(["text", "spec_variant", "seed"])["na_reason"]
    assert (na.xs("with", level="text") == "no text").all() and len(na.xs("with", level="text")) == 6
    assert na[("without", "cl_title_genre", 0)] == "same KG pairs"
    # every n/a cell points at a run that was trained
    assert set(df.loc[df["na_reason"].notna(), "same_as"]) <= set(done["run_id"])

    # the manifest counts runs
    X.save_manifest(tmp_path, "grid", specs, seeds=[0, 1])
    man = json.loads((tmp_path / "manifests" / "grid.json").read_text())
    assert (man["n_cells"], man["n_trained"], man["n_not_applicable"]) == (12, 4, 8)

    # rerun: nothing left to train
    X.run_grid(specs, tmp_path, pair_n=3, ev=EV, progress=False)
    assert len(counted) == 4

    # tables: n/a cells, no p-value between copies, the text source in the row label
    df2, _ = X.load_manifest(tmp_path, "grid")
    p = X.ttests(df2, ["test_auc"])
    assert set(zip(p["text"], p["variant"])) == {("without", "base"), ("without", "cl_kg")}
    md, _, ours = R.table2(df2, "cap")
    assert "n/a (no text)" in md and "n/a (same KG pairs)" in md
    assert "+CL KG attributes" in md and "text: no text" in md
    auc = ours[(ours["metric"] == "auc")]
    assert auc.loc[auc["na_reason"].notna(), "value"].isna().all()
    pv = ours[(ours["metric"] == "auc p-value") & (ours["text"] == "with")]
    assert (pv["display"].str.startswith("n/a")).all()  # no p-value for a copy
    md3, _, _ = R.table3(df2, "cap", ks=(5, 10, 20))
    assert "n/a (no text)" in md3


def test_metadata_substitute_is_a_labelled_source_and_can_be_turned_off(tmp_path):
    ds = bare(make_synthetic(SHAPE, 0), keep_metadata=True)
    ds = dataclasses.replace(ds, provenance={k: v for k, v in ds.provenance.items() if k != "text_source"})
    with_text = X.resolve_run_text(ds, "with")
    assert with_text.source == "metadata" and with_text.train_text == "synopsis"
    assert with_text.description.startswith("no synopses for bare-books; metadata substitute")
    without = X.resolve_run_text(ds, "without")
    assert (without.source, without.train_text, without.description) == ("none", "none", None)
    no_text = X.resolve_run_text(ds, "with", text_fallback="none")
    assert (no_text.source, no_text.train_text) == ("none", "none")
    # titles without genres verbalise to nothing: no substitute, so "with" = "without"
    titles_only = dataclasses.replace(ds, items=ds.items.assign(genres=[()] * ds.n_items))
    assert X.resolve_run_text(titles_only, "with").source == "none"
    specs = X.grid_specs(["bare-books"], ["base"], seeds=[0])
    plan = X.plan_grid(specs, ds, pair_n=3)
    assert all(reason is None for _, reason, _ in plan.values())  # "with" = title+genre text: a different input
    plan = X.plan_grid(specs, ds, pair_n=3, with_text=no_text)
    (with_spec,) = [s for s in specs if s.text == "with"]
    assert plan[with_spec][1] == "no text" and plan[with_spec][0].text == "without"
    # a pinned source the dataset does not have is an error, not a silent substitute
    pinned = X.grid_specs(["bare-books"], ["base"], ["with"], [0], text_sources={"bare-books": "human"})
    with pytest.raises(ValueError, match="pinned text_source 'human'"):
        X.plan_grid(pinned, ds, pair_n=3)


def test_run_text_is_one_checked_record_that_decides_the_trainer_text():
    spec = X.RunSpec("ml-100k", "base", "with", 0)
    tmdb = X.RunText("ml-100k", "with", "tmdb", "TMDB overviews for 3/4 items")
    assert X.train_config(spec, "ml-100k", run_text=tmdb).text == "synopsis"
    assert X.train_config(spec, "ml-100k", run_text=X.RunText("ml-100k", "with", "none")).text == "none"
    with pytest.raises(ValueError, match="'without' arm, not 'with'"):
        X.train_config(spec, "ml-100k", run_text=X.RunText("ml-100k", "without", "none"))
    with pytest.raises(ValueError, match="RunText.source"):
        X.RunText("ml-100k", "with", "imdb")
    with pytest.raises(ValueError, match="no text source"):
        X.RunText("ml-100k", "without", "tmdb")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tmdb.source = "human"
    # what the executors are handed wins over resolving again
    ds = bare(make_synthetic(SHAPE, 0), keep_metadata=True)
    pinned = X.RunText(ds.name, "with", "metadata", "handed down")
    assert X.run_text(ds, "with", X.RunInputs(texts=(pinned,))) is pinned
    assert X.run_text(ds, "with", X.RunInputs()).description != "handed down"


def test_text_source_in_spec_and_run_id():
    a = X.RunSpec("ml-100k", "base", "with", 0)
    b = X.RunSpec("ml-100k", "base", "with", 0, text_source="tmdb")
    assert a.run_id != b.run_id and "text_source" not in a.key() and b.key()["text_source"] == "tmdb"
    with pytest.raises(ValueError, match="text_source"):
        X.RunSpec("ml-100k", "base", "without", 0, text_source="human")
    with pytest.raises(ValueError, match="text_source"):
        X.RunSpec("ml-100k", "base", "with", 0, text_source="imdb")


def test_identical_values_get_no_p_value():
    rows = []
    for s in range(3):
        for v in ("base", "cl_genre"):
            rows.append({"run_id": f"{v}{s}", "dataset": "d", "text": "without", "variant": v, "seed": s,
                         "test_auc": 0.7 + 0.01 * s})  # cl_genre equals base seed by seed
        rows.append({"run_id": f"t{s}", "dataset": "d", "text": "with", "variant": "base", "seed": s, "test_auc": 0.8 + 0.01 * s})
    p = X.ttests(pd.DataFrame(rows), ["test_auc"]).set_index(["text", "variant"])["p_value"]
    assert np.isnan(p[("without", "cl_genre")]) and p[("with", "base")] < 0.01


def test_kgcn_original_is_its_own_configuration():
    """KGCN's own settings (sum, K = 8 on books) are not L_base's, even though both train without
    text or pairs: planning must not fold one into the other."""
    ds = bare(make_synthetic(SHAPE, 0))
    specs = X.grid_specs(["bare-books"], ("base", "kgcn_original"), ("without",), seeds=[0])
    plan = X.plan_grid(specs, ds, pair_n=3)
    assert len(specs) == 2 and all(canon == s and reason is None for s, (canon, reason, _) in plan.items())


def test_no_kg_and_no_metadata_means_no_content_pairs():
    """A plain dataset with only ratings.csv: no KG, no titles or genres, so the CL variants have no
    content pairs at all and are L_base; they become "n/a (no content pairs)" copies of it."""
    ds = bare(make_synthetic(SHAPE, np.random.default_rng(0)))
    ds = dataclasses.replace(ds, kg=np.zeros((0, 3), dtype=np.int64), n_entities=ds.n_items, n_relations=0,
                             entity_raw_ids=None)
    specs = X.grid_specs(["bare-books"], ["base", "cl_genre", "cl_title_genre"], ["without"], [0])
    plan = X.plan_grid(specs, ds, pair_n=4)
    base = next(s for s in specs if s.variant == "base")
    assert plan[base] == (base, None, None)
    for s in specs:
        if s.variant != "base":
            canon, reason, detail = plan[s]
            assert canon == base and reason == "no content pairs" and "no KG" in detail
    # with its KG back, the CL variants share the KG-attribute pairs instead (one run for both templates)
    with_kg = bare(make_synthetic(SHAPE, np.random.default_rng(0)))
    reasons = sorted(str(r) for _, r, _ in X.plan_grid(specs, with_kg, pair_n=4).values())
    assert reasons == ["None", "None", "same KG pairs"]
