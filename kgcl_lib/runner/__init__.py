"""Headless execution of the notebook collection with papermill and a profile (``./run_all.sh``).

:mod:`.notebooks` holds the runner; ``python -m kgcl_lib.runner`` (:mod:`.__main__`) is its command.
"""

from .notebooks import (  # noqa: F401
    INJECTED,
    NOTEBOOK_GLOB,
    Profile,
    check_profile_keys,
    declared_parameters,
    discover,
    load_profile,
    new_warnings,
    notebook_parameters,
    run,
    select,
)
