"""The check stage on CLAP (transformers' ClapModel): cosine similarity of audio and text.

Unfused checkpoints (the default laion/clap-htsat-unfused) take one 10-s crop: clips are
resampled to 48 kHz and fed with truncation="rand_trunc" (the feature extractor's default
is the fused variant's input). Audio embeddings are kept per clip id, since the check
scores the same clip several times (its label string, then each caption attempt).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import soxr

from sonicaps.backends.hf.common import load_options, model_device, place
from sonicaps.clip import Answers, Clip

SR = 16_000
CACHE_CLIPS = 4096


class ClapScorer:
    def __init__(self, model: str = "laion/clap-htsat-unfused", dtype: str = "float32",
                 device: str | None = None, accept_threshold: float | None = None) -> None:
        import torch
        from transformers import ClapModel, ClapProcessor

        self.processor = ClapProcessor.from_pretrained(model)
        self.model = place(ClapModel.from_pretrained(model, **load_options(dtype)), device, None)
        self.sr = int(self.processor.feature_extractor.sampling_rate)
        # No calibrated threshold ships for CLAP: clips without given labels need one from
        # the config ([pipeline] accept_threshold, see benchmarks/calibrate_threshold.py).
        self.accept_threshold = accept_threshold
        self.model_id = f"transformers:{model}"
        self._torch = torch
        self._audio: OrderedDict[str, np.ndarray] = OrderedDict()

    @staticmethod
    def _vectors(out: object) -> object:
        # transformers 5 returns a model output (projection in pooler_output); 4.x a tensor.
        return out if hasattr(out, "shape") else out.pooler_output

    def audio_vectors(self, clips: Sequence[Clip]) -> np.ndarray:
        missing = [c for c in clips if c.id not in self._audio]
        if missing:
            audio = [soxr.resample(c.audio, SR, self.sr) if self.sr != SR else c.audio for c in missing]
            feats = self.processor.feature_extractor(audio, sampling_rate=self.sr, truncation="rand_trunc",
                                                     padding="repeatpad", return_tensors="pt")
            with self._torch.inference_mode():
                vecs = self._vectors(self.model.get_audio_features(
                    input_features=feats["input_features"].to(model_device(self.model))))
            vecs = self._torch.nn.functional.normalize(vecs.float(), dim=-1).cpu().numpy()
            for clip, vec in zip(missing, vecs, strict=True):
                self._audio[clip.id] = vec
                while len(self._audio) > CACHE_CLIPS:
                    self._audio.popitem(last=False)
        return np.stack([self._audio[c.id] for c in clips])

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        tok = self.processor.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with self._torch.inference_mode():
            vecs = self._vectors(self.model.get_text_features(**tok.to(model_device(self.model))))
        return self._torch.nn.functional.normalize(vecs.float(), dim=-1).cpu().numpy()

    def score(self, clips: Sequence[Clip], answers: Sequence[Answers], texts: Sequence[str]) -> np.ndarray:
        return np.einsum("ij,ij->i", self.audio_vectors(clips), self.text_vectors(texts)).astype(np.float64)
