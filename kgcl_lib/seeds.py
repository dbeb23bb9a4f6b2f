"""The random streams of one run, all derived from its integer seed here and nowhere else.

One seed drives a run.  The streams it feeds, each from its own numpy ``SeedSequence`` entropy
or torch seed so that adding a draw to one never shifts another:

=====================  ==========================================  ==============================
stream                 made as                                     used for
=====================  ==========================================  ==============================
:meth:`split`          ``default_rng(SeedSequence(seed))``         the 6:2:2 split; synthetic data
:meth:`neighbors`      ``default_rng(SeedSequence([seed, 1]))``    KGCN's sampled neighbour table
:meth:`weights`        ``torch.Generator().manual_seed(seed)``     initial weights
:meth:`shuffles`       ``torch.Generator().manual_seed(seed+7919)``  epoch shuffles of rows, pairs
:attr:`pairs`          ``seed`` (int, handed on)                   content-pair sampling
=====================  ==========================================  ==============================

They are written out as the project has always made them (``default_rng(seed)`` *is*
``default_rng(SeedSequence(seed))``), not spawned from one ``SeedSequence``: spawning would give
every stored result a new stream, and every run is kept reproducible with the results already
stored.  A new stream must take new entropy (``SeedSequence([seed, n])`` with an unused ``n``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: Added to the seed for the torch generator of the epoch shuffles.
SHUFFLE_OFFSET = 7919
#: Second entropy word of the neighbour-sampling sequence ``SeedSequence([seed, 1])``.
NEIGHBOR_STREAM = 1


@dataclass(frozen=True)
class RunSeeds:
    """The streams of one run with integer ``seed`` (see the module docstring); every call
    returns a fresh generator at the start of its stream."""

    seed: int

    def split(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed))

    def neighbors(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, NEIGHBOR_STREAM]))

    def weights(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def shuffles(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + SHUFFLE_OFFSET)

    @property
    def pairs(self) -> int:
        return self.seed
