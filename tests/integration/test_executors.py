"""Run execution: atomic run folders (issue 15 cases 1 and 9) and the Ray executor (issue 19).

The interrupted-retrain tests stop a real subprocess with SIGINT / SIGKILL while it writes a run;
the tests marked ``ray`` start a real local Ray instance (2 CPUs, no dashboard) and compare its
store with the local executor's, run by run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from kgcl_lib import experiments as X
from kgcl_lib.storage import write_json

from tests.helpers import REPO

DS = "synthetic-small"
#: The smoke profile's synthetic-small shape, with few epochs so a run takes about a second.
OPTIONS = {DS: {"shape": {"name": "small", "n_users": 60, "n_items": 150, "n_rows": 1500, "n_entities": 300,
                          "n_relations": 4, "n_triples": 600}}}
TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OVERRIDES = {"*": {"epochs": 12, "batch_size": 128}}
RUN_KW = dict(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1, progress=False)


def _key(spec, ev, threads=1, **kw):
    return X.config_key(X.train_config(spec, spec.dataset, text_model=TEXT_MODEL, pair_n=4, threads=threads), ev, **kw)


# ------------------------------------------------------------------ issue 15, case 1: by a real signal
_CHILD = r"""
import json, sys, time
import numpy as np
from kgcl_lib import experiments as X

args = json.loads(sys.argv[1])
def stalled_save(*a, **k):          # the run stalls while it stores its arrays
    print("SAVING", flush=True)
    time.sleep(600)
np.save = stalled_save
spec = X.RunSpec(**args["spec"])
X.run_grid([spec], args["results"], ev=X.EvalConfig(ndcg=args["ndcg"]), dataset_options=args["options"],
           text_model=args["text_model"], pair_n=4, threads=1, progress=False)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_retrain_leaves_no_stale_metrics(tmp_path, kgcl_cache, sig):
    """A finished run is retrained under new settings (another NDCG convention: another config
    key) and the retrain is stopped by ``sig`` while it writes the run's files. The store must
    not then hold a run that claims the new settings with the old metrics: the old complete run
    stays (config and metrics agree), the new key counts as unfinished, and a rerun retrains."""
    spec = X.RunSpec(DS, "base", "without", 0, None, tuple(OVERRIDES["*"].items()))
    X.run_grid([spec], tmp_path, ev=X.EvalConfig(ndcg="jurity"), **RUN_KW)
    new_ev = X.EvalConfig(ndcg="standard")
    assert X.is_finished(tmp_path, spec, _key(spec, X.EvalConfig())) and not X.is_finished(tmp_path, spec, _key(spec, new_ev))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    args = {"spec": {"dataset": spec.dataset, "variant": spec.variant, "text": spec.text, "seed": spec.seed,
                     "overrides": list(spec.overrides)},
            "results": str(tmp_path), "ndcg": "standard", "options": OPTIONS, "text_model": TEXT_MODEL}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = child.stdout.readline()
        assert line.strip() == "SAVING", f"child did not reach the write: {line!r} {child.stderr.read()[-3000:]}"
        child.send_signal(sig)
        child.wait(timeout=60)
    finally:
        child.kill()
    assert child.returncode != 0

    d = X.run_dir(tmp_path, spec)
    config = json.loads((d / "config.json").read_text())
    metrics = json.loads((d / "metrics.json").read_text())
    assert config["eval"]["ndcg"] == metrics["ndcg_convention"] == "jurity", "config and metrics of different runs"
    assert not X.is_finished(tmp_path, spec, _key(spec, new_ev)), "interrupted retrain counted as finished"
    assert X.is_finished(tmp_path, spec, _key(spec, X.EvalConfig())), "previous complete run lost"

    df = X.run_grid([spec], tmp_path, ev=new_ev, **RUN_KW)  # the rerun retrains
    assert df["ndcg_convention"].tolist() == ["standard"]
    assert json.loads((d / "config.json").read_text())["eval"]["ndcg"] == "standard"
    assert X.is_finished(tmp_path, spec, _key(spec, new_ev))
    assert not list((tmp_path / "runs").glob(".*")), "partial folders left behind"
    assert X.load_results(tmp_path)["run_id"].tolist() == [spec.run_id]


def test_is_finished_needs_the_completion_marker(tmp_path):
    """``metrics.json`` alone (a folder written by an interrupted writer) is not a finished run;
    the marker's key must match."""
    s = X.RunSpec("d", "base")
    d = X.run_dir(tmp_path, s)
    write_json(d / "config.json", {"config_key": "abc"})
    write_json(d / "metrics.json", {})
    assert not X.is_finished(tmp_path, s) and not X.is_finished(tmp_path, s, "abc")
    X.mark_complete(d, s.run_id, "abc")
    assert X.is_finished(tmp_path, s) and X.is_finished(tmp_path, s, "abc") and not X.is_finished(tmp_path, s, "xyz")


# ------------------------------------------------------------------ issue 15, case 9
def test_threads_and_device_are_part_of_the_run_identity():
    """Results at 1 and 2 threads (or CPU and GPU) differ in the last digits, so a run made under
    one setting must not count as finished under another."""
    spec = X.RunSpec(DS, "base")
    ev = X.EvalConfig()
    one, two = _key(spec, ev, threads=1), _key(spec, ev, threads=2)
    assert one != two
    assert _key(spec, ev, threads=1, device_type="cpu") != _key(spec, ev, threads=1, device_type="cuda")
    assert one == _key(spec, ev, threads=1)  # and stays stable
    # threads=0 means torch's current default: the key names the effective count
    import torch

    n = torch.get_num_threads()
    assert _key(spec, ev, threads=0) == _key(spec, ev, threads=n)


def test_run_made_at_other_thread_count_is_retrained(tmp_path, kgcl_cache):
    spec = X.RunSpec(DS, "base", "without", 0, None, tuple(OVERRIDES["*"].items()))
    config = X.run_dir(tmp_path, spec) / "config.json"
    X.run_grid([spec], tmp_path, **RUN_KW)
    first = json.loads(config.read_text())
    assert first["threads"] == 1
    X.run_grid([spec], tmp_path, **{**RUN_KW, "threads": 2})
    again = json.loads(config.read_text())
    assert again["threads"] == 2, "the run made at 1 thread was taken as the 2-thread run"
    assert again["config_key"] != first["config_key"]


# ------------------------------------------------------------------ issue 19: Ray
def _specs():
    return X.grid_specs([DS], ["base", "cl_genre"], ["without", "with"], [0], overrides=OVERRIDES)


#: The Ray tests run in a child pytest process (:func:`test_ray_tier_in_a_child_process`): Ray's
#: C++ core can abort the whole interpreter — seen once with ray 2.40 on a loaded 2-core machine,
#: "Check failed: ... Tried to complete task that was not pending" in the driver after a worker
#: was SIGKILLed — and must not take the rest of the suite down with it.
IN_RAY_CHILD = os.environ.get("KGCL_RAY_CHILD") == "1"
_SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|skipped|errors?)[^\n]*)$", re.M)


@pytest.mark.ray
def test_ray_tier_in_a_child_process():
    """Run this module's Ray tests in a fresh interpreter and require all of them to pass. A child
    that dies without pytest's closing line (a crash inside Ray, not a test failure) is rerun
    once; its output is printed either way."""
    pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install '.[ray]'")
    if IN_RAY_CHILD:
        pytest.skip("this is the child process")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "ray", "-rs",
           "-k", "not in_a_child_process", str(Path(__file__))]
    env = {**os.environ, "KGCL_RAY_CHILD": "1"}
    for attempt in (1, 2):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200,
                              cwd=REPO)
        out = proc.stdout + proc.stderr
        print(f"--- child pytest, attempt {attempt}, exit {proc.returncode} ---\n{out[-4000:]}")
        if _SUMMARY.search(out):
            break  # pytest finished (pass or fail): no rerun
    summary = _SUMMARY.findall(out)
    assert summary, f"the Ray child process crashed twice (exit {proc.returncode}); see the output above"
    assert proc.returncode == 0, f"Ray tests failed in the child process: {summary[-1][0]}"
    assert "skipped" not in summary[-1][0], f"Ray tests were skipped in the child: {summary[-1][0]}"


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra: pip install '.[ray]'")
    if not IN_RAY_CHILD:
        pytest.skip("runs in a child process (test_ray_tier_in_a_child_process)")
    from kgcl_lib.experiments.executors import init_ray

    init_ray(None, num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, ray_session):
    """The reference: the specs trained by the local executor (also builds the text/pairs caches)."""
    root = tmp_path_factory.mktemp("local")
    os.environ.setdefault("KGCL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    X.run_grid(_specs(), root, **RUN_KW)
    return root


def _fresh_store(local_store, path):
    """A new results folder with the local store's text/pairs caches (inputs, not runs)."""
    for sub in ("text", "pairs"):
        shutil.copytree(local_store / sub, path / sub)
    return path


def _assert_same_runs(a, b, specs):
    for s in specs:
        ra, rb = X.load_run(a, s.run_id), X.load_run(b, s.run_id)
        assert abs(ra["metrics"]["test_auc"] - rb["metrics"]["test_auc"]) <= 1e-12, s.run_id
        np.testing.assert_array_equal(ra["topk"], rb["topk"], err_msg=s.run_id)
        np.testing.assert_array_equal(ra["test_users"], rb["test_users"], err_msg=s.run_id)
        assert ra["config"]["config_key"] == rb["config"]["config_key"]


@pytest.mark.ray
def test_ray_executor_matches_local_and_reruns_nothing(ray_session, local_store, tmp_path):
    from kgcl_lib.experiments.executors import RayExecutor

    store = _fresh_store(local_store, tmp_path)
    specs = _specs()
    df = X.run_grid(specs, store, executor="ray", **RUN_KW)
    assert len(df) == len(specs)
    _assert_same_runs(local_store, store, specs)
    assert {json.loads((X.run_dir(store, s) / "config.json").read_text())["threads"] for s in specs} == {1}
    before = {s.run_id: (X.run_dir(store, s) / X.COMPLETE_MARKER).stat().st_mtime_ns for s in specs}
    # a second invocation trains nothing: no task is submitted, no folder rewritten
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    assert RayExecutor().run(specs, store, inputs, progress=False) == []
    assert before == {s.run_id: (X.run_dir(store, s) / X.COMPLETE_MARKER).stat().st_mtime_ns for s in specs}


@pytest.mark.ray
def test_ray_task_killed_mid_run_is_retried(ray_session, local_store, tmp_path):
    """SIGKILL the worker of the first run that starts writing; Ray retries the task once and
    the store ends up complete, identical to the local executor's, with no partial folder."""
    from kgcl_lib.experiments.executors import RayExecutor

    store = _fresh_store(local_store, tmp_path)
    specs = _specs()
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    out: dict = {}

    def drive():
        try:
            out["summaries"] = RayExecutor().run(specs, store, inputs, progress=False)
        except BaseException as exc:  # reported to the test thread
            out["error"] = exc

    t = threading.Thread(target=drive)
    t.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and t.is_alive() and time.monotonic() < deadline:
        for partial in (store / "runs").glob(f".*{X.PARTIAL_SUFFIX}") if (store / "runs").exists() else []:
            # .<run_id>.<host>-<pid>.<random>.tmp (run ids have no dots; host names may)
            run_id, tag = partial.name[1:-len(X.PARTIAL_SUFFIX)].split(".", 1)
            pid = int(tag.rsplit(".", 1)[0].rsplit("-", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed = (run_id, pid)
            break
        time.sleep(0.01)
    t.join(timeout=180)
    assert killed is not None, "no run was caught mid-write"
    assert "error" not in out, out.get("error")
    assert len(out["summaries"]) == len(specs)
    retried = [s for s in out["summaries"] if s["run_id"] == killed[0]]
    assert retried and retried[0]["pid"] != killed[1]
    assert not list((store / "runs").glob(".*")), "partial folders left behind"
    assert all(X.is_finished(store, s) for s in specs)
    _assert_same_runs(local_store, store, specs)



@pytest.mark.ray
def test_ray_ctrl_c_cancels_outstanding_runs_without_partial_folders(ray_session, local_store, tmp_path):
    """A real SIGINT to this (the driver's) process while tasks run: KeyboardInterrupt propagates,
    the outstanding tasks are cancelled, no partial folder stays, every run folder present is
    complete, and a rerun finishes the grid with the local executor's numbers."""
    from kgcl_lib.experiments.executors import RayExecutor

    store = _fresh_store(local_store, tmp_path)
    specs = _specs()
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)

    def interrupt_when_a_run_is_being_written():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (store / "runs").exists() and list((store / "runs").glob(f".*{X.PARTIAL_SUFFIX}")):
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.01)

    threading.Thread(target=interrupt_when_a_run_is_being_written, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        RayExecutor().run(specs, store, inputs, progress=False)
    time.sleep(1.0)  # cancelled workers are gone; nothing may appear afterwards
    assert not list((store / "runs").glob(".*")), "partial folders left behind"
    present = [d.name for d in (store / "runs").iterdir()]
    assert len(present) < len(specs), "nothing was cancelled"
    assert all((store / "runs" / name / X.COMPLETE_MARKER).exists() for name in present)
    X.run_grid(specs, store, executor="ray", **RUN_KW)
    _assert_same_runs(local_store, store, specs)

# ------------------------------------------------------------------ issue 19: LLM synopses in shards
from tests.unit.text.test_generate import items, tiny_model_dir  # noqa: E402,F401  (fixtures: a tiny random Llama, 10 items)


@pytest.mark.ray
def test_llm_synopses_in_ray_shards_match_and_rerun_makes_no_calls(ray_session, items, tiny_model_dir, tmp_path):
    import warnings

    from kgcl_lib.experiments.executors import generate_synopses_ray
    from kgcl_lib.text import generate as gen

    kw = dict(max_new_tokens=10, batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gen.GeneratorWarning)
        local = gen.generate_synopses(items, tiny_model_dir, cache=False, progress=False, **kw)
        res = generate_synopses_ray(items, tiny_model_dir, cache_dir=tmp_path / "llm", shard_size=3, progress=False, **kw)
    assert len(res.provenance["shards"]) == 4  # 10 items in shards of 3
    # 8 titled items; the duplicate title (rows 0 and 7) falls in two shards, so each generates it
    assert [s["new"] for s in res.provenance["shards"]] == [3, 2, 2, 1]
    assert res.provenance["new"] == 0, "the driver generated instead of reading the merged shard caches"
    assert res.table["raw"].fillna("<NA>").tolist() == local.table["raw"].fillna("<NA>").tolist()
    assert res.table["status"].tolist() == local.table["status"].tolist()
    # the merged cache holds every shard's records
    merged = list((tmp_path / "llm").glob("synopses-*.jsonl"))
    assert len(merged) == 1 and len(gen.read_cache(merged[0])[0]) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gen.GeneratorWarning)
        again = generate_synopses_ray(items, tiny_model_dir, cache_dir=tmp_path / "llm", shard_size=3, progress=False, **kw)
    assert [s["new"] for s in again.provenance["shards"]] == [0, 0, 0, 0], "a rerun made LLM calls"
    assert again.table["raw"].fillna("<NA>").tolist() == res.table["raw"].fillna("<NA>").tolist()


# ------------------------------------------------------------------ issue 19: entry points
def test_runner_passes_executor_flags_over_the_profile(tmp_path):
    pytest.importorskip("ray", reason="the runner refuses --executor ray without the ray extra (pip install '.[ray]')")
    import io

    import nbformat

    import kgcl_lib.runner.__main__ as runner_cli
    from kgcl_lib import runner

    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("profile = 'default'\nheadlines_path = None\nexecutor = 'local'\n"
                                  "ray_address = None\nresources_per_run = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
        "import json, pathlib\npathlib.Path(headlines_path).write_text(json.dumps("
        "[executor, ray_address, resources_per_run]))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "04_x.ipynb")
    (tmp_path / "t.yaml").write_text("executor: local\nray_address: null\nresources_per_run: {num_cpus: 2, num_gpus: 0.5}\n")
    kw = dict(runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir, params_dir=tmp_path,
              out=io.StringIO())
    headlines = tmp_path / "runs" / "t" / "notebooks" / "04_x.json"
    assert runner.run("t", **kw) == 0
    assert json.loads(headlines.read_text()) == ["local", None, {"num_cpus": 2, "num_gpus": 0.5}]
    assert runner.run("t", executor="ray", ray_address="10.0.0.1:6379", **kw) == 0
    assert json.loads(headlines.read_text()) == ["ray", "10.0.0.1:6379", {"num_cpus": 2, "num_gpus": 0.5}]
    try:  # the CLI's one error style: one line, exit status 2
        rc = runner_cli.main(["--executor", "slurm"])
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2


def test_unknown_executor_is_named():
    from kgcl_lib.experiments.executors import get_executor

    with pytest.raises(ValueError, match="'slurm'"):
        get_executor("slurm")


# ------------------------------------------------------------------ issue 17: a pool of worker processes
@pytest.fixture(scope="module")
def plain_local_store(tmp_path_factory):
    """The local executor's store of :func:`_specs` (also builds the text/pairs caches)."""
    root = tmp_path_factory.mktemp("local-plain")
    cache = tmp_path_factory.mktemp("cache-plain")
    old = os.environ.get("KGCL_CACHE_DIR")
    os.environ["KGCL_CACHE_DIR"] = str(cache)
    try:
        X.run_grid(_specs(), root, **RUN_KW)
    finally:
        if old is None:
            os.environ.pop("KGCL_CACHE_DIR", None)
        else:
            os.environ["KGCL_CACHE_DIR"] = old
    return root, cache


def test_processes_executor_matches_local_and_reruns_nothing(plain_local_store, tmp_path, monkeypatch):
    """Two spawned workers write the same store as the local executor, number for number, each
    run in another process than the driver; a second call trains nothing."""
    from kgcl_lib.experiments.executors import ProcessExecutor, get_executor

    local, cache = plain_local_store
    monkeypatch.setenv("KGCL_CACHE_DIR", str(cache))
    store = _fresh_store(local, tmp_path)
    specs = _specs()
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    summaries = ProcessExecutor(workers=2).run(specs, store, inputs, progress=False)
    assert sorted(s["run_id"] for s in summaries) == sorted(s.run_id for s in specs)
    assert os.getpid() not in {s["pid"] for s in summaries}
    _assert_same_runs(local, store, specs)
    # the workers' own output went to one log per worker, not to the notebook's terminal
    from kgcl_lib.experiments.executors import WORKER_LOGS

    logs = {p.name for p in (store / WORKER_LOGS).glob("worker-*.log")}
    assert {f"worker-{pid}.log" for pid in {s["pid"] for s in summaries}} <= logs
    assert {json.loads((X.run_dir(store, s) / "config.json").read_text())["threads"] for s in specs} == {1}
    before = {s.run_id: (X.run_dir(store, s) / X.COMPLETE_MARKER).stat().st_mtime_ns for s in specs}
    df = X.run_grid(specs, store, executor="processes", resources_per_run={"num_cpus": 1, "workers": 2}, **RUN_KW)
    assert len(df) == len(specs)
    assert before == {s.run_id: (X.run_dir(store, s) / X.COMPLETE_MARKER).stat().st_mtime_ns for s in specs}
    # the profile's resources decide the pool size: CPUs // num_cpus, or "workers"
    assert get_executor("processes", resources_per_run={"num_cpus": 1, "workers": 3}).workers == 3
    from kgcl_lib.experiments.executors import usable_cpus

    assert get_executor("processes", resources_per_run={"num_cpus": 1}).workers == usable_cpus()
    assert get_executor("processes", resources_per_run={"num_cpus": usable_cpus() + 1}).workers == 1


def _watch_partials(store, on_partial, deadline_s=120):
    """Call ``on_partial(run_id, pid)`` for the first run caught while its folder is written."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for partial in (store / "runs").glob(f".*{X.PARTIAL_SUFFIX}") if (store / "runs").exists() else []:
            run_id, tag = partial.name[1:-len(X.PARTIAL_SUFFIX)].split(".", 1)
            on_partial(run_id, int(tag.rsplit(".", 1)[0].rsplit("-", 1)[1]))
            return
        time.sleep(0.01)


def test_processes_worker_killed_mid_run_is_rerun_alone(plain_local_store, tmp_path, monkeypatch):
    """SIGKILL the worker of the first run caught writing its folder: the runs of the broken pool
    are rerun one per fresh process, the store ends complete and equal to the local one, and no
    partial folder is left."""
    from kgcl_lib.experiments.executors import ProcessExecutor

    local, cache = plain_local_store
    monkeypatch.setenv("KGCL_CACHE_DIR", str(cache))
    store = _fresh_store(local, tmp_path)
    specs = _specs()
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    killed: dict = {}

    def kill(run_id, pid):
        os.kill(pid, signal.SIGKILL)
        killed.update(run_id=run_id, pid=pid)

    watcher = threading.Thread(target=_watch_partials, args=(store, kill), daemon=True)
    watcher.start()
    summaries = ProcessExecutor(workers=2).run(specs, store, inputs, progress=False)
    watcher.join(timeout=5)
    assert killed, "no run was caught mid-write"
    assert sorted(s["run_id"] for s in summaries) == sorted(s.run_id for s in specs)
    rerun = [s for s in summaries if s["run_id"] == killed["run_id"]]
    assert rerun and rerun[0]["pid"] != killed["pid"]
    assert not list((store / "runs").glob(".*")), "partial folders left behind"
    _assert_same_runs(local, store, specs)


def test_processes_ctrl_c_stops_workers_without_partial_folders(plain_local_store, tmp_path, monkeypatch):
    """SIGINT to the driver while a worker writes a run: KeyboardInterrupt propagates, the workers
    are killed, no partial folder stays, every folder present is complete."""
    from kgcl_lib.experiments.executors import ProcessExecutor

    local, cache = plain_local_store
    monkeypatch.setenv("KGCL_CACHE_DIR", str(cache))
    store = _fresh_store(local, tmp_path)
    specs = _specs()
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    threading.Thread(target=_watch_partials, args=(store, lambda *_: os.kill(os.getpid(), signal.SIGINT)),
                     daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        ProcessExecutor(workers=2).run(specs, store, inputs, progress=False)
    time.sleep(1.0)  # killed workers write nothing afterwards
    assert not list((store / "runs").glob(".*")), "partial folders left behind"
    present = [d.name for d in (store / "runs").iterdir()]
    assert len(present) < len(specs), "nothing was stopped"
    assert all((store / "runs" / name / X.COMPLETE_MARKER).exists() for name in present)


def test_processes_failed_run_is_reported_and_the_others_finish(plain_local_store, tmp_path, monkeypatch):
    """A run that raises inside its worker (here: it asks for CUDA on a machine without it) is
    reported by run id with its traceback, the other runs of the grid still finish, and the grid
    ends with GridRunError naming only the failed run."""
    import torch

    from kgcl_lib.experiments.executors import GridRunError, ProcessExecutor

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (the failing run asks for CUDA)")
    local, cache = plain_local_store
    monkeypatch.setenv("KGCL_CACHE_DIR", str(cache))
    store = _fresh_store(local, tmp_path)
    good = _specs()[:2]
    bad = X.grid_specs([DS], ["base"], ["without"], [0], overrides={"*": {**OVERRIDES["*"], "device": "cuda"}})[0]
    inputs = X.RunInputs(dataset_options=OPTIONS, text_model=TEXT_MODEL, pair_n=4, threads=1)
    with pytest.raises(GridRunError) as err:
        ProcessExecutor(workers=2).run([bad, *good], store, inputs, progress=False)
    assert set(err.value.failures) == {bad.run_id}
    assert "CUDA is not available" in err.value.failures[bad.run_id]
    assert "Traceback" in err.value.failures[bad.run_id]
    assert all(X.is_finished(store, s) for s in good) and not X.is_finished(store, bad)
    assert not list((store / "runs").glob(".*")), "partial folders left behind"
    _assert_same_runs(local, store, good)


def test_pool_size_respects_a_container_cpu_quota(tmp_path):
    """cgroup v2 and v1 quotas are read as CPUs; no quota (or none readable) means no cap."""
    from kgcl_lib.experiments.executors import cgroup_cpu_limit

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(v1) == 3.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(v1) is None
    assert cgroup_cpu_limit(tmp_path / "absent") is None


def test_usable_cpus_is_capped_by_the_quota(monkeypatch):
    """An 8-CPU affinity mask under a 1.5-CPU quota gives 2 workers' worth; no quota gives 8."""
    from kgcl_lib.experiments.executors import processes as E

    monkeypatch.setattr(E.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    for limit, want in ((1.5, 2), (None, 8), (0.2, 1), (16.0, 8)):
        monkeypatch.setattr(E, "cgroup_cpu_limit", lambda *a, _l=limit, **k: _l)
        assert E.usable_cpus() == want, limit
