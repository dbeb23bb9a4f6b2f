"""The paper's claims (what each states, where, which contrasts and metrics test it) and the columns of
the claims table."""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import BASELINE

#: Bottom-p % activity buckets judged for claim 5 (the paper's Figure 1 uses 1 %, Figure 5 1..100 %).
COLD_PERCENTILES = (5, 10, 20)
#: The paper's proposed model and its baseline (text, variant).
PROPOSED = ("with", "cl_title_genre")
CL_VARIANTS = ("cl_genre", "cl_title_genre")
NOT_TESTABLE = "not testable here"


# --------------------------------------------------------------------------------------------
# The claims
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One claim of the paper.

    Attributes:
        id: short id (``"1"``, ``"5"``, ``"8"`` …).
        quote: the paper's words (shortened quotes).
        where: section / table / figure.
        kind: ``"contrast"`` (per-seed paired differences), ``"cold"`` (per-user bootstrap),
            ``"gamma"`` (γ trend), ``"gamma_contrast"`` (contrast over seed×γ units of the γ
            sweep) or ``"noninferior"`` (LLM vs human text).
        manifest: which stored grid the rows come from (``grid``, ``gamma``, ``llm``).
        contrasts: ``((treat_text, treat_variant), (base_text, base_variant))`` pairs whose
            differences are averaged.
        metrics: result-store metric columns.
        direction: +1 if the claim says the metric goes up, −1 if down.
        paper_table: transcribed table the paper's effect comes from (``None``: figure only).
    """

    id: str
    quote: str
    where: str
    kind: str
    manifest: str
    contrasts: tuple = ()
    metrics: tuple = ()
    direction: int = 1
    paper_table: str | None = None


_TEXTS = ("without", "with")
_CL_OVER_BASE = tuple(((t, v), (t, "base")) for t in _TEXTS for v in CL_VARIANTS)

CLAIMS: tuple[Claim, ...] = (
    Claim("1", "semantic text raises AUC/F1 over the same model without text "
          "(\"models that employed ... semantic text information exhibited superior performance\")",
          "§4.3, Table 2", "contrast", "grid",
          tuple(((("with", v)), ("without", v)) for v in ("base", *CL_VARIANTS)), ("test_auc", "test_f1"), 1, "table2"),
    Claim("2", "CL (genre; title+genre) raises AUC/F1 over L_base, with and without text",
          "§4.3, Table 2", "contrast", "grid", _CL_OVER_BASE, ("test_auc", "test_f1"), 1, "table2"),
    Claim("3", "text + CL raises Recall@K / NDCG@K (\"performs better than the baseline for all K\")",
          "§4.3, Table 3", "contrast", "grid", ((PROPOSED, BASELINE),),
          ("recall@20", "ndcg@20", "recall@100", "ndcg@100"), 1, "table3"),
    Claim("4", "CL raises inter-list and intra-list diversity", "§4.3, Table 4", "contrast", "grid",
          _CL_OVER_BASE, ("inter@20", "intra@20"), 1, "table4"),
    Claim("5", "the gain is larger for cold-start users than overall (\"a lesser drop in NDCG@100 "
          "for test users with few user-content interactions\")", "§1, §4.3, Figures 1 and 5", "cold", "grid",
          ((PROPOSED, BASELINE),), ("ndcg@100",), 1, None),
    Claim("6", "γ trades alignment against uniformity and NDCG (\"as the value of gamma decreases, the "
          "alignment value also tends to decrease\"; best model at γ = 0.8)", "§4.3, Figure 6", "gamma", "gamma",
          (), ("alignment", "uniformity", "ndcg@20"), 1, None),
    Claim("7", "LLM-generated synopses recover the gain of human synopses (\"comparable performance\")",
          "§4.4, Table 5", "noninferior", "llm", ((("llm", "cl_title_genre"), ("with", "cl_title_genre")),),
          ("recall@20", "ndcg@20", "inter@20", "intra@20"), 1, "table5"),
    # Further claims in the paper's text.
    Claim("8", "CL title+genre gives the highest inter-list diversity (above CL genre)", "§4.3, Table 4",
          "contrast", "grid", tuple(((t, "cl_title_genre"), (t, "cl_genre")) for t in _TEXTS), ("inter@20",), 1,
          "table4"),
    Claim("9", "\"using CL genre+title scored lower [intra-list] diversity performance compared to CL genre\"",
          "§4.3, Table 4", "contrast", "grid", tuple(((t, "cl_genre"), (t, "cl_title_genre")) for t in _TEXTS),
          ("intra@20",), 1, "table4"),
    Claim("10", "item-based CL improves embedding quality (lower ℓ_align and ℓ_uniform)", "Abstract, §1, §4.3",
          "contrast", "grid", _CL_OVER_BASE, ("alignment", "uniformity"), -1, None),
    Claim("11", "semantic text produces better uniformity regardless of γ (movie domain)", "§4.3, Figure 6",
          "gamma_contrast", "gamma", ((("with", "cl_title_genre"), ("without", "cl_title_genre")),),
          ("uniformity",), -1, None),
    Claim("12", "\"the use of both genre and title resulted in superior [CTR and ranking] performance\" "
          "(CL title+genre over CL genre)", "§4.3, Tables 2–3", "contrast", "grid",
          tuple(((t, "cl_title_genre"), (t, "cl_genre")) for t in _TEXTS), ("test_auc", "ndcg@20"), 1, None),
)
#: Direction of each γ-trend metric: the change from the smallest to the largest γ the paper
#: implies (low γ: better = lower alignment, worse = higher uniformity and lower NDCG).
GAMMA_DIRECTIONS = {"alignment": 1, "uniformity": -1, "ndcg@20": 1}
#: Paper-table metric name of each result-store column.
PAPER_METRIC = {"test_auc": "auc", "test_f1": "f1"}

CLAIMS_COLUMNS = ["claim", "dataset", "metric", "where", "statement", "ours", "baseline", "diff", "rel", "ci_low",
           "ci_high", "p", "p_holm", "n_seeds", "n_users", "paper_diff", "paper_rel", "direction", "verdict",
           "mde", "method", "note"]
