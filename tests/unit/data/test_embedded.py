"""Embedded ML-100K: wheel verification and extraction on a fake wheel, pip failures, and
(slow) the real ``pip download`` of recbole==1.2.1."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
import zipfile

import pytest

from kgcl_lib.data import DatasetError
from kgcl_lib.data import embedded as emb


def fake_wheel(path, files=emb.ML100K_FILES, extra=("recbole/__init__.py",)):
    """A zip laid out like the RecBole wheel, with small placeholder contents."""
    with zipfile.ZipFile(path, "w") as z:
        for f in files:
            z.writestr(emb.WHEEL_PREFIX + f, f"content of {f}\n")
        for f in extra:
            z.writestr(f, "")
    return path


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_extract_from_fake_wheel(tmp_path):
    whl = fake_wheel(tmp_path / "w.whl")
    dest = emb.extract_ml100k(whl, tmp_path / "out" / "ml-100k", sha256=sha(whl))
    assert sorted(p.name for p in dest.iterdir()) == sorted(emb.ML100K_FILES)
    assert (dest / "ml-100k.kg").read_text() == "content of ml-100k.kg\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ml-100k"]  # no temp folder left


def test_extract_rejects_wrong_checksum_and_missing_member(tmp_path):
    whl = fake_wheel(tmp_path / "w.whl")
    with pytest.raises(DatasetError, match=r"w.whl: sha256 .* does not match the pinned 0{64}"):
        emb.extract_ml100k(whl, tmp_path / "o", sha256="0" * 64)
    assert not (tmp_path / "o").exists()
    bad = fake_wheel(tmp_path / "b.whl", files=emb.ML100K_FILES[:3])
    with pytest.raises(DatasetError, match=r"has no recbole/dataset_example/ml-100k/ml-100k.link"):
        emb.extract_ml100k(bad, tmp_path / "o", sha256=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.whl", "w.whl"]  # nothing partial
    (tmp_path / "n.whl").write_text("not a zip")
    with pytest.raises(DatasetError, match="not a zip"):
        emb.extract_ml100k(tmp_path / "n.whl", tmp_path / "o", sha256=None)


def test_fetch_uses_a_wheel_already_in_the_cache(tmp_path, monkeypatch):
    (tmp_path / "dl").mkdir()
    whl = fake_wheel(tmp_path / "dl" / emb.RECBOLE_WHEEL)
    monkeypatch.setattr(emb, "RECBOLE_WHEEL_SHA256", sha(whl))
    monkeypatch.setattr(emb, "download_recbole_wheel", lambda *a, **k: pytest.fail("must not download"))
    dest = emb.fetch_ml100k(tmp_path / "data" / "ml-100k", wheel_dir=tmp_path / "dl")
    assert (dest / "ml-100k.inter").is_file()
    whl.unlink()  # already extracted: neither wheel nor pip needed any more
    assert emb.fetch_ml100k(dest, wheel_dir=tmp_path / "dl") == dest


def test_pip_command_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv(emb.ENV_PIP_INDEX_URL, raising=False)
    monkeypatch.delenv(emb.ENV_PIP_COMMAND, raising=False)
    cmd = emb.pip_download_command(tmp_path)
    assert cmd[:3] == [sys.executable, "-m", "pip"]
    assert cmd[3:] == ["download", "--no-deps", "--only-binary=:all:", "--dest", str(tmp_path), "recbole==1.2.1"]
    monkeypatch.setenv(emb.ENV_PIP_INDEX_URL, "https://mirror.example/simple")
    monkeypatch.setenv(emb.ENV_PIP_COMMAND, "uv pip")
    cmd = emb.pip_download_command(tmp_path)
    assert cmd[:2] == ["uv", "pip"] and cmd[-2:] == ["--index-url", "https://mirror.example/simple"]


def test_pip_failure_gives_a_clear_error_and_leaves_nothing(tmp_path):
    failing = f"{shlex.quote(sys.executable)} -c \"import sys; print('ERROR: No matching distribution', file=sys.stderr); sys.exit(1)\""
    with pytest.raises(DatasetError) as e:
        emb.download_recbole_wheel(tmp_path, pip_command=failing, index_url="http://127.0.0.1:9/simple")
    msg = str(e.value)
    assert "could not download recbole==1.2.1" in msg and "No matching distribution" in msg
    assert emb.ENV_PIP_INDEX_URL in msg and emb.RECBOLE_WHEEL_SHA256 in msg and "KGCL_DATA_DIR" in msg
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DatasetError, match="could not download"):
        emb.download_recbole_wheel(tmp_path, pip_command="/nonexistent/pip")


def test_downloaded_wheel_with_wrong_hash_is_not_kept(tmp_path, monkeypatch):
    # a "pip" that drops a fake wheel into --dest
    script = tmp_path / "fakepip.py"
    script.write_text(
        "import sys, zipfile, pathlib\n"
        "d = pathlib.Path(sys.argv[sys.argv.index('--dest') + 1])\n"
        f"zipfile.ZipFile(d / {emb.RECBOLE_WHEEL!r}, 'w').writestr('x', 'y')\n"
    )
    out = tmp_path / "dl"
    with pytest.raises(DatasetError, match="does not match the pinned"):
        emb.download_recbole_wheel(out, pip_command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")
    assert list(out.iterdir()) == []


def _index_reachable() -> bool:
    try:
        proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "recbole"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and "1.2.1" in proc.stdout


@pytest.mark.slow
def test_real_wheel_download_matches_pinned_hash_and_shared_data(tmp_path):
    if not _index_reachable():
        pytest.skip("no package index with recbole==1.2.1 reachable (offline)")
    whl = emb.download_recbole_wheel(tmp_path / "dl")
    dest = emb.extract_ml100k(whl, tmp_path / "ml-100k")
    assert sorted(p.name for p in dest.iterdir()) == sorted(emb.ML100K_FILES)
    import os
    from pathlib import Path

    shared = Path(os.environ.get("KGCL_DATA_DIR", "")) / "ml-100k"
    if (shared / "ml-100k.inter").is_file():
        for f in ("ml-100k.inter", "ml-100k.item", "ml-100k.kg", "ml-100k.link"):
            assert (dest / f).read_bytes() == (shared / f).read_bytes()
