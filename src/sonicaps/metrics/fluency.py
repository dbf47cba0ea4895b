"""FENSE's fluency error detector (FER) as aac-metrics 0.5.5 runs it.

The detector is a BERT classifier (FENSE's BERTFlatClassifier: encoder, dropout, a linear
layer on the [CLS] output) with six sigmoid outputs; a caption counts as an error when the
last one ("error") exceeds a threshold (0.9 in FENSE and SPIDEr-FL, 0.97 in MACE). Its
published checkpoints are torch files {"model_type", "num_classes", "state_dict"} released
on GitHub; they are fetched into FENSE's own data folder ($FENSE_DATA, else
<torch hub>/fense_data), where an existing aac-metrics or FENSE download is found too.
Captions lose their punctuation and are lower-cased, then padded to 64 tokens.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonicaps.metrics.models import DEFAULT_ECHECKER, ModelUnavailable, device, from_hub
from sonicaps.weights import download_verified

_RELEASES = "https://github.com/blmoistawinde/fense/releases/download/V0.1"
# name -> (url, sha256, size), as aac-metrics lists them.
ECHECKERS = {
    "echecker_clotho_audiocaps_base": (
        f"{_RELEASES}/echecker_clotho_audiocaps_base.ckpt",
        "1a719f090af70614bbdb9f9437530b7e133c48cfa4a58d964de0d47fc974a2fa", "~440 MB"),
    "echecker_clotho_audiocaps_tiny": (
        f"{_RELEASES}/echecker_clotho_audiocaps_tiny.ckpt",
        "90ed0ac5033ec497ec66d4f68588053813e085671136dae312097c96c504f673", "~18 MB"),
}
ERROR_NAMES = ("add_tail", "repeat_event", "repeat_adv", "remove_conj", "remove_verb", "error")
FENSE_THRESHOLD = 0.9
MAX_LENGTH = 64


class ErrorDetector(nn.Module):
    """FENSE's BERTFlatClassifier: the state dict's keys are encoder.* and clf.*."""

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(encoder.config.hidden_dropout_prob)
        self.clf = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        hidden = self.encoder(input_ids, attention_mask, token_type_ids).last_hidden_state
        return self.clf(self.dropout(hidden[:, 0, :]))


def data_home() -> Path:
    return Path(os.environ.get("FENSE_DATA", Path(torch.hub.get_dir()) / "fense_data")).expanduser()


def checkpoint_path(name: str) -> Path:
    """A published detector's checkpoint, downloaded (and checked) on first use."""
    url, sha256, size = ECHECKERS[name]
    path = data_home() / f"{name}.ckpt"
    if path.exists():
        return path
    try:
        return download_verified(url, path, sha256, timeout=30)
    except OSError as e:
        raise ModelUnavailable(
            f"fer (used by fense, spider_fl and mace) needs FENSE's error detector {name}.ckpt ({size}), "
            f"which could not be downloaded ({e}): fetch {url} into {path.parent} (or set FENSE_DATA), "
            "or pass a checkpoint with --echecker PATH") from e
    except ValueError as e:
        raise ModelUnavailable(str(e)) from None


@lru_cache(maxsize=2)
def load_detector(spec: str = DEFAULT_ECHECKER, device_name: str | None = None):
    """(detector, tokenizer, description) from a published name or a checkpoint path. The
    checkpoint's model_type (bert-base-uncased for the published ones) is a hub id, or a
    folder beside the checkpoint holding the encoder's config and tokenizer."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = checkpoint_path(spec) if spec in ECHECKERS else Path(spec)
    if not path.is_file():
        raise ModelUnavailable(f"fer: no error detector checkpoint at {path}; use a .ckpt in FENSE's layout "
                               f"or one of {', '.join(ECHECKERS)}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model_type = ckpt["model_type"]
    local = path.parent / model_type
    source = str(local) if local.is_dir() else model_type

    def load(local_only: bool):
        config = AutoConfig.from_pretrained(source, local_files_only=local_only)
        return config, AutoTokenizer.from_pretrained(source, local_files_only=local_only)

    config, tokenizer = load(True) if local.is_dir() else from_hub("fer", model_type, load)
    detector = ErrorDetector(AutoModel.from_config(config), ckpt["num_classes"])
    state = dict(ckpt["state_dict"])
    # Checkpoints saved before transformers 4.31 carry this buffer; newer BERTs compute it.
    state.pop("encoder.embeddings.position_ids", None)
    _load_state(detector, state, path)
    detector.eval().requires_grad_(False).to(device(device_name))
    return detector, tokenizer, f"{spec} (encoder {model_type})"


def _load_state(detector: ErrorDetector, state: dict, path: Path) -> None:
    missing, unexpected = detector.load_state_dict(state, strict=False)
    # A pooler that the classifier never uses may be absent from a checkpoint.
    missing = [k for k in missing if ".pooler." not in k]
    if missing or unexpected:
        raise ModelUnavailable(f"{path} is not an error detector in FENSE's layout "
                               f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def error_probs(sentences: list[str], spec: str = DEFAULT_ECHECKER, device_name: str | None = None,
                batch_size: int = 32) -> dict[str, np.ndarray]:
    """Each output's probability per sentence, keyed by ERROR_NAMES."""
    detector, tokenizer, _ = load_detector(spec, device_name)
    dev = next(detector.parameters()).device
    clean = [re.sub(r"[^\w\s]", "", s).lower() for s in sentences]
    out = []
    with torch.inference_mode():
        for start in range(0, len(clean), batch_size):
            batch = tokenizer(clean[start:start + batch_size], truncation=True, padding="max_length",
                              max_length=MAX_LENGTH, return_tensors="pt")
            logits = detector(batch["input_ids"].to(dev), batch["attention_mask"].to(dev),
                              batch["token_type_ids"].to(dev))
            out.append(logits.sigmoid().cpu().numpy())
    probs = np.concatenate(out) if out else np.zeros((0, len(ERROR_NAMES)), dtype=np.float32)
    return dict(zip(ERROR_NAMES, probs.T, strict=False))


def fer(probs: dict[str, np.ndarray], threshold: float = FENSE_THRESHOLD) -> tuple[float, np.ndarray]:
    """Fluency error rate: the share of sentences whose error probability exceeds the threshold."""
    flags = (probs["error"] > threshold).astype(np.float64)
    return float(flags.mean()) if len(flags) else 0.0, flags
