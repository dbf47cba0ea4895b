"""Frame features for the captioning models, computed once per clip and cached on disk.

Kinds (each gives a [frames, dims] array per clip):
- `mfcc`: as in the AudioCaps paper, librosa MFCCs with a 1024-sample window and 360
  samples of overlap (hop 664: 241 frames per 10-s clip), 40 coefficients.
- `logmel`: YAMNet's 64-band log-mel front end, averaged over 4 frames (40 ms steps).
- `yamnet`: YAMNet's 1024-d patch embeddings, one per 0.48 s: the high-level feature, in
  place of the paper's VGGish fc2 (no VGGish weights can be installed offline).
- `yamnet-mid`: YAMNet's block-9 activations, one per 0.16 s: the mid-level feature, in
  place of VGGish conv4.
- `npy:DIR`: features the user computed elsewhere (e.g. VGGish), `DIR/<clip id>.npy`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sonicaps.audio import SAMPLE_RATE, AudioError, load_audio
from sonicaps.retrieval.features import audio_features, span_key
from sonicaps.sources import cache_dir

log = logging.getLogger(__name__)
KINDS = ("mfcc", "logmel", "yamnet", "yamnet-mid")
VERSION = {
    "mfcc": "mfcc40-w1024-h664-v1",
    "logmel": "yamnet-logmel-p4-v1",
    "yamnet": "yamnet-emb-v3",  # cached by retrieval.features
    "yamnet-mid": "yamnet-block9-v1",
}
MFCC_WINDOW, MFCC_HOP, MFCC_COEFFS = 1024, 1024 - 360, 40
LOGMEL_POOL = 4


def check_kind(kind: str) -> None:
    if kind in KINDS or kind.startswith("npy:"):
        return
    raise ValueError(f"unknown feature kind {kind!r}; choose from {', '.join(KINDS)} or npy:DIR")


_mid = None


def compute(kind: str, audio: np.ndarray) -> np.ndarray:
    """[frames, dims] features of 16 kHz mono audio (no cache)."""
    global _mid
    if kind == "mfcc":
        import librosa

        return librosa.feature.mfcc(
            y=audio, sr=SAMPLE_RATE, n_mfcc=MFCC_COEFFS, n_fft=MFCC_WINDOW, hop_length=MFCC_HOP
        ).T.astype(np.float32)
    if kind == "logmel":
        from sonicaps.backends.builtin.yamnet import log_mel

        lm = log_mel(audio)
        n = len(lm) // LOGMEL_POOL * LOGMEL_POOL
        return lm[:n].reshape(-1, LOGMEL_POOL, lm.shape[1]).mean(axis=1)
    if kind == "yamnet":
        from sonicaps.retrieval.features import embed_audio

        return embed_audio([audio])[0].patches.astype(np.float32)
    if kind == "yamnet-mid":
        if _mid is None:
            from sonicaps.backends.builtin.yamnet import YamnetMidLevel

            _mid = YamnetMidLevel()
        return _mid.features(audio)
    raise ValueError(f"feature kind {kind!r} cannot be computed from audio")


def _cache_path(kind: str, path: Path, start_s: float, end_s: float | None) -> Path:
    key = span_key(path, start_s, end_s, VERSION[kind])
    return cache_dir() / "captioning-features" / VERSION[kind] / key[:2] / f"{key}.npy"


def clip_features(
    kind: str, clips: Sequence[tuple[str, Path, float, float | None]], progress: bool = True
) -> list[np.ndarray | None]:
    """Features per (id, file, start, end); None, with the reason logged, for a clip
    whose audio cannot be read (training skips it)."""
    check_kind(kind)
    out: list[np.ndarray | None] = [None] * len(clips)
    if kind.startswith("npy:"):
        folder = Path(kind[4:])
        for i, (cid, *_) in enumerate(clips):
            f = folder / f"{cid}.npy"
            if f.is_file():
                x = np.load(f).astype(np.float32)
                out[i] = x[None] if x.ndim == 1 else x
            else:
                log.warning("no %s for clip %s", f, cid)
        return out
    if kind == "yamnet":  # the retrieval features: one cache, batched YAMNet runs
        found = audio_features([(Path(p), s, e) for _, p, s, e in clips], progress)
        return [None if f is None else f.patches.astype(np.float32) for f in found]
    for i, (cid, path, start, end) in enumerate(
        tqdm(clips, desc=f"{kind} features", unit="clip", disable=not progress, mininterval=1.0)
    ):
        try:
            cached = _cache_path(kind, Path(path), start, end)
        except OSError as e:
            log.warning("skipping clip %s: %s", cid, e)
            continue
        if cached.is_file():
            out[i] = np.load(cached)
            continue
        try:
            audio = load_audio(path, start_s=start, end_s=end)
        except (AudioError, OSError, RuntimeError, ValueError) as e:
            log.warning("skipping clip %s: %s", cid, e)
            continue
        x = compute(kind, audio).astype(np.float32)
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.npy")
        np.save(tmp, x)
        tmp.replace(cached)
        out[i] = x
    return out
