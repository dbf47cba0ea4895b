"""Shared fixtures: real encoded audio made by the tests, and the real default backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16_000


def tone(freq: float = 440.0, seconds: float = 2.0, sr: int = SR, channels: int = 1,
         amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def sweep(seconds: float = 10.0, f0: float = 100.0, f1: float = 6000.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds))
    return (0.3 * np.sin(phase)).astype(np.float32)


def write(path: Path, audio: np.ndarray, sr: int = SR) -> Path:
    sf.write(path, audio, sr)
    return path


@pytest.fixture(scope="session")
def examples(tmp_path_factory) -> Path:
    """The demo's example scenes (real animal recordings + espeak-ng speech)."""
    from sonicaps.examples import make_examples

    d = tmp_path_factory.mktemp("examples")
    make_examples(d)
    return d


@pytest.fixture(scope="session")
def backends():
    """The default backends, loaded once for the whole session."""
    from sonicaps.pipeline.config import PipelineConfig
    from sonicaps.pipeline.stages import Backends

    return Backends.from_config(PipelineConfig())
