"""Render a scene design to audio: place every hit, band-limit, set the loudness.

Written with numpy rather than Scaper: Scaper needs soxbindings compiled against libsox and
fails under NumPy 2 (np.Inf), and what SceneCaps needs (placing known hits at known gains)
is a few array additions.

Every scene gets one random low-pass cutoff (4.5-5.4 kHz) over the whole mix: many sources
are 11 kHz game sounds, and without a common band a model could tell the classes apart by
their bandwidth alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.signal import butter, sosfilt

from sonicaps.audio import SAMPLE_RATE
from sonicaps.scenes.design import DURATION_S, Scene

PEAK_MAX = 0.95
NOISE_FLOOR_DBFS = -72.0  # a faint floor: real recordings are never digitally silent
XFADE = SAMPLE_RATE // 50  # 20 ms crossfade where a looped background wraps around


def _take(audio: np.ndarray, offset_s: float, dur_s: float) -> np.ndarray:
    """dur_s of audio from offset_s, wrapping around (with a crossfade) when it runs out."""
    n = int(round(dur_s * SAMPLE_RATE))
    start = int(round(offset_s * SAMPLE_RATE)) % max(len(audio), 1)
    if start + n <= len(audio):
        return audio[start: start + n].copy()
    out = np.empty(0, dtype=np.float32)
    piece = audio[start:]
    while len(out) < n:
        if len(out) and len(piece) > 2 * XFADE and len(out) > XFADE:
            ramp = np.linspace(0, 1, XFADE, dtype=np.float32)
            out[-XFADE:] = out[-XFADE:] * (1 - ramp) + piece[:XFADE] * ramp
            piece = piece[XFADE:]
        out = np.concatenate([out, piece])
        piece = audio
    return out[:n]


def render(scene: Scene, audio_of: Callable[[str], np.ndarray],
           rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The mix as float32 in [-1, 1], and the gain (dB) applied to reach its loudness."""
    n = int(DURATION_S * SAMPLE_RATE)
    mix = np.zeros(n, dtype=np.float64)
    for ev in scene.events:
        src = audio_of(ev.source)
        gain = 10 ** (ev.gain_db / 20)
        for t, off, dur in ev.hits:
            piece = _take(src, off, dur)
            i = int(round(t * SAMPLE_RATE))
            piece = piece[: max(n - i, 0)]
            mix[i: i + len(piece)] += gain * piece
    sos = butter(10, scene.band_hz, fs=SAMPLE_RATE, output="sos")
    mix = sosfilt(sos, mix)
    frames = mix[: n // 160 * 160].reshape(-1, 160)
    db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)
    active = db > db.max() - 30.0
    rms_db = 10 * np.log10(np.mean(10 ** (db[active] / 10)))
    gain_db = scene.loudness_dbfs - rms_db
    peak = np.max(np.abs(mix)) * 10 ** (gain_db / 20)
    if peak > PEAK_MAX:  # keep the loudness target unless it would clip
        gain_db -= 20 * np.log10(peak / PEAK_MAX)
    mix = mix * 10 ** (gain_db / 20)
    mix += rng.standard_normal(n) * 10 ** (NOISE_FLOOR_DBFS / 20)
    return np.clip(mix, -1.0, 1.0).astype(np.float32), float(gain_db)
