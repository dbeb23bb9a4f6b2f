"""Training and full-catalogue scoring speed: kgcl's KGCN vs RecBole 1.2.1's KGCN, side by side.

Usage (from the repo root; prints one JSON object)::

    python bench/train_speed.py --dataset ml-100k --threads 1
    python bench/train_speed.py --dataset book-crossing --threads 1 --eval
    python bench/train_speed.py --dataset synthetic:ml-20m --threads 2 --epochs 1 --no-recbole
    python bench/train_speed.py --dataset book-crossing --compare-l2 --no-recbole --epochs 2

``--compare-l2`` times three optimiser set-ups of ours side by side in one invocation: the
default (KGCN's whole-table λ, ``optimizer="adam"``: idle rows' L2 steps iterated lazily), the
batch-row scope (``l2_scope="batch"``, *not* KGCN's; the previous default) and dense fused torch
Adam over the whole tables (``optimizer="dense_adam"``), and reports the epoch-time ratios.
Each run's ``finish_seconds`` is the end-of-run flush of the table rows no forward pass reads
(``kgcl_lib.model.KGCN.end_training``: the per-epoch flush skips them) and ``run_seconds`` the
epochs plus that; ``ratio_run_default_vs_batch_scope`` compares whole runs.
``speedup_default_vs_dense_adam_bound_free_forward_backward`` (CPU) is the ceiling of
``speedup_default_vs_dense_adam`` if plan/forward/backward cost nothing: ``(all table rows ÷ rows
a forward reads) × (idle-iteration rate ÷ dense fused Adam rate)``, both rates timed in this run
on this table (``bench/idle_steps.py --dense``; BENCHMARKS.md, "Why ≥ 10× over dense fused Adam
cannot hold").
``--settings paper`` runs Table 1's settings (the trainer's default: Book-Crossing K=4, concat)
instead of the peer's.  ``--rounds R`` repeats the three set-ups R times, rotating their order
each round, and reports each round's ratios and their median: on a shared machine whose speed
drifts by ±20 % between minutes, a ratio taken within one round (seconds apart) is far steadier
than one set-up's time.

Both sides run with the same hyper-parameters (the peer's settings: ml-100k d=32, L=2, K=4,
batch 2,048; Book-Crossing d=64, L=1, K=8, batch 256; sum aggregator), the same torch thread
count, in one invocation, one after the other.  RecBole runs in its own interpreter
(``$KGCL_RECBOLE_PYTHON`` or ``.cache/recbole-venv/bin/python``, built by
``bash ../shared/peers/recbole/setup_recbole_venv.sh .cache/recbole-venv``) with
``--epochs N --no-eval``.

Rates.  RecBole reports *interactions*/s: positive training interactions per second, each
paired with one sampled negative, i.e. two KGCN forward rows per interaction.  We report
labelled *rows*/s (our training split holds positives and KGCN's sampled negatives as rows).
``ratio_rows`` compares like with like: ours rows/s ÷ (2 × RecBole interactions/s).  Note that a
RecBole batch of 256 interactions is 512 rows; ours is 256 rows (more optimiser steps per row).

Scoring (``--eval``): exact full-catalogue KGCN scores (``KGCN.topk``, mode
``kgcn``, training positives masked) for the first ``--eval-users`` (default: 6,769, RecBole's
Book-Crossing test-user count) distinct test users, checked against the per-pair forward on a
sample of users (max |Δ score|).  RecBole's own test evaluation is *quoted* (450 s, measured
by the issue on this machine class, 1 thread) unless ``--recbole-eval`` re-runs it (~7.5 min).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PEER_SETTINGS = {
    "ml-100k": dict(dim=32, n_iter=2, n_neighbors=4, batch_size=2048, lr=2e-2, l2=1e-7),
    "book-crossing": dict(dim=64, n_iter=1, n_neighbors=8, batch_size=256, lr=2e-4, l2=2e-5),
    "synthetic:ml-20m": dict(dim=32, n_iter=2, n_neighbors=4, batch_size=65536, lr=2e-2, l2=1e-7),
}
RECBOLE_QUOTED_EVAL_S = {"book-crossing": 450.0}


def peers_dir() -> Path:
    return Path(os.environ.get("KGCL_PEERS_DIR") or (REPO / ".." / "shared" / "peers")).resolve()


def recbole_python() -> Path:
    return Path(os.environ.get("KGCL_RECBOLE_PYTHON") or (REPO / ".cache" / "recbole-venv" / "bin" / "python"))


def data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("KGCL_DATA_DIR") or (REPO / ".." / "shared" / "data")).resolve()


def run_recbole(dataset: str, s: dict, threads: int, epochs: int, data: Path, eval_: bool) -> dict:
    py = recbole_python()
    if not py.exists():
        return {"error": f"RecBole interpreter {py} not found; build it with setup_recbole_venv.sh"}
    script = peers_dir() / "recbole" / "recbole_kgcn.py"
    with tempfile.TemporaryDirectory(prefix="kgcl_rb_") as tmp:
        folder = data / dataset
        if dataset == "book-crossing":  # KGCN-format files -> RecBole atomic files
            folder = Path(tmp) / "book-crossing"
            subprocess.run([str(py), str(peers_dir() / "recbole" / "kgcn_to_recbole.py"), str(data / dataset), str(folder)],
                           check=True, capture_output=True)
        cmd = [str(py), str(script), str(folder), "--epochs", str(epochs), "--embedding-size", str(s["dim"]),
               "--n-iter", str(s["n_iter"]), "--neighbor-sample-size", str(s["n_neighbors"]), "--aggregator", s["aggregator"],
               "--lr", str(s["lr"]), "--reg-weight", str(s["l2"]), "--train-batch-size", str(s["batch_size"]),
               "--threads", str(threads), "--quiet"]
        if not eval_:
            cmd.append("--no-eval")
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            return {"error": f"RecBole failed ({p.returncode}): {p.stderr[-2000:]}"}
        out = json.loads(p.stdout.strip().splitlines()[-1])
        out["wall_s"] = round(time.perf_counter() - t0, 1)
        return out


def load(dataset: str, data: Path):
    from kgcl_lib.data import load_dataset

    return load_dataset(dataset, data_dir=None if dataset.startswith("synthetic") else data, seed=0)


def run_ours(ds, s: dict, threads: int, epochs: int, device: str) -> dict:
    import torch

    from kgcl_lib.data import Split, split_ratings
    from kgcl_lib.train import TrainConfig, train

    torch.set_num_threads(threads)
    from kgcl_lib.model.kernels import cpp_kernels

    cpp_kernels()  # compile / load the CPU kernels before any timing (a first build takes ~20 s)
    split = split_ratings(ds.ratings, np.random.default_rng(0))
    empty = split.train[:0]
    cfg = TrainConfig(dataset=ds.name, epochs=epochs, threads=threads, device=device, **s)
    res = train(ds, Split(split.train, empty, empty), cfg, progress=False)
    secs = [h["seconds"] for h in res.history]
    pos_frac = float((split.train[:, 2] == 1).mean())
    med = float(np.median(secs))
    return {
        "seconds_per_epoch": [round(x, 3) for x in secs],
        "seconds_per_epoch_median": round(med, 3),
        "train_rows": int(len(split.train)),
        "steps_per_epoch": int(res.info["steps_per_epoch"]),
        "train_rows_per_s": round(len(split.train) / med, 1),
        "train_positives_per_s": round(pos_frac * len(split.train) / med, 1),
        # rows no forward reads are brought up to date once, after the last epoch (not in the epochs)
        "finish_seconds": round(res.info.get("finish_seconds", 0.0), 3),
        "run_seconds": round(res.seconds, 3),
        "losses": [round(h["loss"], 5) for h in res.history],
        "device": res.info["device"],
        "threads": torch.get_num_threads(),
        "optimizer": cfg.optimizer,
        "l2_scope": cfg.l2_scope,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **({"cuda_device": torch.cuda.get_device_name(), "torch": torch.__version__,
            "cuda_peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)} if res.info["device"].startswith("cuda") else {}),
    }, res.model, split


def run_eval(model, split, ds, n_users: int, chunk: int) -> dict:
    import scipy.sparse as sp
    import torch

    # users with a test positive first (as RecBole's test users), then others up to n_users so
    # that both sides score the same number of users
    test_pos = split.test[split.test[:, 2] == 1]
    _, first = np.unique(test_pos[:, 0], return_index=True)
    users = test_pos[np.sort(first), 0]
    rest = np.setdiff1d(np.arange(ds.n_users), users)
    users = np.concatenate([users, rest])[:n_users]
    tr = split.train[split.train[:, 2] == 1]
    exclude = sp.csr_matrix((np.ones(len(tr), np.float32), (tr[:, 0], tr[:, 1])), shape=(ds.n_users, ds.n_items))
    model.eval()
    t0 = time.perf_counter()
    top = model.topk(users, 100, exclude=exclude, mode="kgcn", chunk=chunk)
    secs = time.perf_counter() - t0
    # exactness: the full-catalogue scores equal the per-pair forward for a sample of users
    sample = torch.as_tensor(users[:8])
    with torch.no_grad():
        full = model.score_all(sample, chunk=4)
        uu = sample.repeat_interleave(ds.n_items)
        ii = torch.arange(ds.n_items).repeat(len(sample))
        pair = torch.sigmoid(torch.cat([model(uu[s:s + 65536], ii[s:s + 65536]) for s in range(0, len(uu), 65536)]))
    return {"eval_users": int(len(users)), "eval_items": int(ds.n_items), "eval_seconds": round(secs, 2),
            "users_per_s": round(len(users) / secs, 1), "max_abs_diff_vs_pair_forward": float((full.reshape(-1) - pair).abs().max()),
            "topk_shape": list(top.shape)}


COMPARED = (("default", dict(optimizer="adam", l2_scope="table")),
            ("batch_scope", dict(optimizer="adam", l2_scope="batch")),
            ("dense_adam_table", dict(optimizer="dense_adam", l2_scope="table")))


def dense_speedup_bound(model, steps: int, threads: int) -> dict:
    """The most dense fused Adam ÷ the faithful default could be if forward/backward cost nothing.

    Dense streams all ``users + entities`` rows each step; the faithful epoch iterates only the
    idle steps of the rows a forward pass reads (``KGCN.readable_entities`` + every user), so
    the ratio is at most ``(all ÷ readable rows) × (idle rate ÷ dense rate)``, both rates timed
    here on this run's table size (``bench/idle_steps.py``).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from idle_steps import dense_rate, idle_rate

    n_users, (n_entities, dim) = model.user_emb.shape[0], model.entity_emb.shape
    readable = n_users + int(model.readable_entities().sum())
    idle = idle_rate(n_users + n_entities, dim, steps, threads)
    dense = dense_rate(n_users + n_entities, dim, steps, threads)
    per_element = idle["g_element_steps_per_wall_s"] / dense["g_element_steps_per_wall_s"]
    return {"table_rows": n_users + n_entities, "readable_rows": readable, "dim": dim, "steps": steps,
            "idle_g_element_steps_per_s": idle["g_element_steps_per_wall_s"],
            "dense_g_element_steps_per_s": dense["g_element_steps_per_wall_s"],
            "idle_over_dense": round(per_element, 2),
            "bound": round((n_users + n_entities) / readable * per_element, 2)}


def compare_optimisers(ds, s: dict, args, first_default: dict, model=None) -> dict:
    """The faithful default, the batch-row scope and dense fused Adam, ``args.rounds`` rounds.

    Round 0 runs default (already timed: ``first_default``), batch, dense; round r runs the same
    three rotated by r, so no set-up always runs first or last.  Ratios are taken within a round
    (per-epoch medians), then their median over rounds is reported.
    """
    rounds = []
    for r in range(max(1, args.rounds)):
        order = COMPARED[r % 3:] + COMPARED[:r % 3]
        got = {"default": first_default} if r == 0 else {}
        for name, kw in order:
            if name not in got:
                got[name] = run_ours(ds, dict(s, **kw), args.threads, args.epochs, args.device)[0]
        rounds.append(got)
    med = {n: [g[n]["seconds_per_epoch_median"] for g in rounds] for n, _ in COMPARED}
    ratio = [round(a / b, 3) for a, b in zip(med["default"], med["batch_scope"])]
    run = {n: [g[n]["run_seconds"] for g in rounds] for n, _ in COMPARED}
    ratio_run = [round(a / b, 3) for a, b in zip(run["default"], run["batch_scope"])]
    speedup = [round(a / b, 3) for a, b in zip(med["dense_adam_table"], med["default"])]
    out = {"compare_l2": {n: rounds[0][n] for n, _ in COMPARED if n != "default"},
           "ratio_default_vs_batch_scope": round(float(np.median(ratio)), 2),
           # whole runs: the epochs plus the end-of-run flush of rows no forward reads
           "ratio_run_default_vs_batch_scope": round(float(np.median(ratio_run)), 2),
           "speedup_default_vs_dense_adam": round(float(np.median(speedup)), 2)}
    if model is not None and args.device == "cpu":
        out["speedup_default_vs_dense_adam_bound_free_forward_backward"] = dense_speedup_bound(
            model, first_default["steps_per_epoch"], args.threads)
    if len(rounds) > 1:
        out["rounds"] = {"seconds_per_epoch_median": med, "ratio_default_vs_batch_scope": ratio,
                         "run_seconds": run, "ratio_run_default_vs_batch_scope": ratio_run,
                         "speedup_default_vs_dense_adam": speedup,
                         "order": [[n for n, _ in COMPARED[r % 3:] + COMPARED[:r % 3]] for r in range(len(rounds))]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="ml-100k", choices=sorted(PEER_SETTINGS))
    p.add_argument("--data-dir", default=None, help="folder holding <dataset>/ (default $KGCL_DATA_DIR or ../shared/data)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--settings", default="peer", choices=["peer", "paper"],
                   help="peer: RecBole's KGCN settings (default; both sides); paper: Table 1's (the trainer's default)")
    p.add_argument("--aggregator", default=None, choices=["sum", "concat", "neighbor"],
                   help="default: sum with --settings peer, the paper's concat with --settings paper")
    p.add_argument("--optimizer", default="adam", choices=["adam", "lazy_adam", "dense_adam"])
    p.add_argument("--l2-scope", default="table", choices=["table", "batch"])
    p.add_argument("--compare-l2", action="store_true",
                   help="also time l2_scope=batch and dense_adam (whole-table) after the default; report ratios")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --compare-l2: repeat the three set-ups R times in rotating order; report the median ratio")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-recbole", action="store_true", help="time ours only")
    p.add_argument("--eval", action="store_true", help="also time exact full-catalogue top-K scoring")
    p.add_argument("--eval-users", type=int, default=6769)
    p.add_argument("--eval-chunk", type=int, default=32)
    p.add_argument("--recbole-eval", action="store_true", help="re-run RecBole's test evaluation instead of quoting it")
    args = p.parse_args(argv)

    if args.settings == "paper":
        from kgcl_lib.train import paper_settings

        s = {k: v for k, v in paper_settings(args.dataset.removeprefix("synthetic:")).items() if k != "epochs"}
        s["aggregator"] = args.aggregator or s["aggregator"]
    else:
        s = dict(PEER_SETTINGS[args.dataset], aggregator=args.aggregator or "sum")
    data = data_root(args.data_dir)
    out = {"dataset": args.dataset, "settings": s, "threads": args.threads, "epochs": args.epochs, "cpus": os.cpu_count(),
           "loadavg_1m_start": round(os.getloadavg()[0], 2)}
    t0 = time.perf_counter()
    ds = load(args.dataset, data)
    out["load_seconds"] = round(time.perf_counter() - t0, 2)
    ours, model, split = run_ours(ds, dict(s, optimizer=args.optimizer, l2_scope=args.l2_scope), args.threads,
                                  args.epochs, args.device)
    out["ours"] = ours
    if args.compare_l2:
        out.update(compare_optimisers(ds, s, args, ours, model))
    if args.eval:
        out["ours_eval"] = run_eval(model, split, ds, args.eval_users, args.eval_chunk)
    if not args.no_recbole and not args.dataset.startswith("synthetic"):
        rb = run_recbole(args.dataset, s, args.threads, args.epochs, data, args.recbole_eval)
        keep = ("seconds_per_epoch_median", "train_interactions_per_s", "eval_seconds", "epoch_seconds", "sizes", "error", "wall_s")
        out["recbole"] = {k: rb.get(k) for k in keep if k in rb}
        if "train_interactions_per_s" in rb:
            rb_rows = 2 * rb["train_interactions_per_s"]
            out["recbole"]["train_rows_per_s"] = rb_rows
            out["ratio_rows"] = round(ours["train_rows_per_s"] / rb_rows, 2)
            out["ratio_interactions"] = round(ours["train_positives_per_s"] / rb["train_interactions_per_s"], 2)
    if args.eval:
        rb_eval = (out.get("recbole") or {}).get("eval_seconds") or RECBOLE_QUOTED_EVAL_S.get(args.dataset)
        if rb_eval:
            out["recbole_eval_seconds"] = rb_eval
            out["recbole_eval_source"] = "measured here" if (out.get("recbole") or {}).get("eval_seconds") else "quoted from the issue (1 thread, 6,769 users)"
            out["eval_speedup"] = round(rb_eval / out["ours_eval"]["eval_seconds"], 1)
    out["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
