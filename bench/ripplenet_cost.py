"""CPU cost of one RippleNet grid run at one thread: training step, validation pass, top-K.

Usage (from the repo root)::

    KGCL_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/ripplenet_cost.py ml-100k
    KGCL_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/ripplenet_cost.py book-crossing

Process CPU time (robust to other jobs on a shared machine) of 20 training steps with the
published settings (``TrainConfig.for_dataset(name, backbone="ripplenet")``), one validation
``predict`` and the exact top-100 of 512 test users, extrapolated to a 10-epoch run and every
test user.  Prints one line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from kgcl_lib.data import load_dataset  # noqa: E402
from kgcl_lib.experiments import make_split  # noqa: E402
from kgcl_lib.model import build_backbone  # noqa: E402
from kgcl_lib.train import TrainConfig  # noqa: E402


def main(name: str, n_steps: int = 20, n_users: int = 512) -> None:
    torch.set_num_threads(1)
    ds = load_dataset(name)
    split = make_split(ds, 0)
    cfg = TrainConfig.for_dataset(name, backbone="ripplenet")
    c0 = time.process_time()
    model = build_backbone("ripplenet", ds, cfg, train=split.train)
    build = time.process_time() - c0
    model.configure_training(cfg)
    rows = torch.from_numpy(split.train)
    c0 = time.process_time()
    for s in range(0, n_steps * cfg.batch_size, cfg.batch_size):
        b = rows[s : s + cfg.batch_size]
        out = model.step_forward(b[:, 0], b[:, 1])
        loss = F.binary_cross_entropy_with_logits(out.logits, b[:, 2].float()) + cfg.l2 * out.l2 + out.extra
        model.step_update(loss, out)
    step = (time.process_time() - c0) / n_steps
    steps = -(-len(split.train) // cfg.batch_size)
    c0 = time.process_time()
    model.predict(split.valid)
    valid = time.process_time() - c0
    users = np.unique(split.test[split.test[:, 2] == 1, 0])
    c0 = time.process_time()
    model.topk(users[:n_users], 100)
    topk = (time.process_time() - c0) * len(users) / min(n_users, len(users))
    run = build + cfg.epochs * (step * steps + valid) + topk
    print(f"{name}: ripple sets {build:.1f} s; step {step * 1e3:.1f} ms x {steps} steps = {step * steps:.1f} s/epoch; "
          f"valid pass {valid:.2f} s; top-100 of {len(users)} test users {topk:.1f} s; "
          f"{cfg.epochs}-epoch run ≈ {run:.0f} s CPU")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ml-100k")
