"""Shared fixtures: real encoded audio made by the tests, and the real default backends."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

# Test helpers (corpora.py, coco_reference.py) live beside the tests.
sys.path.insert(0, str(Path(__file__).parent))

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
def ray_cluster() -> str:
    """One local Ray cluster for the whole session (starting one takes 4-25 s here), shared
    by the Ray engine's tests and the Ray config's run (which joins it). More logical CPUs
    than cores, so that actors holding a CPU each do not starve the decode tasks."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def backends():
    """The default backends, loaded once for the whole session."""
    from sonicaps.pipeline.config import PipelineConfig
    from sonicaps.pipeline.stages import Backends

    return Backends.from_config(PipelineConfig())


@dataclass
class CocoCorpus:
    """An AudioCaps-style corpus with the reference tokenization and scores from pycocoevalcap."""

    candidates: list[str]
    references: list[list[str]]
    tok_candidates: list[str]
    tok_references: list[list[str]]
    scores: dict


@pytest.fixture(scope="session")
def coco_corpus() -> CocoCorpus:
    """400 items x 5 references scored once per session by the Java reference (about a minute)."""
    from coco_reference import java_available, reference_scores, reference_tokenize
    from corpora import corpus

    if not java_available():
        if os.environ.get("CI"):
            pytest.fail("java is missing: scripts/setup.sh installs default-jre-headless")
        pytest.skip("java is missing (run scripts/setup.sh): reference metrics cannot run")
    candidates, references = corpus(400, seed=3)
    flat = candidates + [r for refs in references for r in refs]
    tokens = reference_tokenize(flat)
    tok_candidates, rest = tokens[: len(candidates)], iter(tokens[len(candidates):])
    tok_references = [[next(rest) for _ in refs] for refs in references]
    scores = reference_scores(tok_candidates, tok_references, tokenized=True)
    return CocoCorpus(candidates, references, tok_candidates, tok_references, scores)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory):
    """Tiny random transformers models, built on first use and shared by the session:
    tiny_models_dir(name) -> path (names: tiny_audio_lms.BUILDERS, "chat_lm", "clap")."""
    import tiny_audio_lms
    import tiny_models

    root = tmp_path_factory.mktemp("tiny_hf")
    builders = {**tiny_audio_lms.BUILDERS, "chat_lm": tiny_models.chat_lm, "clap": tiny_models.clap}
    built: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in built:
            built[name] = str(builders[name](root / name))
        return built[name]

    return get
