"""What the transformers backends share: loading options and device placement."""

from __future__ import annotations

from typing import Any


def load_options(dtype: str = "auto", device_map: str | dict | None = None) -> dict[str, Any]:
    """from_pretrained keyword arguments: dtype ("auto", "float16", "bfloat16", "float32")
    and an optional device_map ("auto" spreads a large model over the GPUs)."""
    import torch

    opts: dict[str, Any] = {"dtype": dtype if dtype == "auto" else getattr(torch, dtype)}
    if device_map is not None:
        opts["device_map"] = device_map
    return opts


def place(model: Any, device: str | None, device_map: Any) -> Any:
    """Move the model to `device` unless a device_map already placed it; eval mode."""
    if device_map is None:
        model = model.to(device or default_device())
    return model.eval()


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_device(model: Any) -> Any:
    return next(model.parameters()).device
