"""CLAP-sim: cosine similarity of CLAP text embeddings of a candidate and its references.

aac-metrics 0.5.5 computes it with MS-CLAP 2023 (msclap's CLAP_weights_2023.pth from the
hub repository microsoft/msclap): a GPT-2 text encoder whose output at the last token
("<|endoftext|>", found by counting ids other than 0, GPT-2's "!", which msclap pads
with) goes through a projection (linear, GELU, linear, residual, LayerNorm); captions are
padded to 77 tokens. msclap itself cannot be installed beside this project (it requires
torchaudio and transformers < 5), so its text tower is rebuilt here from its checkpoint
layout (caption_encoder.base.* is a transformers GPT2Model, caption_encoder.projection.*
the projection). Any transformers CLAP (laion/clap-htsat-unfused, ...) works too, through
ClapModel.get_text_features. Cosine with eps 1e-6, mean over references, mean of items.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonicaps.metrics.models import DEFAULT_CLAP, ModelUnavailable, device, from_hub

MSCLAP_REPO, MSCLAP_FILE = "microsoft/msclap", "CLAP_weights_2023.pth"
MSCLAP_TEXT_MODEL, MSCLAP_TEXT_LEN = "gpt2", 77


class Projection(nn.Module):
    """msclap's Projection; the dropout never acts in eval mode."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.linear2(nn.functional.gelu(embed1)))


class MsClapText(nn.Module):
    """The text tower of MS-CLAP 2023 (msclap's TextEncoder with a GPT-2 base)."""

    def __init__(self, base: nn.Module, d_proj: int):
        super().__init__()
        self.base = base
        self.projection = Projection(base.config.hidden_size, d_proj)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.base(input_ids=input_ids, attention_mask=attention_mask)[0]
        last = torch.ne(input_ids, 0).sum(-1) - 1
        return self.projection(hidden[torch.arange(len(input_ids), device=hidden.device), last])


class TextEmbedder:
    """Batched text embeddings of one CLAP model; `name` says which."""

    def __init__(self, model: nn.Module, tokenizer, name: str, msclap: bool):
        self.model, self.tokenizer, self.name, self.msclap = model, tokenizer, name, msclap

    @torch.inference_mode()
    def __call__(self, texts: list[str], batch_size: int = 32) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        out = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start:start + batch_size]
            if self.msclap:
                batch = self.tokenizer([t + " <|endoftext|>" for t in chunk], padding="max_length",
                                       max_length=MSCLAP_TEXT_LEN, truncation=True, return_tensors="pt")
                out.append(self.model(batch["input_ids"].to(dev), batch["attention_mask"].to(dev)))
            else:
                batch = self.tokenizer(chunk, padding=True, truncation=True, return_tensors="pt").to(dev)
                features = self.model.get_text_features(**batch)
                out.append(getattr(features, "pooler_output", features))
        return torch.cat(out).float().cpu() if out else torch.zeros(0)


def _msclap_files(spec: str) -> tuple[Path, str]:
    """(checkpoint, text model) for "MS-CLAP-2023", a .pth file, or a folder holding one
    (with the text model's config and tokenizer in a gpt2/ folder beside it, if local)."""
    if spec == DEFAULT_CLAP:
        from huggingface_hub import hf_hub_download

        path = from_hub("clap_sim", f"{MSCLAP_REPO}/{MSCLAP_FILE}", lambda local: hf_hub_download(
            MSCLAP_REPO, MSCLAP_FILE, local_files_only=local), size="~690 MB")
        return Path(path), MSCLAP_TEXT_MODEL
    path = Path(spec)
    if path.is_dir():
        path = path / MSCLAP_FILE
    local_text = path.parent / MSCLAP_TEXT_MODEL
    return path, str(local_text) if local_text.is_dir() else MSCLAP_TEXT_MODEL


@lru_cache(maxsize=2)
def load_clap(spec: str = DEFAULT_CLAP, device_name: str | None = None) -> TextEmbedder:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    dev = device(device_name)
    is_msclap = spec == DEFAULT_CLAP or spec.endswith(".pth") or (Path(spec) / MSCLAP_FILE).is_file()
    if not is_msclap:
        from transformers import ClapModel

        def load_hf(local: bool):
            return (ClapModel.from_pretrained(spec, local_files_only=local),
                    AutoTokenizer.from_pretrained(spec, local_files_only=local))

        model, tokenizer = load_hf(True) if os.path.isdir(spec) else from_hub("clap_sim", spec, load_hf)
        return TextEmbedder(model.eval().to(dev), tokenizer, spec, msclap=False)
    checkpoint, text_model = _msclap_files(spec)
    if not checkpoint.is_file():
        raise ModelUnavailable(f"clap_sim: no msclap checkpoint at {checkpoint}")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    prefix = "caption_encoder."
    text_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}

    def load_text(local: bool):
        return (AutoConfig.from_pretrained(text_model, local_files_only=local),
                AutoTokenizer.from_pretrained(text_model, local_files_only=local))

    config, tokenizer = load_text(True) if os.path.isdir(text_model) else from_hub("clap_sim", text_model,
                                                                                   load_text)
    tokenizer.add_special_tokens({"pad_token": "!"})  # as msclap: "!" is GPT-2's id 0
    model = MsClapText(AutoModel.from_config(config), text_state["projection.linear1.weight"].shape[0])
    missing, unexpected = model.load_state_dict(text_state, strict=False)
    if missing or unexpected:
        raise ModelUnavailable(f"{checkpoint} is not an msclap checkpoint with a GPT-2 text encoder "
                               f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return TextEmbedder(model.eval().to(dev), tokenizer, f"{spec} (msclap text tower)", msclap=True)


def clap_sim(candidates: list[str], references: list[list[str]], spec: str = DEFAULT_CLAP,
             device_name: str | None = None, batch_size: int = 32) -> tuple[float, np.ndarray, str]:
    """Corpus CLAP-sim (mean of items), per-item scores and the model's description."""
    embed = load_clap(spec, device_name)
    cands = embed(candidates, batch_size)
    refs = embed([r for rs in references for r in rs], batch_size)
    cos = nn.CosineSimilarity(dim=-1, eps=1e-6)
    bounds = np.cumsum([0] + [len(rs) for rs in references])
    scores = np.array([float(cos(cands[i].unsqueeze(0), refs[a:b]).mean())
                       for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))])
    return (float(scores.mean()) if len(scores) else 0.0), scores, embed.name
