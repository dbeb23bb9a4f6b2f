import json

import pytest

from kgcl_lib import storage


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with storage.atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("done")
        assert not target.exists()  # nothing visible until the block succeeds
    assert target.read_text() == "done"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_json_roundtrip(tmp_path):
    p = storage.write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert json.loads(p.read_text()) == {"a": [1, 2], "b": 1}


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    data = b"x" * (3 * (1 << 20) + 17)  # spans several read chunks
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert storage.sha256_file(p) == hashlib.sha256(data).hexdigest()
    assert storage.sha256_text("a", "b") != storage.sha256_text("ab")


def test_dirs_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(storage.ENV_CACHE_DIR, str(tmp_path / "c"))
    monkeypatch.setenv(storage.ENV_RUNS_DIR, str(tmp_path / "r"))
    monkeypatch.delenv(storage.ENV_DATA_DIR, raising=False)
    assert storage.cache_dir("x") == tmp_path / "c" / "x" and (tmp_path / "c" / "x").is_dir()
    assert storage.runs_dir() == tmp_path / "r"
    assert storage.data_dir() is None
    monkeypatch.setenv(storage.ENV_DATA_DIR, str(tmp_path))
    assert storage.data_dir() == tmp_path


def test_atomic_path_result_has_umask_mode(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        with storage.atomic_path(tmp_path / "m.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(umask)
    assert (tmp_path / "m.txt").stat().st_mode & 0o777 == 0o644
