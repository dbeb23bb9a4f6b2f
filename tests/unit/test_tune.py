"""The tuner of the simple baselines (issue 29): it never reads test rows, stores a ledger next to
the profile, reuses it when nothing changed, and gives pop 0 trials."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from kgcl_lib import tune
from kgcl_lib.data.split import Split

SPACE = tune.SearchSpace("mf", search={"lr": {"low": 1e-3, "high": 5e-2, "log": True}, "dim": [4, 8]},
                         fixed={"epochs": 3, "patience": 2, "batch_size": 64})


@pytest.fixture(scope="module")
def tiny():
    from kgcl_lib.experiments import make_split, open_dataset

    ds = open_dataset("synthetic-tiny")
    return ds, make_split(ds, 0)


class _TestRaises:
    """A split whose test part raises on access: the tuner must never touch it."""

    def __init__(self, split):
        self.train, self.valid = split.train, split.valid

    @property
    def test(self):
        raise AssertionError("the tuner read the test rows")


def _poisoned(split):
    rng = np.random.default_rng(5)
    test = split.test.copy()
    test[:, 2] = 1 - test[:, 2]  # every label flipped
    test[:, 1] = rng.permutation(test[:, 1])  # items shuffled
    return Split(split.train, split.valid, test)


def _trials(study):
    return [(t["params"], t["valid_auc"], t["best_epoch"]) for t in study.record["trials"]]


def test_tuner_never_reads_test_rows(tiny):
    ds, split = tiny
    clean = tune.run_study(ds, split, "mf", SPACE, 3, progress=False)
    poisoned = tune.run_study(ds, _poisoned(split), "mf", SPACE, 3, progress=False)
    guarded = tune.run_study(ds, _TestRaises(split), "mf", SPACE, 3, progress=False)
    assert _trials(clean) == _trials(poisoned) == _trials(guarded)
    assert clean.settings == poisoned.settings == guarded.settings
    # the trials did train and validate: distinct draws, finite validation AUCs
    assert len({str(p) for p, _, _ in _trials(clean)}) == 3
    assert all(0.0 < auc < 1.0 for _, auc, _ in _trials(clean))
    # ...and the poisoned test rows do change a test metric, so the check above can fail
    from kgcl_lib.train import train

    cfg = tune.base_config(ds, "mf", 0, **clean.settings)
    assert train(ds, split, cfg, progress=False).test_auc != train(ds, _poisoned(split), cfg, progress=False).test_auc


def test_best_settings_are_the_best_trial(tiny):
    ds, split = tiny
    study = tune.run_study(ds, split, "mf", SPACE, 4, sampler_seed=3, progress=False)
    rec = study.record
    best = max(rec["trials"], key=lambda t: t["valid_auc"])
    assert rec["best"]["valid_auc"] == best["valid_auc"] and rec["best"]["params"] == best["params"]
    assert study.settings == {**SPACE.fixed, **best["params"]}
    assert rec["n_trials"] == 4 and rec["cpu_seconds"] > 0
    assert rec["cpu_seconds"] >= sum(t["cpu_seconds"] for t in rec["trials"]) - 0.05 * 4


def test_ensure_tuned_stores_and_reuses_ledger(tiny, tmp_path):
    ds, _ = tiny
    (tmp_path / tune.SEARCH_SPACES).write_text(yaml.safe_dump({"mf": SPACE.to_dict(), "pop": {"search": {}}}))
    study, reused = tune.ensure_tuned(ds, "mf", "smoke", 2, params_dir=tmp_path, progress=False)
    path = tmp_path / "tuned" / "smoke" / f"{ds.name}-mf.yaml"
    assert not reused and path.exists()
    stored = tune.load_study(path).record
    assert stored["settings"] == study.settings and stored["search_space"] == SPACE.to_dict()
    assert stored["data_key"] and len(stored["trials"]) == 2
    again, reused = tune.ensure_tuned(ds, "mf", "smoke", 2, params_dir=tmp_path, progress=False)
    assert reused and again.record == stored
    _, reused = tune.ensure_tuned(ds, "mf", "smoke", 3, params_dir=tmp_path, progress=False)  # budget changed
    assert not reused and len(tune.load_study(path).record["trials"]) == 3
    pop, _ = tune.ensure_tuned(ds, "pop", "smoke", 20, params_dir=tmp_path, progress=False)
    assert pop.n_trials == 0 and pop.settings == {} and "no hyper-parameters" in pop.record["note"]


def test_search_space_errors_name_file_and_field(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"mf": {"search": {"lr": {"low": 0.1, "high": 0.01}}}}))
    with pytest.raises(ValueError, match=r"s.yaml: mf.search.lr: low 0.1 must be < high 0.01"):
        tune.load_search_space("mf", p)
    with pytest.raises(ValueError, match="no search space for backbone 'svd'"):
        tune.load_search_space("svd", p)
    committed = {b: tune.load_search_space(b) for b in ("pop", "mf", "lightgcn")}
    assert committed["pop"].search == {} and "n_iter" in committed["lightgcn"].search


def test_cli_tunes_pop_with_zero_trials(tmp_path):
    shutil.copy(tune.PARAMS_DIR / tune.SEARCH_SPACES, tmp_path / tune.SEARCH_SPACES)
    out = subprocess.run([sys.executable, "-m", "kgcl_lib.tune", "--dataset", "synthetic-tiny", "--backbone", "pop",
                          "--profile", "t", "--params-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "0 trials" in out.stdout and (tmp_path / "tuned" / "t" / "synthetic-tiny-pop.yaml").exists()
    bad = subprocess.run([sys.executable, "-m", "kgcl_lib.tune", "--dataset", "synthetic-tiny", "--backbone", "svd",
                          "--params-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no search space for backbone 'svd'" in bad.stderr
