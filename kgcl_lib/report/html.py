"""``figures/<profile>/index.html``: the one page of a profile's results (written by the runner).

Order: the claims table first, then Tables 1–5, then the figures with their captions, then links
to the executed notebooks rendered as HTML (nbconvert, into ``figures/<profile>/notebooks/``).
Everything is read from files the notebooks wrote (``<name>.md`` tables, ``<name>.png`` figures,
``<name>.caption.txt``); what is missing is listed as such, never left out silently.  The page
links files by relative path, so the folder can be moved or served as it is.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..storage import atomic_path

#: (file stem, heading) in page order; the claims come first.
TABLES = (
    ("claims", "Claims: which of the paper's claims hold here"),
    ("table1", "Table 1: datasets"),
    ("table2", "Table 2: AUC and F1"),
    ("table3", "Table 3: Recall@K and NDCG@K"),
    ("table4", "Table 4: diversity"),
    ("table5", "Table 5: human vs LLM synopses"),
)
FIGURES = (
    ("figure1", "Figure 1: cold-start users"),
    ("figure5", "Figure 5: NDCG@100 by user activity"),
    ("figure6", "Figure 6: alignment and uniformity"),
)
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: min(100%, 800px); border: 1px solid #ddd; }
.missing { color: #a00; }
.caption { color: #555; font-size: 0.9em; }
nav a { margin-right: 1em; }
"""


def markdown_to_html(text: str) -> str:
    """Markdown (GitHub tables, bold, underline tags) -> HTML, with mistune (a dependency of nbconvert)."""
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table"])(text)


def render_notebooks(executed_dir: Path, out_dir: Path) -> dict[str, Path]:
    """``{stem: html path}``: each executed ``*.ipynb`` of ``executed_dir`` rendered by nbconvert."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter()
    done = {}
    for nb in sorted(Path(executed_dir).glob("*.ipynb")):
        body, _ = exporter.from_filename(str(nb))
        target = Path(out_dir) / f"{nb.stem}.html"
        with atomic_path(target) as tmp:
            tmp.write_text(body, encoding="utf-8")
        done[nb.stem] = target
    return done


def _datasets_section(results_dir: Path) -> str:
    """What each dataset is made of (datasets.json of notebook 01): KG source and text source."""
    path = results_dir / "datasets.json"
    if not path.is_file():
        return ""
    info = json.loads(path.read_text())
    rows = []
    for name in info.get("available", []):
        kg = (info.get("kg") or {}).get(name, "")
        text = (info.get("text") or {}).get(name, {}).get("text", "")
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(kg)}</td><td>{html.escape(text)}</td></tr>")
    for name, why in (info.get("skipped") or {}).items():
        rows.append(f"<tr><td>{html.escape(name)}</td><td colspan=2 class=missing>n/a (skipped: "
                    f"{html.escape(str(why)[:300])})</td></tr>")
    return ("<h2 id=datasets>Datasets</h2><table><tr><th>dataset</th><th>knowledge graph</th><th>semantic text</th>"
            "</tr>" + "".join(rows) + "</table>")


def _caption_file(figures_dir: Path, stem: str) -> Path | None:
    """``<stem>.caption.txt``, or a shared one such as ``figure1_5.caption.txt`` (Figures 1 and 5)."""
    own = figures_dir / f"{stem}.caption.txt"
    if own.is_file():
        return own
    prefix, _, number = stem.rpartition("figure")
    for cand in sorted(figures_dir.glob("figure*.caption.txt")):
        numbers = cand.name[len("figure"): -len(".caption.txt")].split("_")
        if not prefix and number and number in numbers:
            return cand
    return None


def write_report(figures_dir: str | Path, executed_dir: str | Path, profile: str, *, description: str = "",
                 timings: dict | None = None) -> Path:
    """Write ``<figures_dir>/index.html`` (and ``notebooks/*.html``); returns the page's path."""
    figures_dir, executed_dir = Path(figures_dir), Path(executed_dir)
    pages = render_notebooks(executed_dir, figures_dir / "notebooks")
    parts = [f"<h1>kgcl results: profile {html.escape(profile)}</h1>"]
    if description:
        parts.append(f"<p>{html.escape(description)}</p>")
    nav = [f"<a href='#{stem}'>{stem}</a>" for stem, _ in TABLES] + ["<a href='#figures'>figures</a>",
                                                                    "<a href='#notebooks'>notebooks</a>"]
    parts.append("<nav>" + "".join(nav) + "</nav>")
    for stem, title in TABLES:
        md = figures_dir / f"{stem}.md"
        parts.append(f"<h2 id={stem}>{html.escape(title)}</h2>")
        if md.is_file():
            parts.append(f"<div class=table id={stem}-table>{markdown_to_html(md.read_text(encoding='utf-8'))}</div>")
        else:
            parts.append(f"<p class=missing>n/a ({stem}.md was not written by this profile's notebooks)</p>")
    parts.append(_datasets_section(executed_dir.parent))
    parts.append("<h2 id=figures>Figures</h2>")
    known = {stem for stem, _ in FIGURES}
    others = [(p.stem, p.stem) for p in sorted(figures_dir.glob("*.png")) if p.stem not in known]
    for stem, title in list(FIGURES) + others:
        png, cap = figures_dir / f"{stem}.png", _caption_file(figures_dir, stem)
        parts.append(f"<h3>{html.escape(title)}</h3>")
        if png.is_file():
            parts.append(f"<img src='{stem}.png' alt='{html.escape(title)}' id={stem}>")
            if cap is not None:
                parts.append(f"<p class=caption>{html.escape(cap.read_text(encoding='utf-8').strip())}</p>")
        else:
            parts.append(f"<p class=missing>n/a ({stem}.png was not written by this profile's notebooks)</p>")
    parts.append("<h2 id=notebooks>Executed notebooks</h2><ul>")
    for stem, page in pages.items():
        took = f" ({timings[stem]:.1f} s)" if timings and stem in timings else ""
        parts.append(f"<li><a href='notebooks/{page.name}'>{html.escape(stem)}</a>{took}</li>")
    parts.append("</ul>")
    doc = ("<!doctype html><html><head><meta charset=utf-8><title>kgcl: " + html.escape(profile) + "</title><style>"
           + STYLE + "</style></head><body>" + "\n".join(parts) + "</body></html>\n")
    index = figures_dir / "index.html"
    with atomic_path(index) as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return index
