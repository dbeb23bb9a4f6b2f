"""Dataset layer: raw files -> :class:`KGDataset`, splits, neighbour tables, ripple sets, Table 1 stats.

Entry point: :func:`load_dataset` (search order, processed cache); readers per format in
:mod:`.readers`; the embedded ML-100K in :mod:`.embedded`; synthetic data in :mod:`.synthetic`;
CLI ``python -m kgcl_lib.data {stats,synth,fetch}``.
"""

from .dataset import ITEM_COLUMNS, DatasetError, KGDataset, empty_items, make_items
from .neighbors import NeighborTable, sample_neighbors, undirected_edges
from .readers import detect_format, kgcn_convert, read_folder, read_kgcn, read_ml20m_raw, read_recbole
from .ripple import RippleSets, sample_ripple_sets
from .registry import DATASETS, find_source, load_dataset, stats
from .split import Split, split_ratings, user_train_counts
from .synthetic import SHAPES, SyntheticShape, make_synthetic

__all__ = [
    "ITEM_COLUMNS",
    "DatasetError",
    "KGDataset",
    "empty_items",
    "make_items",
    "NeighborTable",
    "sample_neighbors",
    "undirected_edges",
    "detect_format",
    "kgcn_convert",
    "read_folder",
    "read_kgcn",
    "read_ml20m_raw",
    "read_recbole",
    "RippleSets",
    "sample_ripple_sets",
    "DATASETS",
    "find_source",
    "load_dataset",
    "stats",
    "Split",
    "split_ratings",
    "user_train_counts",
    "SHAPES",
    "SyntheticShape",
    "make_synthetic",
]
