"""Optional compiled CPU kernels (``csrc/kernels.cpp``) and their autograd wrappers.

KGCN's training step is dozens of tiny gathers and element-wise passes over a receptive field
of a few thousand rows; in eager torch each is a separate pass over memory plus dispatch and
autograd bookkeeping, which is what limited small-batch training (ML-100K, batch 2,048).  The
kernels here fuse them per batch row:

* :class:`EdgeSoftmax` -- attention weights ``w = softmax_K(π(u, r))`` of every field edge from
  the ``[B, R']`` table ``π(u, r) = u·r / d`` (gather, max, exp, normalise in one pass);
* :class:`TreeBag` -- the first KGCN iteration of every node at hops ``0..L-1``:
  ``act(b + T_self[v] + Σ_k w_k T_nbr[e_k])`` read straight from the local row tables through the
  heap-layout field (no ``[B·S, K]`` index/weight copies, no ``[B·S, K, d]`` temporaries);
* :class:`NodeBag` -- the neighbourhood sums of later iterations inside each row's tree.

They are compiled on first use with torch's own toolchain (≈ 20 s once per environment, cached
under ``~/.cache/torch_extensions``; ``scripts/bootstrap.sh`` builds them once, and a process that
finds another one building waits at most ``$KGCL_KERNEL_WAIT`` s, :func:`kgcl_lib.locks.build_locked`)
with the vector instructions this
CPU reports (``torch.backends.cpu.get_cpu_capability``).  Without a compiler, or with
``KGCL_NO_CPP=1``, :func:`cpp_kernels` returns ``None`` and callers use their pure-torch twins
(same results; the tests check the two against each other).  The row-sparse Adam kernels of
:class:`kgcl_lib.model.table_adam.TableAdam` live in the same extension.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor

from ..locks import build_locked

_SRC = Path(__file__).with_name("csrc") / "kernels.cpp"
_state: dict = {}

#: Activation codes shared with the C++ side.
ACT_NONE, ACT_RELU, ACT_TANH = 0, 1, 2
#: :class:`NodeBag` modes (the aggregator's input), shared with the C++ side.
NODE_NBR, NODE_SUM, NODE_CONCAT = 0, 1, 2
NODE_MODE = {"neighbor": NODE_NBR, "sum": NODE_SUM, "concat": NODE_CONCAT}


def _arch_flags() -> tuple[str, list[str]]:
    """(name suffix, compiler flags) for the vector ISA torch detected on this CPU."""
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except Exception:  # noqa: BLE001 - older torch: build for the baseline ISA
        cap = "DEFAULT"
    if cap.startswith("AVX512"):
        return "avx512", ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"]
    if cap.startswith("AVX2"):
        return "avx2", ["-mavx2", "-mfma"]
    return "base", []


def cpp_kernels():
    """The compiled extension module, or ``None`` (no compiler / ``KGCL_NO_CPP`` / failed once).

    Set ``kgcl_lib.model.kernels.enabled(False)`` to force the pure-torch paths in this process.
    """
    if not _state.get("enabled", True):
        return None
    if "mod" not in _state:
        mod = None
        if not os.environ.get("KGCL_NO_CPP"):
            try:
                from torch.utils.cpp_extension import _get_build_directory, load_inline


                tag, flags = _arch_flags()
                # one cached build per environment: torch keeps one build per extension name and
                # rebuilds (≈ 20 s) whenever the include paths differ, i.e. on every switch
                # between two virtual environments sharing ~/.cache/torch_extensions
                # the source's hash too, so an edited kernel never reuses a stale build
                src = _SRC.read_text()
                env = hashlib.sha1(f"{sys.prefix}|{torch.__version__}".encode()).hexdigest()[:8]
                src_hash = hashlib.sha1(src.encode()).hexdigest()[:8]
                name = f"kgcl_kernels_{tag}_{env}_{src_hash}"
                # our own owner-recording lock around torch's (which a killed build wedges forever)
                mod = build_locked(_get_build_directory(name, False), lambda: load_inline(
                    name, cpp_sources=src,
                    functions=["edge_softmax_fwd", "edge_softmax_bwd", "tree_bag_fwd", "tree_bag_bwd", "node_bag_fwd",
                               "node_bag_bwd", "plan_batch", "rows_begin", "rows_finish"],
                    # -fopenmp: ATen's inline at::parallel_for is an OpenMP loop; without the flag
                    # it silently runs on one thread (libgomp is the one torch already loaded)
                    extra_cflags=["-O3", "-fno-math-errno", "-fopenmp", *flags], extra_ldflags=["-fopenmp"],
                    verbose=False), say=lambda m: print(m, file=sys.stderr, flush=True))
            except Exception as e:  # noqa: BLE001 - any build problem means: use pure torch
                warnings.warn(f"kgcl: C++ kernels unavailable ({type(e).__name__}: {e}); using pure torch")
        _state["mod"] = mod
    return _state["mod"]


def enabled(flag: bool | None = None) -> bool:
    """Get (no argument) or set whether the compiled kernels may be used in this process."""
    if flag is not None:
        _state["enabled"] = bool(flag)
    return _state.get("enabled", True)


def usable(t: Tensor):
    """The kernels when they apply to tensors like ``t`` (CPU, float32/float64), else ``None``."""
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
        return None
    return cpp_kernels()


def _empty(like: Tensor) -> Tensor:
    return like.new_empty(0)


class EdgeSoftmax(torch.autograd.Function):
    """``w[b, s*K+k] = scale · softmax_k(ur[b, rel[b, s*K+k]])`` -> ``[B, S*K]``.

    ``ur``: ``[B, R']`` attention logits of every relation; ``rel``: ``int64[B, S*K]``;
    ``scale``: ``1/K`` for KGCN's mean reduce, ``1`` for the paper's sum.
    """

    @staticmethod
    def forward(ctx, ur: Tensor, rel: Tensor, K: int, scale: float) -> Tensor:
        mod = cpp_kernels()
        w = mod.edge_softmax_fwd(ur.contiguous(), rel.contiguous(), K, scale)
        ctx.save_for_backward(w, rel)
        ctx.R, ctx.K, ctx.scale = ur.shape[1], K, scale
        return w

    @staticmethod
    def backward(ctx, grad: Tensor):
        w, rel = ctx.saved_tensors
        gu = cpp_kernels().edge_softmax_bwd(w, rel.contiguous(), grad.contiguous(), ctx.R, ctx.K, ctx.scale)
        return gu, None, None, None


class TreeBag(torch.autograd.Function):
    """``out[b, s] = act(bias + T_self[field[b, s]] + Σ_k w[b, s*K+k] T_nbr[field[b, 1+s*K+k]])``.

    Shapes: ``self_tab`` ``[n, d]`` or ``None`` (no self term; ``shared=True`` means the self rows
    come from ``nbr_tab``, KGCN's ``sum`` aggregator), ``nbr_tab`` ``[n, d]``, ``field``
    ``int64[B, F]`` (heap layout), ``w`` ``[B, ≥S*K]``, ``bias`` ``[d]`` or ``None``; ``act`` one
    of :data:`ACT_NONE`, :data:`ACT_RELU`, :data:`ACT_TANH`.  Returns ``[B, S, d]``.
    """

    @staticmethod
    def forward(ctx, self_tab, nbr_tab, field, w, bias, S: int, K: int, act: int, shared: bool):
        mod = cpp_kernels()
        nbr_tab, field, w = nbr_tab.contiguous(), field.contiguous(), w.contiguous()
        st = nbr_tab if shared else (self_tab.contiguous() if self_tab is not None else _empty(nbr_tab))
        out = mod.tree_bag_fwd(st, nbr_tab, field, w, bias if bias is not None else _empty(nbr_tab), S, K, act)
        ctx.save_for_backward(st, nbr_tab, field, w, out)
        ctx.S, ctx.K, ctx.act, ctx.shared = S, K, act, shared
        ctx.has_self, ctx.has_bias = self_tab is not None or shared, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        st, nbr_tab, field, w, out = ctx.saved_tensors
        need = ctx.needs_input_grad
        need_nbr = need[1]
        need_self = need_nbr if ctx.shared else (ctx.has_self and need[0])
        gs, gn, gw, gb = cpp_kernels().tree_bag_bwd(
            st, nbr_tab, field, w, out, grad.contiguous(), ctx.S, ctx.K, ctx.act, ctx.shared,
            need_self, need_nbr, need[3], ctx.has_bias and need[4])
        return ((gs if need[0] and not ctx.shared else None), (gn if need_nbr else None), None,
                (gw if need[3] else None), (gb if ctx.has_bias and need[4] else None), None, None, None, None)


class NodeBag(torch.autograd.Function):
    """Aggregator input of the first ``S`` nodes of per-row trees, with the neighbourhood vector
    ``n[b, s] = Σ_k w[b, s*K+k] · h[b, 1+s*K+k]``:

    ``mode`` :data:`NODE_NBR` -> ``n`` ``[B, S, d]``; :data:`NODE_SUM` -> ``h[:, s] + n``
    ``[B, S, d]``; :data:`NODE_CONCAT` -> ``[h[:, s] ; n]`` ``[B, S, 2d]``.
    ``h``: ``[B, P, d]`` node vectors in heap layout; ``w``: ``[B, ≥S*K]``.
    """

    @staticmethod
    def forward(ctx, h: Tensor, w: Tensor, S: int, K: int, mode: int) -> Tensor:
        h, w = h.contiguous(), w.contiguous()
        out = cpp_kernels().node_bag_fwd(h, w, S, K, mode)
        ctx.save_for_backward(h, w)
        ctx.S, ctx.K, ctx.mode = S, K, mode
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        h, w = ctx.saved_tensors
        need = ctx.needs_input_grad
        gh, gw = cpp_kernels().node_bag_bwd(h, w, grad.contiguous(), ctx.S, ctx.K, ctx.mode, need[0], need[1])
        return (gh if need[0] else None), (gw if need[1] else None), None, None, None
