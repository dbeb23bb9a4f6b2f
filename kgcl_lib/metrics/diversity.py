"""List diversity of Table 4 (Eq. 6-7) and embedding alignment / uniformity of Figure 6 (Wang & Isola
2020)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from .checks import MetricsError, _check_finite, _check_k, _check_topk

_GRAM_CHUNK_ELEMS = 1 << 20  # [rows, n] Gram blocks in uniformity (float64: 8 MiB)


# ---------------------------------------------------------------------------------------------
# Diversity (Table 4, Eq. 6-7)
# ---------------------------------------------------------------------------------------------
def inter_list_diversity(topk, n_items: int, k: int | None = None) -> float:
    """Inter-list diversity@k, Eq. 6, exactly over **all** unique user pairs.

    With ``r_u`` the binary K-hot recommendation vector of user ``u`` and ``r̂_u = r_u / √K``,
    cos(r_u, r_v) = r̂_u·r̂_v, hence

    ``mean_{u<v} (1 - r̂_u·r̂_v) = 1 - (‖Σ_u r̂_u‖² - n) / (n(n-1))
    = 1 - (Σ_i c_i² - nK) / (K n (n-1))``

    where ``c_i`` is how many lists contain item ``i``.  Evaluated in exact integer arithmetic
    (O(nK), no n×n matrix), it equals jurity's ``user_sample_size=None`` value to float rounding.

    Args:
        topk: ``int[n_users, K']`` distinct items per row; every row is a user of Eq. 6.
        n_items: catalogue size (bounds check).
        k: use the first ``k`` columns (default: all).
    Returns:
        Diversity in [0, 1]; 0 when all lists are identical.
    Raises:
        MetricsError: fewer than 2 users (Eq. 6 has no pair; jurity returns NaN), bad topk.
    """
    arr = _check_topk(topk, n_items, k)
    n, kk = arr.shape
    if n < 2:
        raise MetricsError(f"inter-list diversity needs at least 2 users, got {n}")
    c = np.bincount(arr.ravel(), minlength=n_items).astype(np.int64)
    sum_c2 = int(c @ c)
    # Python ints: exact numerator and denominator, one rounding at the division.
    return 1.0 - (sum_c2 - n * kk) / (kk * n * (n - 1))


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero (as sklearn.preprocessing.normalize)."""
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    return x / np.where(norms > 0, norms, 1.0)[:, None]


def intra_list_diversity_per_user(topk, item_emb, k: int | None = None) -> np.ndarray:
    """``float64[n_users]``: Eq. 7's inner term, each user's mean pairwise cosine distance.

    With normalised embeddings ``ê`` and ``S_u = Σ_{p in list} ê_p``,
    ``Σ_{p<q} ê_p·ê_q = (‖S_u‖² - Σ_p ‖ê_p‖²) / 2``, so the mean distance is
    ``1 - that / (K(K-1)/2)``.  ``S`` is one sparse (K-hot) × dense product: O(n·K·D) time and
    O(n·D) memory, no items×items matrix.  An all-zero embedding (e.g. an item without text)
    has cosine distance 1 to everything, as in sklearn/jurity.
    """
    emb = np.asarray(item_emb, dtype=np.float64)
    if emb.ndim != 2:
        raise MetricsError(f"item_emb must be 2-D [n_items, D], got shape {emb.shape}")
    _check_finite("item_emb", emb)
    arr = _check_topk(topk, emb.shape[0], k)
    n, kk = arr.shape
    if kk < 2:
        raise MetricsError("intra-list diversity needs lists of at least 2 items (k >= 2)")
    e = _normalise_rows(emb)
    sq = np.einsum("ij,ij->i", e, e)  # 1, or 0 for all-zero rows
    r = sp.csr_matrix(
        (np.ones(n * kk), arr.ravel(), np.arange(0, n * kk + 1, kk, dtype=np.int64)),
        shape=(n, emb.shape[0]),
    )
    s = r @ e  # [n, D] sum of each list's normalised embeddings
    pair_sim = (np.einsum("ij,ij->i", s, s) - r @ sq) / 2.0
    return 1.0 - pair_sim / (kk * (kk - 1) / 2.0)


def intra_list_diversity(topk, item_emb, k: int | None = None) -> float:
    """Intra-list diversity@k, Eq. 7: per user the mean pairwise cosine distance of the ``k``
    recommended items' content embeddings, averaged over all ``topk`` rows (exact).

    Args:
        topk: ``int[n_users, K']`` distinct items per row.
        item_emb: ``float[n_items, D]`` content embeddings (computed in float64).
        k: use the first ``k`` columns (default all); must be >= 2.
    """
    return float(np.mean(intra_list_diversity_per_user(topk, item_emb, k)))


# ---------------------------------------------------------------------------------------------
# Embedding quality (Figure 6; Wang & Isola 2020)
# ---------------------------------------------------------------------------------------------
def _unit_rows(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise MetricsError(f"{name} must be 2-D [n, D], got shape {arr.shape}")
    _check_finite(name, arr)
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    if (norms == 0).any():
        raise MetricsError(f"{name} row {int(np.flatnonzero(norms == 0)[0])} is all zeros; cannot L2-normalise it")
    return arr / norms[:, None]


def alignment(x, y, alpha: float = 2) -> float:
    """ℓ_align = mean_i ‖x̂_i - ŷ_i‖₂^α over positive pairs (Wang & Isola 2020), lower is better.

    Args:
        x, y: ``float[n_pairs, D]``, row ``i`` of each is one positive pair (e.g. the content
            embeddings of ``ContentPairs`` anchor/other with label 1); L2-normalised here.
        alpha: exponent (default 2, as in the paper).
    """
    a, b = _unit_rows("x", x), _unit_rows("y", y)
    if a.shape != b.shape:
        raise MetricsError(f"x and y must have the same shape, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise MetricsError("alignment needs at least one pair")
    d = np.sqrt(np.maximum(np.einsum("ij,ij->i", a - b, a - b), 0.0))
    return float(np.mean(d**alpha))


def uniformity(
    x,
    t: float = 2,
    sample_pairs: int | None = None,
    rng: np.random.Generator | int | None = None,
) -> float:
    """ℓ_uniform = log mean_{i<j} exp(-t ‖x̂_i - x̂_j‖²) (Wang & Isola 2020), lower is better.

    Exact by default: all n(n-1)/2 pairs, in row blocks of the Gram matrix (≈8 MiB each, so
    memory stays O(n); 17k items = 1.4e8 pairs take about a second).  For very large ``n`` pass
    ``sample_pairs`` to average over that many pairs drawn uniformly (with replacement) from the
    distinct pairs with ``rng`` (a Generator or an int seed; required then).

    Args:
        x: ``float[n, D]``, L2-normalised here (zero rows raise).
        t: temperature (default 2, as in the paper).
    """
    e = _unit_rows("x", x)
    n = len(e)
    if n < 2:
        raise MetricsError(f"uniformity needs at least 2 vectors, got {n}")
    if sample_pairs is not None:
        m = _check_k(sample_pairs, "sample_pairs")
        if rng is None:
            raise MetricsError("uniformity(sample_pairs=...) needs rng (a numpy Generator or int seed)")
        g = np.random.default_rng(rng)
        i = g.integers(0, n, m)
        j = g.integers(0, n - 1, m)
        j = j + (j >= i)  # uniform over the other n-1 rows: (i, j) is a uniform distinct pair
        sq = np.maximum(2.0 - 2.0 * np.einsum("ij,ij->i", e[i], e[j]), 0.0)
        return float(np.log(np.mean(np.exp(-t * sq))))
    # exp(-t‖x̂-ŷ‖²) = exp(-2t) · exp(2t x̂·ŷ) for unit vectors: one scale and one exp per pair.
    c = 2.0 * float(t)
    step = max(1, _GRAM_CHUNK_ELEMS // n)
    total = 0.0
    starts = range(0, n, step)
    for a in tqdm(starts, desc="uniformity", unit="block", disable=len(starts) < 64, leave=False):
        b = min(a + step, n)
        g = e[a:b] @ e[a:].T  # rows a..b against columns a..n: the upper triangle only
        np.multiply(g, c, out=g)
        np.exp(g, out=g)
        # The leading [b-a, b-a] block is symmetric: its pairs j > i sum to (sum - trace) / 2.
        diag = g[:, : b - a]
        total += float(g[:, b - a :].sum()) + (float(diag.sum()) - float(np.trace(diag))) / 2.0
    return float(-c + np.log(total / (n * (n - 1) / 2.0)))
