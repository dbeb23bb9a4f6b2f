"""The paper's claims in its own words (quote, where, the arms compared, the direction per domain), the
extra questions this project asks beside them, the equivalence margins of claim 7, and the columns of
the claims table.

Arms are ``(text, variant)``: ``("without", "base")`` is the paper's L_base (Baseline), the model
every t-test of its Table 2 compares with. Domains are :func:`kgcl_lib.report.domain_of`'s
``"movie"`` / ``"book"``; any other dataset (synthetic data) takes the claim's ``direction``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..constants import BASELINE, KS

#: Bottom-p % activity buckets judged for claim 5 (the paper's Figure 1 uses 1 %, Figure 5 1..100 %).
COLD_PERCENTILES = (5, 10, 20)
#: The paper's proposed model (text, variant): "+CL title+genre with semantic text".
PROPOSED = ("with", "cl_title_genre")
CL_VARIANTS = ("cl_genre", "cl_title_genre")
NOT_TESTABLE = "not testable here"
#: Verdict of a row with one seed: the numbers are shown, nothing is judged.
ONE_SEED = "1 seed: descriptive only"
#: Verdict of a claim about semantic text when the "text" is the verbalised title + genres.
SUBSTITUTE = "text is the metadata substitute"
#: Every Recall/NDCG cut-off of Table 3 ("for all K"): claim 3 tests each one the store has.
RANKING_METRICS = tuple(f"{kind}@{k}" for kind in ("recall", "ndcg") for k in KS)


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, or one extra question (``paper_claim=False``).

    Attributes:
        id: short id (``"1"`` … ``"12"``; extra questions ``"1x"``, ``"2x"``, ``"4x"``).
        quote: the paper's words (or, for an extra question, what is asked and why).
        where: section / table / figure.
        kind: ``"contrast"`` (per-seed paired differences, mean over ``contrasts``), ``"highest"``
            (every contrast must hold: the weakest is tested), ``"cold"`` (claim 5), ``"gamma"``
            (claim 6), ``"gamma_contrast"`` (claim 11: contrast averaged over γ per seed) or
            ``"equivalence"`` (claim 7, TOST).
        manifest: which stored grid the rows come from (``grid``, ``gamma``, ``llm``).
        arms: in words, which models are compared (shown in docs/claims.md).
        contrasts: ``((treat_text, treat_variant), (base_text, base_variant))`` pairs.
        metrics: result-store metric columns (claim 3: every one of :data:`RANKING_METRICS` stored).
        direction: +1 if the claim says the metric goes up, −1 if down.
        by_domain: ``{(domain, metric): direction or None}`` where the paper states a different
            direction for a domain (``None``: the paper makes no claim there: no row).
        domains: the domains the paper states the claim for (``None``: every domain).
        paper_table: ``"auto"`` (Table 2/3/4 by metric), ``"table5"``, or ``None`` (figure only).
        about_text: the claim is about *semantic* text: not testable when the text is the
            metadata substitute (title + genres, the information the CL pairs already carry).
        paper_claim: ``False`` for this project's extra questions (not claims of the paper).
    """

    id: str
    quote: str
    where: str
    kind: str
    manifest: str
    arms: str
    contrasts: tuple = ()
    metrics: tuple = ()
    direction: int = 1
    by_domain: dict = field(default_factory=dict)
    domains: tuple | None = None
    paper_table: str | None = "auto"
    about_text: bool = False
    paper_claim: bool = True

    def direction_for(self, domain: str, metric: str) -> int | None:
        """The claimed direction on ``domain`` (``None``: no claim there)."""
        if self.domains is not None and domain in ("movie", "book") and domain not in self.domains:
            return None
        return self.by_domain.get((domain, metric), self.direction)


_TEXTS = ("without", "with")
_NO_TEXT_BASE = BASELINE  # ("without", "base"): the paper's L_base (Baseline)
_CL_OVER_BASE_WITHIN = tuple(((t, v), (t, "base")) for t in _TEXTS for v in CL_VARIANTS)
_TG_OVER_G = tuple(((t, "cl_title_genre"), (t, "cl_genre")) for t in _TEXTS)
_OTHER_MODELS = tuple((t, v) for t in _TEXTS for v in ("base", *CL_VARIANTS) if (t, v) != PROPOSED)

CLAIMS: tuple[Claim, ...] = (
    Claim("1", "\"the models that employed our content-based contrastive loss function and semantic text information "
          "exhibited superior performance overall\" (Table 2: ** on AUC and F1 on movies, on AUC on books; on books "
          "F1 no model differs, p ≥ 0.58, so no F1 claim there)", "§4.3, Table 2", "contrast", "grid",
          "+CL genre and +CL title+genre with text (mean) vs L_base without text",
          tuple(((("with", v)), _NO_TEXT_BASE) for v in CL_VARIANTS), ("test_auc", "test_f1"), 1,
          by_domain={("book", "test_f1"): None}, about_text=True),
    Claim("1x", "Extra question, not a claim of the paper — text alone: L_base with text vs L_base without "
          "(Table 2 shows text alone changing nothing on movies: AUC 0.9763 vs 0.9761, p = 0.73)", "Table 2",
          "contrast", "grid", "L_base with text vs L_base without text", ((("with", "base"), _NO_TEXT_BASE),),
          ("test_auc", "test_f1"), 1, about_text=True, paper_claim=False),
    Claim("2", "CL without text beats L_base (Table 2's t-tests against L_base: ** / * on movies for both CL "
          "models on AUC and F1; on books p = 0.14–0.79, no claim)", "§4.3, Table 2", "contrast", "grid",
          "+CL genre and +CL title+genre without text (mean) vs L_base without text",
          tuple(((("without", v)), _NO_TEXT_BASE) for v in CL_VARIANTS), ("test_auc", "test_f1"), 1,
          domains=("movie",)),
    Claim("2x", "Extra question, not a claim of the paper — CL within each text arm: +CL vs L_base of the same "
          "arm (on books the paper's Table 2 has CL at or below L_base with text)", "Table 2", "contrast", "grid",
          "each +CL model vs L_base of the same text arm (mean of 4)", _CL_OVER_BASE_WITHIN, ("test_auc", "test_f1"),
          1, paper_claim=False),
    Claim("3", "\"our proposed model performs better than the baseline for all K in the top-K recommendation "
          "evaluation\"", "§4.3, Table 3", "contrast", "grid", "+CL title+genre with text vs L_base without text",
          ((PROPOSED, _NO_TEXT_BASE),), RANKING_METRICS, 1, about_text=True),
    Claim("4", "\"It leads to more accurate, relevant, and diverse user recommendations\" (Table 4: the proposed "
          "model above L_base on inter- and intra-list diversity in both domains)", "Abstract, Table 4", "contrast",
          "grid", "+CL title+genre with text vs L_base without text", ((PROPOSED, _NO_TEXT_BASE),),
          ("inter@20", "intra@20"), 1, about_text=True),
    Claim("4x", "Extra question, not a claim of the paper — CL within each text arm raises diversity (directions "
          "from Table 4: on books CL lowers intra-list diversity in both arms)", "Table 4", "contrast", "grid",
          "each +CL model vs L_base of the same text arm (mean of 4)", _CL_OVER_BASE_WITHIN, ("inter@20", "intra@20"),
          1, by_domain={("book", "intra@20"): -1}, paper_claim=False),
    Claim("5", "\"our best model in both domains shows a lesser drop in NDCG@100 for test users with few "
          "user-content interactions compared to the baseline\"", "§1, §4.3, Figures 1 and 5", "cold", "grid",
          "per-user NDCG@100 gain of +CL title+genre with text over L_base without text: bottom p % vs all users, "
          "and its slope on the activity percentile", ((PROPOSED, _NO_TEXT_BASE),), ("ndcg@100",), 1,
          paper_table=None, about_text=True),
    Claim("6", "\"as the value of gamma decreases, the alignment value also tends to decrease\" (movies; \"this "
          "tendency is less prominent in the book domain\"); \"Our best model, trained with loss functions L_base "
          "and CL with a γ value of 0.8\"", "§4.3, Figure 6", "gamma", "gamma",
          "+CL title+genre over the γ sweep (mean of the text arms per seed)", (), ("ndcg@20", "alignment"), 1,
          paper_table=None),
    Claim("7", "\"the model trained using LLaMA-generated text delivers comparable performance with that of the "
          "model utilizing human-generated text ... with regard to diversity and ranking performance\" "
          "(equivalence within the margins of EQUIVALENCE_MARGINS)", "§4.4, Table 5", "equivalence", "llm",
          "+CL title+genre with LLM text vs with human text", ((("llm", "cl_title_genre"), PROPOSED),),
          ("recall@20", "ndcg@20", "inter@20", "intra@20"), 0, paper_table="table5", about_text=True),
    Claim("8", "\"Our proposed model, trained using CL genre+title, achieved the highest performance in "
          "Inter-list diversity\"", "§4.3, Table 4", "highest", "grid",
          "+CL title+genre with text vs each of the other five models (the weakest contrast is tested)",
          tuple((PROPOSED, other) for other in _OTHER_MODELS), ("inter@20",), 1, about_text=True),
    Claim("9", "\"we conclude that using CL genre+title scored lower diversity performance compared to CL genre\" "
          "(intra-list; Table 4 has the opposite sign with text on books)", "§4.3, Table 4", "contrast", "grid",
          "+CL genre vs +CL title+genre, mean over both text arms",
          tuple(((t, "cl_genre"), (t, "cl_title_genre")) for t in _TEXTS), ("intra@20",), 1),
    Claim("10", "\"item-based contrastive learning enhances the quality of entity embeddings, as indicated by "
          "metrics such as uniformity and alignment\" (lower is better)", "Abstract, §4.3", "contrast", "grid",
          "each +CL model vs L_base of the same text arm (mean of 4)", _CL_OVER_BASE_WITHIN,
          ("alignment", "uniformity"), -1, paper_table=None),
    Claim("11", "\"In the movie domain, we observed that the utilization of semantic text mostly produces better "
          "uniformity in models, regardless of the value of γ\"", "§4.3, Figure 6", "gamma_contrast", "gamma",
          "+CL title+genre with text vs without, uniformity averaged over the γ sweep per seed",
          ((("with", "cl_title_genre"), ("without", "cl_title_genre")),), ("uniformity",), -1, domains=("movie",),
          paper_table=None, about_text=True),
    Claim("12", "\"In the context of CTR or ranking-based performance, we found that in most cases, the use of both "
          "genre and title resulted in superior performance\" (\"in most cases\": the mean over both text arms)",
          "§4.3, Tables 2–3", "contrast", "grid", "+CL title+genre vs +CL genre, mean over both text arms",
          _TG_OVER_G, ("test_auc", "test_f1", "recall@20", "ndcg@20"), 1),
)

#: Claim 7's equivalence margins, fixed before any run of this project was looked at: half of the
#: human-text model's gain over L_base in the paper's own Table 5, per domain and metric
#: (``0.5 × (human − L_base)``). Reason: "comparable" should mean the LLM text keeps at least
#: half of what human text buys over the baseline, on the paper's scale; the paper's own LLM −
#: human differences (Table 5) all lie inside these margins. Other domains (synthetic data) use
#: the movie margins. tests/unit/claims/test_claims.py recomputes them from the transcribed Table 5.
EQUIVALENCE_MARGINS = {
    "movie": {"recall@20": 0.00845, "ndcg@20": 0.0093, "inter@20": 0.0376, "intra@20": 0.1102},
    "book": {"recall@20": 0.00575, "ndcg@20": 0.0065, "inter@20": 0.03535, "intra@20": 0.0057},
}

#: Claim 6: the γ the paper names as best, and the change it states for alignment (γ ↓ ⇒ ℓ_align ↓).
GAMMA_BEST = 0.8
#: Paper-table metric name of each result-store column.
PAPER_METRIC = {"test_auc": "auc", "test_f1": "f1"}

CLAIMS_COLUMNS = ["claim", "paper_claim", "dataset", "metric", "where", "statement", "arms", "ours", "baseline",
                  "diff", "ci_low", "ci_high", "p", "p_holm", "level", "n_seeds", "n_users", "paper_diff",
                  "direction", "margin", "verdict", "mde", "test", "note"]
