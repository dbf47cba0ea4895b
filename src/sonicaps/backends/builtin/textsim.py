"""The default check-stage scorer: text similarity, a stand-in for CLAP.

No CLAP weights can be had offline, so the audio side is represented by what the
asker detected: the embedding of the clip's top sound labels, weighted by their
probabilities (all-MiniLM-L6-v2). A caption scores high when it talks about the
detected sounds. This checks consistency with the detector, not with the audio
itself; swap in a real audio-text model where one is available.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from sonicaps.clip import Answers, Clip
from sonicaps.weights import MINILM, locate

TOP_LABELS = 5
LABEL_MIN = 0.1


class TextSimScorer:
    # For clips without given labels: the equal-error point of own vs foreign captions on
    # labelled mixes (benchmarks/calibrate_threshold.py --config configs/textsim-check.toml).
    accept_threshold = 0.42

    def __init__(self, device: str = "cpu", batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model_dir = locate(MINILM).parent
        self._model = SentenceTransformer(str(model_dir), device=device)
        self._batch = batch_size
        self._cache: dict[str, np.ndarray] = {}
        self.model_id = f"textsim({MINILM.dist})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._model.encode(list(texts), batch_size=self._batch,
                                  normalize_embeddings=True, convert_to_numpy=True)

    def _label_vectors(self, labels: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(labels) if t not in self._cache]
        if missing:
            for t, v in zip(missing, self.embed(missing), strict=True):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in labels])

    def audio_vectors(self, answers: Sequence[Answers]) -> np.ndarray:
        """One unit vector per clip standing for its audio."""
        out = []
        for a in answers:
            labels = [(n, p) for n, p in a.evidence.get("labels", [])[:TOP_LABELS] if p >= LABEL_MIN]
            if labels:
                vecs = self._label_vectors([n for n, _ in labels])
                v = (np.array([p for _, p in labels])[:, None] * vecs).sum(axis=0)
            else:  # another asker's answers: the sound description stands for the audio
                v = self.embed([a.texts[0]])[0]
            out.append(v / max(np.linalg.norm(v), 1e-9))
        return np.stack(out)

    def score(self, clips: Sequence[Clip], answers: Sequence[Answers],
              texts: Sequence[str]) -> np.ndarray:
        audio = self.audio_vectors(answers)
        text = self.embed(texts)
        return np.einsum("ij,ij->i", audio, text)
