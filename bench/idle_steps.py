"""How fast the faithful optimiser iterates idle rows: element-steps per CPU-second.

Under KGCN's whole-table L2 every element of the user and entity tables takes one dense-Adam
step with gradient ``λ·p`` every optimisation step, used by the batch or not; ``TableAdam``
iterates those idle steps lazily in the compiled row kernels (``rows_begin`` mode 2: per element
and step one ``sqrt`` and a Newton-refined reciprocal in AVX2/AVX-512 registers, m and v as
``torch.optim.Adam`` computes them; see ``kgcl_lib/model/csrc/kernels.cpp``).
This times a :meth:`TableAdam.flush` of a ``rows × dim`` table that stayed idle for ``steps``
steps -- the work one epoch adds per table element -- and reports the rate, so an epoch's cost is
``(users + entities) · dim · steps_per_epoch / rate``.

``--dense`` also times the reference the issue compares against, side by side on the same table:
``steps`` dense steps of fused ``torch.optim.Adam`` with the whole-table gradient ``λ·p`` built as
``TableAdam(mode="dense")`` builds it (``param · λ``, then the batch rows' gradient added -- none
here), and reports both rates and their ratio ``idle_over_dense``.  Why it matters: both training
modes run the same forward/backward, so even if that cost nothing, dense fused Adam ÷ the
faithful default per epoch is at most ``(all table rows ÷ rows a forward pass can read) ×
idle_over_dense`` (the faithful epoch iterates only the readable rows' idle steps; the others
once per run).

Usage::

    python bench/idle_steps.py --rows 20000 --dim 64 --steps 328 --threads 1 2 --json
    python bench/idle_steps.py --rows 95763 --dim 64 --steps 328 --threads 1 --dense --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from kgcl_lib.model import TableAdam  # noqa: E402


def idle_rate(rows: int, dim: int, steps: int, threads: int, use_cpp: bool = True, seed: int = 0) -> dict:
    """One flush of a ``rows × dim`` table idle for ``steps`` steps (Book-Crossing's λ and η)."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    table = (torch.rand(rows, dim, generator=g) - 0.5) * 0.2
    opt = TableAdam({"t": table}, lr=2e-4, table_l2=2e-5)
    opt.use_cpp = use_cpp
    opt.t = steps
    if use_cpp:  # build/load the extension outside the timing
        from kgcl_lib.model.kernels import cpp_kernels

        if cpp_kernels() is None:
            raise SystemExit("the compiled kernels are unavailable here (KGCL_NO_CPP or no compiler)")
    c0, w0 = time.process_time(), time.perf_counter()
    opt.flush()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = rows * dim * steps
    return {"rows": rows, "dim": dim, "steps": steps, "threads": threads, "compiled": use_cpp,
            "element_steps": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "g_element_steps_per_cpu_s": round(n / cpu / 1e9, 3), "g_element_steps_per_wall_s": round(n / wall / 1e9, 3)}


def dense_rate(rows: int, dim: int, steps: int, threads: int, seed: int = 0) -> dict:
    """``steps`` dense fused ``torch.optim.Adam`` steps of a ``rows × dim`` table, gradient ``λ·p``."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(seed)
    table = (torch.rand(rows, dim, generator=g) - 0.5) * 0.2
    opt = TableAdam({"t": table}, lr=2e-4, table_l2=2e-5, mode="dense")
    none = torch.zeros(0, dtype=torch.int64)
    c0, w0 = time.process_time(), time.perf_counter()
    for _ in range(steps):  # what TableAdam.finish does in dense mode, with no batch rows
        opt.tick()
        got = opt.begin("t", none)
        opt.finish("t", none, got, torch.zeros_like(got))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    n = rows * dim * steps
    return {"rows": rows, "dim": dim, "steps": steps, "threads": threads, "dense_fused_adam": True,
            "element_steps": n, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "g_element_steps_per_cpu_s": round(n / cpu / 1e9, 3), "g_element_steps_per_wall_s": round(n / wall / 1e9, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=20000, help="table rows (default: 20000)")
    ap.add_argument("--dim", type=int, default=64, help="embedding dimension (default: 64, Book-Crossing's)")
    ap.add_argument("--steps", type=int, default=328, help="idle steps (default: 328, one Book-Crossing epoch)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads to time (default: 1)")
    ap.add_argument("--pure-torch", action="store_true", help="also time the pure-torch path (slow)")
    ap.add_argument("--dense", action="store_true",
                    help="also time dense fused torch Adam on the same table and report idle_over_dense")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    args = ap.parse_args(argv)
    out = []
    for th in args.threads:
        out.append(idle_rate(args.rows, args.dim, args.steps, th))
        if args.dense:
            d = dense_rate(args.rows, args.dim, args.steps, th)
            d["idle_over_dense"] = round(out[-1]["g_element_steps_per_wall_s"] / d["g_element_steps_per_wall_s"], 2)
            out.append(d)
        if args.pure_torch:
            out.append(idle_rate(args.rows, args.dim, args.steps, th, use_cpp=False))
    for r in out:
        r["loadavg_1m"] = round(os.getloadavg()[0], 2)
        print(json.dumps(r) if args.json else r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
