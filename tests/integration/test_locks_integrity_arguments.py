"""Issue 28: nothing hangs, nothing stored is trusted unchecked, every bad argument is named.

One test (or a parametrised group) per case of the issue; each fails on main cfac9ec.  Tiny
synthetic data; the subprocess tests (a pool from a script without the main guard) are few.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from kgcl_lib import experiments as X
from kgcl_lib.runner import notebooks as runner
from kgcl_lib.runner.__main__ import main as runner_main
from kgcl_lib.storage import write_json

from tests.helpers import REPO

DS = "synthetic-tiny"
TINY = X.RunSpec(DS, "base", seed=0, overrides=(("epochs", 1), ("batch_size", 32)))
TINY2 = X.RunSpec(DS, "base", seed=1, overrides=(("epochs", 1), ("batch_size", 32)))
#: synthetic-tiny has 20 items: cut-offs below that
EV = X.EvalConfig(ks=(5, 10), diversity_k=5, topk=10, cold_k=10)
RUN_KW = dict(threads=1, progress=False, ev=EV)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _lock_record(pid: int, started: float | None = None) -> str:
    import socket

    return json.dumps({"pid": pid, "host": socket.gethostname(), "started": started or time.time()})


# ==================================================================== kernel builds that cannot wedge
@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """``kgcl_lib.model.kernels`` with a fresh state, a private build folder and a fake ``load_inline``
    that fails if torch's own lock file is still there when it is called (torch would wait on it
    forever)."""
    import torch.utils.cpp_extension as ext

    from kgcl_lib.model import kernels

    build = tmp_path / "build"
    build.mkdir()
    calls = []

    def load_inline(name, **kw):
        calls.append(name)
        if (build / "lock").exists():
            raise AssertionError("torch's stale build lock is still there: torch would wait on it forever")
        return "compiled-module"

    monkeypatch.delenv("KGCL_NO_CPP", raising=False)
    monkeypatch.setattr(kernels, "_state", {})
    monkeypatch.setattr(ext, "load_inline", load_inline)
    monkeypatch.setattr(ext, "_get_build_directory", lambda name, verbose: str(build))
    return kernels, build, calls


def test_kernel_build_breaks_a_dead_owners_lock_and_torchs_stale_lock(fake_build):
    kernels, build, calls = fake_build
    (build / "kgcl-build.lock").write_text(_lock_record(_dead_pid()))
    (build / "lock").write_text("")  # torch's FileBaton, left by a build killed with -9
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "kernels unavailable" fallback
        assert kernels.cpp_kernels() == "compiled-module"
    assert calls and not (build / "lock").exists() and not (build / "kgcl-build.lock").exists()


def test_kernel_build_by_a_live_process_waits_briefly_then_falls_back(fake_build, monkeypatch, capfd):
    kernels, build, calls = fake_build
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (build / "kgcl-build.lock").write_text(_lock_record(owner.pid))
        monkeypatch.setenv("KGCL_KERNEL_WAIT", "1")
        t0 = time.monotonic()
        assert kernels.cpp_kernels() is None  # the pure-torch paths
        assert time.monotonic() - t0 < 10
    finally:
        owner.kill()
        owner.wait()
    err = capfd.readouterr().err
    assert not calls
    assert f"pid {owner.pid}" in err and "waiting up to 1 s" in err and "pure-torch" in err, err
    assert sum("waiting" in line for line in err.splitlines()) == 1  # said once


def test_lock_of_another_host_is_broken_only_when_too_old(tmp_path):
    from kgcl_lib import locks

    path = tmp_path / "x.lock"
    path.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": time.time() - 100}))
    os.utime(path, (time.time() - 100, time.time() - 100))  # last touched by its owner 100 s ago
    assert not locks.try_acquire(path, max_age=1000)
    assert locks.try_acquire(path, max_age=10)
    assert json.loads(path.read_text())["pid"] == os.getpid()
    locks.release(path)
    assert not path.exists()


# ==================================================================== many runners at once
def test_runner_kernels_use_a_private_runtime_dir_and_socket_names(tmp_path):
    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    import nbformat

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("headlines_path = None")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(
        "import json, os, pathlib\nfrom ipykernel import get_connection_file\n"
        "info = json.loads(pathlib.Path(get_connection_file()).read_text())\n"
        "pathlib.Path(headlines_path).write_text(json.dumps({'ip': info['ip'], 'cf': get_connection_file(), "
        "'rt': os.environ.get('JUPYTER_RUNTIME_DIR'), 'progress': os.environ.get('KGCL_PROGRESS_FILE')}))")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / "01_ipc.ipynb")
    (tmp_path / "t.yaml").write_text("description: ipc\n")
    assert runner.run("t", runs_dir=tmp_path / "runs", figures_dir=tmp_path / "fig", notebooks_dir=nbdir,
                      params_dir=tmp_path, out=io.StringIO()) == 0
    got = json.loads((tmp_path / "runs" / "t" / "notebooks" / "01_ipc.json").read_text())
    rt = Path(got["rt"])
    # the IPC socket files and the connection file live in this runner's own folder, not in the
    # shared notebooks folder under a fixed name that a second runner would pick too
    assert Path(got["ip"]).is_absolute() and Path(got["ip"]).parent == rt, got
    assert Path(got["progress"]).parent == rt, got
    assert rt.name.startswith("kgcl-runner-") and not rt.exists()  # removed afterwards
    assert not [f for f in nbdir.iterdir() if f.name.startswith("kernel")]


def _train_store(root, specs=(TINY,), **kw):
    return X.run_grid(list(specs), root, **{**RUN_KW, **kw})


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory):
    """Two tiny runs trained once (with progress reporting on), copied by the tests that change them."""
    root = tmp_path_factory.mktemp("store")
    progress = root / "progress.json"
    old = os.environ.get("KGCL_PROGRESS_FILE")
    os.environ["KGCL_PROGRESS_FILE"] = str(progress)
    try:
        _train_store(root, (TINY, TINY2))
    finally:
        if old is None:
            os.environ.pop("KGCL_PROGRESS_FILE", None)
        else:
            os.environ["KGCL_PROGRESS_FILE"] = old
    return root


def _copy_store(store, tmp_path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(store, dst)
    return dst


def _count_trainings(monkeypatch) -> list:
    import kgcl_lib.experiments.execute as T

    calls, real = [], T.train

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(T, "train", counting)
    return calls


def test_run_lock_of_a_dead_process_is_broken(tmp_path, kgcl_cache):
    lock = X.run_lock(tmp_path, TINY)
    lock.parent.mkdir(parents=True)
    lock.write_text(_lock_record(_dead_pid()))
    df = _train_store(tmp_path)
    assert len(df) == 1 and X.is_finished(tmp_path, TINY) and not lock.exists()


def test_second_runner_on_one_store_waits_for_the_run_and_does_not_train_it_again(
        trained_store, tmp_path, kgcl_cache, monkeypatch, capsys):
    store = tmp_path / "b"
    (store / "runs").mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # "runner A", training
    lock = X.run_lock(store, TINY)
    lock.parent.mkdir(parents=True)
    lock.write_text(_lock_record(owner.pid))
    calls = _count_trainings(monkeypatch)
    result = {}
    t = threading.Thread(target=lambda: result.update(df=_train_store(store)))
    t.start()
    try:
        deadline = time.monotonic() + 60
        while "waiting for it" not in capsys.readouterr().out and time.monotonic() < deadline:
            time.sleep(0.2)
        # runner A finishes the run and releases its lock
        shutil.copytree(trained_store / "runs" / TINY.run_id, store / "runs" / TINY.run_id)
        lock.unlink()
        t.join(timeout=60)
    finally:
        owner.kill()
        owner.wait()
    assert not t.is_alive() and len(result["df"]) == 1
    assert calls == []  # nothing trained twice


def test_run_finished_by_another_runner_after_listing_is_not_trained_again(
        trained_store, tmp_path, kgcl_cache, monkeypatch):
    """Runner B listed the run as to do; runner A finished it (lock released) before B reached it."""
    import kgcl_lib.experiments.executors.common as common

    store = _copy_store(trained_store, tmp_path)
    monkeypatch.setattr(common, "_todo", lambda specs, *a, **k: list(specs))  # the list B made earlier
    calls = _count_trainings(monkeypatch)
    assert len(_train_store(store)) == 1 and calls == []
    assert len(X.run_grid([TINY], store, force=True, **RUN_KW)) == 1 and calls == [1]  # force still retrains


# ==================================================================== integrity of stored runs
def test_changed_array_is_a_named_error_for_report_claims_and_inspector(trained_store, tmp_path):
    store = _copy_store(trained_store, tmp_path)
    d = store / "runs" / TINY.run_id
    arr = np.load(d / "user_ndcg.npy")
    np.save(d / "user_ndcg.npy", np.zeros_like(arr))  # well-formed, wrong
    for read in (lambda: X.load_results(store), lambda: X.load_run(store, TINY.run_id)):
        with pytest.raises(X.RunIntegrityError) as e:
            read()
        msg = str(e.value)
        assert TINY.run_id in msg and "user_ndcg.npy" in msg and "\n" not in msg, msg
    from kgcl_lib.claims.rows import UserArrays

    with pytest.raises(X.RunIntegrityError, match="user_ndcg.npy"):
        UserArrays(store).get(TINY.run_id, "ndcg@10")


def test_truncated_metrics_is_named_then_rebuilt_by_run_grid(trained_store, tmp_path, kgcl_cache):
    store = _copy_store(trained_store, tmp_path)
    m = store / "runs" / TINY.run_id / "metrics.json"
    m.write_text(m.read_text()[:40])
    with pytest.raises(X.RunIntegrityError, match=f"{TINY.run_id}.*metrics.json"):
        X.load_results(store)
    with pytest.warns(UserWarning, match="metrics.json"):
        df = _train_store(store)  # the grid trains it again
    assert len(df) == 1 and json.loads(m.read_text())["test_auc"] > 0


def test_run_without_completion_marker_is_not_listed(trained_store, tmp_path):
    store = _copy_store(trained_store, tmp_path)
    (store / "runs" / TINY.run_id / X.COMPLETE_MARKER).unlink()
    df = X.load_results(store)
    assert list(df["run_id"]) == [TINY2.run_id]


def test_grid_reports_runs_done_for_the_runner(trained_store):
    data = json.loads((trained_store / "progress.json").read_text())
    assert (data["done"], data["total"], data["what"]) == (2, 2, "runs")


# ==================================================================== integrity of caches
def _zero_in_place(path: Path, keep: int = 0):
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(keep)
        f.write(b"\0" * (size - keep))


def test_text_embedding_caches_changed_or_truncated_are_rebuilt(tmp_path, kgcl_cache):
    from kgcl_lib.data import load_dataset
    from kgcl_lib.text.encode import item_text_embeddings

    ds = load_dataset("synthetic:tiny")
    first = item_text_embeddings(ds)
    vec = next(kgcl_cache.glob("text/*/vectors.npy"))
    _zero_in_place(vec, keep=128)  # same size, header kept: np.load would read zeros
    with pytest.warns(UserWarning, match=f"{vec}"):
        again = item_text_embeddings(ds)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    vec.write_bytes(vec.read_bytes()[:200])  # truncated
    with pytest.warns(UserWarning, match="vectors.npy"):
        np.testing.assert_array_equal(item_text_embeddings(ds).vectors, first.vectors)
    # the results store's copy (<results>/text/<dataset>__with.npz)
    store = tmp_path / "r"
    ds = X.open_dataset(DS)
    emb = X.text_embeddings(store, ds, "with")
    npz = store / "text" / f"{DS}__with.npz"
    _zero_in_place(npz, keep=0)
    with pytest.warns(UserWarning, match=f"{npz}"):
        np.testing.assert_array_equal(X.text_embeddings(store, ds, "with").vectors, emb.vectors)


def test_pairs_caches_rewritten_with_flipped_labels_are_rebuilt(tmp_path, kgcl_cache):
    from kgcl_lib.data import load_dataset
    from kgcl_lib.pairs import build_pairs

    ds = load_dataset("synthetic:tiny")
    first = build_pairs(ds, "genre", n=2, domain="movie", sampler="kg")
    path = first.path
    flipped = first.table.assign(label=(1 - first.table["label"]).astype("int8"))
    flipped.to_parquet(path, index=False)
    with pytest.warns(UserWarning, match=f"{path}"):
        again = build_pairs(ds, "genre", n=2, domain="movie", sampler="kg")
    assert not again.provenance.get("cache_hit") and again.table.equals(first.table)
    # the results store's copy, truncated
    store = tmp_path / "r"
    ds = X.open_dataset(DS)
    pairs = X.content_pairs(store, ds, "genre", n=2, sampler="kg")
    pq = store / "pairs" / f"{DS}__genre.parquet"
    pq.write_bytes(pq.read_bytes()[:100])
    with pytest.warns(UserWarning, match=f"{pq}"):
        assert X.content_pairs(store, ds, "genre", n=2, sampler="kg").table.equals(pairs.table)


def test_pairs_cache_entry_is_built_once_by_concurrent_builders(kgcl_cache, monkeypatch):
    """Runners sharing $KGCL_CACHE_DIR: the first to finish a pairs entry deleted the parts folder
    the others were still writing into (FileNotFoundError in 03_pairs). One builds, the other waits."""
    import kgcl_lib.pairs.build as B
    from kgcl_lib.data import load_dataset

    real = B._compute_chunks

    def slow(*a, **k):
        time.sleep(1.0)  # both builders are inside at once without the entry lock
        return real(*a, **k)

    monkeypatch.setattr(B, "_compute_chunks", slow)
    ds = load_dataset("synthetic:tiny")
    got = []
    threads = [threading.Thread(target=lambda: got.append(B.build_pairs(ds, "genre", n=2, domain="movie", sampler="kg")))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(got) == 2 and got[0].table.equals(got[1].table)
    assert sorted(bool(g.provenance.get("cache_hit")) for g in got) == [False, True]  # computed once


# ==================================================================== arguments
def _cli(main, argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("argv, option", [
    (["--retries", "-3"], "--retries"),
    (["--cell-timeout", "-1"], "--cell-timeout"),
    (["--cell-timeout", "nan"], "--cell-timeout"),
])
def test_runner_negative_retries_or_timeout_exit_2(argv, option, capsys):
    rc, _, err = _cli(runner_main, ["--profile", "smoke", *argv], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and option in err and "allowed" in err, err


@pytest.mark.parametrize("text, key", [("seeds: []\n", "seeds"),
                                       ("notebooks:\n  '09': {gamma_seeds: []}\n", "notebooks.09.gamma_seeds"),
                                       ("seeds: [0, -1]\n", "seeds")])
def test_profile_with_empty_or_bad_seeds_is_an_error_before_running(tmp_path, text, key):
    (tmp_path / "p.yaml").write_text(text)
    with pytest.raises(ValueError, match=f"{key} = "):
        runner.load_profile("p", tmp_path)


TRAIN = ["--dataset", "synthetic:tiny", "--epochs", "1", "--dim", "4", "--no-progress", "--no-cache"]


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--threads", "-1"),
                                         ("--patience", "-1"), ("--seed", "-1"), ("--l2", "nan")])
def test_train_bad_number_names_the_flag_exit_2(flag, value, capsys, kgcl_cache):
    from kgcl_lib.train.__main__ import main

    rc, _, err = _cli(main, [*TRAIN, flag, value], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and f"{flag} {value}" in err, err


def test_train_missing_data_dir_names_data_dir(capsys, kgcl_cache, tmp_path):
    from kgcl_lib.train.__main__ import main

    rc, _, err = _cli(main, [*TRAIN, "--data-dir", str(tmp_path / "nonexistent")], capsys)
    assert rc == 2 and "--data-dir" in err and "no such folder" in err and "--dataset" not in err, err


def test_train_unknown_device_one_line_with_allowed_values(capsys, kgcl_cache):
    from kgcl_lib.train.__main__ import main

    rc, _, err = _cli(main, [*TRAIN, "--device", "tpu"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "--device tpu" in err and "allowed here: auto, cpu" in err and "Expected one of" not in err, err


def test_disk_full_is_one_line_naming_the_path(capsys, kgcl_cache, tmp_path, monkeypatch):
    import torch

    from kgcl_lib.storage import atomic_path
    from kgcl_lib.train.__main__ import main

    target = tmp_path / "a" / "x.npy"
    with pytest.raises(OSError) as e:
        with atomic_path(target) as tmp, open(tmp, "wb") as f:
            raise OSError(errno.ENOSPC, "No space left on device")  # as f.write / np.save would
    assert e.value.errno == errno.ENOSPC and str(target) in str(e.value) and "no space left on device" in str(e.value)

    def full(obj, f, *a, **k):
        f.write(b"x" * 10)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    rc, _, err = _cli(main, [*TRAIN, "--out-dir", str(tmp_path / "out")], capsys)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1, err
    assert "no space left on device writing " in lines[0] and "checkpoint.pt" in lines[0], err


def _kgcn_folder(root: Path, ratings: list[tuple], kg: list[tuple]) -> Path:
    d = root / "custom"
    d.mkdir(parents=True)
    (d / "ratings_final.txt").write_text("".join(f"{u}\t{i}\t{y}\n" for u, i, y in ratings))
    (d / "kg_final.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in kg))
    return d


@pytest.mark.parametrize("ratings, what", [
    ([(0, i, i % 2) for i in range(8)], "1 user(s)"),
    ([(u, 0, 1) for u in range(8)], "1 item(s)"),
])
def test_one_user_or_one_item_is_a_clear_error(ratings, what, tmp_path, capsys, kgcl_cache):
    from kgcl_lib.train.__main__ import main

    n_items = max(r[1] for r in ratings) + 1
    _kgcn_folder(tmp_path, ratings, [(i, 0, n_items) for i in range(n_items)])
    rc, out, err = _cli(main, ["--dataset", "custom", "--data-dir", str(tmp_path), "--epochs", "1", "--no-progress",
                               "--no-cache", "--json"], capsys)
    assert rc == 1 and what in err and "split" in err and "NaN" not in out, (out, err)


def test_no_kg_triples_warns_that_kgcn_degenerates(tiny_dataset):
    import dataclasses

    from kgcl_lib.data import split_ratings
    from kgcl_lib.train import TrainConfig, train

    ds = dataclasses.replace(tiny_dataset, kg=np.zeros((0, 3), dtype=np.int64))
    with pytest.warns(UserWarning, match="no KG triples.*factorisation"):
        train(ds, split_ratings(ds.ratings, 0), TrainConfig(dataset="x", epochs=1, dim=4), progress=False)


def test_json_output_is_strict_json_even_with_nan(capsys, kgcl_cache, monkeypatch):
    import kgcl_lib.train.__main__ as cli

    class Res:
        def summary(self):
            return {"test_auc": float("nan"), "test_f1": float("inf"), "valid_auc": 0.5, "epochs": 1, "seconds": 0.1,
                    "train_rows_per_s": float("nan")}

    def fake_train(*a, **k):
        return Res()

    for extra in ([], ["--json"]):
        monkeypatch.setattr(cli.loop, "train", fake_train)
        assert cli.run_cli([*TRAIN, *extra]) == 0
        text = capsys.readouterr().out

        def no_constants(name):
            raise ValueError(f"not JSON: {name}")

        data = json.loads(text, parse_constant=no_constants)
        assert data["test_auc"] is None and data["test_f1"] is None and data["valid_auc"] == 0.5


def test_train_domain_flag_for_a_custom_named_dataset(tmp_path, capsys, kgcl_cache):
    from kgcl_lib.data import load_dataset
    from kgcl_lib.data.synthetic import write_recbole
    from kgcl_lib.train.__main__ import main

    write_recbole(load_dataset("synthetic:tiny"), tmp_path / "mydata", name="mydata")
    argv = ["--dataset", "mydata", "--data-dir", str(tmp_path), "--variant", "cl_genre", "--n-pairs", "2",
            "--epochs", "1", "--dim", "4", "--no-progress", "--json", "--pair-sampler", "text"]
    rc, _, err = _cli(main, argv, capsys)
    assert rc != 0 and "--domain" in err, err
    rc, out, err = _cli(main, argv + ["--domain", "movie"], capsys)
    assert rc == 0, err
    assert "domain': 'movie'" in json.loads(out)["pairs_source"] or '"domain": "movie"' in json.loads(out)["pairs_source"]


def test_header_only_synopses_is_an_error_and_offline_fetch_writes_none(tmp_path, monkeypatch):
    from kgcl_lib.data import DatasetError
    from kgcl_lib.data.acquire import movies
    from kgcl_lib.data.readers import read_synopses

    p = tmp_path / "synopses.tsv"
    p.write_text("item_id\tsynopsis\n")
    with pytest.raises(DatasetError, match="synopses.tsv: holds no synopses"):
        read_synopses(p)
    # an offline fetch: every lookup fails
    titles = movies.pd.DataFrame({"item_id": ["1", "2"], "raw_title": ["A (1990)", "B (1991)"], "title": ["A", "B"],
                                  "year": [1990, 1991]})
    monkeypatch.setattr(movies, "read_ml100k_titles", lambda folder: titles)
    monkeypatch.setattr(movies, "_map_items", lambda fn, rows, **k: [(None, None, None, None, "network unreachable")
                                                                     for _ in rows])
    from types import SimpleNamespace

    ctx = SimpleNamespace(dest=tmp_path / "ml", work=tmp_path / "ml" / ".kgcl-fetch", overrides={}, workers=1,
                          progress=False)
    ctx.work.mkdir(parents=True)
    cov, missing, _, _ = movies.ml100k_synopses(ctx, "wikipedia", verbose=False)
    assert (cov.have, cov.total) == (0, 2) and len(missing) == 2
    assert not (ctx.dest / "synopses.tsv").exists()
    # the command then exits non-zero, naming the field and missing.tsv
    from kgcl_lib.data.acquire import fetch as F
    from kgcl_lib.storage import write_json as wj

    def offline_fetch(name, dest, **kw):
        wj(Path(dest) / "coverage.json", {"fields": {"synopsis": {"have": 0, "of": 2}}})

    monkeypatch.setattr(F, "fetch_dataset", offline_fetch)
    assert F.fetch_cli(["--dataset", "ml-100k", "--dest", str(ctx.dest), "--quiet"]) == 1


def test_recbole_pair_rated_twice_is_counted_in_a_warning(fixtures_dir, tmp_path):
    from kgcl_lib.data.readers import read_recbole

    d = tmp_path / "rb"
    shutil.copytree(fixtures_dir / "data" / "recbole", d)
    inter = d / "tiny.inter"
    lines = inter.read_text().splitlines()
    header, first = lines[0], lines[1].split("\t")
    cols = header.split("\t")
    r = [i for i, c in enumerate(cols) if c.startswith("rating")][0]
    again = list(first)
    again[r] = "1" if float(first[r]) >= 4 else "5"
    inter.write_text("\n".join(lines + ["\t".join(again)]) + "\n")
    with pytest.warns(UserWarning, match=r"1 repeated \(user, item\) rating.*1 pair\(s\) rated both"):
        read_recbole(d)


_NO_GUARD = """
from kgcl_lib import experiments as X
from kgcl_lib.experiments.executors import ProcessExecutor
specs = [X.RunSpec("synthetic-tiny", "base", seed=s, overrides=(("epochs", 1),)) for s in (0, 1)]
ProcessExecutor(workers=2).run(specs, {results!r}, X.RunInputs(threads=1), progress=False)
"""


def test_pool_from_a_script_without_main_guard_names_the_cause(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(_NO_GUARD.format(results=str(tmp_path / "r")))
    env = {**os.environ, "PYTHONPATH": str(REPO), "KGCL_CACHE_DIR": str(tmp_path / "c"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180, env=env)
    assert p.returncode != 0
    assert "spawned workers could not start" in p.stderr and '__name__ == "__main__"' in p.stderr, p.stderr[-2000:]
    assert "died" not in p.stderr
    from kgcl_lib.mainguard import script_without_guard

    guarded = tmp_path / "ok.py"
    guarded.write_text("import sys\n\nif __name__ == '__main__':\n    print(1)\n")
    assert script_without_guard(type("M", (), {"__file__": str(guarded)})) is None
    assert script_without_guard(type("M", (), {"__file__": str(script)})) == script


# ==================================================================== progress
def test_progress_line_in_place_on_a_terminal_and_rate_limited_in_a_log(tmp_path):
    from kgcl_lib.progress import ProgressLine

    f = tmp_path / "p.json"
    tty, log = io.StringIO(), io.StringIO()
    on_tty = ProgressLine(f, tty, "04_train", tty=True)
    in_log = ProgressLine(f, log, "04_train", tty=False, interval=60)
    for now, done in ((0, 2), (10, 4), (20, 5), (80, 6), (90, 6)):
        write_json(f, {"done": done, "total": 12, "what": "runs", "time": now})
        on_tty.update(now)
        in_log.update(now)
    assert tty.getvalue().count("\r") == 5 and "\n" not in tty.getvalue()
    assert "runs 4/12, ETA 40 s" in tty.getvalue()  # 2 runs in 10 s, 8 left
    # log: the first count, then nothing until 60 s passed; at 80 s: 4 runs in 80 s, 6 left -> 120 s
    lines = log.getvalue().strip().splitlines()
    assert lines == ["[kgcl]   04_train: runs 2/12", "[kgcl]   04_train: runs 6/12, ETA 2.0 min"], lines
