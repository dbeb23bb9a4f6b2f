"""The generation settings and one batch of LLM decoding: left-padded generate with a stop at the end
of the first paragraph, greedy or seeded sampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# ----------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings. Only those that change the output enter the cache key.

    Attributes:
        max_new_tokens: continuation length cap in tokens (default: 64).
        do_sample: sample instead of greedy decoding (default: ``False``).
        temperature, top_p: sampling settings, used only with ``do_sample`` (default: 1.0, 1.0).
        repetition_penalty: CTRL-style penalty on already generated tokens (default: 1.2).
        no_repeat_ngram_size: forbid repeating any token n-gram (default: 3; 0 = off).
        seed: seeds each sampled batch (with the batch's keys), ignored when greedy (default: 0).
    """

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    repetition_penalty: float = 1.2
    no_repeat_ngram_size: int = 3
    seed: int = 0

    def key_dict(self) -> dict:
        """Parameters that change the raw text (greedy ignores temperature/top_p/seed)."""
        d = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            # Generation stops once every row has finished its first paragraph.
            "stop": "first_paragraph",
        }
        if self.do_sample:
            d.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        return d

def _token_classes(tok, vocab_size: int):
    """Per token id: ``is_nl`` (text has a newline), ``breaks`` (a newline after non-space
    text inside the token, e.g. ``".\\n"``), ``is_ws`` (whitespace only or empty).
    ``bool[vocab_size]`` tensors each."""
    import torch

    # Ids past the tokenizer's vocabulary (padded LM heads) decode to nothing: whitespace-like.
    texts = tok.batch_decode([[i] for i in range(min(len(tok), vocab_size))], skip_special_tokens=False)
    texts += [""] * (vocab_size - len(texts))
    is_nl = torch.tensor(["\n" in t for t in texts], dtype=torch.bool)
    breaks = torch.tensor(["\n" in t.lstrip() for t in texts], dtype=torch.bool)
    is_ws = torch.tensor([not t.strip() for t in texts], dtype=torch.bool)
    return is_nl, breaks, is_ws

def _paragraph_stop(prompt_len: int, classes):
    """A stopping criterion that ends a row once its first paragraph is complete, i.e. a
    newline follows some non-space text. Vectorised over the batch; returns ``bool[batch]``."""
    import torch
    from transformers import StoppingCriteria

    is_nl, breaks, is_ws = classes

    class ParagraphStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_len:]
            if new.shape[1] == 0:
                return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            ids = new.clamp(0, len(is_nl) - 1).cpu()
            content = ~is_ws[ids]
            # content strictly before position j
            seen_before = (torch.cumsum(content.int(), dim=1) - content.int()) > 0
            done = (breaks[ids] | (is_nl[ids] & seen_before)).any(dim=1)
            return done.to(input_ids.device)

    return ParagraphStop()

def _generate_batch(tok, model, prompts: list[str], params: GenerationParams, classes, seed: int | None):
    """Raw continuations and new-token counts for one batch (``list[str]``, ``int64[B]``)."""
    import torch
    from transformers import GenerationConfig, StoppingCriteriaList

    device = next(model.parameters()).device
    enc = tok(prompts, return_tensors="pt", padding=True).to(device)
    prompt_len = enc["input_ids"].shape[1]
    base = model.generation_config
    gc = GenerationConfig(
        max_new_tokens=params.max_new_tokens,
        do_sample=params.do_sample,
        repetition_penalty=params.repetition_penalty,
        no_repeat_ngram_size=params.no_repeat_ngram_size,
        pad_token_id=tok.pad_token_id,
        eos_token_id=base.eos_token_id if base.eos_token_id is not None else tok.eos_token_id,
        bos_token_id=base.bos_token_id,
        **({"temperature": params.temperature, "top_p": params.top_p} if params.do_sample else {}),
    )
    stop = StoppingCriteriaList([_paragraph_stop(prompt_len, classes)])
    # Sampling needs torch's RNG; fork it so the caller's global state is left untouched.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            out = model.generate(**enc, generation_config=gc, stopping_criteria=stop)
    new = out[:, prompt_len:]
    texts = tok.batch_decode(new, skip_special_tokens=True)
    n_new = (new != tok.pad_token_id).sum(dim=1).cpu().numpy().astype(np.int64)
    return texts, n_new
