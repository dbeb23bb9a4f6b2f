"""The documentation agrees with the files: notebook names and counts, the notebook map, links.

Checked files: README.md, docs/*.md, notebooks/README.md, figures/README.md, the notebooks' own
Markdown cells, and CHANGELOG.md for links only (its entries are history). Each check is a function returning a list of problems,
so the tests can also feed it a broken text and see it complain.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest

from tests.helpers import REPO

NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
DOCS = sorted({REPO / "README.md", REPO / "notebooks" / "README.md", REPO / "figures" / "README.md",
               *(REPO / "docs").glob("*.md")})

#: ``NN_name`` where NN is two digits: how the docs refer to a notebook (with or without .ipynb).
NOTEBOOK_REF = re.compile(r"(?<![\w/.-])(\d\d_[a-z][a-z0-9_]*)")
#: "11 notebooks", "all eleven notebooks" -- a stated count.
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen".split())}
COUNT = re.compile(r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+notebooks\b", re.IGNORECASE)
#: "`01_data` … `10_table5_llm`": a span that claims to cover the whole collection.
SPAN = re.compile(r"`?(\d\d_[a-z][a-z0-9_]*)`?\s*(?:…|\.\.\.)\s*`?(\d\d_[a-z][a-z0-9_]*)`?")
#: "notebooks 02–11": a range of notebook numbers.
RANGE = re.compile(r"\bnotebooks?\s+(\d\d)\s*[–-]\s*(\d\d)\b")
#: Markdown links ``[text](target)``; images too.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def notebook_name_problems(text: str, where: str, names: list[str]) -> list[str]:
    """Every ``NN_name`` in ``text`` is a notebook; every ``A … B`` span runs first to last."""
    out = [f"{where}: '{ref}' is not a notebook (notebooks/: {', '.join(names)})"
           for ref in NOTEBOOK_REF.findall(text) if ref not in names]
    for low, high in RANGE.findall(text):
        if not 1 <= int(low) < int(high) <= len(names):
            out.append(f"{where}: notebooks {low}–{high} is not a range of the {len(names)} notebooks")
    for first, last in SPAN.findall(text):
        if (first, last) != (names[0], names[-1]):
            out.append(f"{where}: '{first} … {last}' does not span the collection ({names[0]} … {names[-1]})")
    return out


def count_problems(text: str, where: str, n: int) -> list[str]:
    """Every "N notebooks" in ``text`` says ``n``."""
    out = []
    for word in COUNT.findall(text):
        value = int(word) if word.isdigit() else NUMBER_WORDS[word.lower()]
        if value != n:
            out.append(f"{where}: says '{word} notebooks', notebooks/ has {n}")
    return out


def _table_rows(text: str) -> list[list[list[str]]]:
    """Markdown tables of ``text``: each a list of data rows, each a list of stripped cells."""
    tables, rows, in_table = [], [], False
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(set(c) <= set("-: ") for c in cells):
                in_table = True
            elif in_table:
                rows.append(cells)
        elif in_table:
            tables.append(rows)
            rows, in_table = [], False
    return tables


def map_problems(text: str, where: str, names: list[str]) -> list[str]:
    """A table whose first column names notebooks lists every notebook exactly once."""
    out = []
    for rows in _table_rows(text):
        firsts = [NOTEBOOK_REF.findall(r[0]) for r in rows]
        if not any(firsts):
            continue
        listed = [refs[0] for refs in firsts if refs]
        missing = [n for n in names if n not in listed]
        twice = sorted({n for n in listed if listed.count(n) > 1})
        if missing or twice:
            out.append(f"{where}: notebook table starting '{rows[0][0]}' misses {missing} and repeats {twice}")
    return out


def github_anchor(heading: str) -> str:
    """GitHub's id for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The heading anchors of a Markdown file (fenced code skipped; repeats get -1, -2, ...)."""
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            base = github_anchor(line.lstrip("#"))
            seen[base if base not in seen else f"{base}-{seen[base]}"] = 0
            seen[base] = seen.get(base, 0) + 1
    return set(seen)


def link_problems(text: str, path: Path) -> list[str]:
    """Relative links in ``text`` (the content of ``path``) name existing files and headings."""
    out = []
    for target in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: link '{target}'"
        if not dest.exists():
            out.append(f"{where}: no file {file_part}")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            out.append(f"{where}: {dest.name} has no heading with anchor #{anchor}")
    return out


def _prose(path: Path) -> str:
    """The file's text without fenced code blocks (commands are not claims about notebooks)."""
    return re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)


def test_the_collection_is_what_the_checks_assume():
    assert NOTEBOOKS, "notebooks/ has no .ipynb files"
    assert [n[:2] for n in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_only_existing_notebooks(doc):
    text = _prose(doc)
    rel = str(doc.relative_to(REPO))
    problems = (notebook_name_problems(text, rel, NOTEBOOKS) + count_problems(text, rel, len(NOTEBOOKS))
                + map_problems(text, rel, NOTEBOOKS))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("doc", [*DOCS, REPO / "CHANGELOG.md"], ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(doc):
    problems = link_problems(_prose(doc), doc)
    assert not problems, "\n".join(problems)


def test_notebooks_markdown_names_only_existing_notebooks():
    problems = []
    for name in NOTEBOOKS:
        nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
        text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        problems += notebook_name_problems(text, f"notebooks/{name}.ipynb", NOTEBOOKS)
        problems += count_problems(text, f"notebooks/{name}.ipynb", len(NOTEBOOKS))
        problems += link_problems(text, REPO / "notebooks" / f"{name}.ipynb")
    assert not problems, "\n".join(problems)


def test_readme_maps_every_notebook():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    tables = [rows for rows in _table_rows(readme) if any(NOTEBOOK_REF.findall(r[0]) for r in rows)]
    assert len(tables) == 1, "README.md should have one notebook map"
    assert [NOTEBOOK_REF.findall(r[0])[0] for r in tables[0]] == NOTEBOOKS
    for row in tables[0]:
        name = NOTEBOOK_REF.findall(row[0])[0]
        assert f"(notebooks/{name}.ipynb)" in row[0], f"README map row {name} does not link its notebook"


# --- the checks themselves catch the drift they exist for ------------------------------------

NAMES = ["01_data", "02_text", "08_cold_start", "11_claims"]


def test_a_renamed_notebook_is_reported():
    text = "Figures 1 and 5 come from `08_figures1_5`; then 11_claims.ipynb."
    assert notebook_name_problems(text, "X.md", NAMES) == [
        "X.md: '08_figures1_5' is not a notebook (notebooks/: 01_data, 02_text, 08_cold_start, 11_claims)"]
    assert notebook_name_problems("`01_data` … `08_cold_start`", "X.md", NAMES) == [
        "X.md: '01_data … 08_cold_start' does not span the collection (01_data … 11_claims)"]
    assert notebook_name_problems("`01_data` … `11_claims`, see runs/x/02_text.json", "X.md", NAMES) == []
    assert notebook_name_problems("notebooks 02–05 read it; notebook 02-04", "X.md", NAMES) == [
        "X.md: notebooks 02–05 is not a range of the 4 notebooks"]


def test_a_wrong_count_is_reported():
    assert count_problems("runs all ten notebooks; 4 notebooks", "X.md", 4) == [
        "X.md: says 'ten notebooks', notebooks/ has 4"]
    assert count_problems("All Four notebooks", "X.md", 4) == []


def test_a_map_missing_or_repeating_a_notebook_is_reported():
    table = "| notebook | what |\n|---|---|\n| `01_data` | a |\n| `02_text` | b |\n| `02_text` | c |\n| `11_claims` | d |\n"
    assert map_problems(table, "X.md", NAMES) == [
        "X.md: notebook table starting '`01_data`' misses ['08_cold_start'] and repeats ['02_text']"]
    assert map_problems(table.replace("| `02_text` | c |", "| `08_cold_start` | c |"), "X.md", NAMES) == []


def test_broken_links_are_reported(tmp_path):
    (tmp_path / "a.md").write_text("# Time per notebook\n\n## Où — `x.sh`\n", encoding="utf-8")
    doc = tmp_path / "b.md"
    text = ("[ok](a.md) [ok](a.md#time-per-notebook) [ok](a.md#où--xsh) [web](https://x.org/y) "
            "[gone](missing.md) [bad anchor](a.md#times)")
    assert link_problems(text, doc) == [f"{doc}: link 'missing.md': no file missing.md",
                                        f"{doc}: link 'a.md#times': a.md has no heading with anchor #times"]
