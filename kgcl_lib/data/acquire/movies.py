"""Movie synopses: TMDB overviews (``TMDB_API_KEY``) and keyless Wikipedia page summaries."""

from __future__ import annotations

import os
import re
import sys
import threading
from urllib.parse import quote

import pandas as pd

from .. import sources as srcs
from ..download import DownloadError, HttpStatusError, JsonlCache, QuotaExceeded, cached_json
from .common import log, MISSING_TMDB_KEY, MOVIE_TEXT_MODES, ApiKeyError, FieldCoverage, _clean, _Ctx, _map_items, _read_tab, _Stopper, _write_tsv


_ARTICLES = ("The", "A", "An", "Les", "Le", "La", "L'", "Il", "El", "Die", "Der", "Das", "Los", "Las", "Un", "Une", "I", "Det", "Den")
_YEAR = re.compile(r"\s*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(.*), (" + "|".join(re.escape(a) for a in _ARTICLES) + r")$")


def movielens_title(raw: str) -> tuple[str, int | None]:
    """MovieLens ``"American President, The (1995)"`` → ``("The American President", 1995)``.

    Drops the year, any trailing alternate titles in parentheses ("(Cité des enfants perdus,
    La)", "(a.k.a. Seven)") and moves a trailing article to the front.
    """
    raw = (raw or "").strip()
    m = _YEAR.search(raw)
    year = int(m.group(1)) if m else None
    title = raw[: m.start()] if m else raw
    while True:
        stripped = re.sub(r"\s*\([^()]*\)\s*$", "", title)
        if stripped == title or not stripped.strip():
            break
        title = stripped
    title = title.strip()
    m = _TRAILING_ARTICLE.match(title)
    if m:
        art = m.group(2)
        title = f"{art}{'' if art.endswith(chr(39)) else ' '}{m.group(1)}"
    return title, year


def wikipedia_candidates(title: str, year: int | None) -> list[tuple[str, str]]:
    """Page titles to try, best first, each with the acceptance rule's kind."""
    out = [(f"{title} ({year} film)", "year_film")] if year else []
    return out + [(f"{title} (film)", "film"), (title, "bare")]


def _wiki_accept(data, year: int | None, kind: str) -> bool:
    """Is this page summary the film's article?  Disambiguation pages never are."""
    if not isinstance(data, dict) or data.get("type") != "standard" or not _clean(data.get("extract")):
        return False
    text = f"{data.get('description') or ''} {data['extract'][:400]}".lower()
    if kind == "year_film":
        return True
    has_year = year is None or str(year) in text
    return has_year and (kind == "film" or "film" in text)


def _tmdb_auth(key: str) -> tuple[str, dict]:
    """(query suffix, headers) for a v3 API key or a v4 read-access token (a JWT, ``eyJ…``)."""
    if key.startswith("eyJ") or len(key) > 64:
        return "", {"Authorization": f"Bearer {key}"}
    return f"&api_key={quote(key)}", {}


def movie_synopses(ctx: _Ctx, mode: str = "auto", verbose: bool = True) -> tuple[FieldCoverage, list[tuple], list[str]]:
    """Write ``synopses.tsv`` for the items of ``item_index2entity_id.txt`` in ``ctx.dest``.

    Args:
        mode: ``"tmdb"`` (paper; needs ``TMDB_API_KEY``), ``"wikipedia"`` (keyless),
            ``"tmdb+wikipedia"`` (TMDB, Wikipedia for TMDB's gaps), ``"auto"`` (``"tmdb"`` with a
            key, else a clear message and ``"wikipedia"``).

    Returns: ``(coverage, missing rows, notes)``.

    Raises: :class:`ApiKeyError` when TMDB is required but the key is missing or rejected.
    """
    if mode not in MOVIE_TEXT_MODES:
        raise ValueError(f"movie_text must be one of {MOVIE_TEXT_MODES}, got {mode!r}")
    notes = []
    key = os.environ.get("TMDB_API_KEY", "").strip()
    if mode == "auto":
        if key:
            mode = "tmdb"
        else:
            msg = MISSING_TMDB_KEY + " Falling back to Wikipedia page summaries (keyless); they differ from the paper's TMDB text."
            log.warning("%s", msg)
            if verbose:
                print(msg, file=sys.stderr)
            notes.append("TMDB_API_KEY missing: synopses from Wikipedia (keyless fallback), not the paper's TMDB overviews")
            mode = "wikipedia"
    use_tmdb, use_wiki = "tmdb" in mode, "wikipedia" in mode
    if use_tmdb and not key:
        raise ApiKeyError(MISSING_TMDB_KEY)

    dest = ctx.dest
    items = _read_tab(dest / "item_index2entity_id.txt", 2)[0].to_numpy(dtype=object)
    movies = pd.read_csv(dest / "movies.csv", dtype={"movieId": str, "title": str}, keep_default_na=False).set_index("movieId")
    links = pd.read_csv(dest / "links.csv", dtype={"movieId": str, "tmdbId": "Int64"}).set_index("movieId")
    titles = movies["title"].reindex(items).fillna("").to_numpy(dtype=object)
    tmdb_ids = links["tmdbId"].reindex(items).to_numpy(dtype=object)

    tmdb = srcs.resolve("TMDB", ctx.overrides)
    wiki = srcs.resolve("WIKIPEDIA", ctx.overrides)
    tmdb_cache = JsonlCache(ctx.work / "tmdb.jsonl")
    wiki_cache = JsonlCache(ctx.work / "wikipedia.jsonl")
    suffix, tmdb_headers = _tmdb_auth(key) if key else ("", {})
    stoppers = {"tmdb": _Stopper(), "wikipedia": _Stopper()}

    def one(i: int):
        reasons = []
        if use_tmdb:
            tid = tmdb_ids[i]
            if tid is None or pd.isna(tid):
                reasons.append("no tmdbId in links.csv")
            elif stoppers["tmdb"].event.is_set():
                reasons.append(f"TMDB skipped: {stoppers['tmdb'].reason}")
            else:
                ck = f"movie/{int(tid)}?language=en-US"
                rec = _tmdb_get(ctx, tmdb_cache, ck, tmdb.url(ck) + suffix, tmdb_headers, stoppers["tmdb"], reasons)
                if rec is not None:
                    if rec.get("error"):
                        reasons.append(f"TMDB: {rec['error']}" + (" (not in TMDB)" if rec.get("status") == 404 else ""))
                    else:
                        text = _clean((rec.get("data") or {}).get("overview") if isinstance(rec.get("data"), dict) else None)
                        if text:
                            return text, "tmdb", None
                        reasons.append("TMDB: empty overview")
        if use_wiki:
            title, year = movielens_title(titles[i])
            if not title:
                reasons.append("no title in movies.csv")
            elif stoppers["wikipedia"].event.is_set():
                reasons.append(f"Wikipedia skipped: {stoppers['wikipedia'].reason}")
            else:
                for cand, kind in wikipedia_candidates(title, year):
                    page = quote(cand.replace(" ", "_"), safe="")
                    try:
                        rec = cached_json(ctx.client, wiki_cache, f"summary/{page}", wiki.url(page), refresh_errors=ctx.refresh_errors)
                    except QuotaExceeded as e:
                        stoppers["wikipedia"].stop(f"Wikipedia: {e}")
                        reasons.append("Wikipedia: throttled; rerun to resume")
                        break
                    except DownloadError as e:
                        reasons.append(f"Wikipedia request failed (not cached; a rerun retries): {e}")
                        break
                    if _wiki_accept(rec.get("data"), year, kind):
                        return _clean(rec["data"]["extract"]), "wikipedia", None
                else:
                    reasons.append(f"Wikipedia: no film article for {title!r} ({year})")
        return None, None, "; ".join(reasons) or "no source enabled"

    results = _map_items(one, list(range(len(items))), workers=ctx.workers, desc="movie synopses", progress=ctx.progress)
    by_source = {"tmdb": 0, "wikipedia": 0}
    rows, missing = [], []
    for i, (text, src, why) in enumerate(results):
        if text:
            rows.append((items[i], text))
            by_source[src] += 1
        else:
            missing.append(("synopsis", items[i], _clean(titles[i]) or "", why))
    rows.sort(key=lambda r: (0, int(r[0]), "") if str(r[0]).isdigit() else (1, 0, str(r[0])))  # numeric id order
    if rows:  # offline, nothing fetched: no header-only synopses.tsv (fetch_cli then exits 1)
        _write_tsv(dest / "synopses.tsv", ["item_id", "synopsis"], rows)
    notes += [s.reason for s in stoppers.values() if s.event.is_set()]
    return FieldCoverage("synopsis", len(items), len(rows), by_source), missing, notes


# MovieLens-100K: no tmdbId, so TMDB is searched by title and matched by year -----------------------------
def _tmdb_year(result: dict) -> int | None:
    m = re.match(r"(\d{4})", str(result.get("release_date") or ""))
    return int(m.group(1)) if m else None


def _norm_title(s) -> str:
    return re.sub(r"[^0-9a-z]+", " ", str(s or "").lower()).strip()


def tmdb_pick(results, title: str, year: int | None) -> tuple[dict | None, str | None]:
    """The TMDB search result that is ``title`` of ``year``, and a note when the choice was ambiguous.

    Candidates are results whose ``title`` or ``original_title`` equals ``title`` (case and
    punctuation ignored; all results when none does).  Among them: the one released in
    ``year``; else within one year (release dates differ between countries); a title with no
    known year only matches when there is a single candidate.  Several films left after the
    year test: the most popular is taken.  The note says which film was picked and which were
    not, whenever more than one film carried the title.

    Returns: ``(result or None, note or None)``.
    """
    results = [r for r in (results or []) if isinstance(r, dict)]
    named = [r for r in results if _norm_title(title) in (_norm_title(r.get("title")), _norm_title(r.get("original_title")))]
    cands = named or results
    if not cands:
        return None, None
    if year is None:
        chosen = cands if len(cands) == 1 else []
    else:
        chosen = [r for r in cands if _tmdb_year(r) == year] or [r for r in cands if _tmdb_year(r) in (year - 1, year + 1)]
    if not chosen:
        years = sorted({_tmdb_year(r) for r in cands if _tmdb_year(r)})
        return None, f"TMDB: {len(cands)} film(s) titled {title!r} ({', '.join(map(str, years)) or 'no year'}), none from {year}"
    best = max(chosen, key=lambda r: float(r.get("popularity") or 0.0))
    note = None
    if len(named) > 1:
        others = ", ".join(f"{r.get('id')} ({_tmdb_year(r) or '?'})" for r in named if r is not best)
        note = (f"{title!r} ({year}) matches {len(named)} TMDB films; picked id {best.get('id')} "
                f"({_tmdb_year(best) or '?'}) by year, not {others}")
    return best, note


def _tmdb_get(ctx, cache, key: str, url: str, headers: dict, stopper, reasons: list[str]):
    """One cached TMDB request: the cached record, or ``None`` with the reason appended to ``reasons``.

    A rejected key raises :class:`ApiKeyError`; a spent quota stops ``stopper`` (later items are
    skipped, not failed); with a :class:`_Breaker`, transport failures in a row stop the source
    too (an offline fetch gives up after a few titles instead of retrying every one).
    """
    try:
        rec = cached_json(ctx.client, cache, key, url, headers, refresh_errors=ctx.refresh_errors)
    except HttpStatusError as e:
        if e.status in (401, 403):
            raise ApiKeyError(f"TMDB rejected TMDB_API_KEY (HTTP {e.status}: {e.body[:200].decode('utf-8', 'replace')}). "
                              "Check the key at https://www.themoviedb.org/settings/api") from None
        reasons.append(f"TMDB: HTTP {e.status}")
    except QuotaExceeded as e:
        stopper.stop(f"TMDB: {e}")
        reasons.append("TMDB: quota/throttled; rerun to resume")
    except DownloadError as e:
        if isinstance(stopper, _Breaker):
            stopper.failed(e)
        reasons.append(f"TMDB request failed (not cached; a rerun retries): {e}")
    else:
        if isinstance(stopper, _Breaker):
            stopper.ok()
        return rec
    return None


class _Breaker(_Stopper):
    """A :class:`_Stopper` that also trips after ``limit`` transport failures in a row (host
    unreachable, DNS down): the rest of the items are skipped instead of each one waiting out
    its retries. Cached answers are kept; a rerun resumes."""

    def __init__(self, name: str, limit: int = 3):
        super().__init__()
        self.name, self.limit, self.failures = name, limit, 0
        self.lock = threading.Lock()

    def ok(self) -> None:
        with self.lock:
            self.failures = 0

    def failed(self, error) -> None:
        with self.lock:
            self.failures += 1
            trip = self.failures >= self.limit
        if trip:
            self.stop(f"{self.name} unreachable ({self.limit} requests failed in a row, last: {error}); "
                      "rerun when online (answers already cached are kept)")


def _wiki_lookup(ctx: _Ctx, source, cache: JsonlCache, stopper: _Stopper, title: str, year: int | None) -> tuple[str | None, str | None]:
    """``(summary, None)`` from the first accepted Wikipedia candidate page, else ``(None, reason)``."""
    if stopper.event.is_set():
        return None, f"Wikipedia skipped: {stopper.reason}"
    for cand, kind in wikipedia_candidates(title, year):
        page = quote(cand.replace(" ", "_"), safe="")
        try:
            rec = cached_json(ctx.client, cache, f"summary/{page}", source.url(page), refresh_errors=ctx.refresh_errors)
        except QuotaExceeded as e:
            stopper.stop(f"Wikipedia: {e}")
            return None, "Wikipedia: throttled; rerun to resume"
        except DownloadError as e:
            if isinstance(stopper, _Breaker):
                stopper.failed(e)
            return None, f"Wikipedia request failed (not cached; a rerun retries): {e}"
        if isinstance(stopper, _Breaker):
            stopper.ok()
        if _wiki_accept(rec.get("data"), year, kind):
            return _clean(rec["data"]["extract"]), None
    return None, f"Wikipedia: no film article for {title!r} ({year})"


def _resolve_movie_mode(mode: str, key: str, verbose: bool, notes: list[str]) -> str:
    """``auto`` -> ``tmdb`` with a key, else (said once, clearly) ``wikipedia``."""
    if mode not in MOVIE_TEXT_MODES:
        raise ValueError(f"movie_text must be one of {MOVIE_TEXT_MODES}, got {mode!r}")
    if mode == "auto":
        if key:
            return "tmdb"
        msg = MISSING_TMDB_KEY + " Falling back to Wikipedia page summaries (keyless); they differ from the paper's TMDB text."
        log.warning("%s", msg)
        if verbose:
            print(msg, file=sys.stderr)
        notes.append("TMDB_API_KEY missing: synopses from Wikipedia (keyless fallback), not the paper's TMDB overviews")
        return "wikipedia"
    if "tmdb" in mode and not key:
        raise ApiKeyError(MISSING_TMDB_KEY)
    return mode


def read_ml100k_titles(folder) -> pd.DataFrame:
    """ML-100K's KG-linked items from the RecBole files: ``item_id`` (str), ``raw_title``, ``title``, ``year``.

    ``title`` is the searchable form (:func:`movielens_title`: trailing article moved to the
    front, alternate titles in parentheses dropped); ``year`` is ``release_year`` (``None``
    when not a number).
    """
    from pathlib import Path

    folder = Path(folder)
    item = pd.read_csv(folder / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False, quoting=3)
    item.columns = [c.split(":", 1)[0] for c in item.columns]
    linked = _read_tab(folder / "ml-100k.link", 2)[0].iloc[1:] if (folder / "ml-100k.link").is_file() else item["item_id"]
    item = item.set_index("item_id").reindex(sorted(set(linked.str.strip()) & set(item["item_id"]), key=lambda s: (len(s), s)))
    rows = []
    for iid, raw, yr in zip(item.index, item["movie_title"], item.get("release_year", pd.Series("", index=item.index))):
        title, _ = movielens_title(raw)
        rows.append((iid, raw, title, int(yr) if str(yr).strip().isdigit() else None))
    return pd.DataFrame(rows, columns=["item_id", "raw_title", "title", "year"])


def ml100k_synopses(ctx: _Ctx, mode: str = "auto", verbose: bool = True, folder=None) -> tuple[FieldCoverage, list[tuple], list[str], list[str]]:
    """Write ``synopses.tsv`` (``item_id <TAB> synopsis``) for ML-100K's KG-linked items in ``ctx.dest``.

    The titles are read from the RecBole files in ``folder`` (default ``ctx.dest``).

    ML-100K has no TMDB ids: TMDB (``TMDB_API_KEY``, the paper's source) is searched by title
    (``search/movie?query=``) and the result is picked by release year (:func:`tmdb_pick`);
    Wikipedia page summaries are keyless (as for ML-20M).  ``mode`` as :func:`movie_synopses`.
    Answers are cached in ``.kgcl-fetch/tmdb_search.jsonl`` / ``wikipedia.jsonl``, so a rerun
    makes no request.  Also writes ``synopses_source.tsv`` (item_id, source, TMDB id) so the
    text of each item can be traced.

    Returns: ``(coverage, missing rows, notes, ambiguous-title notes)``.
    """
    notes: list[str] = []
    key = os.environ.get("TMDB_API_KEY", "").strip()
    mode = _resolve_movie_mode(mode, key, verbose, notes)
    use_tmdb, use_wiki = "tmdb" in mode, "wikipedia" in mode
    items = read_ml100k_titles(folder if folder is not None else ctx.dest)
    tmdb = srcs.resolve("TMDB", ctx.overrides)
    wiki = srcs.resolve("WIKIPEDIA", ctx.overrides)
    tmdb_cache = JsonlCache(ctx.work / "tmdb_search.jsonl")
    wiki_cache = JsonlCache(ctx.work / "wikipedia.jsonl")
    suffix, tmdb_headers = _tmdb_auth(key) if key else ("", {})
    stoppers = {"tmdb": _Breaker("TMDB"), "wikipedia": _Breaker("Wikipedia")}

    def one(row):
        reasons, note = [], None
        if not row.title:
            return None, None, None, None, "no title in ml-100k.item"
        if use_tmdb:
            if stoppers["tmdb"].event.is_set():
                reasons.append(f"TMDB skipped: {stoppers['tmdb'].reason}")
            else:
                ck = f"search/movie?query={quote(row.title, safe='')}&include_adult=false&language=en-US"
                rec = _tmdb_get(ctx, tmdb_cache, ck, tmdb.url(ck) + suffix, tmdb_headers, stoppers["tmdb"], reasons)
                if rec is not None:
                    if rec.get("error"):
                        reasons.append(f"TMDB: {rec['error']}")
                    else:
                        data = rec.get("data") if isinstance(rec.get("data"), dict) else {}
                        hit, pick_note = tmdb_pick(data.get("results"), row.title, row.year)
                        if hit is None:
                            reasons.append(pick_note or f"TMDB: no film titled {row.title!r}")
                        else:
                            note = pick_note
                            text = _clean(hit.get("overview"))
                            if text:
                                return text, "tmdb", hit.get("id"), note, None
                            reasons.append(f"TMDB: empty overview (id {hit.get('id')})")
        if use_wiki:
            text, why = _wiki_lookup(ctx, wiki, wiki_cache, stoppers["wikipedia"], row.title, row.year)
            if text:
                return text, "wikipedia", None, note, None
            reasons.append(why)
        return None, None, None, note, "; ".join(reasons) or "no source enabled"

    results = _map_items(one, list(items.itertuples(index=False)), workers=ctx.workers, desc="ml-100k synopses", progress=ctx.progress)
    by_source = {"tmdb": 0, "wikipedia": 0}
    rows, traces, missing, ambiguous = [], [], [], []
    for row, (text, src, tmdb_id, note, why) in zip(items.itertuples(index=False), results):
        if note:
            ambiguous.append(note)
        if text:
            rows.append((row.item_id, text))
            traces.append((row.item_id, src, "" if tmdb_id is None else tmdb_id))
            by_source[src] += 1
        else:
            missing.append(("synopsis", row.item_id, row.raw_title, why))
    if rows:  # offline, nothing fetched: no header-only synopses.tsv (fetch_cli then exits 1)
        _write_tsv(ctx.dest / "synopses.tsv", ["item_id", "synopsis"], rows)
        _write_tsv(ctx.dest / "synopses_source.tsv", ["item_id", "source", "tmdb_id"], traces)
    notes += [s.reason for s in stoppers.values() if s.event.is_set()]
    return FieldCoverage("synopsis", len(items), len(rows), by_source), missing, notes, ambiguous

