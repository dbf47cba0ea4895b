"""Granite Speech's feature extractor without torchaudio.

transformers' `GraniteSpeechFeatureExtractor` computes its log-mel features with
`torchaudio.transforms.MelSpectrogram`, and refuses to build without torchaudio. A
torchaudio wheel only loads beside the exact torch it was built for, and PyPI's newest
(2.11.1, 2026-12) is built for torch 2.11: the pinned torch 2.13 has no torchaudio. Where
torchaudio is missing, this subclass computes the same spectrogram with `torch.stft` and
transformers' own `mel_filter_bank` (HTK scale, no normalisation, as torchaudio's
defaults), and keeps the rest of the extractor (log compression, per-clip normalisation,
frame stacking, token counts) from transformers.
It matches transformers' torchaudio features to 8e-6 (float32 rounding: torchaudio builds its
filter bank in float32, transformers in float64) on references recorded with torchaudio 2.9
(tests/data/granite_speech_features.npz, made by tests/data/make_granite_speech_features.py).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import GraniteSpeechFeatureExtractor
from transformers.audio_utils import mel_filter_bank
from transformers.feature_extraction_sequence_utils import SequenceFeatureExtractor
from transformers.feature_extraction_utils import BatchFeature


class MelSpectrogram(torch.nn.Module):
    """torchaudio.transforms.MelSpectrogram with its defaults (Hann window, power 2, centred
    frames with reflect padding, 0 Hz to Nyquist, HTK mel scale, no filter normalisation)."""

    def __init__(self, sample_rate: int, n_fft: int, win_length: int, hop_length: int, n_mels: int) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        fb = mel_filter_bank(num_frequency_bins=n_fft // 2 + 1, num_mel_filters=n_mels, min_frequency=0.0,
                             max_frequency=float(sample_rate // 2), sampling_rate=sample_rate, norm=None,
                             mel_scale="htk")
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.register_buffer("filters", torch.from_numpy(fb).float(), persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """(batch, samples) -> (batch, n_mels, frames)"""
        spec = torch.stft(audio, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=True, pad_mode="reflect", normalized=False,
                          onesided=True, return_complex=True).abs().pow(2.0)
        return torch.matmul(spec.transpose(-1, -2), self.filters).transpose(-1, -2)


class TorchGraniteSpeechFeatureExtractor(GraniteSpeechFeatureExtractor):
    """GraniteSpeechFeatureExtractor with the torch spectrogram above in place of torchaudio's."""

    def __init__(self, sampling_rate: int = 16000, n_fft: int = 512, win_length: int = 400,
                 hop_length: int = 160, n_mels: int = 80, projector_window_size: int = 15,
                 projector_downsample_rate: int = 5, padding_value: float = 0.0, **kwargs: Any) -> None:
        # The parent's __init__ asks for torchaudio: set the same attributes here.
        feature_size = kwargs.pop("feature_size", None) or n_mels
        SequenceFeatureExtractor.__init__(self, feature_size=feature_size, sampling_rate=sampling_rate,
                                          padding_value=padding_value, **kwargs)
        self.melspec_kwargs = {"sample_rate": sampling_rate, "n_fft": n_fft, "win_length": win_length,
                               "hop_length": hop_length, "n_mels": n_mels}
        self.mel_filters = MelSpectrogram(**self.melspec_kwargs)
        self.projector_window_size = projector_window_size
        self.projector_downsample_rate = projector_downsample_rate

    def __call__(self, audios: Any, device: str | None = "cpu") -> BatchFeature:
        batched, lengths = self._get_audios_and_audio_lengths(audios)
        sizes = self._get_num_audio_features(lengths)
        return BatchFeature(data={
            "input_features": self._extract_mel_spectrograms(batched, device=device),
            "audio_embed_sizes": sizes,
            "input_features_mask": torch.arange(max(sizes)).view(1, -1) < torch.tensor(sizes).view(-1, 1),
        })

    def _extract_mel_spectrograms(self, audio: torch.Tensor, device: str | None = "cpu") -> torch.Tensor:
        # The parent's computation after its torchaudio check, unchanged.
        melspec = self.mel_filters.to(device) if device is not None else self.mel_filters
        audio = audio.to(device) if device is not None else audio
        with torch.no_grad():
            logmel = melspec(audio.float()).transpose(-1, -2).clip_(min=1e-10).log10_()
            mx = logmel.amax(dim=(-2, -1), keepdim=True)
            logmel = torch.maximum(logmel, mx - 8.0).div_(4).add_(1)
            if logmel.shape[1] % 2 == 1:  # an odd last frame is dropped
                logmel = logmel[:, :-1]
            return logmel.reshape(audio.shape[0], -1, 2 * logmel.shape[-1])


# Feature extractors that need torchaudio -> their torch-only stand-ins.
TORCH_ONLY = {"GraniteSpeechFeatureExtractor": TorchGraniteSpeechFeatureExtractor}
