"""scripts/compare_results.py: the before/after identity check of two results stores."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from tests.helpers import REPO

_spec = importlib.util.spec_from_file_location("compare_results", REPO / "scripts" / "compare_results.py")
compare_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_results)


def _run(root: Path, name: str, auc: float, topk=(1, 2, 3)):
    d = root / "runs" / name
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"test_auc": auc, "ndcg@20": float("nan")}))
    np.save(d / "topk.npy", np.array(topk))


def test_identical_stores_pass_and_any_difference_fails(tmp_path, capsys):
    before, after = tmp_path / "b", tmp_path / "a"
    _run(before, "r1", 0.75)
    _run(after, "r1", 0.75)
    assert compare_results.main([str(before), str(after)]) == 0
    _run(before, "r2", 0.70)
    _run(after, "r2", 0.70 + 1e-9)  # above the default 1e-12
    assert compare_results.main([str(before), str(after)]) == 1
    assert "r2: 2 metrics, max |diff| 1e-09" in capsys.readouterr().out
    assert compare_results.main([str(before), str(after), "--atol", "1e-8"]) == 0


def test_new_runs_fail_unless_allowed_and_missing_runs_always_fail(tmp_path, capsys):
    before, after = tmp_path / "b", tmp_path / "a"
    _run(before, "r1", 0.75)
    _run(after, "r1", 0.75)
    _run(after, "new", 0.6)
    assert compare_results.main([str(before), str(after)]) == 1
    assert compare_results.main([str(before), str(after), "--allow-new"]) == 0
    assert "new: finished in AFTER only (new)" in capsys.readouterr().out
    _run(before, "gone", 0.6)
    assert compare_results.main([str(before), str(after), "--allow-new"]) == 1


def test_topk_arrays_are_compared(tmp_path):
    before, after = tmp_path / "b", tmp_path / "a"
    _run(before, "r1", 0.75, topk=(1, 2, 3))
    _run(after, "r1", 0.75, topk=(1, 3, 2))
    assert compare_results.main([str(before), str(after)]) == 1
