"""LLM synopsis text in and out: the paper's prompt from a title and year, and the cleaning and quality
rule applied to what the model writes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

#: The paper's prompt, verbatim (note the trailing space; see :func:`synopsis_prompt`).
PAPER_PROMPT = "Briefly, a story of a {domain} named {title} released {year} is about "
#: Wording used when the release year is unknown: the ``released {year}`` clause is dropped.
PAPER_PROMPT_NO_YEAR = "Briefly, a story of a {domain} named {title} is about "

DOMAINS = ("movie", "book")

#: Titles that datasets use as placeholders for "unknown" (ml-100k item 267 is "unkonwn").
_PLACEHOLDER_TITLES = frozenset({"", "unknown", "unkonwn", "n/a", "na", "none", "null", "nan"})
#: Leading articles that MovieLens moves to the end ("Usual Suspects, The").
_ARTICLE_RE = re.compile(
    r"^(?P<body>.+?), (?P<art>The|A|An|La|Le|Les|L'|Il|Lo|Los|Las|El|Das|Die|Der|Det|Den)"
    r"(?P<rest> \(.*\))?$"
)
_WS_RE = re.compile(r"\s+")
# A sentence end: terminator, optional closing quotes/brackets, then whitespace or end of text.
_SENT_END_RE = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)")
_WORD_RE = re.compile(r"\w+", re.UNICODE)

STATUSES = ("ok", "empty", "degenerate", "no_title")


# ----------------------------------------------------------------------------------------
# Prompt wording
# ----------------------------------------------------------------------------------------
def natural_title(title: str) -> str:
    """Move a trailing article back to the front: ``"Usual Suspects, The"`` -> ``"The Usual Suspects"``.

    MovieLens stores titles library-style; an LLM recognises the natural form far better.
    A parenthesised alternative title stays at the end:
    ``"Tin Drum, The (Blechtrommel, Die)"`` -> ``"The Tin Drum (Blechtrommel, Die)"``.
    """
    m = _ARTICLE_RE.match(title.strip())
    if not m:
        return title.strip()
    art = m["art"]
    sep = "" if art.endswith("'") else " "
    return f"{art}{sep}{m['body']}{m['rest'] or ''}"


def _clean_year(year) -> int | None:
    """A positive integer year, or ``None`` for NA / non-numeric / non-positive values."""
    if year is None or year is pd.NA:
        return None
    try:
        y = float(year)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(y) or y <= 0:
        return None
    return int(y)


def _clean_title(title) -> str | None:
    if title is None or title is pd.NA or (isinstance(title, float) and math.isnan(title)):
        return None
    t = str(title).strip()
    return None if t.lower() in _PLACEHOLDER_TITLES else t


def synopsis_prompt(title: str, year=None, domain: str = "movie", *, trailing_space: bool = False) -> str:
    """The paper's prompt for one item.

    ``"Briefly, a story of a {domain} named {title} released {year} is about"``

    Args:
        title: the item's title, used verbatim (callers may pass it through
            :func:`natural_title` first, as :func:`generate_synopses` does).
        year: release year (int, float, str or NA). When missing or not a positive number
            the ``released {year}`` clause is dropped:
            ``"Briefly, a story of a movie named Heat is about"``.
        domain: ``"movie"`` or ``"book"``.
        trailing_space: keep the paper's trailing space (default ``False``). A BPE tokenizer
            encodes a trailing space as a lone space token, after which models almost always
            continue with a digit or number ("20 years ago ...") instead of a word, because in
            their training text a lone space token is rarely followed by a word start. Without
            it the model emits `` the`` / `` a`` with the leading space included, which is the
            intended continuation.

    Returns:
        The prompt string.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    clean = _clean_title(title)
    if clean is None:
        raise ValueError(f"cannot build a prompt without a title (got {title!r})")
    y = _clean_year(year)
    text = (PAPER_PROMPT if y is not None else PAPER_PROMPT_NO_YEAR).format(domain=domain, title=clean, year=y)
    return text if trailing_space else text.rstrip()


# ----------------------------------------------------------------------------------------
# Post-processing and the degeneracy rule
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QualityRule:
    """When a cleaned continuation counts as degenerate (dropped, counted as ``"degenerate"``).

    A text is degenerate when ANY of these holds:

    * fewer than ``min_words`` words (``\\w+`` runs);
    * letters make up less than ``min_letter_frac`` of its non-space characters
      ("mostly digits/punctuation", e.g. ``"1995 (1995) - 1996."``);
    * it has at least ``min_ngrams`` word ``ngram``-grams and fewer than
      ``min_distinct_ngram_frac`` of them are distinct (heavy repetition, e.g.
      ``"the film the film the film the film"``), computed case-insensitively.
    """

    min_words: int = 3  # (default: 3)
    min_letter_frac: float = 0.6  # (default: 0.6)
    ngram: int = 3  # (default: 3) word n-gram size for the repetition test
    min_ngrams: int = 4  # (default: 4) shorter texts skip the repetition test
    min_distinct_ngram_frac: float = 0.5  # (default: 0.5)


def text_stats(text: str, ngram: int = 3) -> dict:
    """Numbers the :class:`QualityRule` looks at: ``n_words``, ``letter_frac``, ``n_ngrams``,
    ``distinct_ngram_frac`` (1.0 when there are no n-grams)."""
    chars = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in chars)
    words = _WORD_RE.findall(text.lower())
    grams = list(zip(*(words[i:] for i in range(ngram))))
    return {
        "n_words": len(words),
        "letter_frac": letters / len(chars) if chars else 0.0,
        "n_ngrams": len(grams),
        "distinct_ngram_frac": len(set(grams)) / len(grams) if grams else 1.0,
    }


def is_degenerate(text: str, rule: QualityRule = QualityRule()) -> bool:
    """``True`` when ``text`` breaks the :class:`QualityRule` (see there)."""
    s = text_stats(text, rule.ngram)
    if s["n_words"] < rule.min_words or s["letter_frac"] < rule.min_letter_frac:
        return True
    return s["n_ngrams"] >= rule.min_ngrams and s["distinct_ngram_frac"] < rule.min_distinct_ngram_frac


def postprocess(raw: str, prompt: str | None = None, rule: QualityRule = QualityRule()) -> tuple[str | None, str]:
    """Turn a raw continuation into a synopsis, or drop it.

    Steps: strip a repeated prompt if the text starts with it; drop leading whitespace; keep
    the first paragraph (text up to the first line break: a blank line or a single newline,
    since LLMs do not hard-wrap); collapse whitespace (so the result has no tabs/newlines and
    fits a TSV cell); cut after the last full sentence (``.``, ``!`` or ``?``, optionally
    followed by closing quotes/brackets, then a space or the end), keeping the whole text when
    it has no sentence end at all (a single sentence cut by ``max_new_tokens``); then apply
    :func:`is_degenerate`.

    Returns:
        ``(synopsis, "ok")``, ``(None, "empty")`` or ``(None, "degenerate")``.
    """
    t = raw
    if prompt:
        p = prompt.strip()
        if t.lstrip().lower().startswith(p.lower()):
            t = t.lstrip()[len(p) :]
    t = t.lstrip().split("\n", 1)[0]
    t = _WS_RE.sub(" ", t).strip()
    if not t:
        return None, "empty"
    ends = list(_SENT_END_RE.finditer(t))
    if ends:
        t = t[: ends[-1].end()]
    if is_degenerate(t, rule):
        return None, "degenerate"
    return t, "ok"
