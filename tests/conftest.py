"""Shared pytest fixtures (generic: every module's tests may use them).

* ``fixtures_dir``: ``tests/fixtures`` (small hand-made files committed with the tests).
* ``data_dir``: ``Path($KGCL_DATA_DIR)`` (real data, e.g. ``export KGCL_DATA_DIR=../shared/data``);
  the test is skipped, with the reason printed, when it is unset or not a folder.
* ``kgcl_cache``: points ``$KGCL_CACHE_DIR`` at an empty temporary folder for one test, so
  caches are neither read from nor written to the user's ``~/.cache/kgcl``.
* ``tiny_dataset``: a hand-built :class:`~kgcl_lib.data.KGDataset` (4 users, 6 items, 10
  entities, 3 relations; its docstring lists every row so expected values can be derived by
  hand).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_sessionstart(session):
    """Build (or load) the compiled CPU kernels once, before any test runs.

    The build is cached per kernel source (``$TORCH_EXTENSIONS_DIR``), and a cold build takes
    30-60 s on two busy cores.  Without this, the first test to need the kernels may be one that
    runs training in a child process under a timeout (tests/integration/test_executors.py,
    tests/integration/test_reliability.py), which would then spend its time compiling and fail.
    """
    from kgcl_lib.model.kernels import cpp_kernels

    cpp_kernels()  # None where no compiler / KGCL_NO_CPP: the tests then take the pure-torch paths
    # A test runner started in the background by a non-interactive shell (`bash .ci/run &`)
    # inherits SIGINT *ignored*, and so does every child it spawns: the Ctrl-C tests
    # (test_executors, test_reliability) would then time out waiting for an interrupt that never
    # arrives.  A handler here (not inherited across exec) gives the children SIGINT's default
    # back, and this process Python's KeyboardInterrupt.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder from ``$KGCL_DATA_DIR``, or skip."""
    value = os.environ.get("KGCL_DATA_DIR")
    if not value:
        pytest.skip("real data not available: KGCL_DATA_DIR is not set (e.g. export KGCL_DATA_DIR=../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"real data not available: KGCL_DATA_DIR={value} is not a folder")
    return path


@pytest.fixture
def kgcl_cache(tmp_path, monkeypatch) -> Path:
    """An empty ``$KGCL_CACHE_DIR`` for this test."""
    root = tmp_path / "kgcl-cache"
    monkeypatch.setenv("KGCL_CACHE_DIR", str(root))
    return root


def build_tiny_dataset():
    """The ``tiny_dataset`` fixture's dataset (importable for module-level use).

    Ratings ``(user, item, label)``, 16 rows, 8 positives::

        u0: (0,0,1) (0,1,1) (0,4,0) (0,5,0)
        u1: (1,1,1) (1,2,1) (1,3,1) (1,0,0) (1,4,0) (1,5,0)
        u2: (2,2,1) (2,0,0)
        u3: (3,3,1) (3,4,1) (3,1,0) (3,2,0)

    KG ``(head, relation, tail)``; relations 0 ``film.genre``, 1 ``film.director``,
    2 ``person.nationality``; entities 6 ``g.drama``, 7 ``g.comedy``, 8 ``p.d1``, 9 ``c.n1``;
    item 5 has no KG edge::

        (0,0,6) (1,0,6) (2,0,7) (3,0,7) (4,0,6) (0,1,8) (2,1,8) (8,2,9)

    Items (raw ids ``101..106``): item 2 has no year, item 5 no genres and no synopsis.
    """
    from kgcl_lib.data import KGDataset, make_items

    ratings = np.array(
        [
            [0, 0, 1], [0, 1, 1], [0, 4, 0], [0, 5, 0],
            [1, 1, 1], [1, 2, 1], [1, 3, 1], [1, 0, 0], [1, 4, 0], [1, 5, 0],
            [2, 2, 1], [2, 0, 0],
            [3, 3, 1], [3, 4, 1], [3, 1, 0], [3, 2, 0],
        ],
        dtype=np.int64,
    )  # fmt: skip
    kg = np.array([[0, 0, 6], [1, 0, 6], [2, 0, 7], [3, 0, 7], [4, 0, 6], [0, 1, 8], [2, 1, 8], [8, 2, 9]], dtype=np.int64)
    items = make_items(
        ["101", "102", "103", "104", "105", "106"],
        title=["Toy Story", "GoldenEye", "Four Rooms", "Get Shorty", "Copycat", "Shanghai Triad"],
        year=[1995, 1995, None, 1995, 1995, 1995],
        genres=[("Animation", "Comedy"), ("Action", "Thriller"), ("Comedy",), ("Comedy", "Drama"), ("Drama", "Thriller"), ()],
        synopsis=[
            "A cowboy doll is threatened by a new spaceman figure.",
            "James Bond stops a stolen satellite weapon.",
            "Four tales in a hotel on New Year's Eve.",
            "A mobster goes to Hollywood.",
            "A psychologist helps hunt a copycat killer.",
            None,
        ],
    )
    return KGDataset(
        name="tiny",
        ratings=ratings,
        kg=kg,
        n_users=4,
        n_items=6,
        n_entities=10,
        n_relations=3,
        items=items,
        user_raw_ids=np.array(["u0", "u1", "u2", "u3"], dtype=object),
        relation_names=np.array(["film.genre", "film.director", "person.nationality"], dtype=object),
        entity_raw_ids=np.array(["m.101", "m.102", "m.103", "m.104", "m.105", "m.106", "g.drama", "g.comedy", "p.d1", "c.n1"], dtype=object),
        provenance={"format": "hand-made"},
    )


@pytest.fixture
def tiny_dataset():
    """A small hand-made KGDataset; see :func:`build_tiny_dataset` for its exact content."""
    return build_tiny_dataset()
