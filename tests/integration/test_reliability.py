"""Issue 15: bad data, interrupted runs, read-only caches and CLI argument errors.

Each test names the numbered case of the issue it covers.  The interrupted-run tests send a
real signal (SIGINT, SIGKILL) to a training subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from kgcl_lib.data import DatasetError
from kgcl_lib.data.readers import read_kgcn, read_recbole

from tests.helpers import REPO



def _copy(fixtures_dir, tmp_path, fmt: str) -> Path:
    dst = tmp_path / fmt
    shutil.copytree(fixtures_dir / "data" / fmt, dst)
    return dst


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# --- case 2: a misnamed rating column -------------------------------------------------------
def test_case2_renamed_rating_field_is_an_error_naming_it(fixtures_dir, tmp_path):
    d = _copy(fixtures_dir, tmp_path, "recbole")
    inter = d / "tiny.inter"
    inter.write_text(inter.read_text().replace("rating:float", "score:float", 1))
    with pytest.raises(DatasetError) as e:
        read_recbole(d)
    msg = str(e.value)
    assert f"{inter}:1:" in msg and "'score:float'" in msg and "rating" in msg


def test_case2_unknown_header_field_of_kg_named(fixtures_dir, tmp_path):
    d = _copy(fixtures_dir, tmp_path, "recbole")
    kg = d / "tiny.kg"
    kg.write_text(kg.read_text().replace("tail_id:token", "tail:token", 1))
    with pytest.raises(DatasetError, match=r"tiny\.kg:1: .*'tail:token'"):
        read_recbole(d)


# --- case 4: KG / rating ids out of range -----------------------------------------------------
@pytest.mark.parametrize("bad_id", [3_000_000, 999_999_999, 10**15])
def test_case4_kg_tail_out_of_range_names_line_and_limit(fixtures_dir, tmp_path, bad_id):
    d = _copy(fixtures_dir, tmp_path, "kgcn")
    kg = d / "kg_final.txt"
    rows = _lines(kg)
    rows.insert(2, f"3\t1\t{bad_id}")  # becomes line 3
    kg.write_text("\n".join(rows) + "\n")
    # 5 items + entities 5, 6, 7 (the fixture's) + the bad id itself = 9 distinct -> ids 0..8
    with pytest.raises(DatasetError) as e:
        read_kgcn(d)
    msg = str(e.value)
    assert f"{kg}:3:" in msg and f"tail id {bad_id}" in msg and "0..8" in msg


def test_case4_user_id_gap_names_line(fixtures_dir, tmp_path):
    d = _copy(fixtures_dir, tmp_path, "kgcn")
    r = d / "ratings_final.txt"
    r.write_text(r.read_text() + "500\t1\t1\n")  # users 0, 1, 2 and 500: 4 distinct -> ids 0..3
    with pytest.raises(DatasetError, match=rf"{r}:9: user id 500 .*0\.\.3"):
        read_kgcn(d)


# --- case 5: duplicates, conflicting labels, users without a positive ---------------------
def test_case5_exact_duplicates_dropped_with_count(fixtures_dir, tmp_path):
    d = _copy(fixtures_dir, tmp_path, "kgcn")
    r = d / "ratings_final.txt"
    rows = _lines(r)
    r.write_text("\n".join(rows + rows[:3] + rows[:1]) + "\n")  # 4 extra copies
    with pytest.warns(UserWarning, match=r"4 duplicate rows dropped"):
        ds = read_kgcn(d)
    assert len(ds.ratings) == 8
    pairs = ds.ratings[:, 0] * 100 + ds.ratings[:, 1]
    assert len(np.unique(pairs)) == len(pairs)


def test_case5_duplicates_never_reach_train_and_test(fixtures_dir, tmp_path):
    from kgcl_lib.data import split_ratings
    from kgcl_lib.data.synthetic import SHAPES, make_synthetic, write_kgcn

    ds = make_synthetic(SHAPES["tiny"], np.random.default_rng(0))
    out = write_kgcn(ds, tmp_path / "syn")
    r = out / "ratings_final.txt"
    rows = _lines(r)
    r.write_text("\n".join(rows + rows[::2]) + "\n")
    with pytest.warns(UserWarning, match="duplicate rows dropped"):
        back = read_kgcn(out)
    sp = split_ratings(back.ratings, np.random.default_rng(0))
    key = lambda a: set((a[:, 0] * 10**6 + a[:, 1]).tolist())  # noqa: E731
    assert not key(sp.train) & key(sp.test) and not key(sp.train) & key(sp.valid)


def test_case5_conflicting_labels_name_both_lines(fixtures_dir, tmp_path):
    d = _copy(fixtures_dir, tmp_path, "kgcn")
    r = d / "ratings_final.txt"
    r.write_text(r.read_text() + "0\t1\t0\n")  # line 9 contradicts line 1 "0 1 1"
    with pytest.raises(DatasetError) as e:
        read_kgcn(d)
    msg = str(e.value)
    assert f"{r}:1" in msg and ":9" in msg and "user 0" in msg and "item 1" in msg


def test_case5_users_without_positive_reported_by_stats(fixtures_dir, tmp_path, kgcl_cache, capsys):
    from kgcl_lib.data.__main__ import main

    d = _copy(fixtures_dir, tmp_path, "kgcn")
    r = d / "ratings_final.txt"
    r.write_text(r.read_text() + "3\t0\t0\n3\t4\t0\n")  # user 3: negatives only
    assert main(["stats", "--dataset", "kgcn", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "users without a positive" in out.out + out.err
    assert "1" in [line for line in (out.out + out.err).splitlines() if "without a positive" in line][0]


# --- case 8: header problems blamed on line 1 -----------------------------------------------
@pytest.mark.parametrize("header", [
    "user_id:token item_id:token rating:float timestamp:float",  # spaces instead of tabs
    "user_id:token\titem_id:token\trating:float",  # one field short
    "user_id:token\titem_id:token\trating:float\ttimestamp:float\textra:float",  # one too many
])
def test_case8_header_problems_blamed_on_line_1(fixtures_dir, tmp_path, header):
    d = _copy(fixtures_dir, tmp_path, "recbole")
    inter = d / "tiny.inter"
    rows = _lines(inter)
    inter.write_text("\n".join([header] + rows[1:]) + "\n")
    with pytest.raises(DatasetError) as e:
        read_recbole(d)
    assert f"{inter}:1:" in str(e.value) and f"{inter}:2:" not in str(e.value)


# --- case 6: caches -------------------------------------------------------------------------
def test_case6_cache_entries_get_umask_modes(tmp_path, tiny_dataset):
    from kgcl_lib.data.cache import save_dataset

    old = os.umask(0o022)
    try:
        folder = save_dataset(tiny_dataset, tmp_path / "datasets" / "tiny-abc")
    finally:
        os.umask(old)
    assert (folder.stat().st_mode & 0o777) == 0o755
    for f in folder.iterdir():
        assert (f.stat().st_mode & 0o777) == 0o644, f


def test_case6_unwritable_dataset_cache_warns_and_continues(tmp_path, tiny_dataset, monkeypatch):
    from kgcl_lib.data import cache as cache_mod

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr("tempfile.mkdtemp", denied)
    with pytest.warns(UserWarning, match=r"not writable.*KGCL_CACHE_DIR.*--no-cache"):
        ds = cache_mod.cached_build("tiny", [], {"p": 1}, lambda: tiny_dataset, root=tmp_path / "ro")
    assert ds.n_items == tiny_dataset.n_items


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores file permissions")
def test_case6_read_only_cache_real_permissions(tmp_path, fixtures_dir, monkeypatch, capsys):
    from kgcl_lib.data.__main__ import main

    root = tmp_path / "ro"
    (root / "datasets").mkdir(parents=True)
    os.chmod(root / "datasets", 0o555)
    monkeypatch.setenv("KGCL_CACHE_DIR", str(root))
    try:
        with pytest.warns(UserWarning, match="not writable"):
            assert main(["stats", "--dataset", "kgcn", "--data-dir", str(fixtures_dir / "data")]) == 0
    finally:
        os.chmod(root / "datasets", 0o755)


def test_case6_permission_error_is_one_line(monkeypatch, capsys):
    from kgcl_lib import cli

    def boom(argv):
        raise PermissionError(13, "Permission denied", "/some/cache/x")

    assert cli.run_main(boom, [], prog="python -m kgcl_lib.x") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/some/cache/x" in err[0] and "KGCL_CACHE_DIR" in err[0] and "Traceback" not in err[0]


def test_case6_train_no_cache_writes_no_dataset_cache(tmp_path, monkeypatch, capsys):
    from kgcl_lib.train.__main__ import main

    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    rc = main(["--dataset", "synthetic:tiny", "--epochs", "1", "--dim", "4", "--n-iter", "1", "--n-neighbors", "2",
               "--batch-size", "16", "--json", "--no-progress", "--no-cache"])
    assert rc == 0
    assert not list((tmp_path / "cache").glob("datasets/*"))


# --- case 7: CLI argument errors --------------------------------------------------------------
def _train_cli(argv, capsys):
    from kgcl_lib.train.__main__ import main

    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    return rc, capsys.readouterr().err


BASE = ["--dataset", "synthetic:tiny", "--epochs", "1", "--dim", "4", "--no-progress"]


@pytest.mark.parametrize("args, option, allowed", [
    (["--dataset", "nosuch"], "--dataset", "ml-100k"),
    (["--variant", "foo"], "--variant", "cl_genre"),
    (["--gamma", "2"], "--gamma", "[0, 1]"),
    (["--epochs", "0"], "--epochs", ">= 1"),
    (["--dim", "-1"], "--dim", ">= 1"),
    (["--aggregator", "max"], "--aggregator", "concat"),
])
def test_case7_train_argument_errors_one_line_exit_2(args, option, allowed, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KGCL_DATA_DIR", str(tmp_path / "empty"))
    argv = BASE + args if args[0] != "--dataset" else args + BASE[2:]
    rc, err = _train_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and option in lines[0] and allowed in lines[0] and "Traceback" not in err, err


def test_case7_device_cuda_without_gpu(capsys, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    rc, err = _train_cli(BASE + ["--device", "cuda"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "--device" in err and "cpu" in err, err


def test_case7_traceback_only_with_debug(capsys, tmp_path, monkeypatch):
    from kgcl_lib.data.__main__ import main

    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ratings_final.txt").write_text("0\t0\tx\n")
    (bad / "kg_final.txt").write_text("0\t0\t1\n")
    assert main(["stats", "--dataset", "bad", "--data-dir", str(tmp_path), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "ratings_final.txt:1" in err
    assert main(["stats", "--dataset", "bad", "--data-dir", str(tmp_path), "--no-cache", "--debug"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_case7_cl_genre_hint_names_an_existing_train_option(tiny_dataset):
    from kgcl_lib.pairs.build import build_pairs
    from kgcl_lib.train.__main__ import parser

    with pytest.raises(DatasetError) as e:  # tiny_dataset has too few genre-labelled items for n=10
        build_pairs(tiny_dataset, "genre", n=10, domain="movie", cache=False)
    msg = str(e.value)
    assert "--pair-sampler kg" in msg
    opts = {s for a in parser()._actions for s in a.option_strings}
    assert "--pair-sampler" in opts


@pytest.mark.parametrize("module", ["kgcl_lib.train", "kgcl_lib.data", "kgcl_lib.pairs", "kgcl_lib.text", "kgcl_lib.runner"])
def test_issue12_every_option_has_help_with_default(module, monkeypatch):
    """Every option of every CLI has a help text; options with a value state their default."""
    import importlib

    from kgcl_lib import cli

    seen = []

    def capture(self, args=None, namespace=None):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(cli.CliParser, "parse_args", capture)
    mod = importlib.import_module(module + ".__main__")  # every command: python -m <package> runs its __main__
    subs = {"kgcl_lib.data": [["stats"], ["synth"], ["fetch", "--dataset", "ml-100k"]]}.get(module, [[]])
    for argv in subs:
        try:
            mod.main(argv)
        except SystemExit:
            pass
    assert seen, f"{module} does not build its parser with kgcl_lib.cli.CliParser"
    parsers = list(seen)
    for parser in parsers:  # grows with sub-command parsers
        for a in parser._actions:
            if a.dest in ("help",):
                continue
            if isinstance(a, argparse._SubParsersAction):
                parsers.extend(a.choices.values())
                continue
            assert a.help and a.help.strip(), f"{parser.prog} {a.option_strings}: no help"
            takes_value = a.nargs != 0
            if takes_value and not a.required and a.option_strings:
                assert "default" in a.help.lower(), f"{parser.prog} {a.option_strings}: help states no default"


# --- case 3: interrupted --out-dir --------------------------------------------------------
TRAIN = [sys.executable, "-m", "kgcl_lib.train", "--dataset", "synthetic:tiny", "--dim", "4", "--n-iter", "1",
         "--n-neighbors", "2", "--batch-size", "16", "--no-progress", "--json"]


def _env(tmp_path):
    return {**os.environ, "KGCL_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _snapshot(d: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_case3_interrupted_out_dir_keeps_the_complete_run(tmp_path, sig):
    out = tmp_path / "run"
    env = _env(tmp_path)
    first = subprocess.run(TRAIN + ["--epochs", "1", "--seed", "0", "--out-dir", str(out)], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = _snapshot(out)
    assert {"config.json", "result.json", "history.json", "checkpoint.pt"} <= set(before)

    proc = subprocess.Popen(TRAIN + ["--epochs", "100000", "--seed", "1", "--out-dir", str(out)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # wait until the new run has started writing (its config exists somewhere), then stop it
        deadline = time.time() + 240
        started = False
        while time.time() < deadline and proc.poll() is None:
            configs = [p for p in tmp_path.rglob("config.json")]
            new = [p for p in configs if json.loads(p.read_text()).get("seed") == 1]
            if new:
                started = True
                break
            time.sleep(0.2)
        assert started, "the second run never wrote its config"
        time.sleep(0.5)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert _snapshot(out) == before  # old complete run intact, nothing mixed in
    # a later complete run replaces it and removes what the killed run left behind
    again = subprocess.run(TRAIN + ["--epochs", "1", "--seed", "2", "--out-dir", str(out)], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "config.json").read_text())["seed"] == 2
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".run")]


def test_case3_completed_rerun_replaces_and_says_so(tmp_path):
    out = tmp_path / "run"
    env = _env(tmp_path)
    a = subprocess.run(TRAIN + ["--epochs", "1", "--seed", "0", "--out-dir", str(out)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert a.returncode == 0, a.stderr
    b = subprocess.run(TRAIN + ["--epochs", "2", "--seed", "1", "--out-dir", str(out)], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert b.returncode == 0, b.stderr
    assert "replac" in b.stderr and str(out) in b.stderr
    assert json.loads((out / "config.json").read_text())["seed"] == 1
    assert len(json.loads((out / "history.json").read_text())) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no staging left behind


def test_case3_out_dir_with_foreign_files_refused(tmp_path, capsys, monkeypatch):
    from kgcl_lib.train.__main__ import main

    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    try:
        rc = main(BASE + ["--out-dir", str(out)])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and "--out-dir" in err and "notes.txt" in err
    assert (out / "notes.txt").read_text() == "keep me"
