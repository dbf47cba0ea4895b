"""Audio and text features for the retrieval towers, cached on disk.

Audio: YAMNet's 1024-d patch embeddings over time (one per 0.48 s) and its clip-level
class probabilities (for the label-name baseline). Text: all-MiniLM-L6-v2 sentence
embeddings. Both are deterministic functions of their input, so they are computed once
and training epochs, evaluation and indexing reuse them.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sonicaps.audio import AudioError, load_audio
from sonicaps.sources import cache_dir

log = logging.getLogger(__name__)
VERSION = "yamnet-emb-v3"  # v2: exact integer kernels on every CPU; v3: the float graph
BATCH = 16


@dataclass
class ClipFeatures:
    patches: np.ndarray  # [n_patches, 1024] float16
    probs: np.ndarray  # [521] float16: max over patches


def span_key(path: Path, start_s: float, end_s: float | None, version: str = VERSION) -> str:
    """A cache key for features of a file span: changes with the file and the version."""
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{start_s}|{end_s}|{version}"
    return hashlib.sha1(raw.encode()).hexdigest()


def _cache_path(key: str) -> Path:
    return cache_dir() / "features" / VERSION / key[:2] / f"{key}.npz"


_yamnet = None


def _model():
    global _yamnet
    if _yamnet is None:
        from sonicaps.backends.builtin.yamnet import Yamnet

        _yamnet = Yamnet()
    return _yamnet


def embed_audio(audios: Sequence[np.ndarray]) -> list[ClipFeatures]:
    """Features of 16 kHz mono arrays (no cache)."""
    probs, patches = _model().predict_with_embeddings(list(audios))
    return [ClipFeatures(e.astype(np.float16), p.max(axis=0).astype(np.float16))
            for p, e in zip(probs, patches, strict=True)]


def audio_features(spans: Sequence[tuple[Path, float, float | None]], progress: bool = True
                   ) -> list[ClipFeatures | None]:
    """Features per (file, start, end); None (and a logged reason) for unreadable audio."""
    out: list[ClipFeatures | None] = [None] * len(spans)
    todo: list[tuple[int, str]] = []
    for i, (path, start, end) in enumerate(spans):
        try:
            key = span_key(Path(path), start, end)
        except OSError as e:
            log.warning("%s: %s", path, e)
            continue
        cached = _cache_path(key)
        if cached.is_file():
            with np.load(cached) as z:
                out[i] = ClipFeatures(z["patches"], z["probs"])
        else:
            todo.append((i, key))
    bar = tqdm(total=len(todo), desc="audio features", unit="clip", disable=not progress or not todo)
    for b in range(0, len(todo), BATCH):
        batch, audios = [], []
        for i, key in todo[b:b + BATCH]:
            path, start, end = spans[i]
            try:
                audio = load_audio(path, start_s=start, end_s=end)
                if len(audio) == 0:
                    raise AudioError(f"{path}: no audio in the span {start}-{end}")
            except (AudioError, OSError, RuntimeError, ValueError) as e:
                log.warning("skipping %s: %s", path, e)
                continue
            batch.append((i, key))
            audios.append(audio)
        if audios:
            for (i, key), feats in zip(batch, embed_audio(audios), strict=True):
                out[i] = feats
                target = _cache_path(key)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.stem}.{os.getpid()}.npz")
                np.savez(tmp, patches=feats.patches, probs=feats.probs)
                tmp.replace(target)
        bar.update(len(todo[b:b + BATCH]))
    bar.close()
    return out


def embed_texts(texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
    """Unit-norm all-MiniLM-L6-v2 embeddings [n, 384] (the same loader as SBERT-sim)."""
    from sonicaps.metrics.sbert import minilm

    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return minilm().encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True).astype(np.float32)


def pad(batch: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack [T_i, D] arrays into [B, T_max, D] float32 and a [B, T_max] validity mask."""
    longest = max(len(x) for x in batch)
    out = np.zeros((len(batch), longest, batch[0].shape[1]), dtype=np.float32)
    mask = np.zeros((len(batch), longest), dtype=bool)
    for i, x in enumerate(batch):
        out[i, : len(x)] = x
        mask[i, : len(x)] = True
    return out, mask
