"""Verbalise item metadata with the paper's two templates (Section 3.1, step 1 of Fig. 3).

The paper's wording, kept literally (including "genre(s)")::

    genre:        The genre(s) of the (film|book) is/are [genre_list].
    title_genre:  A (movie|book) title is (movie_title|book_title) (released_year).
                  The genre(s) of the (film|book) is/are [genre_list].

Choices the paper leaves open, fixed here:

* the noun stays ``genre(s)`` as printed; the verb is ``is`` for one genre, ``are`` for several;
* ``[genre_list]`` is the item's genres in stored order joined with ``", "``
  (``"The genre(s) of the film are Action, Comedy, Drama."``);
* genre placeholders ``unknown`` and ``(no genres listed)`` (MovieLens) count as no genre;
* ``title_genre`` needs a title and at least one genre; the year is optional — without it the
  first sentence is ``A movie title is Heat.``; a trailing ``" (1995)"`` already in the title
  (MovieLens-20M style) is removed when it repeats the year;
* items lacking what the template needs get ``None`` and therefore no pairs (the paper: 11,156
  of 14,967 books had genres).
"""

from __future__ import annotations

import re

import pandas as pd

from ..data import DatasetError

TEMPLATES = ("genre", "title_genre")
#: domain -> (noun in "A ___ title is", noun in "The genre(s) of the ___")
DOMAIN_NOUNS = {"movie": ("movie", "film"), "book": ("book", "book")}
#: Genre values that mean "no genre" (compared case-insensitively).
NO_GENRE = frozenset({"unknown", "(no genres listed)", ""})
#: Item columns each template reads.
TEMPLATE_COLUMNS = {"genre": ("genres",), "title_genre": ("title", "year", "genres")}


def infer_domain(dataset_name: str) -> str:
    """``"movie"`` for MovieLens-like names, ``"book"`` for book datasets.

    Raises:
        ValueError: the name says neither; pass ``domain=`` explicitly.
    """
    name = dataset_name.lower()
    if name.startswith("ml-") or "movie" in name or "film" in name:
        return "movie"
    if "book" in name:
        return "book"
    raise ValueError(f"cannot tell whether dataset {dataset_name!r} is about movies or books; pass domain='movie' or domain='book' (python -m kgcl_lib.train: --domain movie|book)")


def clean_genres(genres) -> tuple[str, ...]:
    """Genre names as a tuple, placeholders (:data:`NO_GENRE`) and blanks dropped."""
    if genres is None or isinstance(genres, float):  # NA / NaN
        return ()
    if isinstance(genres, str):
        genres = (genres,)
    return tuple(g.strip() for g in genres if isinstance(g, str) and g.strip().lower() not in NO_GENRE)


def join_genres(genres) -> str:
    """``[genre_list]`` of the templates: genres joined with ``", "``."""
    return ", ".join(genres)


def genre_sentence(genres, domain: str) -> str:
    """``The genre(s) of the film is Comedy.`` / ``... are Action, Comedy.``"""
    noun = DOMAIN_NOUNS[domain][1]
    verb = "is" if len(genres) == 1 else "are"
    return f"The genre(s) of the {noun} {verb} {join_genres(genres)}."


def title_sentence(title: str, year, domain: str) -> str:
    """``A movie title is Toy Story (1995).`` (year omitted when missing)."""
    title = title.strip()
    if year is not None:
        title = re.sub(rf"\s*\({int(year)}\)\s*$", "", title)  # don't repeat a year already in the title
        return f"A {DOMAIN_NOUNS[domain][0]} title is {title} ({int(year)})."
    return f"A {DOMAIN_NOUNS[domain][0]} title is {title}."


def verbalize(ds, template: str = "genre", domain: str | None = None) -> pd.Series:
    """One sentence per item (``RangeIndex(n_items)``), ``None`` where metadata is missing.

    Args:
        ds: a :class:`~kgcl_lib.data.KGDataset`.
        template: ``"genre"`` or ``"title_genre"`` (see module docstring for the wording).
        domain: ``"movie"`` or ``"book"``; default from ``ds.name`` (:func:`infer_domain`).

    Raises:
        ValueError: unknown template/domain.
        DatasetError: the items table lacks a column the template needs.
    """
    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {TEMPLATES}, got {template!r}")
    domain = domain or infer_domain(ds.name)
    if domain not in DOMAIN_NOUNS:
        raise ValueError(f"domain must be one of {tuple(DOMAIN_NOUNS)}, got {domain!r}")
    items = ds.items
    missing = [c for c in TEMPLATE_COLUMNS[template] if c not in items.columns]
    if missing:
        raise DatasetError(f"{ds.name}: template {template!r} needs item column(s) {missing}, "
                           f"but the items table has {list(items.columns)}")
    genres = [clean_genres(g) for g in items["genres"].tolist()]
    if template == "genre":
        out = [genre_sentence(g, domain) if g else None for g in genres]
    else:
        titles = [t.strip() if isinstance(t, str) and t.strip() else None for t in items["title"].tolist()]
        years = [None if pd.isna(y) else int(y) for y in items["year"].tolist()]
        out = [f"{title_sentence(t, y, domain)} {genre_sentence(g, domain)}" if g and t else None for t, y, g in zip(titles, years, genres)]
    return pd.Series(out, index=items.index, dtype=object, name=template)
