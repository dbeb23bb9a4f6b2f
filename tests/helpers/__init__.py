"""Helpers shared by the tests (not collected: no ``test_*`` files here).

* :data:`REPO`: the repository root, found from this file (independent of the calling test's depth);
* ``httpfixtures``: a loopback HTTP server fixture (``http_server``) and a fake clock;
* ``textmodels``: tiny random BERT encoders written on the fly (no downloads).

The hand-made dataset files stay in ``tests/fixtures/`` (the ``fixtures_dir`` fixture of
``tests/conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

#: the repository root (``tests/helpers/__init__.py`` -> ``tests/helpers`` -> ``tests`` -> root)
REPO = Path(__file__).resolve().parents[2]
