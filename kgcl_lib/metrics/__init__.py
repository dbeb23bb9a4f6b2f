"""The paper's evaluation (Section 4.2, Eq. 6-7; Tables 2-4; Figures 1, 5, 6), vectorised.

Everything here takes plain numpy arrays, ``scipy.sparse`` matrices or DataFrames and imports no
torch, so the metrics run in any notebook kernel and are tested against jurity 2.1.0 (the
library the paper used) and against naive per-user loops.

Families
--------
* **CTR** (Table 2): :func:`auc`, :func:`f1` on labelled test rows.
* **Top-K** (Table 3) over the full catalogue, training items masked by
  :func:`topk_from_scores`: :func:`recall_at_k`, :func:`ndcg_at_k`, :func:`ranking_metrics`
  (all K at once), per-user arrays :func:`ranking_per_user` / :func:`ndcg_per_user`.
* **Cold start** (Figures 1, 5): :func:`cold_start_buckets`, :func:`cold_start_ndcg`.
* **Diversity** (Table 4): :func:`inter_list_diversity` (Eq. 6), :func:`intra_list_diversity`
  (Eq. 7), both exact via closed forms.
* **Embedding quality** (Figure 6): :func:`alignment`, :func:`uniformity` (Wang & Isola 2020).
* **Significance** (Table 2 p-values): :func:`ttest_vs_baseline`.

Conventions shared by the ranking metrics
-----------------------------------------
``topk`` is ``int64[n_users, K]``: the recommended item indices of each evaluated user, best
first, distinct within a row.  ``truth`` is a ``scipy.sparse`` matrix ``[n_users, n_items]``
whose stored non-zeros are the users' test positives, row ``u`` aligned with ``topk[u]``
(build it with :func:`truth_matrix`).  Relevance is binary.

* Recall@K = |top-K ∩ P_u| / |P_u| (jurity's definition; the denominator is *all* positives).
* NDCG@K = DCG@K / IDCG with DCG@K = Σ_{r≤K} hit_r / log2(r + 1).  Two IDCG conventions:
  ``"jurity"`` (default, the paper's library): IDCG over **all** |P_u| positives, so a user with
  more than K positives cannot reach 1; ``"standard"``: IDCG over min(K, |P_u|) positives, so a
  perfect ranking scores 1.  Name the convention in every caption (``ndcg_convention`` field).
* Users with no test positive are **skipped** (as jurity does): their per-user values are NaN,
  means are over the remaining users, and the summary dicts report ``n_users`` (evaluated) and
  ``n_skipped``.  If *no* user has a positive, a :class:`MetricsError` is raised.

Modules (every name above is importable from ``kgcl_lib.metrics``): ``checks`` (input checks,
:class:`MetricsError`), ``ctr`` (AUC, F1), ``ranking`` (top-K, Recall/NDCG, cold start),
``diversity`` (inter/intra-list diversity, alignment, uniformity), ``significance`` (t-tests).
"""

from __future__ import annotations

from .checks import MetricsError  # noqa: F401
from .ctr import auc, f1  # noqa: F401
from .diversity import (  # noqa: F401
    alignment, inter_list_diversity, intra_list_diversity, intra_list_diversity_per_user, uniformity,
)
from .ranking import (  # noqa: F401
    COLD_START_PERCENTILES, DEFAULT_KS, NDCG_CONVENTIONS, cold_start_buckets, cold_start_ndcg, ndcg_at_k,
    ndcg_per_user, ranking_metrics, ranking_per_user, recall_at_k, topk_from_scores, truth_matrix,
)
from .significance import T_TESTS, ttest_vs_baseline  # noqa: F401

__all__ = [
    "MetricsError",
    "DEFAULT_KS",
    "NDCG_CONVENTIONS",
    "COLD_START_PERCENTILES",
    "T_TESTS",
    "auc",
    "f1",
    "truth_matrix",
    "topk_from_scores",
    "ranking_per_user",
    "ranking_metrics",
    "recall_at_k",
    "ndcg_at_k",
    "ndcg_per_user",
    "cold_start_buckets",
    "cold_start_ndcg",
    "inter_list_diversity",
    "intra_list_diversity",
    "intra_list_diversity_per_user",
    "alignment",
    "uniformity",
    "ttest_vs_baseline",
]
