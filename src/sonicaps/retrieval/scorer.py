"""A trained retrieval model as the pipeline's check stage (`[check] backend = "retrieval"`).

Unlike the text-similarity stand-in, it compares the caption with the audio itself (its
YAMNet patch embeddings through the trained audio tower), not with the detector's labels.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sonicaps.clip import Answers, Clip
from sonicaps.retrieval.features import embed_audio, embed_texts
from sonicaps.retrieval.model import DualEncoder

CACHE_CLIPS = 4096  # audio vectors kept, so retries of a clip's caption skip YAMNet
PACKAGED = Path(__file__).resolve().parents[1] / "data" / "retrieval"
FALLBACK_THRESHOLD = 0.3


class RetrievalScorer:
    """run: a train-retrieval run directory; default: the model sonicaps ships (trained on
    SceneCaps). accept_threshold comes from the run's config ("meta.accept_threshold",
    written by calibration) and applies to clips without given labels."""

    def __init__(self, run: str | None = None) -> None:
        path = Path(run) if run else PACKAGED
        self._model = DualEncoder.load(path)
        meta = json.loads((path / "config.json").read_text()).get("meta", {})
        self.accept_threshold = float(meta.get("accept_threshold") or FALLBACK_THRESHOLD)
        self.model_id = "retrieval(sonicaps-scenecaps-v1)" if not run else f"retrieval({path.resolve().name})"
        self._audio: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def _audio_vectors(self, clips: Sequence[Clip]) -> np.ndarray:
        keys = [(c.id, c.source, c.start_s, c.end_s) for c in clips]
        new = {k: c for k, c in zip(keys, clips, strict=True) if k not in self._audio}
        if new:
            feats = embed_audio([c.audio for c in new.values()])
            vecs = self._model.audio_vectors([f.patches for f in feats])
            for k, v in zip(new, vecs, strict=True):
                self._audio[k] = v
        out = np.stack([self._audio[k] for k in keys])
        for k in keys:
            self._audio.move_to_end(k)
        while len(self._audio) > CACHE_CLIPS:
            self._audio.popitem(last=False)
        return out

    def score(self, clips: Sequence[Clip], answers: Sequence[Answers],
              texts: Sequence[str]) -> np.ndarray:
        audio = self._audio_vectors(clips)
        text = self._model.text_vectors(embed_texts(list(texts)))
        return np.einsum("ij,ij->i", audio, text)
