"""Sources as the mixer wants them: 16 kHz mono float32, no DC, no silent ends, equal loudness.

Levels in a scene's timeline are relative to this common loudness (active RMS of
REFERENCE_DBFS), so a gain of -6 dB means the same thing for a whisper-quiet recording
and a clipped game explosion. Prepared arrays are cached as .npy files.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from sonicaps.audio import SAMPLE_RATE, load_audio
from sonicaps.scenes.catalog import Source
from sonicaps.scenes.fetch import source_file
from sonicaps.sources import cache_dir

VERSION = "v1"  # bump when prepare() changes, so stale caches are not reused
REFERENCE_DBFS = -20.0
TRIM_DB = -60.0  # ends quieter than this (relative to the peak) are cut; MIDI renders ring on
FRAME = SAMPLE_RATE // 100


class EmptySource(ValueError):
    pass


def _frame_db(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // FRAME
    frames = audio[: n * FRAME].reshape(n, FRAME)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def prepare(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    audio = audio - audio.mean()
    if len(audio) < FRAME or not np.any(audio):
        raise EmptySource("the source is silent or shorter than 10 ms")
    db = _frame_db(audio)
    loud = np.flatnonzero(db > db.max() + TRIM_DB)
    audio = audio[loud[0] * FRAME: (loud[-1] + 1) * FRAME]
    db = _frame_db(audio)
    active = db > db.max() - 30.0  # "active RMS": frames within 30 dB of the loudest
    rms_db = 10 * np.log10(np.mean(10 ** (db[active] / 10)))
    audio = audio * 10 ** ((REFERENCE_DBFS - rms_db) / 20)
    fade = min(FRAME // 2, len(audio) // 4)  # 5 ms fades: cut ends never click
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    audio[:fade] *= ramp
    audio[len(audio) - fade:] *= ramp[::-1]
    return audio.astype(np.float32)


def prepared_path(src: Source) -> Path:
    """Keyed by what the audio is, not only the id: two manifests may reuse an id."""
    key = f"{src.package}|{src.path}|{src.md5}"
    if src.local:
        st = Path(src.path).stat()
        key += f"|{st.st_size}|{st.st_mtime_ns}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    name = f"{src.id.replace('/', '__')}-{digest}.npy"
    return cache_dir() / "scenecaps" / "prepared" / VERSION / name


def load_prepared(src: Source) -> np.ndarray:
    path = prepared_path(src)
    if path.is_file():
        return np.load(path)
    audio = prepare(load_audio(source_file(src)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, audio)
    tmp.replace(path)
    return audio
