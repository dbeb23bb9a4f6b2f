"""Dataset layer: raw files -> :class:`KGDataset`, splits, neighbour tables, Table 1 stats."""

from .dataset import ITEM_COLUMNS, DatasetError, KGDataset, empty_items
from .neighbors import NeighborTable, sample_neighbors, undirected_edges
from .split import Split, split_ratings, user_train_counts

__all__ = [
    "ITEM_COLUMNS",
    "DatasetError",
    "KGDataset",
    "empty_items",
    "NeighborTable",
    "sample_neighbors",
    "undirected_edges",
    "Split",
    "split_ratings",
    "user_train_counts",
]
