"""Content–content pairs for the contrastive loss (paper Section 3.1, Fig. 3).

For every item with the metadata a template needs (the *anchor*), the sampler

1. verbalises the metadata (:func:`~kgcl_lib.pairs.templates.verbalize`),
2. embeds the sentences with a bi-encoder (paper: ``multi-qa-mpnet-base-dot-v1``; similarity =
   dot product),
3. ranks the other items with a cross-encoder (paper: ``cross-encoder/ms-marco-MiniLM-L-12-v2``,
   query = anchor sentence) and keeps the top ``n`` as positives and the bottom ``n`` as
   negatives (``n = 10``).

Cross-encoding every ordered pair is quadratic (16,954² ≈ 287M pairs on MovieLens-20M), so
three modes exist, recorded as ``provenance["mode"]``:

* ``"exhaustive"`` — the paper's procedure: cross-encode all pairs (per distinct sentence pair;
  used when ``exhaustive=True`` or when the candidate lists would cover the catalogue anyway);
* ``"retrieve-rerank"`` (default) — positives: the exact top-``candidates`` bi-encoder
  neighbours of each anchor (chunked matrix products over all items), reranked by the
  cross-encoder; negatives: the exact bottom-``negative_candidates`` of the bi-encoder ranking,
  reranked the same way (with the default ``negative_candidates = n`` the bottom ``n`` are
  kept and only scored, so the ``score`` column always holds cross-encoder scores);
* ``"bi-encoder"`` — no cross-encoder (``cross_encoder=None``, or it could not be loaded: then
  a :class:`CrossEncoderSkippedWarning` is raised and the provenance says why); top/bottom ``n``
  of the exact bi-encoder ranking, ``score`` = dot product.

Ties (identical sentences are common with the genre template) are broken by a seeded random key
per item pair (:func:`~kgcl_lib.pairs.select.pair_keys`), so every mode breaks a given tie the
same way and the result does not depend on chunking.  Anchors are processed in chunks of
:data:`ANCHOR_CHUNK`; each finished chunk is checkpointed, so an interrupted run resumes where it
stopped.  The finished table is cached under
``storage.cache_dir("pairs")`` keyed by every parameter, the models' fingerprints and a checksum
of the verbalised metadata.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__, storage
from ..data import DatasetError
from ..text.encode import encode_texts_with_info
from ..text.models import (
    PAPER_BI_ENCODER,
    PAPER_CROSS_ENCODER,
    CrossEncoderModel,
    Encoder,
    EncoderLoadError,
    resolve_cross_encoder,
    resolve_encoder,
)
from .kg import item_attributes, kg_chunk_pairs
from .select import PairScoreMemo, fixed_point, pair_keys, top_k
from .templates import infer_domain, verbalize

log = logging.getLogger("kgcl_lib.pairs")

PAIRS_CACHE_VERSION = "kgcl-pairs-v2"  # v2: bi-encoder scores in exact fixed point (chunk-independent)
#: Anchors per checkpointed chunk.
ANCHOR_CHUNK = 256
SAMPLERS = ("text", "kg", "text+kg")
PAIR_COLUMNS = {"anchor": np.int64, "other": np.int64, "label": np.int8, "score": np.float32}
#: The paper's Table 1 "c-c" counts: (domain, template) -> content-content pairs
#: (MovieLens-20M for movies, Book-Crossing for books).
PAPER_CC = {("movie", "genre"): 336_176, ("movie", "title_genre"): 305_172, ("book", "genre"): 221_617, ("book", "title_genre"): 223_140}


class CrossEncoderSkippedWarning(UserWarning):
    """No cross-encoder could be loaded; pairs come from the bi-encoder ranking alone."""


@dataclass(frozen=True, eq=False)
class ContentPairs:
    """Content–content pairs.

    Attributes:
        table: DataFrame with columns ``anchor int64, other int64`` (item indices),
            ``label int8`` (1 positive, 0 negative), ``score float32`` (the score that ranked the
            pair: cross-encoder logit, bi-encoder dot product or KG Jaccard — see
            ``provenance["score"]``).  Rows are grouped by anchor, positives best-first, then
            negatives lowest-first.
        provenance: models actually used, template, n, candidates, mode, dataset checksum, seed,
            counts, timing, date.
        path: the cached parquet file (``None`` when built with ``cache=False``).
    """

    table: pd.DataFrame
    provenance: dict
    path: Path | None = None

    @property
    def positives(self) -> pd.DataFrame:
        return self.table[self.table["label"] == 1]

    @property
    def negatives(self) -> pd.DataFrame:
        return self.table[self.table["label"] == 0]

    def summary(self) -> dict:
        """The CLI's numbers: items with metadata, pair counts, models, seconds."""
        p = self.provenance
        return {
            "dataset": p["dataset"],
            "sampler": p["sampler"],
            "template": p["template"],
            "mode": p["mode"],
            "items_with_metadata": p["items_with_metadata"],
            "pairs": int(len(self.table)),
            "positives": int((self.table["label"] == 1).sum()),
            "negatives": int((self.table["label"] == 0).sum()),
            "bi_encoder": (p.get("bi_encoder") or {}).get("name"),
            "cross_encoder": (p.get("cross_encoder") or {}).get("name"),
            "seconds": p.get("seconds"),
            "paper_cc": p.get("paper_cc"),
            "path": str(self.path) if self.path else None,
            "cache_hit": p.get("cache_hit", False),
        }


def _entropy(seed) -> tuple[int, object]:
    """An int seed for SeedSequence, plus what to record: the int itself or the generator's draw."""
    if isinstance(seed, np.random.Generator):
        value = int(seed.integers(2**63 - 1))
        return value, {"from_generator": value}
    if seed is None or isinstance(seed, (bool, float)) or int(seed) != seed:
        raise ValueError(f"seed must be an int or numpy Generator (reproducibility), got {seed!r}")
    return int(seed), int(seed)


def _save_part(path: Path, **arrays) -> None:
    with storage.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # through a handle: np.savez would append ".npz" to the temp name


def _load_part(path: Path) -> dict | None:
    try:
        with np.load(path) as z:
            return {k: z[k] for k in PAIR_COLUMNS}
    except (OSError, ValueError, KeyError):
        return None  # unreadable checkpoint: recompute the chunk


def _resolve_cross(cross_encoder, device):
    """(scorer or None, provenance dict)."""
    if cross_encoder is None:
        return None, {"name": None, "skipped": "disabled (cross_encoder=None)"}
    if hasattr(cross_encoder, "score"):
        info = dict(cross_encoder.describe()) if hasattr(cross_encoder, "describe") else {"name": type(cross_encoder).__name__}
        return cross_encoder, info
    try:
        ce = resolve_cross_encoder(str(cross_encoder), device=device)
    except EncoderLoadError as exc:
        msg = (f"CROSS-ENCODER SKIPPED: {cross_encoder!r} cannot be loaded ({str(exc)[:300]}); no cross-encoder ships offline, "
               f"so the rerank step is skipped and positives/negatives come from the bi-encoder ranking. Recorded in provenance.")
        warnings.warn(msg, CrossEncoderSkippedWarning, stacklevel=4)  # the caller of build_pairs
        log.warning(msg)
        return None, {"requested": str(cross_encoder), "name": None, "skipped": str(exc)}
    return ce, ce.describe()


def _text_chunk(rows, items, vec, bi_scale, codes, n, mode, m_cand, k_neg, memo, score_fn, entropy):
    """Positives/negatives for anchors ``rows`` (positions among the eligible ``items``).

    ``vec`` holds the bi-encoder vectors in fixed point (:func:`fixed_point`, scale
    ``bi_scale``), so identical sentences tie exactly in every chunking.
    Returns ``(other [r, 2n] positions, score [r, 2n])``: columns ``:n`` positives best-first,
    ``n:`` negatives lowest-first.  Ties are broken by :func:`pair_keys` of the item pair.
    """
    r, m = len(rows), len(vec)
    keys = pair_keys(items[rows, None], items[None, :], entropy)  # [r, m]
    bi = vec[rows] @ vec.T  # [r, m] bi-encoder dot products, exact (``vec`` is fixed point)
    self_mask = np.zeros((r, m), dtype=bool)
    self_mask[np.arange(r), rows] = True
    if mode == "bi-encoder":
        scores = bi
    elif mode == "exhaustive":
        scores = memo(np.broadcast_to(codes[rows, None], (r, m)), np.broadcast_to(codes[None, :], (r, m)), score_fn)  # [r, m]
    else:  # retrieve-rerank
        cand = top_k(bi, m_cand, keys, self_mask)  # [r, M] exact bi-encoder neighbours
        negc = top_k(-bi, k_neg, keys, self_mask)  # [r, K] exact bi-encoder bottom
        q = codes[rows, None]
        cs = memo(np.broadcast_to(q, cand.shape), codes[cand], score_fn)
        ns = memo(np.broadcast_to(q, negc.shape), codes[negc], score_fn)
        pos_i = top_k(cs, n, np.take_along_axis(keys, cand, 1))
        neg_i = top_k(-ns, n, np.take_along_axis(keys, negc, 1))
        pos, neg = np.take_along_axis(cand, pos_i, 1), np.take_along_axis(negc, neg_i, 1)
        return np.concatenate([pos, neg], 1), np.concatenate([np.take_along_axis(cs, pos_i, 1), np.take_along_axis(ns, neg_i, 1)], 1)
    other = np.concatenate([top_k(scores, n, keys, self_mask), top_k(-scores, n, keys, self_mask)], axis=1)
    score = np.take_along_axis(scores, other, axis=1)
    return other, (score / bi_scale**2 if mode == "bi-encoder" else score)


def build_pairs(ds, template: str = "genre", *, n: int = 10, candidates: int = 100, exhaustive: bool = False,
                negative_candidates: int | None = None, bi_encoder: str | Encoder = PAPER_BI_ENCODER, cross_encoder=PAPER_CROSS_ENCODER,
                domain: str | None = None, sampler: str = "text", seed: int | np.random.Generator = 0, cache: bool = True,
                device: str | None = None, batch_size: int = 64, offline_fallback: bool = True, show_progress: bool = True) -> ContentPairs:
    """Sample positive/negative content pairs for every item (see the module docstring).

    Args:
        ds: :class:`~kgcl_lib.data.KGDataset`.
        template: ``"genre"`` or ``"title_genre"`` (paper's two templates).
        n: positives and negatives per anchor (default 10, as the paper).
        candidates: ``M``, bi-encoder candidates reranked per anchor (default 100).
        exhaustive: cross-encode every pair (the paper's procedure; quadratic).
        negative_candidates: bottom bi-encoder items reranked for negatives (default ``n``:
            keep the bottom ``n``, only score them).
        bi_encoder: hub id/folder/:class:`~kgcl_lib.text.models.Encoder` (paper:
            ``multi-qa-mpnet-base-dot-v1``); offline fallback as in
            :func:`~kgcl_lib.text.models.resolve_encoder`.
        cross_encoder: hub id/folder (paper: ``cross-encoder/ms-marco-MiniLM-L-12-v2``), a
            stand-in object with ``score(queries, docs, batch_size=...) -> float[n]`` and
            ``describe() -> dict`` (``name`` and ``fingerprint`` enter the cache key), or
            ``None`` for the bi-encoder ranking alone.
        domain: ``"movie"``/``"book"``; default from ``ds.name``.
        sampler: ``"text"`` (the paper), ``"kg"`` (KG-attribute Jaccard for every item with KG
            neighbours) or ``"text+kg"`` (text pairs, plus KG pairs for anchors without the
            template's metadata).
        seed: int or ``numpy.random.Generator`` for tie-breaking and KG negatives.
        cache: reuse/write the cached table and chunk checkpoints.

    Raises:
        DatasetError: too few items have the template's metadata (fewer than ``2n + 1``), or
            the items table lacks a needed column.
        ValueError: bad argument.
    """
    t0 = time.perf_counter()
    negative_candidates = _check_arguments(sampler, n, candidates, negative_candidates)
    entropy, seed_record = _entropy(seed)
    use_text, use_kg = sampler in ("text", "text+kg"), sampler in ("kg", "text+kg")
    if use_text:
        domain = domain or infer_domain(ds.name)
    else:
        try:
            domain = domain or infer_domain(ds.name)
        except ValueError:
            domain = None  # the KG sampler does not need it

    params: dict = {"sampler": sampler, "n": n, "domain": domain, "chunk": ANCHOR_CHUNK}
    checksum_parts = [PAIRS_CACHE_VERSION, ds.name, str(ds.n_items)]
    prov: dict = {"dataset": ds.name, "sampler": sampler, "template": template if use_text else None, "domain": domain, "n": n,
                  "seed": seed_record, "items_with_metadata": 0, "kg_anchors": 0}
    text = kg = None
    if use_text:
        text = _plan_text_side(ds, template, domain, n, candidates, negative_candidates, exhaustive, bi_encoder, cross_encoder,
                               device, offline_fallback, params, prov, checksum_parts)
    else:
        prov.update(mode="kg", score="kg jaccard", bi_encoder=None, cross_encoder=None, paper_cc=None)
        params["mode"] = "kg"
    if use_kg:
        kg = _plan_kg_side(ds, text.eligible if use_text else None, prov, checksum_parts)

    prov["dataset_checksum"] = storage.sha256_text(*checksum_parts)
    params.update(dataset=prov["dataset_checksum"], seed=entropy)
    key = storage.sha256_text(PAIRS_CACHE_VERSION, json.dumps(params, sort_keys=True, default=str))
    stem = f"{storage.slug(ds.name, allowed='A-Za-z0-9._+-')}-{sampler}-{template if use_text else 'kg'}-n{n}-{key[:16]}"
    folder = storage.cache_dir("pairs") if cache else None
    table_path = folder / f"{stem}.parquet" if folder else None
    prov_path = folder / f"{stem}.json" if folder else None
    if table_path is not None and table_path.is_file() and prov_path.is_file():
        table = pd.read_parquet(table_path)
        cached = json.loads(prov_path.read_text())
        cached.update(cache_hit=True, seconds=round(time.perf_counter() - t0, 3))
        return ContentPairs(table=table.astype(PAIR_COLUMNS), provenance=cached, path=table_path)

    parts_dir = folder / f"{stem}.parts" if folder else None
    chunks, memo = _compute_chunks(ds, text, kg, n, candidates, negative_candidates, entropy, batch_size, cache,
                                   show_progress, parts_dir, prov)
    table = pd.DataFrame({c: np.concatenate([ch[c] for ch in chunks]).astype(t) if chunks else np.zeros(0, t) for c, t in PAIR_COLUMNS.items()})
    prov.update(pairs=int(len(table)), positives=int((table["label"] == 1).sum()), negatives=int((table["label"] == 0).sum()),
                anchors_with_pairs=int(table["anchor"].nunique()), cross_pairs_scored=int(memo.scored) if memo else 0,
                seconds=round(time.perf_counter() - t0, 3), created=storage.utc_now(), kgcl_version=__version__, cache_key=key, cache_hit=False)
    if table_path is not None:
        with storage.atomic_path(table_path) as tmp:
            table.to_parquet(tmp, engine="pyarrow", index=False)
        storage.write_json(prov_path, prov)
        shutil.rmtree(parts_dir, ignore_errors=True)
    return ContentPairs(table=table, provenance=prov, path=table_path)


def _check_arguments(sampler: str, n: int, candidates: int, negative_candidates: int | None) -> int:
    """Validate ``build_pairs``' arguments; returns ``negative_candidates`` (default ``n``)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    negative_candidates = n if negative_candidates is None else int(negative_candidates)
    if candidates < n or negative_candidates < n:
        raise ValueError(f"candidates ({candidates}) and negative_candidates ({negative_candidates}) must be >= n ({n})")
    return negative_candidates


@dataclass
class _TextSide:
    """The text sampler's inputs: eligible items (``int64[m]``), their sentence codes into
    ``uniques`` (the ``m`` items' distinct sentences), the encoders and the scoring mode."""

    eligible: np.ndarray
    codes: np.ndarray
    uniques: np.ndarray
    bi: Encoder
    cross: object
    mode: str


def _plan_text_side(ds, template, domain, n, candidates, negative_candidates, exhaustive, bi_encoder, cross_encoder, device,
                    offline_fallback, params: dict, prov: dict, checksum_parts: list) -> _TextSide:
    """Sentences, encoders and mode of the text sampler; records them in ``params`` (the cache
    key), ``prov`` and ``checksum_parts`` (in place)."""
    sentences = verbalize(ds, template, domain)
    eligible = np.flatnonzero(sentences.notna().to_numpy()).astype(np.int64)
    m = len(eligible)
    if m < 2 * n + 1:
        raise DatasetError(f"{ds.name}: only {m} of {ds.n_items} items have the metadata template {template!r} needs "
                           f"(genres{' and title' if template == 'title_genre' else ''}); at least 2n+1 = {2 * n + 1} are required. "
                           "Use the KG-attribute sampler for items without text metadata: build_pairs(..., sampler='kg'), "
                           "`python -m kgcl_lib.pairs --sampler kg` or `python -m kgcl_lib.train --pair-sampler kg`.")
    codes, uniques = pd.factorize(sentences.iloc[eligible], sort=False)
    uniques = np.asarray(uniques, dtype=object)
    checksum_parts += [f"{i}\t{s}" for i, s in zip(eligible.tolist(), sentences.iloc[eligible].tolist())]
    bi = resolve_encoder(bi_encoder, offline_fallback=offline_fallback, device=device)
    cross, cross_info = _resolve_cross(cross_encoder, device)
    if cross is None:
        mode = "bi-encoder"
    elif exhaustive or candidates + negative_candidates >= m - 1:
        mode = "exhaustive"
    else:
        mode = "retrieve-rerank"
    params.update(template=template, mode=mode, candidates=candidates if mode == "retrieve-rerank" else None,
                  negative_candidates=negative_candidates if mode == "retrieve-rerank" else None,
                  bi=bi.fingerprint, cross=cross_info.get("fingerprint") or cross_info.get("name"))
    prov.update(items_with_metadata=int(m), distinct_sentences=int(len(uniques)), mode=mode, exhaustive=bool(exhaustive),
                candidates=params["candidates"], negative_candidates=params["negative_candidates"], bi_encoder=bi.describe(),
                cross_encoder=cross_info, similarity="dot product",
                score={"bi-encoder": "bi-encoder dot product", "exhaustive": "cross-encoder score",
                       "retrieve-rerank": "cross-encoder score"}[mode],
                example_sentence=str(uniques[codes[0]]), paper_cc=PAPER_CC.get((domain, template)))
    return _TextSide(eligible, codes, uniques, bi, cross, mode)


@dataclass
class _KgSide:
    """The KG sampler's inputs: item-attribute rows of the items with KG neighbours
    (``kg_eligible``, ``int64[k]``) and the rows (into them) of the anchors it samples for."""

    attrs: object
    kg_eligible: np.ndarray
    anchor_rows: np.ndarray


def _plan_kg_side(ds, text_eligible: np.ndarray | None, prov: dict, checksum_parts: list) -> _KgSide:
    """The KG sampler's anchors: every item with KG neighbours, or (with the text sampler) those
    the text sampler leaves out; records them in ``prov`` and ``checksum_parts`` (in place)."""
    attrs_all = item_attributes(ds)
    kg_eligible = np.flatnonzero(np.diff(attrs_all.indptr) > 0).astype(np.int64)
    attrs = attrs_all[kg_eligible]
    anchor_items = np.setdiff1d(kg_eligible, text_eligible) if text_eligible is not None else kg_eligible
    kg_anchor_rows = np.searchsorted(kg_eligible, anchor_items)
    checksum_parts.append(storage.sha256_text(str(ds.n_entities), np.ascontiguousarray(ds.kg, dtype=np.int64).tobytes().hex()))
    prov.update(kg_items=int(len(kg_eligible)), kg_anchors=int(len(anchor_items)),
                kg_attributes="KG neighbour entities (both directions); positives = top-n Jaccard > 0, negatives = random with Jaccard 0")
    if text_eligible is None:
        prov["items_with_metadata"] = int(len(kg_eligible))
    return _KgSide(attrs, kg_eligible, kg_anchor_rows)


def _compute_chunks(ds, text: _TextSide | None, kg: _KgSide | None, n, candidates, negative_candidates, entropy, batch_size,
                    cache, show_progress, parts_dir: Path | None, prov: dict) -> tuple[list[dict], PairScoreMemo | None]:
    """All anchors' pairs, ``ANCHOR_CHUNK`` anchors at a time, each chunk checkpointed under
    ``parts_dir`` (resumed when present): text chunks first, then KG chunks."""
    from tqdm.auto import tqdm

    chunks: list[dict] = []
    kg_anchor_rows = kg.anchor_rows if kg is not None else np.zeros(0, dtype=np.int64)
    total = (prov["items_with_metadata"] if text is not None else 0) + len(kg_anchor_rows)
    bar = tqdm(total=total, unit="anchor", desc=f"pairs [{ds.name} {prov['template'] or ''} {prov['mode']}]", disable=not show_progress)
    # The cross-encoder is the slow part: a second bar counts its pairs batch by batch.
    pair_bar = tqdm(total=0, unit="pair", desc="cross-encoder", position=1, leave=False,
                    disable=not show_progress or text is None or prov["mode"] == "bi-encoder")
    memo = None
    try:
        if text is not None:
            memo = _text_chunks(text, n, candidates, negative_candidates, entropy, batch_size, cache, show_progress, parts_dir,
                                prov, chunks, bar, pair_bar)
        for ci, start in enumerate(range(0, len(kg_anchor_rows), ANCHOR_CHUNK)):
            rows = kg_anchor_rows[start : start + ANCHOR_CHUNK]
            part = parts_dir / f"kg-{ci:05d}.npz" if parts_dir else None
            done = _load_part(part) if part is not None and part.is_file() else None
            if done is None:
                a, b, label, score = kg_chunk_pairs(kg.attrs, kg.kg_eligible, rows, n, entropy)
                order = np.lexsort((-label, a), axis=0)  # group by anchor, positives first (kept best-first)
                done = {"anchor": a[order], "other": b[order], "label": label[order], "score": score[order]}
                if part is not None:
                    _save_part(part, **done)
            chunks.append(done)
            bar.update(len(rows))
    finally:
        pair_bar.close()
        bar.close()
    return chunks, memo


def _text_chunks(text: _TextSide, n, candidates, negative_candidates, entropy, batch_size, cache, show_progress,
                 parts_dir: Path | None, prov: dict, chunks: list, bar, pair_bar) -> PairScoreMemo:
    """Append the text sampler's chunks to ``chunks``; returns the cross-encoder score memo."""
    eligible, codes, uniques, cross = text.eligible, text.codes, text.uniques, text.cross
    m = len(eligible)
    vec_u, _, enc_info = _encode_sentences(uniques, text.bi, batch_size, cache, show_progress)
    # exact integer-valued dot products: the ranking cannot depend on which BLAS kernel
    # (chunk shape, threads) computed a score, and identical sentences tie exactly
    vec_fixed, bi_scale = fixed_point(vec_u)
    vec = vec_fixed[codes]  # [m, D]
    memo = PairScoreMemo(len(uniques))
    score_fn = None
    if cross is not None:
        def score_fn(uq, ud):
            pair_bar.total += len(uq)
            pair_bar.refresh()
            if isinstance(cross, CrossEncoderModel):
                return cross.score(uniques[uq].tolist(), uniques[ud].tolist(), batch_size=batch_size, progress=pair_bar)
            out = cross.score(uniques[uq].tolist(), uniques[ud].tolist(), batch_size=batch_size)
            pair_bar.update(len(uq))
            return out
    for ci, start in enumerate(range(0, m, ANCHOR_CHUNK)):
        rows = np.arange(start, min(start + ANCHOR_CHUNK, m))
        part = parts_dir / f"text-{ci:05d}.npz" if parts_dir else None
        done = _load_part(part) if part is not None and part.is_file() else None
        if done is None:
            other, score = _text_chunk(rows, eligible, vec, bi_scale, codes, n, text.mode, candidates, negative_candidates, memo,
                                       score_fn, entropy)
            done = {"anchor": np.repeat(eligible[rows], 2 * n), "other": eligible[other].ravel(),
                    "label": np.tile(np.repeat(np.array([1, 0], np.int8), n), len(rows)), "score": score.ravel().astype(np.float32)}
            if part is not None:
                _save_part(part, **done)
        chunks.append(done)
        bar.update(len(rows))
        bar.set_postfix(cross_pairs=memo.scored)
    prov["bi_encoder_cache"] = enc_info
    return memo


def _encode_sentences(uniques: np.ndarray, bi: Encoder, batch_size: int, cache: bool, show_progress: bool):
    return encode_texts_with_info(list(uniques), bi, batch_size=batch_size, cache=cache, show_progress=show_progress)


def positive_overlap(reference: ContentPairs | pd.DataFrame, candidate: ContentPairs | pd.DataFrame, *, tol: float = 1e-4) -> dict:
    """How many of ``reference``'s positives (e.g. exhaustive reranking) ``candidate`` recovers
    (e.g. retrieve-then-rerank): overlap@n averaged over the reference's anchors.

    Returns:
        ``overlap``: mean of ``|P_ref(a) ∩ P_cand(a)| / |P_ref(a)|``;
        ``overlap_tie_aware``: the same, but a candidate positive also counts when its score is
        within ``tol`` (relative) of the reference's n-th best score for that anchor — i.e. it
        is an equally good choice among tied items (meaningful only when both tables were
        scored by the same model);
        ``anchors``: anchors compared.
    """
    ref = reference.table if isinstance(reference, ContentPairs) else reference
    cand = candidate.table if isinstance(candidate, ContentPairs) else candidate
    ref, cand = ref[ref["label"] == 1], cand[cand["label"] == 1]
    n_ref = ref.groupby("anchor").size()
    thr = ref.groupby("anchor")["score"].min()
    hits = ref[["anchor", "other"]].merge(cand[["anchor", "other"]], on=["anchor", "other"]).groupby("anchor").size()
    strict = (hits.reindex(n_ref.index, fill_value=0) / n_ref)
    c = cand.merge(thr.rename("thr").reset_index(), on="anchor")
    good = c["score"] >= c["thr"] - tol * np.maximum(1.0, c["thr"].abs())
    tie = good.groupby(c["anchor"]).sum().reindex(n_ref.index, fill_value=0)
    tie_aware = np.minimum(tie, n_ref) / n_ref
    return {"anchors": int(len(n_ref)), "overlap": float(strict.mean()), "overlap_tie_aware": float(tie_aware.mean())}
