"""KGCN's training step behind the backbone seam: row-sparse updates of the big tables.

A mixin of :class:`~kgcl_lib.model.kgcn.KGCN`.  Each step plans the rows a batch touches
(:meth:`~kgcl_lib.model.fast.KGCNFastPath.plan`), has :class:`~kgcl_lib.model.table_adam.TableAdam`
bring exactly those user / entity rows up to date (the idle steps they missed under dense Adam
with whole-table L2), runs the forward pass on them and, after the trainer's backward pass,
writes the updated rows back; torch Adam updates the small dense weights.  The trainer only sees
:class:`~kgcl_lib.model.backbone.StepOutput`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .backbone import StepOutput
from .table_adam import make_optimizer


class KGCNTraining:
    """How a step updates KGCN's parameters (the :class:`~kgcl_lib.model.backbone.Backbone`
    training methods of :class:`~kgcl_lib.model.kgcn.KGCN`)."""

    def dense_parameters(self) -> list[nn.Parameter]:
        """Parameters updated densely every step: relations, aggregator and α weights."""
        ps = [self.relation_emb, *self.agg_weights, *self.agg_biases]
        return ps + ([self.alpha_weight, self.alpha_bias] if self.alpha_weight is not None else [])

    def readable_entities(self) -> Tensor:
        """``bool[n_entities]``: the entity rows some forward pass can read -- every item and the
        entities of its receptive field over the fixed sampled neighbours (``n_iter`` hops).  No
        score depends on the other rows (Book-Crossing, K = 4, L = 1: 69 % of the table), so the
        optimiser leaves their idle steps until :meth:`end_training`."""
        dev = self.adj_entity.device
        seen = torch.zeros(self.n_entities, dtype=torch.bool, device=dev)
        frontier = torch.arange(self.n_items, device=dev)
        seen[frontier] = True
        for _ in range(self.cfg.n_iter):
            nxt = torch.zeros_like(seen)
            nxt[self.adj_entity.index_select(0, frontier).view(-1)] = True
            frontier = (nxt & ~seen).nonzero().view(-1)
            seen |= nxt
        return seen

    def configure_training(self, cfg) -> None:
        """KGCN's optimiser (:func:`~kgcl_lib.model.table_adam.make_optimizer`): torch Adam on
        :meth:`dense_parameters`, row-sparse TableAdam on the user / entity tables."""
        self.optimizer = make_optimizer(self, cfg)
        self.optimizer.rows.live["entity_emb"] = self.readable_entities()
        # λ on the rows a batch used (l2_scope "batch"), applied inside TableAdam.finish
        self.row_l2 = cfg.l2 if cfg.l2_scope == "batch" else 0.0

    def step_forward(self, users, items, anchor=None, other=None) -> StepOutput:
        """Forward pass on the batch's local rows (:meth:`plan`), which TableAdam brings up to date."""
        rows = self.optimizer.rows
        plan = self.plan(users, items, torch.cat([anchor, other]) if anchor is not None else None)
        rows.tick()
        u_rows = rows.begin("user_emb", plan.user_ids)
        e_rows = rows.begin("entity_emb", plan.plain_ids)
        table = self.local_table(plan, e_rows)
        logits = self.forward_plan(plan, u_rows, table)
        # L2 on the weights through autograd; on the table rows its gradient λ·p is added inside
        # TableAdam (one pass, no autograd nodes): on the batch rows in finish, on the idle rows
        # when next used (l2_scope "table"); only the batch-scope value is logged.
        l2 = self.l2_penalty(u_rows[:0], e_rows[:0])
        if self.row_l2:  # the rows' value only (no graph); l2 keeps the weights' graph
            u_flat, e_flat = u_rows.detach().view(-1), e_rows.detach().view(-1)
            l2 = l2 + 0.5 * (torch.dot(u_flat, u_flat) + torch.dot(e_flat, e_flat))
        ha = ho = None
        if anchor is not None:  # h_c of the pairs' items: rows of the local initial table
            h = table.index_select(0, plan.extra)
            ha, ho = h[: len(anchor)], h[len(anchor) :]
        return StepOutput(logits, ha, ho, l2, state=(plan, u_rows, e_rows))

    def step_update(self, loss: Tensor, out: StepOutput) -> None:
        """Backward pass, torch Adam on the dense weights, TableAdam on the batch's table rows."""
        plan, u_rows, e_rows = out.state
        opt = self.optimizer
        opt.dense.zero_grad(set_to_none=True)
        loss.backward()
        opt.dense.step()
        opt.rows.finish("user_emb", plan.user_ids, u_rows, u_rows.grad, l2=self.row_l2)
        opt.rows.finish("entity_emb", plan.plain_ids, e_rows, e_rows.grad, l2=self.row_l2)

    def end_epoch(self) -> int:
        """Apply the idle rows' deferred steps (tables now equal dense Adam's); the step count."""
        self.optimizer.rows.flush()
        return self.optimizer.rows.t

    def end_training(self, mark: int) -> None:
        """Bring the rows no forward pass reads (:meth:`readable_entities`) to step ``mark`` -- the
        step of the epoch whose weights the run returns -- so the returned tables equal dense
        Adam's everywhere (same bits as flushing them every epoch)."""
        self.optimizer.rows.flush(target=mark, unread=True)

    def optimizer_state_dict(self) -> dict | None:
        opt = getattr(self, "optimizer", None)
        return None if opt is None else opt.state_dict()

    def load_optimizer_state(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)
