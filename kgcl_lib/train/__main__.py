"""``python -m kgcl_lib.train``: train one run from the command line (on top of :mod:`.loop`).

:func:`parser` builds one ``--flag`` per :class:`~kgcl_lib.train.TrainConfig` field,
:func:`config_from_args` turns the parsed flags into the run's config (paper / KGCN / generic
starting settings, flags win), :func:`check_dataset_arg` rejects an unknown ``--dataset`` before
any work, :func:`load_pairs` builds the content pairs of a ``cl_*`` variant, :func:`run_cli` loads
the data and runs :func:`kgcl_lib.train.loop.train`, and :func:`main` is the command (exit status
as every ``python -m kgcl_lib.*``: :func:`kgcl_lib.cli.run_main`).

For the paper's datasets (``book-crossing``, ``ml-*``) the run starts from Table 1's settings
(:func:`~kgcl_lib.train.paper_settings`); ``--settings kgcn`` starts from KGCN's own published
settings, ``--settings generic`` from :class:`~kgcl_lib.train.TrainConfig`'s defaults.  Any flag
overrides them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import fields

import numpy as np
import torch

from ..cli import CliParser, arg_error, run_main
from ..constants import TRAIN_TEXTS, TRAIN_VARIANTS, VARIANT_TEMPLATE
from ..data import DatasetError, load_dataset, split_ratings
from ..data.registry import DATASETS, canonical, find_source
from ..data.synthetic import SHAPES
from ..model import AGGREGATORS, BACKBONES, NEIGHBOR_REDUCE
from ..pairs import build_pairs
from ..seeds import RunSeeds
from ..text import item_text_embeddings
from . import loop
from .config import CL_LOSSES, OPTIMIZERS, SETTINGS, TrainConfig, resolve_device
from .io import check_out_dir


def load_pairs(ds, cfg: TrainConfig, rng_seed: int, sampler: str = "text", cache: bool = True):
    """Content pairs for a ``cl_*`` variant (:func:`kgcl_lib.pairs.build_pairs`) and a note on their source."""
    template = VARIANT_TEMPLATE[cfg.variant]
    kw = {"domain": "movie"} if ds.name.startswith("synthetic") else {}  # synthetic shapes carry no domain
    pairs = build_pairs(ds, template=template, n=cfg.n_pairs, seed=rng_seed, sampler=sampler, cache=cache, **kw)
    prov = getattr(pairs, "provenance", {}) or {}
    return pairs, f"kgcl_lib.pairs.build_pairs(template={template!r}, sampler={sampler!r}) {json.dumps(prov, default=str)[:300]}"


#: ``--help`` text of each TrainConfig field (unit and meaning); the default is appended from
#: the dataclass, so it stays right when a default changes.
_FIELD_HELP = {
    "variant": "training objective: base = L_base only; cl_genre / cl_title_genre = + contrastive loss on "
               "content pairs from that template",
    "text": "item-node input: none = learned entity embedding; synopsis = MLP_alpha(E(synopsis))",
    "text_model": "sentence encoder (hub id or folder) for --text synopsis; none = kgcl_lib.text's default",
    "n_pairs": "content pairs per anchor item (top-n positives and bottom-n negatives)",
    "seed": "seed of the split, neighbour sampling, initial weights and shuffles (integer)",
    "epochs": "maximum number of epochs (passes over the training rows)",
    "dim": "embedding dimension d (floats per user/entity/relation vector)",
    "n_iter": "receptive-field depth L (hops of KG aggregation)",
    "n_neighbors": "sampled KG neighbours per entity K",
    "aggregator": "KGCN aggregator",
    "neighbor_reduce": "how the K neighbour messages are combined",
    "lr": "Adam learning rate eta (per step)",
    "l2": "L2 weight lambda (multiplies 1/2 * squared norm of the batch's parameters)",
    "batch_size": "labelled user-content rows per optimiser step",
    "gamma": "gamma of Eq. 5 in [0, 1]: weight of L_base against the contrastive loss",
    "cl_loss": "contrastive loss: bce = Eq. 4; infonce = Eq. 1 with in-batch negatives",
    "temperature": "InfoNCE temperature t (> 0)",
    "patience": "early stopping after this many epochs without a better valid AUC; 0 = off",
    "restore_best": "test the epoch with the best valid AUC (true/false)",
    "optimizer": "adam = dense-Adam semantics, row-sparse, idle rows' steps applied exactly when next used; "
                 "lazy_adam = SparseAdam semantics (only with --l2-scope batch); dense_adam = reference, slow",
    "l2_scope": "table = KGCN's L2 on the whole tables every step; batch = L2 only on the rows a batch uses "
                "(not KGCN's)",
    "device": "torch device: auto (cuda when available), cpu, cuda, cuda:N",
    "threads": "torch intra-op CPU threads; 0 = torch's default",
    "eval_batch_size": "rows per forward pass during evaluation",
    "backbone": "the recommender trained (kgcn = the paper's KGCN; the KGCN-only flags are ignored by the others)",
}
#: Allowed values of the TrainConfig fields that take a name.
_FIELD_CHOICES = {
    "variant": TRAIN_VARIANTS, "text": TRAIN_TEXTS, "cl_loss": CL_LOSSES, "optimizer": OPTIMIZERS,
    "aggregator": AGGREGATORS, "neighbor_reduce": NEIGHBOR_REDUCE, "l2_scope": ("batch", "table"),
}


def _bool_arg(s: str) -> bool:
    low = s.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {s!r} (allowed: true, false, yes, no, 1, 0)")


def parser() -> argparse.ArgumentParser:
    p = CliParser(prog="python -m kgcl_lib.train", description="Train KGCN / KGCL on one dataset.")
    p.add_argument("--dataset", required=True,
                   help="ml-100k, book-crossing, ml-20m, synthetic:<shape>, or a folder name under --data-dir")
    p.add_argument("--data-dir", default=None, help="folder holding DATASET/ (default: $KGCL_DATA_DIR, then the cache)")
    p.add_argument("--settings", choices=SETTINGS, default="paper",
                   help="paper (default): start from the paper's Table 1 settings for the paper's datasets "
                        "(book-crossing, ml-100k, ml-20m; other datasets start from TrainConfig's defaults); "
                        "kgcn: KGCN's own published settings (sum aggregator; books K = 8), the 'KGCN (original "
                        "settings)' row; generic: TrainConfig's defaults for every dataset")
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    choices = {**_FIELD_CHOICES, "backbone": tuple(BACKBONES)}  # the registry as it is now
    for f in fields(TrainConfig):
        if f.name == "dataset":
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f"{_FIELD_HELP.get(f.name, f'TrainConfig.{f.name}')} (default: {defaults[f.name]})"
        kw = {"default": None, "help": text}
        if f.name in choices:
            kw["choices"] = choices[f.name]
        if f.type in ("bool", bool):
            p.add_argument(flag, type=_bool_arg, metavar="BOOL", **kw)
        elif f.type in ("int", int):
            p.add_argument(flag, type=int, **kw)
        elif f.type in ("float", float):
            p.add_argument(flag, type=float, **kw)
        else:
            p.add_argument(flag, type=str, **kw)
    p.add_argument("--pair-sampler", choices=("text", "kg", "text+kg"), default="text",
                   help="content-pair sampler for the cl_* variants: text = the paper's template pairs; kg = "
                        "KG-attribute Jaccard, for items without genres (Book-Crossing); text+kg = both (default: text)")
    p.add_argument("--out-dir", default=None,
                   help="write config/history/result/checkpoint here; written into a hidden sibling folder and "
                        "renamed into place when complete, replacing an earlier run (default: none)")
    p.add_argument("--no-cache", action="store_true",
                   help="neither read nor write the dataset and pair caches, e.g. when they are read-only (default: off)")
    p.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout (default: off)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines on stderr (default: off)")
    return p


def config_from_args(args) -> TrainConfig:
    """The run's TrainConfig; a bad value raises :class:`kgcl_lib.cli.ArgumentError` naming the option."""
    kwargs = {}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name != "dataset":
            kwargs[f.name] = v
    try:
        cfg = TrainConfig.for_dataset(args.dataset, args.settings, **kwargs)
    except ValueError as e:
        m = re.match(r"TrainConfig\.(\w+)=(.*?): (.*)$", str(e))
        if m is None:
            raise
        name, value, why = m.groups()
        flags = " / ".join("--" + n.replace("_", "-") for n in name.split("/"))
        raise arg_error(flags, value, why) from e
    try:
        resolve_device(cfg.device)
    except (RuntimeError, ValueError) as e:
        avail = "auto, cpu" + (", cuda" if torch.cuda.is_available() else "")
        raise arg_error("--device", cfg.device, f"{e} (allowed here: {avail})") from e
    return cfg


def check_dataset_arg(name: str, data_dir) -> None:
    """Reject an unknown ``--dataset`` before any work: not registered, not synthetic, no folder."""
    key = canonical(name)
    if key in DATASETS:
        return
    if key.startswith(("synthetic:", "synthetic-")):
        shape = key.split(":", 1)[1] if ":" in key else key.split("-", 1)[1]
        if shape not in SHAPES:
            raise arg_error("--dataset", name, f"unknown synthetic shape (allowed: {', '.join('synthetic:' + s for s in sorted(SHAPES))})")
        return
    try:
        if find_source(key, data_dir) is not None:
            return
    except DatasetError:
        pass
    allowed = ", ".join(sorted(DATASETS)) + ", synthetic:<shape>, or a folder name under --data-dir / $KGCL_DATA_DIR"
    raise arg_error("--dataset", name, f"unknown dataset (allowed: {allowed})")


def run_cli(argv: list[str]) -> int:
    """Parse ``argv``, load the dataset (and text / pairs), run :func:`kgcl_lib.train.loop.train`, print the results."""
    args = parser().parse_args(argv)
    check_dataset_arg(args.dataset, args.data_dir)
    cfg = config_from_args(args)
    if args.out_dir is not None:
        try:
            replacing = check_out_dir(args.out_dir)
        except ValueError as e:
            raise arg_error("--out-dir", args.out_dir, str(e)) from e
        if replacing:
            print(f"note: --out-dir {args.out_dir} holds an earlier run; it is replaced when this run completes "
                  "(an interrupted run leaves it as it is)", file=sys.stderr)
    t0 = time.perf_counter()
    seeds = RunSeeds(cfg.seed)
    ds = load_dataset(cfg.dataset, data_dir=args.data_dir, seed=cfg.seed, cache=not args.no_cache)
    split = split_ratings(ds.ratings, seeds.split())
    text = None
    info = {}
    if cfg.text == "synopsis":
        kw = {"cache": False} if args.no_cache else {}
        text = item_text_embeddings(ds, **kw) if cfg.text_model is None else item_text_embeddings(ds, model=cfg.text_model, **kw)
        info["text_model"] = str(getattr(text, "model", cfg.text_model))
        info["items_with_text"] = int(np.asarray(text.has_text).sum())
    pairs = None
    if cfg.variant != "base":
        info["pair_sampler"] = args.pair_sampler
        pairs, info["pairs_source"] = load_pairs(ds, cfg, seeds.pairs, sampler=args.pair_sampler, cache=not args.no_cache)
    prep = time.perf_counter() - t0
    res = loop.train(ds, split, cfg, pairs=pairs, text=text, out_dir=args.out_dir, progress=not args.no_progress,
                   out_extra={"cli.json": {"argv": list(argv), **info}} if args.out_dir is not None else None)
    out = {**res.summary(), **info, "prep_seconds": prep, "config": cfg.to_dict()}
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps({k: out[k] for k in ("test_auc", "test_f1", "valid_auc", "epochs", "seconds", "train_rows_per_s")}, indent=2))
    return 0


def main(argv=None) -> int:
    """``python -m kgcl_lib.train``; returns the exit status."""
    return run_main(run_cli, argv, prog="python -m kgcl_lib.train")


if __name__ == "__main__":
    sys.exit(main())
