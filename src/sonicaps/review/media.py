"""A clip's audio as a small WAV and its spectrogram as a PNG, for the review page.

The page plays the clip, not its whole source file: the span is decoded (any format
sonicaps reads) to 16 kHz mono PCM, which every browser plays and seeks in. Both are
kept for the last few clips, so moving back and forth between clips costs nothing.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from sonicaps.audio import SAMPLE_RATE, load_audio

CACHE_CLIPS = 32
N_FFT, HOP = 512, 320  # 32 ms windows every 20 ms
TOP_DB = 80.0
HEIGHT = 200  # image rows: the lowest 200 bins of 31.25 Hz, 0-6.25 kHz
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@lru_cache(maxsize=CACHE_CLIPS)
def clip_audio(path: Path, start_s: float, end_s: float | None) -> np.ndarray:
    return load_audio(path, start_s=start_s, end_s=end_s)


@lru_cache(maxsize=CACHE_CLIPS)
def wav_bytes(path: Path, start_s: float, end_s: float | None) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, clip_audio(path, start_s, end_s), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@lru_cache(maxsize=CACHE_CLIPS)
def spectrogram_png(path: Path, start_s: float, end_s: float | None) -> bytes:
    """Log-power STFT up to 6.25 kHz (where captioned sounds live; YAMNet stops at
    7.5), low frequencies at the bottom, magma colours."""
    from matplotlib import colormaps
    from PIL import Image

    audio = clip_audio(path, start_s, end_s)
    if len(audio) < N_FFT:
        audio = np.pad(audio, (0, N_FFT - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT), axis=1))[:, :HEIGHT] ** 2  # (time, freq)
    db = 10 * np.log10(np.maximum(power, 1e-12))
    db = np.clip((db - (db.max() - TOP_DB)) / TOP_DB, 0.0, 1.0)
    rgb = (colormaps["magma"](db.T[::-1])[..., :3] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of an HTTP Range header over `size` bytes; None for the whole
    body; ValueError when it cannot be satisfied. Seeking in <audio> sends these."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        return None  # multiple or malformed ranges: send everything, as RFC 9110 allows
    if not m[1]:  # the last N bytes
        first, last = max(0, size - int(m[2])), size - 1
    else:
        first, last = int(m[1]), min(int(m[2]), size - 1) if m[2] else size - 1
    if first >= size or first > last:
        raise ValueError(f"range {header!r} outside {size} bytes")
    return first, last
