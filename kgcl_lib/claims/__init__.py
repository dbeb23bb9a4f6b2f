"""Judge every claim of the paper on this reproduction's results store (notebook 11).

Pure functions over the results store (:func:`kgcl_lib.experiments.load_manifest` frames and
the per-run arrays); nothing here trains. :func:`claims_table` returns one row per
claim × metric × dataset (columns :data:`CLAIMS_COLUMNS` + ``se, df``):

* ``claim`` / ``paper_claim`` — the claim as the paper states it (``definitions.CLAIMS``: quote,
  location, ``arms``, direction per domain), or one of this project's extra questions
  (``paper_claim = False``: "text alone", "CL within the text arm");
* ``ours`` / ``baseline`` — the means compared (blank for a slope), ``diff`` (ours − baseline, or
  the slope), a 95 % interval ``ci_low, ci_high``, a two-sided ``p`` (claim 7: the TOST p), its
  Holm correction ``p_holm`` over the table and the ``level`` the row faces in Holm's step-down;
* ``n_seeds`` (the unit of every test) and ``n_users`` (distinct test users of a per-user
  metric), ``test`` (the test's name), ``paper_diff`` (the same contrast on the paper's Tables 2–5);
* ``verdict``: ``supported`` / ``contradicted`` (Holm p < α in / against the claimed direction),
  ``inconclusive (MDE x at level a)`` — ``mde`` is the smallest effect the row's test detects
  with 80 % power at its Holm level —, or ``not testable here (<reason>)`` (one seed:
  ``1 seed: descriptive only``, numbers shown; a semantic-text claim on the metadata substitute).

Every test runs on one number per seed with S − 1 degrees of freedom (``statistics``); the
calibration simulations (``calibration``, tests/unit/claims/test_claims_simulation.py, docs/claims.md) check
family-wise error, coverage and power through the same functions.

Modules (every public name is importable from ``kgcl_lib.claims``): ``definitions`` (the claims,
margins, :data:`CLAIMS_COLUMNS`), ``statistics`` (t / Welch / TOST, per-seed statistics, Holm,
verdicts, exact MDE), ``rows`` (one claim on one dataset -> rows), ``table`` (:func:`claims_table`,
:func:`judge`, :func:`load_frames`, CSV I/O), ``render`` (display frame, Markdown/LaTeX, summary
sentences, headlines), ``calibration`` (null / planted-effect simulations), ``backbones`` (claims 1–4 per backbone, issue 30),
``baselines`` (an added check, not a claim of the paper: the paper's best model against the best tuned
simple baseline, issue 29).
"""

from __future__ import annotations

from .definitions import (  # noqa: F401
    CLAIMS, CLAIMS_COLUMNS, CL_VARIANTS, COLD_PERCENTILES, Claim, EQUIVALENCE_MARGINS, GAMMA_BEST, NOT_TESTABLE,
    ONE_SEED, PAPER_METRIC, PROPOSED, RANKING_METRICS, SUBSTITUTE,
)
from .statistics import (  # noqa: F401
    ALPHA, Estimate, POWER, bucket_minus_all, holm, holm_levels, holm_matrix, mean_gain, minimum_detectable_effect,
    ols_slope, t_estimate, t_tests, tost_p, verdicts, welch_estimate,
)
from .rows import (  # noqa: F401
    UserArrays, cold_rows, contrast_rows, equivalence_rows, gamma_contrast_rows, gamma_rows, paper_effect, prepare,
    untestable,
)
from .table import claims_table, judge, load_csv, load_frames, save_csv  # noqa: F401
from .render import display_frame, headlines, render, summary_sentences  # noqa: F401
from .backbones import GAIN_ON_BACKBONE, PER_BACKBONE_CLAIMS, backbone_claims_table, split_backbones, with_backbone_rows  # noqa: F401
from .baselines import BASELINE_METRICS, BEST_BASELINE, baseline_claims, check_frames, claims_with_baselines  # noqa: F401

