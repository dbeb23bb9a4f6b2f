"""Issue 30's reporting: the grid's backbone dimension, Tables 2–5 in one block per backbone,
and the per-backbone claims rows (a planted gain on one backbone only is found on that one, and
KGCN's claims table never sees another backbone's runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from tests.unit.claims.test_claims import METRICS, grid_frame

from kgcl_lib import claims as C
from kgcl_lib import experiments as X
from kgcl_lib import report


def two_backbones(rng, ripple_effects=None, kgcn_effects=None):
    kgcn = grid_frame(rng, effects=kgcn_effects).assign(backbone="kgcn")
    rn = grid_frame(rng, effects=ripple_effects)
    rn = rn[rn["variant"] != "kgcn_original"].assign(backbone="ripplenet")
    rn["run_id"] = rn["run_id"] + "-rn"
    return pd.concat([kgcn, rn], ignore_index=True)


def test_grid_specs_have_a_backbone_dimension():
    specs = X.grid_specs(["ml-100k"], seeds=[0, 1], backbones=["kgcn", "ripplenet"])
    kg = [s for s in specs if s.backbone == "kgcn"]
    rn = [s for s in specs if s.backbone == "ripplenet"]
    assert len(kg) == 2 * (2 * 3 + 1) and len(rn) == 2 * 2 * 3  # kgcn_original is KGCN's only
    assert all("-ripplenet-" in s.run_id for s in rn) and len({s.run_id for s in specs}) == len(specs)
    assert X.grid_specs(["ml-100k"], seeds=[0]) == [s for s in X.grid_specs(["ml-100k"], seeds=[0], backbones=["kgcn"])]


def test_planted_gain_on_one_backbone_is_found_on_that_one_only():
    rng = np.random.default_rng(3)
    gain = {("with", "cl_title_genre", m): 0.05 for m in METRICS}
    df = two_backbones(rng, ripple_effects=gain)
    t = C.backbone_claims_table({"grid": df}, ["synthetic-small"])
    r = t.set_index(["claim", "metric"])
    assert r.loc[("G [ripplenet]", "test_auc"), "verdict"] == "supported"
    assert r.loc[("G [ripplenet]", "test_auc"), "diff"] > 0.03
    assert r.loc[("G [kgcn]", "test_auc"), "verdict"].startswith("inconclusive")
    assert set(t["backbone"]) == {"kgcn", "ripplenet"}
    assert {c for c in t["claim"] if c.endswith("[ripplenet]")} == {"1 [ripplenet]", "2 [ripplenet]", "3 [ripplenet]",
                                                                        "4 [ripplenet]", "G [ripplenet]"}
    # KGCN's own claims table sees KGCN's runs only: no gain planted there
    kt = C.claims_table({"grid": df}, ["synthetic-small"], claims=[C.GAIN_ON_BACKBONE]).set_index("metric")
    assert kt.loc["test_auc", "verdict"].startswith("inconclusive")
    # one backbone only: nothing to add
    assert C.backbone_claims_table({"grid": df[df["backbone"] == "kgcn"]}, ["synthetic-small"]).empty


def test_tables_have_one_block_per_backbone():
    rng = np.random.default_rng(4)
    df = two_backbones(rng, ripple_effects={("with", "base", "test_auc"): 0.1})
    md, tex, ours = report.by_backbone(report.table2, df, "caption")
    assert md.index("Backbone: kgcn") < md.index("Backbone: ripplenet") and "% Backbone: ripplenet" in tex
    auc = ours[(ours["metric"] == "auc") & (ours["text"] == "with") & (ours["variant"] == "base")].set_index("backbone")
    assert auc.loc["ripplenet", "value"] - auc.loc["kgcn", "value"] > 0.05  # blocks are not pooled
    single = report.by_backbone(report.table2, df[df["backbone"] == "kgcn"], "caption")
    assert single[0] == report.table2(df[df["backbone"] == "kgcn"], "caption")[0]
    assert report.backbones_of(df) == ["kgcn", "ripplenet"]
