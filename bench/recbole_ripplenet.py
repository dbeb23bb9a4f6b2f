"""RippleNet: kgcl's backbone vs RecBole 1.2.1's ``RippleNet`` on the same split, same run.

For each seed the script builds kgcl's seeded 6:2:2 split of the KGCN-protocol labelled rows
(:func:`kgcl_lib.experiments.make_split`), trains kgcl's RippleNet (``--backbone ripplenet``,
the reference's settings for the dataset, no text, no CL) and RecBole's RippleNet on exactly
those rows, and reports test AUC / F1 / accuracy of both and their training speed (both at one
torch thread, measured one after the other in the same process tree).

RecBole runs in its own interpreter (``bash ../shared/peers/recbole/setup_recbole_venv.sh
VENV``); this file is also its worker (``--worker``, standard library + RecBole only).  RecBole
gets the split as benchmark files (``NAME.train/valid/test.inter`` with the 0/1 label; no
negative sampling: the KGCN protocol's sampled negatives are the 0 rows), and the same RippleNet
settings (``embedding_size, n_hop, n_memory, kg_weight, reg_weight``, learning rate, batch
size, epochs).  Both runs select the epoch with the best valid AUC and report test metrics there.

Where RecBole's RippleNet differs from the reference (and so from kgcl's), as shipped:
* its ripple sets start from *every* training row of a user (``dataset.inter_matrix()`` ignores
  the label), so the sampled negatives seed them too; ``--recbole-history positives`` rebuilds
  them from the label-1 rows only (the reference's rule) before training;
* L2 is ``reg_weight · Σ‖·‖₂ / batch`` (norms, not squared norms) and covers the transform matrix;
* Xavier-normal initialisation, float32.
RecBole cannot score a user without a ripple set (its lookup fails), and the reference drops
the rows of users without a training positive from every split; RecBole gets those reference
rows.  kgcl trains on every labelled row (a user without a ripple set scores 0.5 and gives no
gradient) and reports test metrics on two row sets: ``all`` (every labelled test row, the KGCN
protocol) and ``ref`` (the reference's rows, the ones RecBole is scored on).

Usage (from the project root; Book-Crossing with the reference's book settings)::

    python bench/recbole_ripplenet.py --dataset book-crossing --seeds 0 1 2 \\
        --venv ../recbole-venv --json-out ripplenet_peer.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


# ---------------------------------------------------------------------------- RecBole worker
def worker(spec: dict) -> dict:
    """Train and evaluate RecBole's RippleNet as ``spec`` says; runs in the RecBole venv."""
    import numpy as np
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed
    from sklearn.metrics import f1_score, roc_auc_score

    torch.set_num_threads(spec["threads"])
    name, p = spec["name"], spec["params"]
    config_dict = {
        "data_path": spec["data_path"], "checkpoint_dir": os.path.join(spec["work_dir"], "saved"),
        "gpu_id": "", "use_gpu": False, "seed": spec["seed"], "reproducibility": True, "show_progress": False,
        "save_dataset": False, "save_dataloaders": False, "log_wandb": False, "worker": 0,
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id", "label"], "kg": ["head_id", "relation_id", "tail_id"],
                     "link": ["item_id", "entity_id"]},
        "LABEL_FIELD": "label", "train_neg_sample_args": None,
        # user-item batches only: RippleNet reads no KG batch (RSKG mode would also draw KG
        # triples with sampled negative tails every step, and needs a sampling distribution)
        "train_rec_step": 1, "train_kg_step": 0,
        "epochs": p["epochs"], "stopping_step": p["epochs"] + 1, "train_batch_size": p["batch_size"],
        "eval_batch_size": 65536, "learner": "adam", "learning_rate": p["lr"], "weight_decay": 0.0,
        "embedding_size": p["dim"], "n_hop": p["n_hop"], "n_memory": p["n_memory"],
        "kg_weight": p["kge_weight"], "reg_weight": p["l2_weight"],
        "eval_args": {"split": None, "group_by": None, "order": "RO", "mode": "labeled"},
        "metrics": ["AUC", "LogLoss"], "valid_metric": "AUC",
    }
    saved_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        config = Config(model="RippleNet", dataset=name, config_dict=config_dict)
    finally:
        sys.argv = saved_argv
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    t0 = time.perf_counter()
    model = get_model("RippleNet")(config, train_data._dataset)
    if spec["history"] == "positives":  # the reference's rule: ripple sets from label-1 rows only
        feat = train_data._dataset.inter_feat
        pos = feat["label"].numpy() > 0.5
        users, items = feat["user_id"].numpy()[pos], feat["item_id"].numpy()[pos]
        model.user_dict = {}
        for u, i in zip(users.tolist(), items.tolist()):
            model.user_dict.setdefault(u, []).append(i)
        model.ripple_set = model._build_ripple_set()
    model_init_s = time.perf_counter() - t0
    trainer = get_trainer(config["MODEL_TYPE"], "RippleNet")(config, model)

    def scores(data):
        model.eval()
        out, lab = [], []
        with torch.no_grad():
            for batch in data:
                inter = batch[0]
                out.append(model.predict(inter).float().numpy())
                lab.append(inter["label"].numpy())
        model.train()
        return np.concatenate(lab), np.concatenate(out)

    def metrics(y, s):
        return {"auc": float(roc_auc_score(y, s)), "f1": float(f1_score(y, s > 0)), "acc": float(np.mean((s > 0) == (y > 0.5)))}

    epoch_s, epoch_cpu, history, best = [], [], [], (-1.0, 0, None)
    for epoch in range(p["epochs"]):
        t0, c0 = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        epoch_s.append(time.perf_counter() - t0)
        epoch_cpu.append(time.process_time() - c0)
        v = metrics(*scores(valid_data))
        history.append({"epoch": epoch + 1, "loss": float(sum(loss) if isinstance(loss, tuple) else loss),
                        "seconds": epoch_s[-1], "valid_auc": v["auc"]})
        if v["auc"] > best[0]:
            best = (v["auc"], epoch + 1, {k: x.clone() for k, x in model.state_dict().items()})
    model.load_state_dict(best[2])
    t0 = time.perf_counter()
    test = metrics(*scores(test_data))
    test_s = time.perf_counter() - t0
    n_train = int(train_data._dataset.inter_num)
    import recbole

    return {"library": f"recbole {recbole.__version__}", "history_rule": spec["history"], "test": test,
            "best_epoch": best[1], "valid_auc": best[0], "train_seconds": sum(epoch_s), "train_cpu_seconds": sum(epoch_cpu),
            "seconds_per_epoch_median": float(np.median(epoch_s)), "train_rows_per_s": n_train * len(epoch_s) / sum(epoch_s),
            "test_eval_seconds": test_s, "model_init_seconds": model_init_s, "n_train": n_train,
            "n_test": int(test_data._dataset.inter_num), "history": history,
            "env": {"torch": torch.__version__, "threads": torch.get_num_threads()}}


# ---------------------------------------------------------------------------- project side
def write_recbole_files(ds, split, folder, name) -> dict:
    """RecBole benchmark files of ``split`` under ``folder/name``: the reference's rows (every
    split restricted to users with a training positive; RecBole cannot score a user without a
    ripple set).  Returns row counts."""
    import numpy as np

    out = os.path.join(folder, name)
    os.makedirs(out, exist_ok=True)
    pos_users = np.unique(split.train[split.train[:, 2] == 1, 0])
    counts, items = {}, set()
    for part in ("train", "valid", "test"):
        rows = np.asarray(getattr(split, part))
        rows = rows[np.isin(rows[:, 0], pos_users)]
        counts[part] = len(rows)
        items.update(rows[:, 1].tolist())
        with open(os.path.join(out, f"{name}.{part}.inter"), "w") as f:
            f.write("user_id:token\titem_id:token\tlabel:float\n")
            f.writelines(f"{u}\t{i}\t{y}\n" for u, i, y in rows.tolist())
    with open(os.path.join(out, f"{name}.kg"), "w") as f:
        f.write("head_id:token\trelation_id:token\ttail_id:token\n")
        f.writelines(f"e{h}\tr{r}\te{t}\n" for h, r, t in np.asarray(ds.kg).tolist())
    with open(os.path.join(out, f"{name}.link"), "w") as f:
        f.write("item_id:token\tentity_id:token\n")
        # only items that occur in the rows: RecBole's item/entity merge fails on the others
        f.writelines(f"{i}\te{i}\n" for i in sorted(items))
    return counts


def kgcl_run(ds, split, seed: int, dataset: str, epochs: int | None) -> dict:
    """kgcl's RippleNet (reference settings, no text/CL) on ``split``; metrics on both row sets."""
    import numpy as np

    from kgcl_lib import metrics as M
    from kgcl_lib import train as T
    from kgcl_lib.train import loop

    overrides = {"epochs": epochs} if epochs else {}
    cfg = T.TrainConfig.for_dataset(dataset, backbone="ripplenet", seed=seed, device="cpu", threads=1, **overrides)
    epoch_cpu = []
    run_epoch = loop.run_epoch

    def timed_epoch(*a, **k):  # CPU seconds of each training epoch (robust to other jobs on the cores)
        c0 = time.process_time()
        out = run_epoch(*a, **k)
        epoch_cpu.append(time.process_time() - c0)
        return out

    loop.run_epoch = timed_epoch
    c0 = time.process_time()
    try:
        res = T.train(ds, split, cfg, progress=False)
    finally:
        loop.run_epoch = run_epoch
    cpu = time.process_time() - c0
    test = np.asarray(split.test)
    scores = res.model.predict(test)
    pos_users = np.unique(split.train[split.train[:, 2] == 1, 0])
    out = {"config": cfg.to_dict(), "best_epoch": res.best_epoch, "valid_auc": res.valid_auc, "train_seconds": res.seconds,
           "seconds_per_epoch_median": float(np.median([h["seconds"] for h in res.history])),
           "train_rows_per_s": res.train_rows_per_s, "n_train": len(split.train),
           "train_cpu_seconds": sum(epoch_cpu), "cpu_seconds_incl_valid": cpu, "history": res.history}
    for label, keep in (("all", np.ones(len(test), bool)), ("ref", np.isin(test[:, 0], pos_users))):
        y, s = test[keep, 2], scores[keep]
        out[f"test_{label}"] = {"auc": float(M.auc(y, s)), "f1": float(M.f1(y, s)), "acc": float(np.mean((s >= 0.5) == (y == 1))),
                                "rows": int(keep.sum())}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--dataset", default="book-crossing")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--venv", default=os.environ.get("RECBOLE_VENV", "../recbole-venv"), help="RecBole 1.2.1 venv")
    ap.add_argument("--epochs", type=int, default=None, help="override the published epochs (both libraries)")
    ap.add_argument("--recbole-history", choices=["as_is", "positives"], default="as_is")
    ap.add_argument("--skip-kgcl", action="store_true")
    ap.add_argument("--skip-recbole", action="store_true")
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args(argv)
    if args.worker:
        with open(args.worker) as f:
            print(json.dumps(worker(json.load(f))), flush=True)
        return 0

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import torch

    from kgcl_lib.data import load_dataset
    from kgcl_lib.experiments import make_split
    from kgcl_lib.train import TrainConfig

    torch.set_num_threads(1)
    ds = load_dataset(args.dataset)
    results = []
    for seed in args.seeds:
        split = make_split(ds, seed)
        rec = {"dataset": args.dataset, "seed": seed}
        if not args.skip_kgcl:
            t0 = time.perf_counter()
            rec["kgcl"] = kgcl_run(ds, split, seed, args.dataset, args.epochs)
            rec["kgcl"]["wall_seconds"] = time.perf_counter() - t0
            print(json.dumps({"seed": seed, "kgcl": {k: rec["kgcl"][k] for k in ("test_all", "test_ref", "train_seconds")}}),
                  file=sys.stderr, flush=True)
        if not args.skip_recbole:
            cfg = TrainConfig.for_dataset(args.dataset, backbone="ripplenet", seed=seed)
            params = {"dim": cfg.dim, "n_hop": cfg.n_hop, "n_memory": cfg.n_memory, "kge_weight": cfg.kge_weight,
                      "l2_weight": cfg.l2, "lr": cfg.lr, "batch_size": cfg.batch_size, "epochs": args.epochs or cfg.epochs}
            with tempfile.TemporaryDirectory(prefix="recbole_ripplenet_") as tmp:
                name = "kgclsplit"
                rec["rows_given_to_recbole"] = write_recbole_files(ds, split, tmp, name)
                spec = {"name": name, "data_path": tmp, "work_dir": tmp, "seed": seed, "threads": 1, "params": params,
                        "history": args.recbole_history}
                spec_path = os.path.join(tmp, "spec.json")
                with open(spec_path, "w") as f:
                    json.dump(spec, f)
                t0 = time.perf_counter()
                proc = subprocess.run([os.path.join(args.venv, "bin", "python"), os.path.abspath(__file__), "--worker", spec_path],
                                      capture_output=True, text=True, cwd=tmp,
                                      env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""})
                if proc.returncode != 0:
                    sys.stderr.write(proc.stderr[-4000:])
                    raise SystemExit(f"RecBole worker failed (exit {proc.returncode})")
                rec["recbole"] = json.loads(proc.stdout.strip().splitlines()[-1])
                rec["recbole"]["wall_seconds"] = time.perf_counter() - t0
            print(json.dumps({"seed": seed, "recbole": {k: rec["recbole"][k] for k in ("test", "train_seconds")}}),
                  file=sys.stderr, flush=True)
        if "kgcl" in rec and "recbole" in rec:
            k, r = rec["kgcl"], rec["recbole"]
            rec["speed_ratio_train_rows_per_s"] = k["train_rows_per_s"] / r["train_rows_per_s"]  # wall clock
            rec["speed_ratio_train_rows_per_cpu_s"] = (k["n_train"] * len(k["history"]) / k["train_cpu_seconds"]) / (
                r["n_train"] * len(r["history"]) / r["train_cpu_seconds"])
        results.append(rec)
    text = json.dumps(results, indent=1)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
