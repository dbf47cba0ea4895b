"""The released models as pipeline backends.

`[write] backend = "audiosetcaps"`: the HTSAT-BART captioner captions each clip from its
audio (one batched generate per batch; a retry widens the beam). `[check] backend =
"audiosetcaps"`: the HTSAT-RoBERTa retrieval model scores captions against the audio,
the recipe's CLAP role. Both read the clip's span of its source file again at 32 kHz
(the pipeline decodes at 16 kHz, which would cut everything above 8 kHz).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sonicaps.audiosetcaps.frontend import from_16k, read_32k
from sonicaps.audiosetcaps.models import HtsatBart, HtsatRoberta
from sonicaps.backends.base import BadOutput
from sonicaps.backends.hf.common import place
from sonicaps.clip import Answers, Clip

CACHE_CLIPS = 4096  # audio vectors kept per clip: the check scores a clip several times


def clip_audio(clip: Clip) -> np.ndarray:
    try:
        return read_32k(clip.source, clip.start_s, clip.end_s)
    except (OSError, RuntimeError, ValueError):  # source gone or not a file: use what was decoded
        return from_16k(clip.audio)


def _place(model: torch.nn.Module, device: str | None, dtype: str) -> torch.nn.Module:
    return place(model.to(dtype=getattr(torch, dtype)), device, None)


def _name(spec: str) -> str:
    return Path(spec).name if Path(spec).is_file() else spec


class AudioSetCapsWriter:
    def __init__(self, checkpoint: str = "audiosetcaps-captioner", text_model: str = "facebook/bart-base",
                 device: str | None = None, dtype: str = "float32", beams: int | None = None) -> None:
        self.model = _place(HtsatBart.from_checkpoint(checkpoint, text_model), device, dtype)
        self.beams = beams or self.model.beam_size
        self.model_id = f"audiosetcaps:{_name(checkpoint)}"

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        captions = self.model.caption([clip_audio(c) for c in clips], beams=self.beams + 2 * attempt)
        if any(not c for c in captions):
            raise BadOutput("the captioner generated an empty caption")
        return captions


class AudioSetCapsScorer:
    """accept_threshold: none is calibrated for these checkpoints; clips without given
    labels need [pipeline] accept_threshold (benchmarks/calibrate_threshold.py)."""

    def __init__(self, checkpoint: str = "audiosetcaps-retrieval", text_model: str = "roberta-base",
                 device: str | None = None, dtype: str = "float32",
                 accept_threshold: float | None = None) -> None:
        self.model = _place(HtsatRoberta.from_checkpoint(checkpoint, text_model), device, dtype)
        self.accept_threshold = accept_threshold
        self.model_id = f"audiosetcaps:{_name(checkpoint)}"
        self._audio: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def _audio_vectors(self, clips: Sequence[Clip]) -> np.ndarray:
        keys = [(c.id, c.source, c.start_s) for c in clips]
        new = {k: c for k, c in zip(keys, clips, strict=True) if k not in self._audio}
        if new:
            vecs = self.model.audio_vectors([clip_audio(c) for c in new.values()])
            self._audio.update(zip(new, vecs, strict=True))
        out = np.stack([self._audio[k] for k in keys])
        while len(self._audio) > CACHE_CLIPS:
            self._audio.popitem(last=False)
        return out

    def score(self, clips: Sequence[Clip], answers: Sequence[Answers], texts: Sequence[str]) -> np.ndarray:
        audio = self._audio_vectors(clips)
        return np.einsum("ij,ij->i", audio, self.model.text_vectors(texts)).astype(np.float64)
