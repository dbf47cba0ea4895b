"""HTSAT-BART (captioning) and HTSAT-RoBERTa (retrieval) on transformers' own classes.

HTSAT is transformers' ClapAudioModel with its default config (spec 256, patch 4, embed
96, depths 2-2-6-2, window 8): the original's audio tower exactly, once the keys are
renamed (checkpoint.py). The captioner feeds BART's encoder HTSAT's fine-grained output:
the last hidden state averaged over frequency (32 time steps), each step repeated 32
times (1024 x 768), through a linear layer. The retrieval model projects HTSAT's pooled
output and RoBERTa's first token each through Linear-ReLU-Linear to a unit vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoTokenizer,
    BartForConditionalGeneration,
    ClapAudioConfig,
    ClapAudioModel,
    RobertaModel,
)

from sonicaps.audiosetcaps import checkpoint
from sonicaps.audiosetcaps.frontend import log_mel

MAX_TOKENS = 30  # both models' text length (the original tokenizes with max_length 30)
# Generation as in the original eval: beams from the checkpoint, max_length 30, min_length 2;
# the rest is what its generate() inherits from facebook/bart-base's config.json.
GENERATION = {"max_length": 30, "min_length": 2, "repetition_penalty": 1.0, "no_repeat_ngram_size": 3,
              "forced_bos_token_id": 0, "forced_eos_token_id": 2, "early_stopping": True,
              "length_penalty": 1.0, "decoder_start_token_id": 2}
LABEL_SMOOTHING = 0.1  # the original training loss


def _htsat() -> ClapAudioModel:
    return ClapAudioModel(ClapAudioConfig())


def fine_grained(last_hidden: torch.Tensor) -> torch.Tensor:
    """ClapAudioModel's last hidden state (batch, 768, 2, 32) -> (batch, 1024, 768)."""
    steps = last_hidden.mean(dim=2).transpose(1, 2)  # (batch, 32, 768)
    return steps.repeat_interleave(32, dim=1)


def _read(spec: str | dict, kind: str) -> dict:
    """The checkpoint dict (spec: a file, a published name, or what checkpoint.read gave)."""
    ckpt = spec if isinstance(spec, dict) else checkpoint.read(spec)
    if checkpoint.kind(ckpt["model"]) != kind:
        other = "a retrieval checkpoint, not a captioner" if kind == checkpoint.CAPTIONER else \
            "a captioning checkpoint, not a retrieval model"
        raise ValueError(f"{ckpt['path']}: {other}")
    return ckpt


def _split(state: dict, prefix: str) -> tuple[dict, dict]:
    inside = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    outside = {k: v for k, v in state.items() if not k.startswith(prefix)}
    return inside, outside


class HtsatBart(nn.Module):
    """The captioner. `text_model`: a Hugging Face id or folder with BART's config and
    tokenizer (facebook/bart-base for the released checkpoints)."""

    def __init__(self, text_model: str = "facebook/bart-base") -> None:
        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(text_model)
        config = AutoConfig.from_pretrained(text_model)
        self.audio = _htsat()
        self.enc_to_dec_proj = nn.Linear(768, config.d_model)
        self.decoder = BartForConditionalGeneration(config)
        self.text_model = text_model
        self.beam_size = 3
        self.extra: dict[str, torch.Tensor] = {}  # original-layout keys kept for saving
        self.epoch = 0

    @classmethod
    def from_checkpoint(cls, spec: str | dict, text_model: str = "facebook/bart-base") -> HtsatBart:
        ckpt = _read(spec, checkpoint.CAPTIONER)
        state = ckpt["model"]
        model = cls(text_model)
        htsat, rest = _split(state, "encoder.audio_enc.")
        weights = {f"audio.{k}": v for k, v in checkpoint.htsat_to_clap(htsat).items()} | rest
        checkpoint.load_weights(model, weights, ckpt["path"])
        model.extra = {f"encoder.audio_enc.{k}": v for k, v in htsat.items()
                       if checkpoint.DERIVED.search("." + k)}
        model.beam_size = int(ckpt.get("beam_size") or 3)
        model.epoch = int(ckpt.get("epoch") or 0)
        return model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        mel = mel.to(self.device, next(self.parameters()).dtype)
        hidden = self.audio(input_features=mel).last_hidden_state
        return self.enc_to_dec_proj(fine_grained(hidden))

    def _encoder_outputs(self, mel: torch.Tensor):
        return self.decoder.model.encoder(inputs_embeds=self.encode(mel), return_dict=True)

    @torch.inference_mode()
    def generate_ids(self, waves: Sequence[np.ndarray], beams: int | None = None) -> torch.Tensor:
        enc = self._encoder_outputs(log_mel(waves))
        n = enc.last_hidden_state.shape[0]
        start = torch.full((n, 1), GENERATION["decoder_start_token_id"], device=self.device)
        beams = beams or self.beam_size
        settings = {k: v for k, v in GENERATION.items() if beams > 1 or k != "early_stopping"}
        return self.decoder.generate(decoder_input_ids=start, encoder_outputs=enc, num_beams=beams,
                                     do_sample=False, **settings)

    def caption(self, waves: Sequence[np.ndarray], beams: int | None = None) -> list[str]:
        ids = self.generate_ids(waves, beams)
        return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def loss(self, waves: Sequence[np.ndarray], texts: Sequence[str]) -> torch.Tensor:
        """Teacher-forced cross-entropy with label smoothing 0.1, as the original trains."""
        enc = self._encoder_outputs(log_mel(waves))
        tok = self.tokenizer(list(texts), padding="longest", truncation=True, max_length=MAX_TOKENS,
                             return_tensors="pt").to(self.device)
        targets = tok.input_ids.masked_fill(tok.input_ids == self.tokenizer.pad_token_id, -100)
        start = torch.full_like(targets[:, :1], GENERATION["decoder_start_token_id"])
        inputs = torch.cat([start, targets[:, :-1]], dim=1).masked_fill_(
            torch.cat([start, targets[:, :-1]], dim=1) == -100, self.tokenizer.pad_token_id)
        logits = self.decoder(decoder_input_ids=inputs, decoder_attention_mask=tok.attention_mask,
                              encoder_outputs=enc).logits
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                           ignore_index=-100, label_smoothing=LABEL_SMOOTHING)

    def original_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights in the released files' layout, loadable by the original code."""
        own = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        audio, rest = _split(own, "audio.")
        out = {f"encoder.audio_enc.{k}": v for k, v in checkpoint.clap_to_htsat(audio).items()}
        return out | dict(self.extra) | rest


class HtsatRoberta(nn.Module):
    """The retrieval model. `text_model`: roberta-base for the released checkpoints."""

    def __init__(self, text_model: str = "roberta-base", embed: int = 768) -> None:
        super().__init__()
        self.tokenizer = AutoTokenizer.from_pretrained(text_model)
        config = AutoConfig.from_pretrained(text_model)
        self.audio = _htsat()
        self.text = RobertaModel(config, add_pooling_layer=False)
        self.audio_proj = nn.Sequential(nn.Linear(768, embed), nn.ReLU(), nn.Linear(embed, embed))
        self.text_proj = nn.Sequential(nn.Linear(config.hidden_size, embed), nn.ReLU(),
                                       nn.Linear(embed, embed))
        self.temp = nn.Parameter(torch.tensor(0.07))

    @classmethod
    def from_checkpoint(cls, spec: str | dict, text_model: str = "roberta-base") -> HtsatRoberta:
        ckpt = _read(spec, checkpoint.RETRIEVAL)
        state = ckpt["model"]
        model = cls(text_model, embed=state["audio_proj.2.weight"].shape[0])
        htsat, rest = _split(state, "audio_encoder.audio_enc.")
        text, rest = _split(rest, "text_encoder.text_encoder.")
        weights = ({f"audio.{k}": v for k, v in checkpoint.htsat_to_clap(htsat).items()}
                   | {f"text.{k}": v for k, v in text.items()} | rest)
        checkpoint.load_weights(model, weights, ckpt["path"])
        return model.eval()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.inference_mode()
    def audio_vectors(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        mel = log_mel(waves).to(self.device, next(self.parameters()).dtype)
        pooled = self.audio(input_features=mel).pooler_output
        return nn.functional.normalize(self.audio_proj(pooled).float(), dim=-1).cpu().numpy()

    @torch.inference_mode()
    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        tok = self.tokenizer(list(texts), padding="longest", truncation=True, max_length=MAX_TOKENS,
                             return_tensors="pt").to(self.device)
        first = self.text(input_ids=tok.input_ids, attention_mask=tok.attention_mask).last_hidden_state[:, 0]
        return nn.functional.normalize(self.text_proj(first).float(), dim=-1).cpu().numpy()
