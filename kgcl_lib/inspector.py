"""The cold-start inspector of notebook 08: pick a dataset, a model and a user-activity
percentile and see that bucket's metrics, and a few of its users' training histories and
top-10 lists with titles and genres.

The data side (:func:`bucket_view`) is a plain function over the results store, tested without
widgets; :func:`inspector` wraps it in ipywidgets (dropdowns + a percentile slider).
"""

from __future__ import annotations

import os


import numpy as np
import pandas as pd

from . import experiments as X


def _item_frame(ds, items: np.ndarray) -> pd.DataFrame:
    it = ds.items.reindex(items)
    return pd.DataFrame({"item": items, "title": it["title"].to_numpy(),
                         "genres": [", ".join(g) if isinstance(g, tuple) else "" for g in it["genres"]]})


def bucket_view(results_dir, run_id: str, percentile: float, ds=None, *, n_users: int = 3, k: int = 10,
                data_dir=None, dataset_options: dict | None = None) -> dict:
    """What the inspector shows for one run and one activity bucket.

    Args:
        run_id: a finished run in the store.
        percentile: the bucket "p % least active test users" (cumulative, ties included, as
            :func:`kgcl_lib.metrics.cold_start_buckets`).
        ds: the run's dataset (opened by name when ``None``).
        n_users: how many of the bucket's users to show (the least active first).
        k: length of the shown top lists.
    Returns:
        ``{"metrics": DataFrame (bucket size, max activity, NDCG@10/100, Recall@10 of the
        bucket), "users": [{"user", "n_train", "history": DataFrame, "topk": DataFrame (with a
        ``hit`` column = in the user's test positives)}]}``.
    """
    from . import metrics as M
    from .data import user_train_counts

    run = X.load_run(results_dir, run_id)
    spec = run["config"]["spec"]
    ev = run["config"]["eval"]
    if ds is None:
        ds = X.open_dataset(spec["dataset"], data_dir, **(dataset_options or {}).get(spec["dataset"], {}))
    split = X.make_split(ds, spec["seed"])
    users, truth, _ = X.test_users_and_truth(split, ds.n_users, ds.n_items)
    if not np.array_equal(users, run["test_users"]):
        raise ValueError(f"run {run_id}: the rebuilt split's test users differ from the stored ones "
                         f"(dataset changed since training?)")
    top = run["topk"]
    activity = user_train_counts(split.train, ds.n_users)[users]
    bucket = M.cold_start_buckets(activity, [float(percentile)])[0]
    per = M.ranking_per_user(top[bucket], truth[bucket], ks=(10, 100), ndcg=ev.get("ndcg", "jurity"))
    metrics = pd.DataFrame({"percentile": [percentile], "n_users": [len(bucket)],
                            "max_train_count": [int(activity[bucket].max())],
                            "ndcg@10": [np.nanmean(per["ndcg@10"])], "ndcg@100": [np.nanmean(per["ndcg@100"])],
                            "recall@10": [np.nanmean(per["recall@10"])]})
    train_pos = split.train[split.train[:, 2] == 1]
    shown = bucket[np.argsort(activity[bucket], kind="stable")[:n_users]]
    out = []
    for row in shown:  # a handful of users for display, not a hot path
        u = int(users[row])
        hist = train_pos[train_pos[:, 0] == u, 1]
        hits = set(truth[row].indices.tolist())
        tk = _item_frame(ds, top[row, :k])
        tk["hit"] = tk["item"].isin(hits)
        out.append({"user": u, "n_train": int(activity[row]), "history": _item_frame(ds, hist), "topk": tk})
    return {"metrics": metrics, "users": out}


#: Set to "1" by kgcl_lib.runner while notebooks execute without a frontend.
HEADLESS_ENV = "KGCL_HEADLESS"


def inspector(results_dir, manifest: str = "grid", *, data_dir=None, dataset_options: dict | None = None,
              percentiles=(1, 5, 10, 20, 50, 100), n_users: int = 3):
    """ipywidgets UI over :func:`bucket_view`: dataset and model dropdowns, a percentile slider.

    ``manifest`` names the grid whose runs are offered (``"grid"`` from notebook 04). Returns the
    widget (display it, or let the notebook cell show it).
    """
    import ipywidgets as W
    from IPython.display import display

    df, _ = X.load_manifest(results_dir, manifest)
    df = X.trained(df)  # n/a cells (copies of another configuration) have nothing to inspect
    if df.empty:
        return W.HTML("<b>No finished runs in the manifest; run notebook 04 first.</b>")
    datasets = {}

    def show(dataset, model, seed, percentile):
        sub = df[(df["dataset"] == dataset) & (df["text"] == model[0]) & (df["variant"] == model[1])
                 & (df["seed"] == seed)]
        if sub.empty:
            print("no finished run for this choice")
            return
        if dataset not in datasets:
            datasets[dataset] = X.open_dataset(dataset, data_dir, **(dataset_options or {}).get(dataset, {}))
        view = bucket_view(results_dir, sub["run_id"].iloc[0], percentile, datasets[dataset], n_users=n_users)
        display(view["metrics"].round(4))
        for u in view["users"]:
            print(f"user {u['user']}: {u['n_train']} training interactions")
            display(u["history"].head(10), u["topk"])

    models = sorted({(t, v) for t, v in zip(df["text"], df["variant"])})
    first = (sorted(df["dataset"].unique())[0], models[0], sorted(df["seed"].unique())[0], percentiles[0])
    if os.environ.get(HEADLESS_ENV) == "1":
        # Executed headlessly (./run_all.sh): no frontend can drive the widgets, and nbclient's
        # capture of Output widgets can stall the run; show the first selection as plain output.
        print("[kgcl] headless run: showing the first selection; open the notebook in JupyterLab for the widgets")
        show(*first)
        return None
    dd = W.Dropdown(options=sorted(df["dataset"].unique()), description="dataset")
    md = W.Dropdown(options=[(f"{t} text, {v}", (t, v)) for t, v in models], description="model")
    seeds = W.Dropdown(options=sorted(df["seed"].unique()), description="seed")
    pct = W.SelectionSlider(options=list(percentiles), value=percentiles[0], description="bottom %")
    out = W.Output()

    def refresh(*_):
        out.clear_output()
        with out:
            show(dd.value, md.value, seeds.value, pct.value)

    for w in (dd, md, seeds, pct):
        w.observe(refresh, names="value")
    refresh()
    return W.VBox([W.HBox([dd, md]), W.HBox([seeds, pct]), out])
