"""The dual encoder: an audio tower and a text tower into one space, CLAP-style.

Towers are chosen by name in the run's config.json, so another encoder (transformers'
ClapModel, any Hugging Face text model) plugs in by adding a builder to AUDIO_TOWERS or
TEXT_TOWERS; the trainer, evaluation, index and check-stage scorer only see the
DualEncoder interface. Checkpoints are safetensors + JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG = "config.json"
WEIGHTS = "model.safetensors"


@dataclass
class RetrievalConfig:
    dim: int = 256  # the shared space
    audio_tower: str = "yamnet-transformer"
    text_tower: str = "minilm-frozen"
    hidden: int = 256
    heads: int = 4
    layers: int = 1
    dropout: float = 0.1
    temperature: float = 0.07  # initial; learned
    audio_input: int = 1024  # YAMNet patch embedding
    text_input: int = 384  # all-MiniLM-L6-v2
    extra: dict = field(default_factory=dict)


class YamnetTransformerTower(nn.Module):
    """YAMNet patch embeddings -> a small transformer over time -> attention pooling."""

    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.LayerNorm(cfg.audio_input), nn.Linear(cfg.audio_input, cfg.hidden))
        self.pos = nn.Parameter(torch.zeros(64, cfg.hidden))  # up to 64 patches (30 s)
        layer = nn.TransformerEncoderLayer(cfg.hidden, cfg.heads, 2 * cfg.hidden, cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.pool = nn.Linear(cfg.hidden, 1)
        self.out = nn.Linear(cfg.hidden, cfg.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        t = min(x.shape[1], self.pos.shape[0])
        x, mask = x[:, :t], mask[:, :t]
        h = self.inp(x) + self.pos[:t]
        h = self.encoder(h, src_key_padding_mask=~mask)
        w = self.pool(h).squeeze(-1).masked_fill(~mask, -1e4).softmax(dim=1)
        return self.out((w.unsqueeze(-1) * h).sum(dim=1))


class FrozenSentenceTower(nn.Module):
    """Precomputed (frozen) sentence embeddings -> a trainable projection."""

    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(cfg.text_input, cfg.hidden), nn.GELU(),
                                  nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


AUDIO_TOWERS = {"yamnet-transformer": YamnetTransformerTower}
TEXT_TOWERS = {"minilm-frozen": FrozenSentenceTower}


class DualEncoder(nn.Module):
    def __init__(self, cfg: RetrievalConfig) -> None:
        super().__init__()
        for name, table in ((cfg.audio_tower, AUDIO_TOWERS), (cfg.text_tower, TEXT_TOWERS)):
            if name not in table:
                raise ValueError(f"unknown tower {name!r}; known: {', '.join(sorted(table))}")
        self.cfg = cfg
        self.audio = AUDIO_TOWERS[cfg.audio_tower](cfg)
        self.text = TEXT_TOWERS[cfg.text_tower](cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / cfg.temperature)))

    def embed_audio(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.audio(x, mask), dim=-1)

    def embed_text(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text(x), dim=-1)

    def loss(self, audio: torch.Tensor, mask: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Symmetric InfoNCE over the batch (pair i is the positive of row and column i)."""
        a, t = self.embed_audio(audio, mask), self.embed_text(text)
        logits = self.logit_scale.clamp(max=math.log(100)).exp() * a @ t.T
        target = torch.arange(len(a))
        return (nn.functional.cross_entropy(logits, target)
                + nn.functional.cross_entropy(logits.T, target)) / 2

    @torch.no_grad()
    def audio_vectors(self, patches: list[np.ndarray], batch: int = 256) -> np.ndarray:
        from sonicaps.retrieval.features import pad

        self.eval()
        out = []
        for i in range(0, len(patches), batch):
            x, m = pad([p.astype(np.float32) for p in patches[i:i + batch]])
            out.append(self.embed_audio(torch.from_numpy(x), torch.from_numpy(m)).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dim), np.float32)

    @torch.no_grad()
    def text_vectors(self, sentence_vectors: np.ndarray) -> np.ndarray:
        self.eval()
        return self.embed_text(torch.from_numpy(np.asarray(sentence_vectors, np.float32))).numpy()

    def save(self, run_dir: str | Path, **meta) -> None:
        run = Path(run_dir)
        run.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, run / WEIGHTS)
        (run / CONFIG).write_text(json.dumps({**asdict(self.cfg), "meta": meta}, indent=2))

    @classmethod
    def load(cls, run_dir: str | Path) -> DualEncoder:
        run = Path(run_dir)
        if not (run / CONFIG).is_file() or not (run / WEIGHTS).is_file():
            raise FileNotFoundError(f"{run}: not a retrieval run (needs {CONFIG} and {WEIGHTS}); "
                                    "train one with `sonicaps train-retrieval`")
        raw = json.loads((run / CONFIG).read_text())
        raw.pop("meta", None)
        model = cls(RetrievalConfig(**raw))
        model.load_state_dict(load_file(run / WEIGHTS))
        model.eval()
        return model
