"""Speed of the acquisition step on loopback: conversion, downloads, cached API answers.

Three measurements, all offline:

* ``convert``: :func:`kgcl_lib.data.acquire.convert_bookcrossing` on synthetic raw files at
  Book-Crossing scale (1,149,780 rating lines, 105,283 users, 14,967 mapped ISBNs of 340,556,
  151,500 KG triples over 25 relations) — cold, then the cached rerun (input hashes only).
* ``download``: one file streamed from a 127.0.0.1 server (``tests/helpers/httpfixtures.py``) —
  full, and resumed after a cut at half (only the tail is transferred).
* ``api``: ``n`` JSON requests to the loopback server through :func:`cached_json` with 1 and 4
  workers (no rate limit), then the same keys answered from the JSONL cache (zero requests),
  plus loading a TMDB-sized cache (16,954 records of ~2 KB).

Usage::

    python bench/acquire_speed.py --json                  # defaults: full BX scale, 64 MiB, 2,000 requests
    python bench/acquire_speed.py --scale 0.1 --json      # quick

``--json`` prints one JSON object on stdout (progress on stderr); ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without install; the loopback server lives with the tests

from tests.helpers.httpfixtures import FakeServer  # noqa: E402
from kgcl_lib.data.acquire import convert_bookcrossing, kgcn_counts  # noqa: E402
from kgcl_lib.data.download import HttpClient, JsonlCache, RetryPolicy, cached_json  # noqa: E402
from kgcl_lib.storage import write_json  # noqa: E402


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def synth_bookcrossing(folder: Path, rng: np.random.Generator, scale: float) -> dict:
    """Raw RippleNet-format files with Book-Crossing's sizes (times ``scale``)."""
    n_lines, n_users, n_isbn, n_items = (int(x * scale) for x in (1_149_780, 105_283, 340_556, 14_967))
    n_triples, n_other = int(151_500 * scale), int((77_903 - 14_967) * scale)
    ids = np.unique(rng.integers(0, 10**9, size=n_isbn + n_isbn // 10 + 10))[:n_isbn]  # distinct
    isbn = np.char.zfill(rng.permutation(ids).astype(str), 10)
    pop = 1.0 / np.arange(1, n_isbn + 1) ** 0.9  # Zipf-like popularity over a random order, so the
    pop = rng.permutation(pop / pop.sum())  # mapped ISBNs get ~4% of lines (real: 69,873 of 1,149,780 = 6%)
    lines_isbn = isbn[rng.choice(n_isbn, size=n_lines, p=pop)]
    users = rng.integers(1, 278_859, size=n_users)[rng.integers(0, n_users, size=n_lines)]
    ratings = np.where(rng.random(n_lines) < 0.62, 0, rng.integers(1, 11, size=n_lines))
    with open(folder / "BX-Book-Ratings.csv", "w", encoding="utf-8") as f:
        f.write('"User-ID";"ISBN";"Book-Rating"\n')
        f.writelines(f'"{u}";"{s}";"{r}"\n' for u, s, r in zip(users.tolist(), lines_isbn.tolist(), ratings.tolist()))
    with open(folder / "item_index2entity_id_rehashed.txt", "w") as f:
        f.writelines(f"{s}\t{i}\n" for i, s in enumerate(isbn[:n_items].tolist()))
    ents = np.arange(n_items + n_other)
    h = rng.choice(ents, size=n_triples)
    t = rng.choice(ents[n_items:] if n_other else ents, size=n_triples)
    r = rng.integers(0, 25, size=n_triples)
    with open(folder / "kg_rehashed.txt", "w") as f:
        f.writelines(f"{a}\trel.{c}\t{b}\n" for a, b, c in zip(h.tolist(), t.tolist(), r.tolist()))
    return {"rating_lines": n_lines, "isbns": n_isbn, "mapped_items": n_items, "triples": n_triples}


def bench_convert(tmp: Path, scale: float) -> dict:
    raw, out = tmp / "raw", tmp / "out"
    raw.mkdir()
    t = time.perf_counter()
    sizes = synth_bookcrossing(raw, np.random.default_rng(0), scale)
    log(f"convert: synthetic raw files in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    counts = convert_bookcrossing(raw, out, seed=555)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    convert_bookcrossing(raw, out, seed=555)
    warm = time.perf_counter() - t
    assert kgcn_counts(out) == counts
    log(f"convert: cold {cold:.2f} s, cached {warm:.2f} s, counts {counts}")
    return {"inputs": sizes, "counts": counts, "cold_s": round(cold, 3), "cached_rerun_s": round(warm, 3)}


def bench_download(tmp: Path, mib: int) -> dict:
    data = np.random.default_rng(1).integers(0, 256, size=mib << 20, dtype=np.uint8).tobytes()
    with FakeServer(max_lifetime_s=600) as s:
        s.file("/f.bin", data)
        s.file("/g.bin", data, cut_first=[len(data) // 2])
        c = HttpClient(retry=RetryPolicy(max_retries=0))
        t = time.perf_counter()
        c.download(s.url("/f.bin"), tmp / "f.bin", progress=False)
        full = time.perf_counter() - t
        try:
            c.download(s.url("/g.bin"), tmp / "g.bin", progress=False)
        except Exception:
            pass  # interrupted at half, as intended
        t = time.perf_counter()
        c.download(s.url("/g.bin"), tmp / "g.bin", progress=False)
        resumed = time.perf_counter() - t
    assert (tmp / "g.bin").read_bytes() == data
    log(f"download: {mib} MiB in {full:.2f} s; resume of the second half {resumed:.2f} s")
    return {"mib": mib, "full_s": round(full, 3), "mib_per_s": round(mib / full, 1), "resume_half_s": round(resumed, 3)}


def bench_api(tmp: Path, n: int) -> dict:
    out = {"requests": n}
    body = {"overview": "x" * 1500, "genres": [{"id": 1, "name": "Drama"}], "title": "t"}
    with FakeServer(max_lifetime_s=600) as s:
        s.raw("/api", json.dumps(body).encode(), headers={"Content-Type": "application/json"})
        keys = [f"k{i}" for i in range(n)]
        for workers in (1, 4):
            c = HttpClient()
            cache = JsonlCache(tmp / f"api{workers}.jsonl")
            t = time.perf_counter()
            with ThreadPoolExecutor(workers) as ex:
                list(ex.map(lambda k: cached_json(c, cache, k, s.url(f"/api?id={k}")), keys))
            dt = time.perf_counter() - t
            out[f"workers{workers}_req_per_s"] = round(n / dt, 1)
            log(f"api: {n} requests with {workers} workers in {dt:.2f} s")
        before = s.count()
        c = HttpClient()
        t = time.perf_counter()
        cache = JsonlCache(tmp / "api4.jsonl")
        for k in keys:
            cached_json(c, cache, k, s.url(f"/api?id={k}"))
        out["cached_rerun_s"] = round(time.perf_counter() - t, 3)
        out["cached_rerun_requests"] = s.count() - before
    big = JsonlCache(tmp / "tmdb.jsonl")
    rec = {"status": 200, "data": body, "error": None}
    with open(big.path, "w", encoding="utf-8") as f:  # bench fixture only: plain write is fine here
        f.writelines(json.dumps({"key": f"movie/{i}", **rec}) + "\n" for i in range(16_954))
    t = time.perf_counter()
    loaded = JsonlCache(big.path)
    out["load_16954_records_s"] = round(time.perf_counter() - t, 3)
    out["cache_mib"] = round(os.path.getsize(big.path) / 2**20, 1)
    assert len(loaded) == 16_954
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="Book-Crossing size multiplier (default 1)")
    p.add_argument("--mib", type=int, default=64, help="download size in MiB (default 64)")
    p.add_argument("--requests", type=int, default=2000, help="loopback JSON requests (default 2000)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--out", help="also write the JSON here")
    a = p.parse_args(argv)
    res = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, fn, arg in (("convert", bench_convert, a.scale), ("download", bench_download, a.mib), ("api", bench_api, a.requests)):
            sub = tmp / name
            sub.mkdir()
            res[name] = fn(sub, arg)
    if a.out:
        write_json(a.out, res)
    if a.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
