"""Training: one run of KGCL (Kim et al., Eq. 5) around a backbone of :mod:`kgcl_lib.model`.

Layout (each module imports only the ones before it)::

    config     TrainConfig, the paper's and KGCN's settings, the device
    io         checkpoints and the --out-dir run folder
    loop       train(): epochs of train_step through the backbone seam, early stopping, results
    __main__   python -m kgcl_lib.train (the CLI, on top of the loop)

Every public name of ``config``, ``io`` and ``loop`` is importable from here.
"""

from .config import CL_LOSSES, OPTIMIZERS, SETTINGS, TrainConfig, kgcn_settings, paper_settings, resolve_device  # noqa: F401
from .io import Checkpoint, check_out_dir, load_checkpoint, save_checkpoint  # noqa: F401
from .loop import (  # noqa: F401
    Batch,
    Best,
    TrainResult,
    TrainRows,
    ctr_metrics,
    end_training,
    pairs_arrays,
    restore_best,
    run_epoch,
    select_best,
    train,
    train_step,
    training_rows,
    write_run,
)
