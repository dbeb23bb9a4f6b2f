"""kgcl_lib.runner: profiles (layering, unknown and injected keys), the committed profiles and
notebooks, and running notebooks in order (failure reporting, each warning said once, a stalled
cell timed out and retried) on tiny notebooks written here. (Split from test_experiments.py.)"""

import io
import json
import os
import re

import nbformat
import pytest

from kgcl_lib import runner
from kgcl_lib.storage import REPO_ROOT


def _notebook(path, params_src, body_src):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body_src)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_committed_profiles_match_the_notebooks():
    nbs = runner.discover()
    assert [nb.stem[:2] for nb in nbs] == [f"{i:02d}" for i in range(1, len(nbs) + 1)]
    declared = {nb: runner.declared_parameters(nb) for nb in nbs}
    for name in ("smoke", "default", "paper"):
        runner.check_profile_keys(runner.load_profile(name), nbs, declared)
    for nb, keys in declared.items():
        assert set(runner.INJECTED) <= keys, nb.name


def test_layering_and_unknown_keys(tmp_path):
    (tmp_path / "nb").mkdir()
    nb = tmp_path / "nb" / "01_x.ipynb"
    _notebook(nb, "a = 1\nb = 2\nprofile = 'default'", "pass")
    (tmp_path / "p.yaml").write_text("a: 10\nb: 20\nnotebooks:\n  '01': {b: 30}\n  01_x: {a: 40}\n")
    prof = runner.load_profile("p", tmp_path)
    got = runner.notebook_parameters(nb, prof, {"profile": "p", "results_dir": "/r"})
    assert got == {"a": 40, "b": 30, "profile": "p"}  # results_dir not declared: not passed
    (tmp_path / "bad.yaml").write_text("zzz: 1\n")
    with pytest.raises(ValueError, match="zzz"):
        runner.check_profile_keys(runner.load_profile("bad", tmp_path), [nb], {nb: {"a", "b"}})
    (tmp_path / "inj.yaml").write_text("results_dir: x\n")
    with pytest.raises(ValueError, match="set by the runner"):
        runner.load_profile("inj", tmp_path)
    with pytest.raises(ValueError, match="no profile"):
        runner.load_profile("nope", tmp_path)
    assert [p.stem for p in runner.select([nb], "1")] == ["01_x"]
    with pytest.raises(ValueError, match="no notebook"):
        runner.select([nb], "07")


def test_run_executes_in_order_and_stops_at_failure(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    params = "profile = 'default'\nresults_dir = None\nheadlines_path = None\nx = 0"
    _notebook(nbdir / "01_ok.ipynb", params,
              "import json, pathlib\npathlib.Path(headlines_path).write_text(json.dumps({'x': x}))")
    _notebook(nbdir / "02_fail.ipynb", params, "raise ValueError('boom at x=%d' % x)")
    _notebook(nbdir / "03_never.ipynb", params, "pass")
    (tmp_path / "t.yaml").write_text("x: 7\n")
    out = io.StringIO()
    rc = runner.run("t", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir,
                    params_dir=tmp_path, out=out)
    log = out.getvalue()
    assert rc == 1
    assert json.loads((tmp_path / "runs" / "t" / "notebooks" / "01_ok.json").read_text()) == {"x": 7}
    assert "FAILED 02_fail.ipynb" in log and "ValueError: boom at x=7" in log and "In [3]" in log
    assert "03_never" not in log
    assert re.search(r"^\[kgcl\] 01_ok\s+\d+\.\d s$", log, re.M), log  # one line per notebook, with its time
    out = io.StringIO()
    assert runner.run("t", only="01", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig",
                      notebooks_dir=nbdir, params_dir=tmp_path, out=out) == 0
    assert json.loads((tmp_path / "runs" / "t" / "timings.json").read_text())["notebooks"].keys() == {"01_ok"}


def test_run_is_quiet_and_says_each_warning_once(tmp_path, capfd):
    """No kernel transport warning per notebook; a library warning that two notebooks both emit
    (an offline fallback, say) is printed once per run, naming the notebook where it came first."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    params = "profile = 'default'\nresults_dir = None\nheadlines_path = None"
    warn = ("import logging, warnings\nsay = warnings.warn\nsay('model X unavailable offline; using fallback Y')\n"
            "logging.getLogger('kgcl_lib.x').warning('model X unavailable offline; using fallback Y')")
    _notebook(nbdir / "01_a.ipynb", params, warn)
    _notebook(nbdir / "02_b.ipynb", params, warn + "\nwarnings.warn('a second, different warning')")
    (tmp_path / "t.yaml").write_text("{}\n")
    out = io.StringIO()
    assert runner.run("t", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir,
                      params_dir=tmp_path, out=out) == 0
    log = out.getvalue()
    assert log.count("model X unavailable offline; using fallback Y") == 1, log
    assert "warning (first in 01_a): model X unavailable" in log  # warned and logged: said once
    assert log.count("a second, different warning") == 1 and "warning (first in 02_b)" in log
    assert len(log.strip().splitlines()) == 1 + 2 + 2 + 1 + 1, log  # header, 2 notebooks, 2 warnings, total, report
    assert "say(" not in log  # the source line Python prints under a warning is not a warning
    captured = capfd.readouterr()
    assert "without encryption" not in captured.err + captured.out


def test_committed_notebooks_carry_no_outputs():
    for nb_path in runner.discover():
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, nb_path.name
        for c in nb.cells:
            if c.cell_type == "code":
                assert c.outputs == [] and c.execution_count is None, nb_path.name


def test_run_times_out_a_stalled_cell_then_retries(tmp_path):
    """A cell that outlives the timeout is re-executed once; a second stall fails the run.

    The notebook stalls only while a marker file is absent, so attempt 2 succeeds."""
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    params = "profile = 'default'\nresults_dir = None\nheadlines_path = None\nmarker = ''"
    body = ("import os, pathlib, time\n"
            "m = pathlib.Path(marker)\n"
            "first = not m.exists()\n"
            "m.write_text('seen')\n"
            "if first:\n    time.sleep(30)\n"
            "assert os.environ.get('KGCL_HEADLESS') == '1'\n"
            # the kernel imports the kgcl_lib of the runner's checkout first
            f"assert os.environ['PYTHONPATH'].split(os.pathsep)[0] == {str(REPO_ROOT)!r}")
    _notebook(nbdir / "01_stall.ipynb", params, body)
    pythonpath = os.environ.get("PYTHONPATH")
    (tmp_path / "t.yaml").write_text(f"marker: {tmp_path / 'marker'}\n")
    out = io.StringIO()
    rc = runner.run("t", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir,
                    params_dir=tmp_path, out=out, cell_timeout=5, retries=1)
    log = out.getvalue()
    assert rc == 0, log
    assert "re-executing (attempt 2 of 2)" in log and re.search(r"^\[kgcl\] 01_stall\s+\d+\.\d s$", log, re.M), log
    assert "KGCL_HEADLESS" not in os.environ or os.environ["KGCL_HEADLESS"] != "1"
    assert os.environ.get("PYTHONPATH") == pythonpath  # restored
    (tmp_path / "marker").unlink()
    out = io.StringIO()
    rc = runner.run("t", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir,
                    params_dir=tmp_path, out=out, cell_timeout=5, retries=0)
    assert rc == 1 and "FAILED 01_stall.ipynb" in out.getvalue()
