"""A small example collection built from real recordings, for the demo and the tests.

Real animal recordings (CC0, fetched from PyPI by `sonicaps.sources`) and speech from
espeak-ng are placed at known times in 10-s (and one 25-s) scenes, written in several
formats. Nothing here is checked into the repository.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from sonicaps.audio import SAMPLE_RATE, load_audio
from sonicaps.sources import fetch_animals

SENTENCES = {
    "male": "The committee will meet again on Thursday morning to review the plans.",
    "female": "Please remember to bring your notes and a pen to the meeting tomorrow.",
}


def speak(text: str, voice: str = "en+m3", speed: int = 150) -> np.ndarray:
    """espeak-ng speech as 16 kHz mono float32."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian: apt-get install espeak-ng; "
                           "scripts/setup.sh installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(out), text], check=True,
                       capture_output=True)
        return load_audio(out)


def animal(name: str) -> np.ndarray:
    return load_audio(fetch_animals() / f"{name}.mp3")


@dataclass(frozen=True)
class Placed:
    label: str  # what the scene holds, for tests
    onset_s: float
    audio: np.ndarray
    gain_db: float = 0.0


def mix(parts: list[Placed], duration_s: float = 10.0, noise_db: float = -60.0,
        seed: int = 0) -> np.ndarray:
    """Sum the parts at their onsets over a faint noise floor, peak-normalised to -1 dBFS."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * SAMPLE_RATE)
    out = rng.standard_normal(n).astype(np.float32) * 10 ** (noise_db / 20)
    for p in parts:
        a = p.audio / max(1e-9, float(np.abs(p.audio).max())) * 10 ** (p.gain_db / 20)
        i = int(p.onset_s * SAMPLE_RATE)
        seg = a[: max(0, n - i)]
        out[i:i + len(seg)] += seg
    return (out / max(1e-9, float(np.abs(out).max())) * 10 ** (-1 / 20)).astype(np.float32)


def scenes() -> dict[str, tuple[list[Placed], float]]:
    """Name -> (parts, duration). Onsets are ground truth for the order tests."""
    male = speak(SENTENCES["male"], "en+m3")
    female = speak(SENTENCES["female"], "en+f3")
    return {
        "dog_then_man": ([Placed("dog", 0.2, animal("dog")[: 4 * SAMPLE_RATE]),
                          Placed("male speech", 5.0, male)], 10.0),
        "woman_speaking": ([Placed("female speech", 1.0, female)], 10.0),
        "rooster_then_duck": ([Placed("rooster", 0.5, animal("rooster")),
                               Placed("duck", 5.0, animal("duck")[: 4 * SAMPLE_RATE])], 10.0),
        "cow": ([Placed("cow", 1.0, animal("cow"))], 10.0),
        "frogs_and_woman_long": ([Placed("frog", 0.0, animal("frog")),
                                  Placed("frog", 6.0, animal("frog")),
                                  Placed("female speech", 13.0, female)], 25.0),
    }


FORMATS = {"dog_then_man": "wav", "woman_speaking": "flac", "rooster_then_duck": "ogg",
           "cow": "mp3", "frogs_and_woman_long": "wav"}


def make_examples(out_dir: str | Path) -> list[Path]:
    """Write the example scenes into out_dir (one file each, mixed formats)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (parts, duration) in scenes().items():
        path = out_dir / f"{name}.{FORMATS[name]}"
        sf.write(path, mix(parts, duration), SAMPLE_RATE)
        paths.append(path)
    return paths
