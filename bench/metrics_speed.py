"""Speed and agreement of kgcl_lib.metrics against jurity 2.1.0 at MovieLens-20M scale.

Synthetic inputs shaped like the paper's largest evaluation (138,159 users, top-100 of 16,954
items, 32-d content embeddings): popularity-skewed top-K lists, test positives, training
counts, labelled CTR rows, positive content pairs and a seeds x variants results table.

It times every metric of ``kgcl_lib.metrics`` together (and their peak traced memory), then
each metric that jurity has, side by side in the same process, and reports the absolute
differences:

* exact comparisons (AUC, F1, Recall@100, NDCG@100): |ours - jurity|;
* jurity's diversity with its defaults samples users (10,000 x 10 runs): we report
  |ours exact - jurity|, the same estimate reproduced from jurity's own user samples
  (``abs_diff_same_sample``, should be ~1e-12) and the run-to-run standard error;
* ``--jurity-exact-users M`` also runs jurity's exact (``user_sample_size=None``) diversity on
  the first M users and compares with ours on the same users.

Usage::

    python bench/metrics_speed.py --users 138159 --json          # full scale (minutes: jurity)
    python bench/metrics_speed.py --users 20000 --no-jurity       # ours only

``--json`` prints one JSON object on stdout (progress goes to stderr); ``--out FILE`` also
writes it (atomically).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from kgcl_lib import metrics as M  # noqa: E402
from kgcl_lib.storage import write_json  # noqa: E402

JURITY_METRICS = ("auc", "f1", "recall@100", "ndcg@100", "inter_list@100", "intra_list@20")


# ---------------------------------------------------------------------------------------------
# synthetic data
# ---------------------------------------------------------------------------------------------
def popularity(rng: np.random.Generator, n_items: int, exponent: float = 0.8) -> np.ndarray:
    """``float64[n_items]`` Zipf-like item probabilities over a random item order."""
    w = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** exponent
    p = np.empty(n_items)
    p[rng.permutation(n_items)] = w / w.sum()
    return p


def sample_distinct(rng: np.random.Generator, p: np.ndarray, n_rows: int, k: int, chunk: int = 8192) -> np.ndarray:
    """``int64[n_rows, k]``: k distinct items per row drawn by popularity ``p`` (first draws kept).

    Draws 3k items with replacement per row, keeps each row's first occurrences in draw order
    and redraws the (rare) rows with fewer than k distinct items.
    """
    out = np.empty((n_rows, k), dtype=np.int64)
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    for a in range(0, n_rows, chunk):
        rows = np.arange(a, min(a + chunk, n_rows))
        while len(rows):
            draws = np.minimum(np.searchsorted(cdf, rng.random((len(rows), 3 * k))), len(p) - 1)
            order = np.argsort(draws, axis=1, kind="stable")
            srt = np.take_along_axis(draws, order, axis=1)
            first_sorted = np.ones_like(srt, dtype=bool)
            first_sorted[:, 1:] = srt[:, 1:] != srt[:, :-1]
            first = np.zeros_like(first_sorted)
            np.put_along_axis(first, order, first_sorted, axis=1)
            keep = first & (np.cumsum(first, axis=1) <= k)
            ok = keep.sum(axis=1) == k
            out[rows[ok]] = draws[ok][keep[ok]].reshape(-1, k)
            rows = rows[~ok]
    return out


def make_data(n_users: int, n_items: int, k: int, dim: int, ctr_rows: int, n_pairs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    p = popularity(rng, n_items)
    topk = sample_distinct(rng, p, n_users, k)
    n_pos = np.minimum(1 + rng.negative_binomial(1, 1 / 15, n_users), n_items)  # mean ~15 test positives
    users = np.repeat(np.arange(n_users), n_pos)
    items = np.minimum(np.searchsorted(np.cumsum(p), rng.random(len(users)) * p.sum()), n_items - 1)
    truth = M.truth_matrix(users, items, n_users, n_items)
    train_counts = 1 + rng.negative_binomial(1, 1 / 60, n_users)
    # 50 genre-like clusters, so cosine distances spread over [0, 2) instead of all being ~1
    centers = rng.normal(size=(50, dim))
    item_emb = (centers[rng.integers(0, 50, n_items)] + 0.6 * rng.normal(size=(n_items, dim))).astype(np.float32)
    labels = rng.integers(0, 2, ctr_rows)
    scores = np.clip(0.5 + 0.2 * (labels - 0.5) + 0.25 * rng.normal(size=ctr_rows), 0, 1).astype(np.float32)
    anchor = rng.integers(0, n_items, n_pairs)
    other = rng.integers(0, n_items, n_pairs)
    variants = ("baseline", "cl_genre", "cl_title_genre", "text_baseline", "text_cl_genre", "text_cl_title_genre")
    runs = pd.DataFrame(
        {
            "variant": np.repeat(variants, 10),
            "seed": np.tile(np.arange(10), len(variants)),
            **{f"m{j}": rng.normal(size=10 * len(variants)) for j in range(24)},
        }
    )
    return dict(
        topk=topk, truth=truth, train_counts=train_counts, item_emb=item_emb, labels=labels, scores=scores,
        anchor=anchor, other=other, runs=runs, n_items=n_items,
    )


# ---------------------------------------------------------------------------------------------
# our metrics
# ---------------------------------------------------------------------------------------------
def our_metrics(d: dict) -> list[tuple[str, callable]]:
    """Every metric of the paper on the synthetic data, as (name, thunk)."""
    emb = d["item_emb"]
    return [
        ("auc", lambda: M.auc(d["labels"], d["scores"])),
        ("f1", lambda: M.f1(d["labels"], d["scores"])),
        ("recall@100", lambda: M.recall_at_k(d["topk"], d["truth"], 100)),
        ("ndcg@100", lambda: M.ndcg_at_k(d["topk"], d["truth"], 100)),
        ("ranking_all_ks_jurity", lambda: M.ranking_metrics(d["topk"], d["truth"], ndcg="jurity")),
        ("ranking_all_ks_standard", lambda: M.ranking_metrics(d["topk"], d["truth"], ndcg="standard")),
        ("cold_start_ndcg@100", lambda: M.cold_start_ndcg(d["topk"], d["truth"], d["train_counts"], k=100)),
        ("inter_list@100", lambda: M.inter_list_diversity(d["topk"], d["n_items"], k=100)),
        ("inter_list@20", lambda: M.inter_list_diversity(d["topk"], d["n_items"], k=20)),
        ("intra_list@20", lambda: M.intra_list_diversity(d["topk"], emb, k=20)),
        ("intra_list@100", lambda: M.intra_list_diversity(d["topk"], emb, k=100)),
        ("alignment", lambda: M.alignment(emb[d["anchor"]], emb[d["other"]])),
        ("uniformity", lambda: M.uniformity(emb)),
        ("ttest_vs_baseline", lambda: M.ttest_vs_baseline(d["runs"], "baseline")),
    ]


def scalar(v):
    if isinstance(v, dict):
        return {k: scalar(x) for k, x in v.items() if not isinstance(x, str)}
    if isinstance(v, pd.DataFrame):
        return None if "t" in v.columns else v.to_dict(orient="list")  # t-test table: too long
    return float(v)


def run_ours(d: dict, memory: bool) -> dict:
    out, values = {}, {}
    t_all = time.perf_counter()
    for name, fn in our_metrics(d):
        t0 = time.perf_counter()
        values[name] = fn()
        out[name] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    res = {"seconds": out, "total_s": total, "values": {k: scalar(v) for k, v in values.items()}, "raw": values}
    if memory:
        # second pass under tracemalloc (numpy reports its buffers to it): the metrics' own
        # allocations on top of the inputs, which are already allocated.
        tracemalloc.start()
        for _, fn in our_metrics(d):
            fn()
        res["peak_traced_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    res["maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # inputs included
    return res


# ---------------------------------------------------------------------------------------------
# jurity
# ---------------------------------------------------------------------------------------------
def jurity_frames(topk: np.ndarray, truth) -> tuple[pd.DataFrame, pd.DataFrame]:
    n, k = topk.shape
    predicted = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(n), k),
            "item_id": topk.ravel(),
            "click": np.tile(np.arange(k, 0, -1, dtype=np.float64), n),
        }
    )
    coo = truth.tocoo()
    actual = pd.DataFrame({"user_id": coo.row.astype(np.int64), "item_id": coo.col.astype(np.int64), "click": 1})
    return actual, predicted


def item_frame(emb: np.ndarray) -> pd.DataFrame:
    df = pd.DataFrame(emb.astype(np.float64), columns=[f"f{j}" for j in range(emb.shape[1])])
    df.insert(0, "item_id", np.arange(len(emb)))
    return df


def timed(fn):
    from jurity.utils import get_sorted_clicks

    get_sorted_clicks.cache_clear()  # jurity caches on values only; never reuse across calls
    t0 = time.perf_counter()
    v = fn()
    return v, time.perf_counter() - t0


def run_jurity(d: dict, ours: dict, which: list[str], exact_users: int, log) -> dict:
    from jurity.classification import BinaryClassificationMetrics as BCM
    from jurity.recommenders import DiversityRecoMetrics as DRM
    from jurity.recommenders import RankingRecoMetrics as RRM
    from jurity.utils import sample_users

    res = {}
    actual, predicted = jurity_frames(d["topk"], d["truth"])
    emb64 = d["item_emb"].astype(np.float64)  # jurity/sklearn in float64 so 1e-9 agreement is meaningful
    items = item_frame(emb64)

    def exact(name, v, t):
        res[name] = {"jurity_s": t, "jurity": float(v), "abs_diff": abs(float(v) - ours["values"][name]),
                     "jurity_mode": "exact"}
        log(f"jurity {name}: {t:.2f}s")

    if "auc" in which:
        exact("auc", *timed(lambda: BCM.AUC().get_score(d["labels"], d["scores"])))
    if "f1" in which:
        pred = (d["scores"] >= 0.5).astype(int)
        exact("f1", *timed(lambda: BCM.F1().get_score(d["labels"], pred)))
    if "recall@100" in which:
        exact("recall@100", *timed(lambda: RRM.Recall(click_column="click", k=100).get_score(actual, predicted)))
    if "ndcg@100" in which:
        exact("ndcg@100", *timed(lambda: RRM.NDCG(click_column="click", k=100).get_score(actual, predicted)))

    # jurity's default sampling: reproduce its user samples to separate sampling error from
    # definition differences
    size, runs = 10_000, 10
    seeds = np.random.default_rng(1).integers(0, runs * 10, runs)  # jurity's seed derivation (seed=1)

    def samples():
        for s in seeds:
            yield np.sort(sample_users(predicted, "user_id", size, seed=s)["user_id"].unique())

    for name, k, make, ours_fn in (
        ("inter_list@100", 100,
         lambda: DRM.InterListDiversity(click_column="click", k=100),
         lambda rows: M.inter_list_diversity(d["topk"][rows], d["n_items"], k=100)),
        ("intra_list@20", 20,
         lambda: DRM.IntraListDiversity(item_features=items, click_column="click", k=20),
         lambda rows: M.intra_list_diversity(d["topk"][rows], emb64, k=20)),
    ):
        if name not in which:
            continue
        v, t = timed(lambda: make().get_score(actual, predicted))
        log(f"jurity {name} (sampled): {t:.2f}s")
        per_run = np.array([ours_fn(rows) for rows in samples()])
        entry = {
            "jurity_s": t, "jurity": float(v), "jurity_mode": f"sampled {size} users x {runs} runs",
            "abs_diff_vs_exact": abs(float(v) - ours["values"][name]),
            # equal user samples in every run, so the mean of run means is jurity's estimate
            "abs_diff_same_sample": abs(float(v) - per_run.mean()),
            "sampling_se": float(per_run.std(ddof=1) / np.sqrt(runs)) if runs > 1 else None,
        }
        if exact_users:
            m = min(exact_users, len(d["topk"]))
            sub = predicted[predicted["user_id"] < m]
            if name.startswith("inter"):
                mk = DRM.InterListDiversity(click_column="click", k=k, user_sample_size=None)
            else:
                mk = DRM.IntraListDiversity(item_features=items, click_column="click", k=k, user_sample_size=None)
            ve, te = timed(lambda: mk.get_score(actual, sub))
            entry.update(exact_users=m, jurity_exact_s=te, jurity_exact=float(ve),
                         abs_diff_exact_subset=abs(float(ve) - ours_fn(np.arange(m))))
            log(f"jurity {name} exact on {m} users: {te:.2f}s")
        res[name] = entry
    return res


# ---------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=138_159, help="evaluated users (default: ML-20M's 138,159)")
    ap.add_argument("--items", type=int, default=16_954, help="catalogue size (default: 16,954)")
    ap.add_argument("--k", type=int, default=100, help="list length (default 100)")
    ap.add_argument("--dim", type=int, default=32, help="content-embedding width (default 32)")
    ap.add_argument("--ctr-rows", type=int, default=None, help="labelled test rows (default 20 x users)")
    ap.add_argument("--pairs", type=int, default=None, help="positive content pairs (default 10 x items)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-jurity", action="store_true", help="time our metrics only")
    ap.add_argument("--jurity-metrics", default=",".join(JURITY_METRICS),
                    help=f"comma list among {','.join(JURITY_METRICS)}")
    ap.add_argument("--jurity-exact-users", type=int, default=2000,
                    help="also run jurity's exact diversity on this many users (0: skip)")
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit BLAS threads (threadpoolctl) for both libraries; default: leave as is")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.k < 100:
        ap.error("--k must be >= 100 (Recall/NDCG@100 and inter-list@100 are measured)")
    which = [m for m in args.jurity_metrics.split(",") if m]
    unknown = set(which) - set(JURITY_METRICS)
    if unknown:
        ap.error(f"unknown --jurity-metrics {sorted(unknown)}")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message="User_sample_size can not be larger", category=UserWarning)
    if args.blas_threads:
        # On a loaded 2-core machine OpenBLAS's spinning threads can slow small-inner-dimension
        # GEMMs (uniformity) several-fold; pinning makes runs comparable.
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")
    t0 = time.perf_counter()
    d = make_data(args.users, args.items, args.k, args.dim, args.ctr_rows or 20 * args.users,
                  args.pairs or 10 * args.items, args.seed)
    log(f"data: {time.perf_counter() - t0:.1f}s")
    ours = run_ours(d, memory=not args.no_memory)
    log(f"ours: {ours['total_s']:.2f}s total")

    report = {
        "config": {"users": args.users, "items": args.items, "k": args.k, "dim": args.dim,
                   "blas_threads": args.blas_threads,
                   "ctr_rows": len(d["labels"]), "pairs": len(d["anchor"]), "seed": args.seed,
                   "truth_nnz": int(d["truth"].nnz)},
        "machine": {"python": platform.python_version(), "numpy": np.__version__, "pandas": pd.__version__,
                    "processor": platform.processor() or platform.machine(), "cpus": _cpus()},
        "ours_total_s": ours["total_s"],
        "ours_peak_traced_bytes": ours.get("peak_traced_bytes"),
        "ours_maxrss_bytes": ours["maxrss_bytes"],
        "metrics": {name: {"ours_s": s, "ours": ours["values"][name]} for name, s in ours["seconds"].items()},
    }
    if not args.no_jurity:
        import importlib.metadata

        report["machine"]["jurity"] = importlib.metadata.version("jurity")
        jres = run_jurity(d, ours, which, args.jurity_exact_users, log)
        for name, entry in jres.items():
            m = report["metrics"][name]
            m.update(entry)
            m["speedup"] = entry["jurity_s"] / max(m["ours_s"], 1e-9)
        diffs = [e.get("abs_diff", e.get("abs_diff_same_sample")) for e in jres.values()]
        diffs += [e["abs_diff_exact_subset"] for e in jres.values() if "abs_diff_exact_subset" in e]
        report["max_abs_diff"] = max(diffs) if diffs else None
        report["min_speedup"] = min((report["metrics"][n]["speedup"] for n in jres), default=None)
    if args.out:
        write_json(args.out, report)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
    else:
        _print_table(report)
    return report


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _print_table(r: dict) -> None:
    print(f"config: {r['config']}")
    print(f"{'metric':28s} {'ours s':>8s} {'jurity s':>9s} {'speedup':>8s} {'|diff|':>10s}")
    for name, m in r["metrics"].items():
        diff = m.get("abs_diff", m.get("abs_diff_same_sample"))
        js = f"{m['jurity_s']:9.2f}" if "jurity_s" in m else f"{'-':>9s}"
        sp = f"{m['speedup']:8.1f}" if "speedup" in m else f"{'-':>8s}"
        df = f"{diff:10.1e}" if diff is not None else f"{'-':>10s}"
        print(f"{name:28s} {m['ours_s']:8.3f} {js} {sp} {df}")
    print(f"ours total {r['ours_total_s']:.2f}s, peak traced {(r['ours_peak_traced_bytes'] or 0) / 2**20:.0f} MiB, "
          f"max RSS {r['ours_maxrss_bytes'] / 2**20:.0f} MiB")
    if "max_abs_diff" in r:
        print(f"max |ours - jurity| {r['max_abs_diff']:.2e}; min speedup {r['min_speedup']:.1f}x")


if __name__ == "__main__":
    main()
