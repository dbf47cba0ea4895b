"""The models' input: 10 s of 32-kHz mono audio as a 1001 x 64 log-mel.

The original computes it with torchlibrosa (n_fft 1024, hop 320, 64 slaney mel bands
50-14000 Hz, 10*log10 power, no top_db); transformers' ClapFeatureExtractor with these
settings gives the same numbers (tests/test_audiosetcaps.py checks it against the
original's output), so no STFT code of our own. Shorter clips are zero-padded to 10 s
(the original pads a batch to its longest clip, 10 s for AudioCaps); longer ones are cut
to their first 10 s (the original takes a random 10 s, which does not reproduce).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr
import torch

SR = 32_000
SECONDS = 10


@lru_cache(maxsize=1)
def _extractor():
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(feature_size=64, sampling_rate=SR, hop_length=320, fft_window_size=1024,
                                frequency_min=50, frequency_max=14000, max_length_s=SECONDS,
                                truncation="rand_trunc", padding="zeros")


def log_mel(waves: Sequence[np.ndarray]) -> torch.Tensor:
    """(batch, 1, 1001, 64) log-mel of 32-kHz clips."""
    fixed = [np.asarray(w, np.float32)[: SR * SECONDS] for w in waves]
    for i, w in enumerate(fixed):
        if len(w) == 0:
            raise ValueError(f"clip {i} has no samples")
    feats = _extractor()(fixed, sampling_rate=SR, return_tensors="pt")
    return feats["input_features"]


def read_32k(path: str | Path, start_s: float = 0.0, end_s: float | None = None) -> np.ndarray:
    """A file span decoded straight to 32 kHz (the pipeline's clips are 16 kHz)."""
    from sonicaps.audio import load_audio

    if end_s is None:
        end_s = start_s + SECONDS
    return load_audio(path, start_s=start_s, end_s=end_s, sample_rate=SR)


def from_16k(audio: np.ndarray) -> np.ndarray:
    """Fallback when the source cannot be read again: upsampled, so nothing above 8 kHz."""
    return soxr.resample(np.asarray(audio, np.float32), 16_000, SR).astype(np.float32)
