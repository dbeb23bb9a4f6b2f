"""Tuning the simple baselines with a declared, equal budget (issue 29): ``python -m kgcl_lib.tune``.

One *study* = one backbone on one dataset: Optuna's TPE sampler (seeded) proposes ``n_trials``
settings from the backbone's search space (``params/search_spaces.yaml``), each trial trains on
the training rows of the split of ``split_seed`` and is scored by its **validation AUC** (the
best epoch's, with the space's early stopping).  The test rows are never read: the trainer gets a
split whose test part is empty (:func:`without_test`), so the study's numbers cannot depend on
them (``tests/unit/test_tune.py`` poisons them and makes them raise on access).

The best settings are written next to the profile, ``params/tuned/<profile>/<dataset>-<backbone>.yaml``,
with the *ledger*: every trial's settings, validation AUC, epochs and CPU-seconds, the search
space, the sampler, the data key and the total CPU-seconds.  Every seed's run of that backbone
uses ``settings`` (the fixed fields plus the best trial's).  :func:`ensure_tuned` reuses a stored
study whose key (dataset content, backbone, space, budget, seeds) matches and retunes otherwise.

Backbones without hyper-parameters (``pop``) get a ledger with 0 trials.  KGCN is not tuned: it
keeps the paper's settings (Table 1).

Caveat (stated in docs/baselines.md): every seed re-splits the data, so the validation rows of
``split_seed`` that chose the settings are partly test rows of the other seeds' splits -- as for
any fixed setting chosen on the same data (the paper's own settings included).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .cli import CliParser, arg_error, run_main
from .data.split import Split
from .experiments.inputs import dataset_key, make_split, open_dataset
from .storage import REPO_ROOT, atomic_path
from .train import TrainConfig, train

#: Where the search spaces and the tuned settings live (next to the profiles).
PARAMS_DIR = REPO_ROOT / "params"
SEARCH_SPACES = "search_spaces.yaml"
#: Version of the stored study layout; a change retunes.
LEDGER_VERSION = 1


# --------------------------------------------------------------------------------------------
# Search spaces
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchSpace:
    """One backbone's search space.

    ``search``: ``{TrainConfig field: spec}`` where a spec is a list (categorical choices) or a
    mapping ``{low, high, log: bool, int: bool}``; ``fixed``: fields every trial and every final
    run use (e.g. ``epochs``, ``patience``).  An empty ``search`` means no hyper-parameters.
    """
    backbone: str
    search: dict = field(default_factory=dict)
    fixed: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"search": self.search, "fixed": self.fixed}


def load_search_space(backbone: str, path: str | Path | None = None) -> SearchSpace:
    """The search space of ``backbone`` from ``params/search_spaces.yaml`` (or ``path``), checked."""
    path = Path(path) if path is not None else PARAMS_DIR / SEARCH_SPACES
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ValueError(f"{path}: no search-space file") from None
    if backbone not in data:
        raise ValueError(f"{path}: no search space for backbone {backbone!r} (have {sorted(data)})")
    entry = data[backbone] or {}
    unknown = set(entry) - {"search", "fixed"}
    if unknown:
        raise ValueError(f"{path}: {backbone}: unknown keys {sorted(unknown)} (expected search, fixed)")
    search, fixed = dict(entry.get("search") or {}), dict(entry.get("fixed") or {})
    for name, spec in search.items():
        if isinstance(spec, list):
            if not spec:
                raise ValueError(f"{path}: {backbone}.search.{name}: empty choice list")
            continue
        if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log", "int"}:
            raise ValueError(f"{path}: {backbone}.search.{name}: expected a list of choices or "
                             f"{{low, high[, log][, int]}}, got {spec!r}")
        if not float(spec["low"]) < float(spec["high"]):
            raise ValueError(f"{path}: {backbone}.search.{name}: low {spec['low']} must be < high {spec['high']}")
        if spec.get("log") and float(spec["low"]) <= 0:
            raise ValueError(f"{path}: {backbone}.search.{name}: log scale needs low > 0, got {spec['low']}")
    overlap = set(search) & set(fixed)
    if overlap:
        raise ValueError(f"{path}: {backbone}: fields both searched and fixed: {sorted(overlap)}")
    return SearchSpace(backbone, search, fixed)


def suggest(trial, space: SearchSpace) -> dict:
    """One trial's settings: ``{field: value}`` drawn by ``trial`` (an ``optuna.Trial``)."""
    out = {}
    for name, spec in space.search.items():
        if isinstance(spec, list):
            out[name] = trial.suggest_categorical(name, spec)
        elif spec.get("int"):
            out[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            out[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return out


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------
def without_test(split):
    """``split`` with an empty test part: what every trial trains and validates on.

    Reads only ``split.train`` and ``split.valid``."""
    rows = np.asarray(split.train)
    return Split(rows, np.asarray(split.valid), np.zeros((0, rows.shape[1]), dtype=rows.dtype))


@dataclass(frozen=True, eq=False)
class Study:
    """A finished study: the ledger stored in ``params/tuned/<profile>/<dataset>-<backbone>.yaml``."""
    record: dict

    @property
    def settings(self) -> dict:
        """TrainConfig fields every seed's run of this backbone uses (fixed + best trial)."""
        return dict(self.record["settings"])

    @property
    def n_trials(self) -> int:
        return int(self.record["n_trials"])


def base_config(ds, backbone: str, seed: int, threads: int | None = 1, **fields):
    """The :class:`~kgcl_lib.train.TrainConfig` of a trial: what a grid run of the same backbone
    gets (:func:`kgcl_lib.experiments.train_config`: the dataset's paper settings, then
    ``backbone``, ``variant="base"``, ``text="none"`` -- L_base only, no semantic text -- and the
    seed), then ``fields`` (the space's fixed fields and the trial's draw).  So the best trial's
    config is exactly a grid run's with ``settings`` as its overrides."""
    kw = {"backbone": backbone, "variant": "base", "text": "none", "seed": int(seed), **fields}
    if threads is not None:
        kw["threads"] = int(threads)
    return TrainConfig.for_dataset(ds.name, "paper", **kw)


def run_study(ds, split, backbone: str, space: SearchSpace, n_trials: int, *, sampler_seed: int = 0,
              split_seed: int = 0, threads: int | None = 1, progress: bool = True) -> Study:
    """Tune ``backbone`` on ``split`` (train rows; validation AUC), ``n_trials`` TPE trials.

    ``split`` is used through :func:`without_test` only.  Returns the :class:`Study` (not yet
    stored).  ``n_trials`` must be ≥ 1 when the space has hyper-parameters; a space without any
    yields a 0-trial ledger.
    """
    tv = without_test(split)
    record = _record_head(ds, backbone, space, n_trials, sampler_seed, split_seed)
    t_cpu0, t_wall0 = time.process_time(), time.perf_counter()
    if not space.search:
        record.update(n_trials=0, trials=[], best=None, settings=dict(space.fixed), cpu_seconds=0.0,
                      wall_seconds=0.0, note=f"{backbone} has no hyper-parameters: 0 trials")
        return Study(record)
    if n_trials < 1:
        raise ValueError(f"tuning {backbone} needs n_trials >= 1, got {n_trials}")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials: list[dict] = []

    def objective(trial) -> float:
        params = suggest(trial, space)
        cfg = base_config(ds, backbone, split_seed, threads, **space.fixed, **params)
        c0, w0 = time.process_time(), time.perf_counter()
        result = train(ds, tv, cfg, progress=False)
        auc = float(result.valid_auc)
        trials.append({"number": trial.number, "params": params, "valid_auc": auc, "best_epoch": int(result.best_epoch),
                       "epochs": int(result.epochs), "cpu_seconds": round(time.process_time() - c0, 2),
                       "wall_seconds": round(time.perf_counter() - w0, 2)})
        if progress:
            print(f"[tune {ds.name}/{backbone}] trial {trial.number + 1}/{n_trials}: valid AUC {auc:.4f} "
                  f"({result.epochs} epochs, {trials[-1]['cpu_seconds']:.1f} CPU-s) {params}", file=sys.stderr)
        return auc if math.isfinite(auc) else -math.inf

    sampler = optuna.samplers.TPESampler(seed=int(sampler_seed))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=int(n_trials))
    best = max(trials, key=lambda t: (t["valid_auc"] if math.isfinite(t["valid_auc"]) else -math.inf, -t["number"]))
    record.update(
        n_trials=len(trials), trials=trials, best={"trial": best["number"], "valid_auc": best["valid_auc"],
                                                   "params": best["params"]},
        settings={**space.fixed, **best["params"]}, cpu_seconds=round(time.process_time() - t_cpu0, 2),
        wall_seconds=round(time.perf_counter() - t_wall0, 2))
    return Study(record)


def _record_head(ds, backbone, space: SearchSpace, n_trials, sampler_seed, split_seed) -> dict:
    return {"version": LEDGER_VERSION, "dataset": ds.name, "data_key": dataset_key(ds), "backbone": backbone,
            "objective": f"validation AUC of the split of seed {split_seed} (test rows never read)",
            "sampler": f"optuna TPESampler(seed={sampler_seed})", "sampler_seed": int(sampler_seed),
            "split_seed": int(split_seed), "requested_trials": int(n_trials), "search_space": space.to_dict()}


def study_key(record: dict) -> dict:
    """What makes two studies the same: layout version, dataset content, backbone, space, budget, seeds."""
    return {k: record.get(k) for k in ("version", "data_key", "backbone", "search_space", "requested_trials",
                                       "sampler_seed", "split_seed")}


# --------------------------------------------------------------------------------------------
# Storage next to the profile
# --------------------------------------------------------------------------------------------
def tuned_path(profile: str, dataset: str, backbone: str, params_dir: str | Path | None = None) -> Path:
    """``params/tuned/<profile>/<dataset>-<backbone>.yaml``."""
    return Path(params_dir or PARAMS_DIR) / "tuned" / profile / f"{dataset}-{backbone}.yaml"


def save_study(path: str | Path, study: Study) -> Path:
    """Write the ledger atomically (YAML, human-readable)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Written by python -m kgcl_lib.tune (issue 29): the tuned settings of one simple baseline\n"
            "# and the ledger of its study. Objective: validation AUC only; test rows never read.\n")
    text += yaml.safe_dump(_plain(study.record), sort_keys=False, allow_unicode=True, width=120)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def load_study(path: str | Path) -> Study:
    path = Path(path)
    try:
        record = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no tuned settings (run python -m kgcl_lib.tune)") from None
    if not isinstance(record, dict) or "settings" not in record:
        raise ValueError(f"{path}: not a tuning ledger (no 'settings')")
    return Study(record)


def ensure_tuned(ds, backbone: str, profile: str, n_trials: int, *, sampler_seed: int = 0, split_seed: int = 0,
                 threads: int | None = 1, params_dir: str | Path | None = None, force: bool = False,
                 progress: bool = True, split=None) -> tuple[Study, bool]:
    """The stored study of ``backbone`` on ``ds`` for ``profile`` when its key matches, else a new
    one (stored).  Returns ``(study, reused)``.  ``split``: default ``make_split(ds, split_seed)``."""
    spaces = Path(params_dir or PARAMS_DIR) / SEARCH_SPACES
    # a results folder as ``params_dir`` (a profile given as a path) has no search spaces: the checkout's
    space = load_search_space(backbone, spaces if spaces.is_file() else PARAMS_DIR / SEARCH_SPACES)
    path = tuned_path(profile, ds.name, backbone, params_dir)
    want = study_key(_record_head(ds, backbone, space, n_trials, sampler_seed, split_seed))
    if not force and path.exists():
        old = load_study(path)
        if study_key(old.record) == want:
            return old, True
    study = run_study(ds, split if split is not None else make_split(ds, split_seed), backbone, space, n_trials,
                      sampler_seed=sampler_seed, split_seed=split_seed, threads=threads, progress=progress)
    save_study(path, study)
    return study, False


def ledger_frame(studies):
    """One row per study: dataset, backbone, trials, CPU-seconds, best valid AUC, chosen settings."""
    import pandas as pd

    rows = []
    for s in studies:
        r = s.record
        rows.append({"dataset": r["dataset"], "backbone": r["backbone"], "trials": r["n_trials"],
                     "cpu_seconds": r["cpu_seconds"], "best_valid_auc": (r.get("best") or {}).get("valid_auc"),
                     "settings": json.dumps(r["settings"], sort_keys=True)})
    return pd.DataFrame(rows, columns=["dataset", "backbone", "trials", "cpu_seconds", "best_valid_auc", "settings"])


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    """``python -m kgcl_lib.tune --dataset D --backbone B [--trials N] [--seed S] [--profile P]``."""
    return run_main(_main, argv, prog="python -m kgcl_lib.tune")


def _main(argv) -> int:
    ap = CliParser(prog="python -m kgcl_lib.tune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="dataset name (ml-100k, book-crossing, synthetic-tiny, ...)")
    ap.add_argument("--backbone", required=True, help="simple baseline to tune (pop, mf, lightgcn)")
    ap.add_argument("--trials", type=int, default=20, help="TPE trials (the declared budget)")
    ap.add_argument("--seed", type=int, default=0, help="TPE sampler seed")
    ap.add_argument("--split-seed", type=int, default=0, help="seed of the split whose validation rows score trials")
    ap.add_argument("--profile", default="default", help="write params/tuned/<profile>/<dataset>-<backbone>.yaml")
    ap.add_argument("--data-dir", default=None, help="dataset folder (none: $KGCL_DATA_DIR, then the cache)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per trial")
    ap.add_argument("--params-dir", default=None, help="folder of search_spaces.yaml and tuned/ (none: the checkout's params/)")
    ap.add_argument("--force", action="store_true", help="retune even when a matching study is stored (default: off)")
    ap.add_argument("--json", action="store_true", help="print the ledger as JSON (default: a summary)")
    args = ap.parse_args(argv)
    if args.trials < 0:
        raise arg_error("--trials", args.trials, "must be >= 0")

    params_dir = Path(args.params_dir) if args.params_dir else PARAMS_DIR
    load_search_space(args.backbone, params_dir / SEARCH_SPACES)  # unknown backbone: fail before opening data
    ds = open_dataset(args.dataset, args.data_dir)
    study, reused = ensure_tuned(ds, args.backbone, args.profile, args.trials, sampler_seed=args.seed,
                                 split_seed=args.split_seed, threads=args.threads, force=args.force,
                                 params_dir=params_dir)
    path = tuned_path(args.profile, ds.name, args.backbone, params_dir)
    if args.json:
        print(json.dumps(_plain(study.record), indent=1))
    else:
        r = study.record
        print(f"{'reused' if reused else 'tuned'} {ds.name}/{args.backbone}: {r['n_trials']} trials, "
              f"{r['cpu_seconds']:.1f} CPU-s; best valid AUC {(r.get('best') or {}).get('valid_auc')}; "
              f"settings {json.dumps(r['settings'], sort_keys=True)} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
