"""Judge every claim of the paper on this reproduction's results store (notebook 11).

Pure functions over the results store (:func:`kgcl_lib.experiments.load_manifest` frames and
the per-run arrays); nothing here trains. :func:`claims_table` returns one row per
claim × metric × dataset with

* ``ours`` / ``baseline`` — the means compared (for cold start: the NDCG gain in the bottom
  p % of users / the gain over all users; for γ trends: the mean at the largest / smallest γ),
* ``diff`` (ours − baseline) and ``rel`` (``diff / |baseline|``), a 95 % interval
  ``ci_low, ci_high`` and a two-sided ``p`` with its Holm correction across the table,
* ``n_seeds`` / ``n_users``, the paper's effect (``paper_diff``, ``paper_rel``; same contrast
  on the paper's Tables 2–5, ``NaN`` where the paper only has a figure),
* ``verdict``: ``supported`` (Holm p < α in the claimed direction), ``contradicted`` (Holm
  p < α in the other direction), ``inconclusive`` — with ``mde``, the smallest effect the run
  would detect with 80 % power — or ``not testable here (<reason>)`` with no numbers.

Tests per kind of row:

* seed-level contrasts (Tables 2–5): the per-seed difference between two runs of the same
  seed (mean over the claim's contrasts), a paired t-test across seeds (Welch when the runs do
  not share seeds); ≥ 2 seeds needed.
* cold start (Figures 1/5): per-user NDCG@100 of the proposed model minus the baseline's, for
  the same test users of the same seed; the statistic is the mean gain in the bottom p % of
  users by training activity minus the mean gain over all users, and the slope of the per-user
  gain against the activity percentile (trend). Intervals by a two-stage bootstrap (seeds, then
  users within seeds), p from the bootstrap standard error (normal approximation).
* γ trends (Figure 6): OLS of the metric on γ with text (and seed) fixed effects; the effect is
  the fitted change from the smallest to the largest γ.
* LLM synopses (Table 5): non-inferiority — supported when the lower 95 % bound of
  ``LLM − human`` lies above −½ × the human-text gain over the baseline (the LLM text keeps at
  least half the gain), contradicted when LLM is significantly worse than that margin allows.

Modules (every public name is importable from ``kgcl_lib.claims``): ``definitions`` (the claims,
:data:`CLAIMS_COLUMNS`), ``statistics`` (t / Welch estimates, Holm, MDE, bootstrap), ``rows`` (one
claim on one dataset -> rows), ``table`` (:func:`claims_table`, :func:`judge`, :func:`load_frames`),
``render`` (display frame, Markdown/LaTeX, summary sentences, headlines), ``baselines`` (an added check, not a
claim of the paper: the paper's best model against the best tuned simple baseline, issue 29).
"""

from __future__ import annotations

from .definitions import (  # noqa: F401
    CLAIMS, CLAIMS_COLUMNS, CL_VARIANTS, COLD_PERCENTILES, Claim, GAMMA_DIRECTIONS, NOT_TESTABLE, PAPER_METRIC,
    PROPOSED,
)
from .statistics import (  # noqa: F401
    ALPHA, Estimate, POWER, bootstrap_estimate, bucket_gain_statistic, hierarchical_bootstrap, holm,
    mean_gain_statistic, minimum_detectable_effect, t_estimate, trend_statistic, welch_estimate,
)
from .rows import (  # noqa: F401
    PER_USER_METRIC, UserArrays, cold_rows, contrast_rows, gamma_rows, noninferior_rows, prepare, untestable,
)
from .table import claims_table, judge, load_frames  # noqa: F401
from .render import display_frame, headlines, render, summary_sentences  # noqa: F401
from .baselines import BASELINE_METRICS, BEST_BASELINE, baseline_claims, check_frames, claims_with_baselines  # noqa: F401

