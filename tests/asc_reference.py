"""The fixed inputs of the AudioSetCaps parity tests, shared with the script that recorded
the original code's outputs (tests/data/audiosetcaps/README.md says how).

Weights are filled by a seeded rule per key, so the original model and sonicaps' copy get
the same numbers without a checkpoint file: learned tensors from N(0, 0.02) (norm scales
around 1), batch-norm statistics near (0, 1). The audio is two clips at 32 kHz: 10 s of
tones and noise, and 6 s of a chirp (zero-padded to 10 s, as the original's collate pads
a batch).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

SR = 32_000
TEXTS = ["a dog barks while a car passes by", "Rain falls on a roof.", "the clip showcases a siren"]


def fake_tensor(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    if key.endswith("num_batches_tracked"):
        return torch.tensor(0)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if len(shape) == 1 and key.endswith("weight"):  # layer/batch-norm scales
        return 1.0 + 0.1 * torch.randn(shape, generator=g)
    return 0.02 * torch.randn(shape, generator=g)


# BART ties its token embeddings and output layer: a real checkpoint holds one matrix
# under four names, so the fake one does too.
TIED = ("model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
        "lm_head.weight")


def tie(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    shared = [k for k in sd if k.endswith(TIED[0])]
    for k in [k for k in sd if k.endswith(TIED)] if shared else []:
        sd[k] = sd[shared[0]]
    return sd


def fake_state_dict(shapes: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    return tie({k: fake_tensor(k, tuple(s)) for k, s in shapes.items()})


def reference_audio() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(10 * SR) / SR
    a = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3100 * t)
         + 0.05 * rng.standard_normal(len(t)))
    t6 = np.arange(6 * SR) / SR
    b = 0.4 * np.sin(2 * np.pi * (200 + 900 * t6) * t6) * np.exp(-0.2 * t6)
    return [a.astype(np.float32), b.astype(np.float32)]
