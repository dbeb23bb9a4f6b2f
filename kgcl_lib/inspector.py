"""The cold-start inspector of notebook 08: the baseline and a chosen model side by side for one
user-activity bucket, the NDCG@100-by-percentile curve with that bucket marked, and one user's
training history with both top-10 lists (hits marked).

Three layers, so the numbers are testable without a browser:

* :class:`InspectorStore` reads the results store **once** (the manifest's frame) and caches
  each run's arrays, split and dataset the first time they are asked for; widgets never re-read
  the store.
* Pure functions over :class:`RunArrays`: :func:`bucket_metrics` (one run),
  :func:`bucket_view` (the table: mean and seed spread per model), :func:`bucket_users`,
  :func:`top_lists`, :func:`user_history`.
* :func:`inspector` wraps them in ipywidgets (dataset / model / seed dropdowns, a percentile
  slider, a user picker); :func:`bucket_table_html` renders the table the browser test reads.
"""

from __future__ import annotations

import html
import io
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import experiments, metrics, report
from .data import user_train_counts
from .constants import BASELINE
from .storage import HEADLESS_ENV  # set by kgcl_lib.runner while notebooks execute without a frontend

#: Metrics of the bucket table, in display order.
BUCKET_METRICS = ("ndcg@10", "ndcg@100", "recall@10")


def model_label(model: tuple[str, str]) -> str:
    """``("with", "cl_genre") -> "+CL genre, with semantic text"`` (the table's row names)."""
    text, variant = model
    return f"{report.VARIANT_LABELS.get(variant, variant)}, {report.TEXT_LABELS.get(text, text).lower()}"


@dataclass(frozen=True)
class RunArrays:
    """What the inspector needs of one stored run.

    Attributes:
        run_id, seed: the run.
        users: ``int64[n]`` test users (dataset user ids), ascending.
        activity: ``int64[n]`` training positives of each test user.
        truth: ``csr [n, n_items]`` test positives (row i = ``users[i]``).
        topk: ``int64[n, K]`` ranked recommendations, best first.
        ndcg: the NDCG convention the run was evaluated with (``"jurity"`` | ``"standard"``).
    """

    run_id: str
    seed: int
    users: np.ndarray
    activity: np.ndarray
    truth: sp.csr_matrix
    topk: np.ndarray
    ndcg: str = "jurity"


def bucket_rows(run: RunArrays, percentile: float) -> np.ndarray:
    """Rows (into ``run.users``) of the bucket "the ``percentile`` % least active test users"
    (cumulative, ties included: :func:`kgcl_lib.metrics.cold_start_buckets`)."""
    return metrics.cold_start_buckets(run.activity, [float(percentile)])[0]


def bucket_metrics(run: RunArrays, percentile: float) -> dict:
    """One run's numbers for one bucket: ``n_users``, ``max_train_count`` and the means of
    NDCG@10, NDCG@100 and Recall@10 over the bucket's users."""
    rows = bucket_rows(run, percentile)
    per = metrics.ranking_per_user(run.topk[rows], run.truth[rows], ks=(10, 100), ndcg=run.ndcg)
    return {"n_users": len(rows), "max_train_count": int(run.activity[rows].max()),
            **{m: float(np.nanmean(per[m])) for m in BUCKET_METRICS}}


def bucket_view(runs: Mapping[str, Sequence[RunArrays]], percentile: float) -> pd.DataFrame:
    """The inspector's table: one row per model, its bucket metrics averaged over seeds.

    Args:
        runs: ``{model label: [RunArrays of each seed]}`` (row order is kept).
        percentile: the bucket, "p % least active test users".
    Returns:
        DataFrame indexed by model label with columns ``seeds``, ``n_users`` (mean over seeds),
        ``max_train_count`` (max over seeds) and, for each metric in :data:`BUCKET_METRICS`,
        ``<metric>`` (mean over seeds) and ``<metric> sd`` (sample standard deviation over seeds;
        NaN with one seed).
    """
    rows = {}
    for label, seed_runs in runs.items():
        if not seed_runs:
            raise ValueError(f"bucket_view: no runs for model {label!r}")
        per_seed = pd.DataFrame([bucket_metrics(r, percentile) for r in seed_runs])
        row = {"seeds": len(per_seed), "n_users": float(per_seed["n_users"].mean()),
               "max_train_count": int(per_seed["max_train_count"].max())}
        for m in BUCKET_METRICS:
            row[m] = float(per_seed[m].mean())
            row[f"{m} sd"] = float(per_seed[m].std(ddof=1)) if len(per_seed) > 1 else float("nan")
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def format_bucket_view(view: pd.DataFrame, decimals: int = 4) -> pd.DataFrame:
    """:func:`bucket_view` as display strings: ``"0.1234 ± 0.0056"`` per metric (``± –`` with one
    seed), plus a ``difference`` row (second model minus the first) when there are two models."""
    out = pd.DataFrame(index=view.index)
    out["users (mean over seeds)"] = view["n_users"].map(lambda v: f"{v:.1f}")
    out["max training interactions"] = view["max_train_count"].astype(str)
    for m in BUCKET_METRICS:
        label = m.replace("ndcg", "NDCG").replace("recall", "Recall")
        out[label] = [f"{v:.{decimals}f} ± {report.fmt_number(s, decimals)}" for v, s in zip(view[m], view[f"{m} sd"])]
    if len(view) == 2:
        diff = {label: f"{view[m].iloc[1] - view[m].iloc[0]:+.{decimals}f}"
                for m, label in zip(BUCKET_METRICS, out.columns[2:])}
        out.loc["difference (2nd − 1st)"] = {"users (mean over seeds)": "", "max training interactions": "", **diff}
    return out


def bucket_table_html(view: pd.DataFrame, percentile: float) -> str:
    """The table as HTML (class ``kgcl-bucket-table``; the browser test reads it)."""
    body = format_bucket_view(view).to_html(classes="kgcl-bucket-table", border=0, escape=True)
    return f"<b>Bottom {percentile:g} % of test users by training activity</b>" + body


def bucket_users(run: RunArrays, percentile: float) -> pd.DataFrame:
    """The bucket's users, least active first: ``user, n_train, n_test_positives``."""
    rows = bucket_rows(run, percentile)
    order = rows[np.argsort(run.activity[rows], kind="stable")]
    return pd.DataFrame({"user": run.users[order], "n_train": run.activity[order],
                         "n_test_positives": np.diff(run.truth.indptr)[order]})


def _titles(ds, items: np.ndarray) -> list[str]:
    it = ds.items.reindex(items)
    titles = it["title"].astype(object).where(it["title"].notna(), None)
    return [t if isinstance(t, str) else f"item {i}" for t, i in zip(titles, items)]


def user_history(ds, train_positives: np.ndarray, user: int) -> pd.DataFrame:
    """A user's training positives (``int64[m, 2+]`` rows ``user, item, …``) with titles/genres."""
    items = train_positives[train_positives[:, 0] == user, 1]
    it = ds.items.reindex(items)
    return pd.DataFrame({"item": items, "title": _titles(ds, items),
                         "genres": [", ".join(g) if isinstance(g, tuple) else "" for g in it["genres"]]})


def top_lists(runs: Mapping[str, RunArrays], ds, user: int, k: int = 10) -> pd.DataFrame:
    """Each model's top-``k`` for ``user`` side by side: one column per model label, cells
    ``"✔ title"`` for a test positive (a hit) and ``"title"`` otherwise; index = rank 1..k."""
    cols = {}
    for label, run in runs.items():
        row = int(np.searchsorted(run.users, user))
        if row >= len(run.users) or run.users[row] != user:
            raise ValueError(f"user {user} is not a test user of run {run.run_id}")
        items = run.topk[row, :k]
        hits = np.isin(items, run.truth[row].indices)
        cols[label] = [("✔ " if h else "") + t for h, t in zip(hits, _titles(ds, items))]
    return pd.DataFrame(cols, index=pd.RangeIndex(1, k + 1, name="rank"))


class InspectorStore:
    """The results store as the inspector sees it, read once and cached.

    The manifest frame is read on construction; a run's arrays, a dataset and its split are read
    the first time they are needed and then kept, so moving a widget never touches the disk
    again for something already shown.
    """

    def __init__(self, results_dir, manifest: str = "grid", *, data_dir=None, dataset_options: dict | None = None):
        self.results_dir = results_dir
        frame, _ = experiments.load_manifest(results_dir, manifest)
        self.frame = experiments.trained(frame)  # n/a cells (copies of another configuration) have nothing to show
        self.data_dir = data_dir
        self.dataset_options = dataset_options or {}
        self._datasets: dict = {}
        self._splits: dict = {}
        self._runs: dict = {}

    # --- what exists ------------------------------------------------------------------------
    def datasets(self) -> list[str]:
        return sorted(self.frame["dataset"].unique()) if len(self.frame) else []

    def seeds(self, dataset: str) -> list[int]:
        return sorted(int(s) for s in self.frame.loc[self.frame["dataset"] == dataset, "seed"].unique())

    def models(self, dataset: str) -> list[tuple[str, str]]:
        d = self.frame[self.frame["dataset"] == dataset]
        return sorted({(t, v) for t, v in zip(d["text"], d["variant"])})

    def percentiles(self, dataset: str) -> list[float]:
        """The buckets every run stored NDCG@100 for (columns ``cold_ndcg@100_p<p>``)."""
        d = self.frame[self.frame["dataset"] == dataset]
        cols = [c for c in d.columns if c.startswith("cold_ndcg@100_p") and d[c].notna().any()]
        return sorted(float(c.rsplit("_p", 1)[1]) for c in cols)

    def best_model(self, dataset: str) -> tuple[str, str]:
        """The non-baseline model with the highest mean NDCG@100 (as notebook 08's figures)."""
        return experiments.best_model(self.frame[self.frame["dataset"] == dataset], "ndcg@100")[dataset]

    # --- cached reads -----------------------------------------------------------------------
    def dataset(self, name: str):
        if name not in self._datasets:
            self._datasets[name] = experiments.open_dataset(name, self.data_dir, **self.dataset_options.get(name, {}))
        return self._datasets[name]

    def split(self, dataset: str, seed: int):
        key = (dataset, seed)
        if key not in self._splits:
            self._splits[key] = experiments.make_split(self.dataset(dataset), seed)
        return self._splits[key]

    def train_positives(self, dataset: str, seed: int) -> np.ndarray:
        train = self.split(dataset, seed).train
        return train[train[:, 2] == 1]

    def run(self, dataset: str, model: tuple[str, str], seed: int) -> RunArrays:
        key = (dataset, tuple(model), int(seed))
        if key not in self._runs:
            d = self.frame
            sub = d[(d["dataset"] == dataset) & (d["text"] == model[0]) & (d["variant"] == model[1])
                    & (d["seed"] == seed)]
            if sub.empty:
                raise ValueError(f"no finished run for dataset {dataset!r}, model {model}, seed {seed}")
            run_id = sub["run_id"].iloc[0]
            stored = experiments.load_run(self.results_dir, run_id)
            ds = self.dataset(dataset)
            split = self.split(dataset, seed)
            users, truth, _ = experiments.test_users_and_truth(split, ds.n_users, ds.n_items)
            if not np.array_equal(users, stored["test_users"]):
                raise ValueError(f"run {run_id}: the rebuilt split's test users differ from the stored ones "
                                 f"(dataset changed since training?)")
            self._runs[key] = RunArrays(run_id=run_id, seed=int(seed), users=users,
                                        activity=user_train_counts(split.train, ds.n_users)[users], truth=truth,
                                        topk=stored["topk"], ndcg=stored["config"]["eval"].get("ndcg", "jurity"))
        return self._runs[key]

    def runs(self, dataset: str, model: tuple[str, str]) -> list[RunArrays]:
        """The model's run of every seed that finished."""
        d = self.frame
        have = d[(d["dataset"] == dataset) & (d["text"] == model[0]) & (d["variant"] == model[1])]["seed"]
        return [self.run(dataset, model, s) for s in sorted(set(int(s) for s in have))]

    def curve(self, dataset: str, models: Sequence[tuple[str, str]]) -> pd.DataFrame:
        """Long ``dataset, model, seed, percentile, value`` of the stored NDCG@100 by bucket."""
        d = self.frame[self.frame["dataset"] == dataset]
        return experiments.cold_start_frame(d, {model_label(m): m for m in models})


def _figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _panels(store: InspectorStore, dataset: str, model: tuple[str, str], seed: int, percentile: float,
            user: int | None, k: int = 10) -> dict:
    """Everything shown for one selection: ``table`` (HTML), ``curve`` (PNG bytes), ``users``
    (the bucket's users of the chosen seed), ``user`` and ``lists`` (HTML)."""
    models = [BASELINE, tuple(model)]
    labels = [model_label(m) for m in models]
    view = bucket_view({lab: store.runs(dataset, m) for lab, m in zip(labels, models)}, percentile)
    fig = report.plot_cold_start(store.curve(dataset, models), kind="lines", mark_percentile=percentile,
                                 title=f"NDCG@100 by activity bucket (mean ± sd over seeds); marked: bottom {percentile:g} %")
    seed_runs = {lab: store.run(dataset, m, seed) for lab, m in zip(labels, models)}
    users = bucket_users(seed_runs[labels[0]], percentile)
    if user is None or user not in set(users["user"].tolist()):
        user = int(users["user"].iloc[0])
    ds = store.dataset(dataset)
    hist = user_history(ds, store.train_positives(dataset, seed), user)
    lists = top_lists(seed_runs, ds, user, k)
    n_hits = {lab: int(lists[lab].str.startswith("✔").sum()) for lab in labels}
    lists_html = (f"<b>User {user}</b> (seed {seed}): {len(hist)} training interactions, "
                  f"{int(users.set_index('user').loc[user, 'n_test_positives'])} test positives; hits in the top-{k}: "
                  + ", ".join(f"{html.escape(lab)}: {n}" for lab, n in n_hits.items())
                  + "<div style='display:flex;gap:2em'><div><i>training history</i>"
                  + (hist.to_html(index=False, border=0) if len(hist) else "<p>(no training interactions)</p>") + "</div><div><i>top-" + str(k) + " lists (✔ = test positive)</i>"
                  + lists.to_html(border=0) + "</div></div>")
    return {"view": view, "table": bucket_table_html(view, percentile), "curve": _figure_png(fig),
            "users": users, "user": user, "lists": lists_html}


def inspector(results_dir, manifest: str = "grid", *, data_dir=None, dataset_options: dict | None = None,
              store: InspectorStore | None = None, max_users: int = 200):
    """The interactive inspector (ipywidgets) over :class:`InspectorStore`.

    Widgets: dataset, compared model (default: the best non-baseline model by NDCG@100), seed
    (for the user lists), bottom-percentile slider (the buckets the runs stored), and a user
    picker (the bucket's ``max_users`` least active users). The baseline is always the first
    table row. Returns the widget box; when run headlessly (``$KGCL_HEADLESS=1``, the runner)
    the first selection is displayed as static output instead and ``None`` is returned.
    """
    import ipywidgets as widgets
    from IPython.display import HTML, Image, display

    store = store or InspectorStore(results_dir, manifest, data_dir=data_dir, dataset_options=dataset_options)
    if not store.datasets():
        return widgets.HTML("<b>No finished runs in the manifest; run notebook 04 first.</b>")
    dataset = store.datasets()[0]
    first = _panels(store, dataset, store.best_model(dataset), store.seeds(dataset)[0],
                    store.percentiles(dataset)[0], None)
    if os.environ.get(HEADLESS_ENV) == "1":
        # Executed headlessly (./run_all.sh): no frontend can drive widgets; show the first selection.
        print("[kgcl] headless run: the first selection; open the notebook in JupyterLab for the widgets")
        display(HTML(first["table"]), Image(first["curve"]), HTML(first["lists"]))
        return None

    def percentile_options(ds_name):
        return [(f"{p:g}%", p) for p in store.percentiles(ds_name)]

    def model_options(ds_name):
        return [(model_label(m), m) for m in store.models(ds_name) if m != BASELINE]

    dd_dataset = widgets.Dropdown(options=store.datasets(), value=dataset, description="dataset")
    dd_model = widgets.Dropdown(options=model_options(dataset), value=store.best_model(dataset),
                                description="vs baseline", layout=widgets.Layout(width="28em"))
    dd_seed = widgets.Dropdown(options=store.seeds(dataset), description="seed")
    sl_pct = widgets.SelectionSlider(options=percentile_options(dataset), description="bottom %",
                                     continuous_update=False, layout=widgets.Layout(width="30em"))
    dd_user = widgets.Dropdown(description="user")
    table = widgets.HTML(first["table"])
    curve = widgets.Image(value=first["curve"], format="png", layout=widgets.Layout(max_width="640px"))
    lists = widgets.HTML(first["lists"])
    busy = {"on": False}

    def set_users(users: pd.DataFrame, user: int):
        shown = users.head(max_users)
        dd_user.options = [(f"{u} ({n} training, {p} test positives)", int(u))
                           for u, n, p in zip(shown["user"], shown["n_train"], shown["n_test_positives"])]
        dd_user.value = user

    def refresh(*_):
        if busy["on"]:
            return
        busy["on"] = True
        try:
            p = _panels(store, dd_dataset.value, dd_model.value, dd_seed.value, sl_pct.value, dd_user.value)
            table.value, curve.value, lists.value = p["table"], p["curve"], p["lists"]
            set_users(p["users"], p["user"])
        finally:
            busy["on"] = False

    def change_dataset(*_):
        busy["on"] = True
        try:
            name = dd_dataset.value
            dd_model.options = model_options(name)
            dd_model.value = store.best_model(name)
            dd_seed.options = store.seeds(name)
            sl_pct.options = percentile_options(name)
        finally:
            busy["on"] = False
        refresh()

    set_users(first["users"], first["user"])
    dd_dataset.observe(change_dataset, names="value")
    for w in (dd_model, dd_seed, sl_pct, dd_user):
        w.observe(refresh, names="value")
    return widgets.VBox([widgets.HBox([dd_dataset, dd_model, dd_seed]), sl_pct, table, curve, dd_user, lists])

