"""Record Granite Speech's features as transformers computes them with torchaudio, for
tests/test_audio_lms.py (sonicaps' torch-only extractor must give the same numbers).

Run in an environment where torchaudio loads (not the project's: torch 2.13 has no
matching torchaudio), e.g.
    python3.11 -m venv ta && ta/bin/pip install torch==2.9.1 'torchaudio==2.9.*' transformers==5.25.0
    ta/bin/python tests/data/make_granite_speech_features.py
Recorded 2026-12 with torch 2.9.1, torchaudio 2.9.1, transformers 5.25.0.

Inputs (stored as 16-bit PCM in the file, so the test feeds the same samples): a 440-Hz
tone (0.4 s), a 100 Hz-6 kHz chirp (0.9 s) and seeded white noise (1.5 s), sent as one
batch (different lengths: the zero-padding path) and the noise alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio
import transformers
from transformers import GraniteSpeechFeatureExtractor

SR = 16_000
OUT = Path(__file__).with_name("granite_speech_features.npz")


def signals() -> list[np.ndarray]:
    t = [np.arange(int(s * SR)) / SR for s in (0.4, 0.9, 1.5)]
    tone = 0.3 * np.sin(2 * np.pi * 440 * t[0])
    chirp = 0.3 * np.sin(2 * np.pi * (100 * t[1] + (6000 - 100) * t[1] ** 2 / (2 * 0.9)))
    noise = 0.1 * np.random.default_rng(0).standard_normal(len(t[2]))
    return [np.round(x * 32767).astype(np.int16) for x in (tone, chirp, noise)]


def main() -> None:
    pcm = signals()
    audio = [torch.from_numpy(x.astype(np.float32) / 32768) for x in pcm]
    fe = GraniteSpeechFeatureExtractor()  # the released checkpoints' settings are its defaults
    batch = fe(audio)
    alone = fe([audio[2]])
    np.savez_compressed(
        OUT, tone=pcm[0], chirp=pcm[1], noise=pcm[2],
        batch_features=batch["input_features"].numpy(), batch_sizes=np.array(batch["audio_embed_sizes"]),
        batch_mask=batch["input_features_mask"].numpy(), noise_features=alone["input_features"].numpy(),
        versions=np.array([torch.__version__, torchaudio.__version__, transformers.__version__]))
    print(OUT, batch["input_features"].shape, alone["input_features"].shape)


if __name__ == "__main__":
    main()
