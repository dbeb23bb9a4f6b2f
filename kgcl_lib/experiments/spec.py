"""What a run is: :class:`RunSpec` (dataset, variant, text arm, seed, γ, overrides) and its stable
``run_id``, where its text comes from (:class:`RunText`), the grid of specs (:func:`grid_specs`), the evaluation settings (:class:`EvalConfig`),
the spec's :class:`~kgcl_lib.train.TrainConfig` (:func:`train_config`), and where a run lives and
when it counts as finished (:func:`run_dir`, :func:`config_key`, :func:`is_finished`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


from ..constants import KS, NO_TEXT_VARIANTS, PERCENTILES, TEXT_ARMS, TEXT_SOURCES, VARIANTS
from ..model import BACKBONES, DEFAULT_BACKBONE
from ..storage import sha256_file, write_json
from ..train import TrainConfig


#: Marker file of a grid cell that is a copy of another configuration (see the module docstring).
NOT_APPLICABLE = "not_applicable.json"


@dataclass(frozen=True)
class RunText:
    """Where the item text of one text arm on one dataset comes from: the one record of it.

    Resolved once per (dataset, arm) by :func:`~kgcl_lib.experiments.inputs.resolve_run_text`,
    handed to the executors inside :class:`~kgcl_lib.experiments.execute.RunInputs`, written into
    each run's ``config.json`` (``text_source``, ``synopses``) and only read back by
    :mod:`~kgcl_lib.experiments.store`.

    Attributes:
        dataset: the dataset's name.
        arm: the grid's text arm (``RunSpec.text``, one of :data:`~kgcl_lib.constants.TEXT_ARMS`).
        source: a key of :data:`~kgcl_lib.constants.TEXT_SOURCES`; ``"none"`` when the arm gives
            the item nodes no text on this dataset (always for ``"without"``).
        description: one caption phrase, e.g. ``"TMDB overviews for 1,600/1,682 items"``
            (``"LLM-generated"`` for the LLM arm; ``None`` for ``"without"``).
    """

    dataset: str
    arm: str
    source: str
    description: str | None = None

    def __post_init__(self):
        if self.arm not in TEXT_ARMS:
            raise ValueError(f"RunText.arm must be one of {TEXT_ARMS}, got {self.arm!r}")
        if self.source not in TEXT_SOURCES:
            raise ValueError(f"RunText.source must be one of {sorted(TEXT_SOURCES)}, got {self.source!r}")
        if self.arm == "without" and self.source != "none":
            raise ValueError(f"RunText(arm='without') has no text source, got {self.source!r}")

    @property
    def train_text(self) -> str:
        """What the trainer feeds the item nodes (``TrainConfig.text``): ``"none"`` or ``"synopsis"``."""
        return "none" if self.source == "none" else "synopsis"


@dataclass(frozen=True)
class RunSpec:
    """One training run of the grid.

    Attributes:
        dataset: name understood by :func:`open_dataset` (``"ml-100k"``, ``"synthetic-tiny"`` …).
        variant: ``"base"`` (L_base only, the paper's Table 1 settings), ``"cl_genre"``,
            ``"cl_title_genre"`` or ``"kgcn_original"`` (L_base with KGCN's own published settings,
            :func:`kgcl_lib.train.kgcn_settings`; text ``"without"`` only).
        text: the text arm: ``"without"`` (free item embeddings), ``"with"`` (the dataset's own
            text) or ``"llm"`` (LLM-generated synopses).
        seed: split, neighbour sampling and initialisation seed.
        gamma: weight of L_base against the contrastive loss (default: ``None`` = the
            dataset's paper setting).
        overrides: ``((field, value), ...)`` applied to the ``TrainConfig`` (e.g. epochs).
        text_source: where the text must come from (a key of
            :data:`~kgcl_lib.constants.TEXT_SOURCES`; ``None``: whatever the dataset has, see
            :func:`text_source`). ``run_grid`` refuses a dataset whose text is another source.
            The source actually used is always recorded with the run and labels its table rows.
        backbone: the recommender trained (a key of :data:`kgcl_lib.model.BACKBONES`; default
            ``"kgcn"``, the paper's).  Left out of :meth:`key` at its default, so KGCN runs keep
            their ids; other backbones name themselves in the run id.
    """

    dataset: str
    variant: str
    text: str = "without"
    seed: int = 0
    gamma: float | None = None
    overrides: tuple = ()
    text_source: str | None = None
    backbone: str = DEFAULT_BACKBONE

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise ValueError(f"RunSpec.backbone must be one of {tuple(BACKBONES)}, got {self.backbone!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"RunSpec.variant must be one of {VARIANTS}, got {self.variant!r}")
        if self.text not in TEXT_ARMS:
            raise ValueError(f"RunSpec.text must be one of {TEXT_ARMS}, got {self.text!r}")
        if self.text_source is not None and self.text_source not in TEXT_SOURCES:
            raise ValueError(f"RunSpec.text_source must be None or one of {sorted(TEXT_SOURCES)}, got {self.text_source!r}")
        fixed = {"without": "none", "llm": "llm"}.get(self.text)
        if fixed and self.text_source not in (None, fixed):
            raise ValueError(f"RunSpec(text={self.text!r}) has text_source {fixed!r}, not {self.text_source!r}")
        if self.variant in NO_TEXT_VARIANTS and self.text != "without":
            raise ValueError(f"RunSpec.variant {self.variant!r} has no text; got text={self.text!r}")
        object.__setattr__(self, "overrides", tuple(sorted((str(k), v) for k, v in dict(self.overrides).items())))

    def key(self) -> dict:
        key = {"dataset": self.dataset, "variant": self.variant, "text": self.text, "seed": int(self.seed),
               "gamma": None if self.gamma is None else float(self.gamma), "overrides": [list(o) for o in self.overrides]}
        if self.text_source is not None:  # unpinned specs keep the hashes they always had
            key["text_source"] = self.text_source
        if self.backbone != DEFAULT_BACKBONE:  # KGCN runs keep the hashes they always had
            key["backbone"] = self.backbone
        return key

    @property
    def run_id(self) -> str:
        """``<dataset>-[<backbone>-]<variant>-<text>-s<seed>-<8 hex>`` (the backbone unless KGCN):
        readable, and stable across sessions."""
        digest = hashlib.sha256(json.dumps(self.key(), sort_keys=True, default=str).encode()).hexdigest()[:8]
        backbone = "" if self.backbone == DEFAULT_BACKBONE else f"{self.backbone}-"
        return f"{self.dataset}-{backbone}{self.variant}-{self.text}-s{self.seed}-{digest}"


def grid_specs(datasets: Sequence[str], variants: Sequence[str] = VARIANTS, texts: Sequence[str] = ("without", "with"),
               seeds: Sequence[int] = (0,), gammas: Sequence[float | None] = (None,),
               overrides: dict | None = None, text_sources: dict | None = None,
               backbones: Sequence[str] = (DEFAULT_BACKBONE,)) -> list[RunSpec]:
    """The cartesian product backbones × datasets × texts × variants × γ × seeds as :class:`RunSpec` s.

    ``backbones``: keys of :data:`kgcl_lib.model.BACKBONES` (the profile's ``backbones``); the
    ``kgcn_original`` variant (KGCN's own settings) exists for KGCN only.

    ``overrides`` maps a dataset name (or ``"*"`` for all) to TrainConfig overrides;
    ``text_sources`` maps a dataset name to the source its ``"with"`` runs must use (default:
    the dataset's own, recorded per run). Cells a dataset cannot fill are resolved by
    :func:`run_grid` (see :func:`plan_grid`): they are never trained twice.
    """
    overrides, text_sources = overrides or {}, text_sources or {}
    out = []
    for backbone in backbones:
        for ds in datasets:
            ov = {**overrides.get("*", {}), **overrides.get(ds, {})}
            for text in texts:
                src = text_sources.get(ds) if text == "with" else None
                for variant in variants:
                    if variant in NO_TEXT_VARIANTS and (text != "without" or backbone != DEFAULT_BACKBONE):
                        continue
                    for gamma in gammas:
                        for seed in seeds:
                            out.append(RunSpec(ds, variant, text, int(seed), gamma, tuple(ov.items()), src, backbone))
    return out


#: Top-K ranking masks of :class:`EvalConfig` and how captions name them.
EVAL_MASKS = {
    "train_records": "top-K ranking excludes each user's training rows (positives and sampled negatives), as KGCN's code",
    "train_valid_positives": "top-K ranking excludes each user's train and valid positives",
}


@dataclass(frozen=True)
class EvalConfig:
    """How every run is evaluated (saved in ``config.json``).

    Attributes:
        ks: cut-offs of Recall/NDCG@K (Table 3).
        diversity_k: cut-off of Inter/Intra-list diversity (Table 4).
        topk: length of the stored top lists (≥ max(ks)).
        scoring: ``"kgcn"`` (the KGCN score of every user–item pair) or ``"dot"``.
        ndcg: ``"jurity"`` (the paper's library) or ``"standard"``.
        percentiles: cumulative activity buckets of the cold-start analysis.
        cold_k: cut-off of the cold-start NDCG (Figures 1/5 use NDCG@100).
        mask: which items are removed from a user's top-K ranking (:data:`EVAL_MASKS`):
            ``"train_records"`` (default; KGCN's reference code, ``topk_eval``: every item of the
            user's *training* rows, positives and sampled negatives) or ``"train_valid_positives"``
            (the user's train and valid positives; this project's earlier choice).  Valid rows
            are not masked by default because KGCN does not mask them.
    """

    ks: tuple = KS
    diversity_k: int = 20
    topk: int = 100
    scoring: str = "kgcn"
    ndcg: str = "jurity"
    percentiles: tuple = PERCENTILES
    cold_k: int = 100
    mask: str = "train_records"

    def __post_init__(self):
        if self.mask not in EVAL_MASKS:
            raise ValueError(f"EvalConfig.mask={self.mask!r}: expected one of {sorted(EVAL_MASKS)}")


def train_config(spec: RunSpec, ds_name: str, *, text_model: str | None = None, pair_n: int = 10,
                 threads: int | None = None, run_text: RunText | None = None):
    """The exact ``TrainConfig`` of ``spec``: the paper's settings for the dataset
    (:func:`kgcl_lib.train.paper_settings`; the trainer's defaults for synthetic data), then the
    spec's variant/text/seed/γ, then its overrides. ``run_text`` (the arm's :class:`RunText` on
    this dataset) decides whether the item nodes get text vectors: a ``"with"`` arm on a dataset
    without any text trains without them; without it, every arm but ``"without"`` has text."""
    if run_text is not None and run_text.arm != spec.text:
        raise ValueError(f"{spec.run_id}: run_text is for the {run_text.arm!r} arm, not {spec.text!r}")
    variant = "base" if spec.variant == "kgcn_original" else spec.variant
    text = run_text.train_text if run_text is not None else "none" if spec.text == "without" else "synopsis"
    kw = {"variant": variant, "text": text, "seed": int(spec.seed),
          "text_model": text_model, "n_pairs": int(pair_n), "backbone": spec.backbone}
    if threads is not None:
        kw["threads"] = int(threads)
    if spec.gamma is not None:
        kw["gamma"] = float(spec.gamma)
    kw.update(dict(spec.overrides))
    if "dataset" in kw:
        raise ValueError(f"{spec.run_id}: overrides cannot set 'dataset' (the run's dataset is {ds_name!r})")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(kw) - fields)
    if unknown:
        raise ValueError(f"{spec.run_id}: TrainConfig has no field(s) {unknown}; fields are {sorted(fields)}")
    # the paper's settings for the dataset (TrainConfig's defaults for synthetic data), KGCN's own
    # for its row, then the spec's variant/text/seed/γ and overrides
    return TrainConfig.for_dataset(ds_name, "kgcn" if spec.variant == "kgcn_original" else "paper", **kw)


def run_dir(results_dir, spec: RunSpec) -> Path:
    return Path(results_dir) / "runs" / spec.run_id


#: Written last into a run folder: ``{"run_id", "config_key", "finished_at"}``. Only a folder
#: holding it (with the expected key) counts as a finished run.
COMPLETE_MARKER = "complete.json"
#: Suffix of the hidden staging folder a run is written into
#: (``runs/.<run_id>.<host>-<pid>.<random>.tmp``, :func:`kgcl_lib.storage.atomic_dir`).
PARTIAL_SUFFIX = ".tmp"


def resolve_device_type(device: str) -> str:
    """``"cuda"`` or ``"cpu"``: what ``TrainConfig.device`` resolves to in this process."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device).split(":", 1)[0]


def config_key(cfg, ev: EvalConfig, device_type: str | None = None, text_source: str | None = None) -> str:
    """Hash of everything that changes a run's numbers: the TrainConfig, the evaluation settings,
    the effective torch thread count, the device type (``"cpu"`` / ``"cuda"``) and (runs with
    text) the text source — e.g. "with" runs are retrained once synopses replace the metadata
    substitute.

    Threads and device are part of the identity because results made at 1 and 2 threads (or on
    CPU and GPU) differ at ≈1e-6 (floating-point summation order): a run made under other
    settings is stale and retrained rather than mixed into a table. ``cfg.threads == 0`` (torch's
    default) counts as the current ``torch.get_num_threads()``; ``device_type`` defaults to what
    ``cfg.device`` resolves to here (:func:`resolve_device_type`) — pass it when the run executes
    elsewhere (a Ray worker with a GPU).
    """
    import torch

    d = {k: v for k, v in cfg.to_dict().items() if k not in ("threads", "device")}
    d["threads"] = int(cfg.threads) if cfg.threads else int(torch.get_num_threads())
    d["device_type"] = device_type or resolve_device_type(cfg.device)
    parts = [d, dataclasses.asdict(ev)] + ([{"text_source": text_source}] if text_source not in (None, "none") else [])
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def is_finished(results_dir, spec: RunSpec, key: str | None = None) -> bool:
    """The run folder holds :data:`COMPLETE_MARKER` (and, with ``key``, the marker's
    ``config_key`` equals it) and every file the marker lists still has its sha256
    (:func:`verify_run`). Folders from before the marker (or its checksums) existed count as
    unfinished; so does a run whose files changed since (warned: the grid then rebuilds it)."""
    marker = run_dir(results_dir, spec) / COMPLETE_MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    if key is not None and data.get("config_key") != key:
        return False
    try:
        verify_run(run_dir(results_dir, spec))
    except RunIntegrityError as exc:
        import warnings

        warnings.warn(f"{exc}; it is trained again", stacklevel=2)
        return False
    return True


class RunIntegrityError(ValueError):
    """A stored run's file is missing, truncated or changed since the run was written (one line,
    naming the run and the file)."""


def mark_complete(folder, run_id: str, key: str, **extra) -> Path:
    """Write :data:`COMPLETE_MARKER` into run folder ``folder`` (last, after every other file):
    ``{"run_id", "config_key", "finished_at", "sha256": {file: hex}}`` over the folder's files."""
    folder = Path(folder)
    sums = {f.name: sha256_file(f) for f in sorted(folder.iterdir()) if f.is_file() and f.name != COMPLETE_MARKER}
    return write_json(folder / COMPLETE_MARKER, {"run_id": run_id, "config_key": key, "sha256": sums, **extra,
                                                 "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


def verify_run(folder) -> dict:
    """Check run folder ``folder`` against the sha256 sums in its :data:`COMPLETE_MARKER`; return
    the marker. Raises :class:`RunIntegrityError` naming the run and the file that does not verify
    (hashing costs ~1 ms per MB: a few ms for an ML-100K run, well under reading it into a table)."""
    folder = Path(folder)
    hint = "rerun the notebook that trains it (run_grid rebuilds it), or delete the folder"
    try:
        marker = json.loads((folder / COMPLETE_MARKER).read_text())
    except FileNotFoundError:
        raise RunIntegrityError(f"run {folder.name}: not complete ({COMPLETE_MARKER} missing); {hint}") from None
    except (OSError, ValueError) as exc:
        raise RunIntegrityError(f"run {folder.name}: {folder / COMPLETE_MARKER} unreadable ({exc}); {hint}") from None
    sums = marker.get("sha256") if isinstance(marker, dict) else None
    if not isinstance(sums, dict) or not sums:
        raise RunIntegrityError(f"run {folder.name}: {folder / COMPLETE_MARKER} records no checksums "
                                f"(written by an older version); {hint}")
    for name, digest in sums.items():
        path = folder / name
        try:
            actual = sha256_file(path)
        except OSError:
            raise RunIntegrityError(f"run {folder.name}: {path} is missing; {hint}") from None
        if actual != digest:
            raise RunIntegrityError(f"run {folder.name}: {path} does not match its sha256 in {COMPLETE_MARKER} "
                                    f"(changed or truncated since the run was written); {hint}")
    return marker
