"""Write a profile's generated results into docs/results.md (full) and README.md (compact).

    python scripts/readme_results.py [--profile default] [--runs-dir runs] [--figures-dir figures/<profile>]

The results sections must show what the code produced, not hand-copied numbers: this script reads
``figures/<profile>/claims.md`` (notebook 11) and the results store ``runs/<profile>/`` (notebook
04's manifest) and replaces the text between ``<!-- results:<profile>:begin -->`` and
``<!-- results:<profile>:end -->`` in two files:

* ``docs/results.md`` -- the whole claims table (one row per claim x dataset x metric, the claims
  quoted) and a per-dataset summary (mean ± sd over seeds; "n/a (reason)" where a dataset lacks
  what a configuration needs);
* ``README.md`` -- one row per claim with each dataset's verdicts, and the same per-dataset summary.

Nothing is written when an input is missing; a file without the markers is an error (exit 2) and
neither file is changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgcl_lib import claims as claims_lib  # noqa: E402
from kgcl_lib import experiments, report  # noqa: E402
from kgcl_lib.findings import as_markdown  # noqa: E402
from kgcl_lib.constants import TEXT_ARM_LABELS, VARIANT_LABELS, VARIANT_ORDER  # noqa: E402
from kgcl_lib.storage import atomic_path  # noqa: E402

METRICS = (("test_auc", "AUC"), ("test_f1", "F1"), ("recall@20", "R@20"), ("ndcg@20", "N@20"),
           ("inter@20", "Inter@20"), ("intra@20", "Intra@20"))


BACKBONE_NAMES = {"kgcn": "KGCN", "ripplenet": "RippleNet"}


def _manifest_or_none(results_dir: Path, name: str):
    """Notebook 04's manifest ``name`` as a frame, or ``None`` when that manifest was not written."""
    try:
        return experiments.load_manifest(results_dir, name)[0]
    except FileNotFoundError:
        return None


def _cell_values(cell) -> list[str]:
    """Mean ± sd over seeds of :data:`METRICS` for the runs of one table cell ("n/a (reason)" when none ran)."""
    na = cell["na_reason"].dropna() if "na_reason" in cell else []
    if len(na) == len(cell):
        return [f"n/a ({na.iloc[0]})"] * len(METRICS)
    live = experiments.trained(cell)
    return [f"{live[m].mean():.4f} ± {live[m].std(ddof=1):.4f}" if m in live and live[m].notna().sum() > 1
            else f"{live[m].mean():.4f}" if m in live and live[m].notna().any() else "–" for m, _ in METRICS]


def summary_table(results_dir: Path, compact: bool = False) -> str:
    """Mean ± sd over seeds of the headline metrics, one block per dataset: every backbone of
    notebook 04's ``grid`` manifest (KGCN first), then the tuned simple baselines (manifest
    ``baselines``).  ``compact``: KGCN's rows, and for any other backbone only its L_base without
    text and its proposed model (text + CL title+genre) -- the README's table."""
    frame = _manifest_or_none(results_dir, "grid")
    if frame is None:
        raise FileNotFoundError(f"{results_dir}/manifests/grid.json is missing: run notebook 04 first")
    baselines = _manifest_or_none(results_dir, "baselines")
    out = []
    order = {v: i for i, v in enumerate(VARIANT_ORDER)}
    backbones = sorted(frame["backbone"].unique(), key=lambda b: (b != "kgcn", b))
    for ds, d in frame.groupby("dataset", sort=True):
        seeds = sorted(int(s) for s in d["seed"].unique())
        out.append(f"**{ds}** ({len(seeds)} seeds)\n")
        out.append("| backbone | model | text | " + " | ".join(lbl for _, lbl in METRICS) + " |")
        out.append("|---|---|---|" + "---:|" * len(METRICS))
        for backbone in backbones:
            b = d[d["backbone"] == backbone]
            keys = sorted({(t, v) for t, v in zip(b["text"], b["variant"])},
                          key=lambda k: (k[0] != "without", order.get(k[1], 99)))
            if compact and backbone != "kgcn":
                keys = [k for k in keys if k in (("without", "base"), ("with", "cl_title_genre"))]
            for text, variant in keys:
                cell = b[(b["text"] == text) & (b["variant"] == variant)]
                src = cell["text_source"].dropna().iloc[0] if "text_source" in cell and cell["text_source"].notna().any() else None
                label = TEXT_ARM_LABELS.get(text, text) + (f" ({report.TEXT_SOURCES.get(src, src)})" if text != "without" and src else "")
                out.append(f"| {BACKBONE_NAMES.get(backbone, backbone)} | {VARIANT_LABELS.get(variant, variant)} | {label} | "
                           + " | ".join(_cell_values(cell)) + " |")
        if baselines is not None:
            for name, cell in baselines[baselines["dataset"] == ds].groupby("backbone", sort=False):
                kind = "simple baseline, counts only" if name == "pop" else "simple baseline, tuned"
                out.append(f"| {report.BASELINE_LABELS.get(name, name)} | {kind} | "
                           f"{TEXT_ARM_LABELS['without']} | " + " | ".join(_cell_values(cell)) + " |")
        out.append("")
    return "\n".join(out)


VERDICTS = ("supported", "contradicted", "inconclusive", "not testable")


def _table_rows(markdown: str) -> list[list[str]]:
    """Cells of the data rows of the first Markdown table in ``markdown`` (header and rule skipped)."""
    rows, seen_rule = [], False
    for line in markdown.splitlines():
        if not line.startswith("|"):
            if seen_rule:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(set(c) <= set("-: ") for c in cells):
            seen_rule = True
        elif seen_rule:
            rows.append(cells)
    return rows


EXTRA_PREFIX = "Extra question, not a claim of the paper — "


def _short_statement(statement: str) -> str:
    """A claim's statement for the compact table: the paper's quotation (or our wording) without the
    arms and the supporting parenthesis that follow it in ``claims.md``."""
    statement = statement.split(" — *arms:*", 1)[0].strip().removeprefix(EXTRA_PREFIX)
    if statement.startswith('"'):
        return statement[: statement.index('"', 1) + 1]
    return statement.split(" (", 1)[0].strip()


def compact_claims(claims_md: str) -> str:
    """One row per claim: where the paper makes it, and each dataset's verdicts by metric.

    ``claims_md`` is notebook 11's ``claims.md``: a table whose columns start ``Claim | Dataset |
    Metric`` and whose ``Verdict`` column starts with one of :data:`VERDICTS` (a blank ``Claim``
    cell continues the claim above), followed by ``- **Claim N** (where): statement`` (or ``- **Extra
    question N**``) lines; a backbone's row ``N [backbone]`` is stated as claim ``N``.  A dataset whose metrics share a verdict gets that word; otherwise ``verdict: metrics`` groups.
    """
    header = next(line for line in claims_md.splitlines() if line.startswith("| Claim"))
    names = [c.strip() for c in header.strip().strip("|").split("|")]
    col = {n: i for i, n in enumerate(names)}
    verdicts: dict[str, dict[str, dict[str, list[str]]]] = {}
    datasets: list[str] = []
    claim = ""
    for cells in _table_rows(claims_md[claims_md.index(header):]):
        claim = cells[col["Claim"]] or claim
        ds, metric, verdict = cells[col["Dataset"]], cells[col["Metric"]], cells[col["Verdict"]]
        word = next((v for v in VERDICTS if verdict.startswith(v)), verdict)
        if ds not in datasets:
            datasets.append(ds)
        verdicts.setdefault(claim, {}).setdefault(ds, {}).setdefault(word, []).append(metric)
    stated = {}
    for line in claims_md.splitlines():
        for lead in ("- **Claim ", "- **Extra question "):
            if line.startswith(lead):
                number = line[len(lead):].split("**", 1)[0]
                where, statement = line.split("**", 2)[2].split(":", 1)
                stated[number] = f"{_short_statement(statement)} ({where.strip(' ()')})"
    out = ["| Claim | The paper claims (where) | " + " | ".join(datasets) + " |",
           "|---|---|" + "---|" * len(datasets)]
    for claim, by_ds in verdicts.items():
        cells = []
        for ds in datasets:
            groups = by_ds.get(ds, {})
            cells.append(next(iter(groups)) if len(groups) == 1 else
                         "; ".join(f"{w}: {', '.join(m)}" for w, m in groups.items()) or "–")
        number = claim.split(" (", 1)[0]  # "1x (extra)" -> "1x"; a backbone's row "3 [ripplenet]" states claim 3
        out.append(f"| {claim} | {stated.get(number, stated.get(number.split(' [', 1)[0], ''))} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def render_blocks(profile: str, claims_md: str, summary: str, prose: str, compact_summary: str | None = None) -> tuple[str, str]:
    """The (docs/results.md, README.md) blocks, markers included, for ``profile``.

    ``prose`` is the claims summary (sentences written from ``claims.csv`` by
    :func:`kgcl_lib.claims.summary_sentences`), placed first in both blocks; ``summary`` the
    headline metrics of docs/results.md, ``compact_summary`` those of README.md (default: the same).
    """
    begin = f"<!-- results:{profile}:begin (generated by scripts/readme_results.py; do not edit) -->\n\n"
    end = f"<!-- results:{profile}:end -->"
    def lead(link: str) -> str:  # the link is relative to the file the block goes in
        return (f"**Claims summary** (generated from `figures/{profile}/claims.csv`; what each row tests: "
                f"[docs/claims.md]({link})):\n\n{prose}\n\n")
    def metrics(table: str) -> str:
        return f"**Headline metrics** (mean ± sd over seeds; notebook 04's manifests):\n\n{table}\n"
    full = (f"{begin}{lead('claims.md')}**Claims** (`figures/{profile}/claims.md`, notebook 11):\n\n{claims_md}\n\n"
            f"{metrics(summary)}{end}")
    compact = (f"{begin}{lead('docs/claims.md')}**Claims** (verdicts at Holm-corrected α = 0.05; every row with its numbers: "
               f"[docs/results.md](docs/results.md)):\n\n{compact_claims(claims_md)}\n\n"
               f"{metrics(summary if compact_summary is None else compact_summary)}{end}")
    return full, compact


def replace_block(text: str, profile: str, block: str, name: str) -> str:
    """``text`` with its ``profile`` markers' content replaced by ``block`` (``name`` for errors)."""
    begin, end = f"<!-- results:{profile}:begin", f"<!-- results:{profile}:end -->"
    if begin not in text or end not in text:
        raise ValueError(f"{name} has no {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    return head + block + rest.split(end, 1)[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="default", help="profile whose results to write (default: default)")
    ap.add_argument("--runs-dir", default=str(REPO / "runs"), help="base folder of the results stores (default: runs/)")
    ap.add_argument("--figures-dir", default=None, help="tables folder (default: figures/<profile>/)")
    ap.add_argument("--readme", default=str(REPO / "README.md"), help="compact block goes here (default: README.md)")
    ap.add_argument("--results-doc", default=str(REPO / "docs" / "results.md"),
                    help="full block goes here (default: docs/results.md)")
    args = ap.parse_args(argv)
    results = Path(args.runs_dir) / args.profile
    figures = Path(args.figures_dir or REPO / "figures" / args.profile)
    missing = [p for p in (figures / "claims.md", figures / "claims.csv") if not p.exists()]
    if missing:
        print(f"error: {', '.join(map(str, missing))} missing: run notebook 11 of the {args.profile} profile first "
              f"(python -m kgcl_lib.runner --profile {args.profile} --only 11)", file=sys.stderr)
        return 2
    claims = (figures / "claims.md").read_text(encoding="utf-8").strip()
    prose = as_markdown(claims_lib.summary_sentences(claims_lib.load_csv(figures / "claims.csv")))
    full, compact = render_blocks(args.profile, claims, summary_table(results), prose, summary_table(results, compact=True))
    targets = [(Path(args.results_doc), full), (Path(args.readme), compact)]
    try:
        updated = [(path, replace_block(path.read_text(encoding="utf-8"), args.profile, block, str(path)))
                   for path, block in targets]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path, text in updated:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        print(f"updated {path} from {results} and {figures / 'claims.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
