"""Evaluation of one trained run: the test users and their ground truth (:func:`test_users_and_truth`)
and every metric of the paper's tables (:func:`evaluate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics as M
from ..data import user_train_counts
from ..metrics import truth_matrix
from .spec import EVAL_MASKS, EvalConfig


def test_users_and_truth(split, n_users: int, n_items: int, mask: str = "train_records"):
    """Test users (≥ 1 positive test row), their ground truth and the items to exclude.

    Returns ``(users int64[n], truth csr[n, n_items] (row i = users[i]'s test positives),
    exclude csr[n_users, n_items] (masked before ranking))``.  ``mask`` (see
    :class:`EvalConfig`): ``"train_records"`` excludes every item of the user's training rows,
    labels 0 and 1 (KGCN's ``topk_eval``); ``"train_valid_positives"`` the train and valid
    positives.
    """
    if mask not in EVAL_MASKS:
        raise ValueError(f"mask={mask!r}: expected one of {sorted(EVAL_MASKS)}")
    import scipy.sparse as sp

    pos = split.test[split.test[:, 2] == 1, :2]
    users = np.unique(pos[:, 0])
    truth = truth_matrix(np.searchsorted(users, pos[:, 0]), pos[:, 1], len(users), n_items)
    if mask == "train_records":
        seen = np.asarray(split.train)
    else:
        seen = np.concatenate([split.train, split.valid])
        seen = seen[seen[:, 2] == 1]
    exclude = sp.csr_matrix((np.ones(len(seen)), (seen[:, 0], seen[:, 1])), shape=(n_users, n_items))
    return users, truth, exclude


def evaluate(ds, split, model, ev: EvalConfig, align_pairs: np.ndarray | None = None) -> tuple[dict, dict]:
    """All metrics of one trained model; returns ``(metrics, arrays)``.

    Test AUC/F1 come from the trainer (:class:`kgcl_lib.train.TrainResult`); this adds the
    top-K, diversity, embedding-quality and cold-start metrics. ``arrays`` holds ``topk``,
    ``test_users``, ``content_emb`` and the per-user ``user_ndcg`` / ``user_recall``
    (``[n_test_users, len(user_metric_ks)]``) and ``user_activity`` for the store. ``align_pairs`` (``int64[p, 2]`` positive
    content pairs) are the pairs ℓ_align is measured on.
    """
    import torch

    out: dict[str, Any] = {}

    users, truth, exclude = test_users_and_truth(split, ds.n_users, ds.n_items, ev.mask)
    out["eval_mask"] = ev.mask
    model.eval()
    top = model.cpu().topk(users, ev.topk, exclude, mode=ev.scoring).numpy().astype(np.int64)
    rk = M.ranking_metrics(top, truth, ks=ev.ks, ndcg=ev.ndcg)
    out.update({k: float(v) for k, v in rk.items() if k.startswith(("recall@", "ndcg@"))})
    out["n_test_users"] = int(rk["n_users"])
    # a backbone without item embeddings (popularity) has no Intra-list diversity, alignment or
    # uniformity: NaN, and an empty [n_items, 0] content_emb array
    has_emb = getattr(model, "has_embeddings", True)
    with torch.no_grad():
        emb = model.content_embeddings().detach().numpy().astype(np.float32) if has_emb \
            else np.zeros((ds.n_items, 0), np.float32)
    k = ev.diversity_k
    out[f"inter@{k}"] = float(M.inter_list_diversity(top, ds.n_items, k=k))
    out[f"intra@{k}"] = float(M.intra_list_diversity(top, emb, k=k)) if has_emb else float("nan")
    out["alignment"] = float(M.alignment(emb[align_pairs[:, 0]], emb[align_pairs[:, 1]])) \
        if has_emb and align_pairs is not None and len(align_pairs) else float("nan")
    out["uniformity"] = float(M.uniformity(emb)) if has_emb else float("nan")
    activity = user_train_counts(split.train, ds.n_users)[users]
    cold = M.cold_start_ndcg(top, truth, activity, k=ev.cold_k, percentiles=ev.percentiles, ndcg=ev.ndcg)
    for p, v in zip(cold["percentile"], cold[f"ndcg@{ev.cold_k}"]):
        out[f"cold_ndcg@{ev.cold_k}_p{p:g}"] = float(v)
    out["ndcg_convention"] = ev.ndcg
    # Per-user numbers for kgcl_lib.claims (bootstrap over users within seeds): columns follow
    # user_metric_ks; activity = training positives of each test user (the cold-start axis).
    ks_user = np.array(sorted({*ev.ks, ev.cold_k}), dtype=np.int64)
    per = M.ranking_per_user(top, truth, ks=ks_user.tolist(), ndcg=ev.ndcg)
    return out, {"topk": top, "test_users": users.astype(np.int64), "content_emb": emb,
                 "user_metric_ks": ks_user, "user_activity": activity.astype(np.int64),
                 "user_ndcg": np.stack([per[f"ndcg@{k}"] for k in ks_user], axis=1),
                 "user_recall": np.stack([per[f"recall@{k}"] for k in ks_user], axis=1)}


def _positive_pairs(pairs) -> np.ndarray | None:
    if pairs is None:
        return None
    t = pairs.table
    return t.loc[t["label"] == 1, ["anchor", "other"]].to_numpy(dtype=np.int64)
