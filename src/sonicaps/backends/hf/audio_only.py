"""The audio-and-text half of multimodal checkpoints.

sonicaps sends audio and text only, never images or video. Some families ship parts for
those that cannot load on every machine, so they are left out where they would fail or
cost memory for nothing:
- the processors of the omni models and Phi-4 hold an image/video processor that needs
  torchvision; without torchvision the processor is built from its tokenizer and feature
  extractor alone (its own audio code runs unchanged); Granite Speech's feature extractor
  needs torchaudio, replaced where it does not load by torch_features.py;
- Gemma 3n's vision tower is a timm MobileNetV5 (about 300M parameters; timm imports
  torchvision). The model is built with a placeholder in its place, which refuses any
  image, and the checkpoint's vision-tower weights are skipped on loading. The vision
  soft-token embedder (a plain embedding) stays, so the text path is the released one.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _processor_class(path: str, **hub: Any) -> type | None:
    cfg = Path(path) / "processor_config.json"
    name = None
    if cfg.is_file():
        name = json.loads(cfg.read_text()).get("processor_class")
    if name is None:
        from transformers import AutoConfig
        from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

        name = PROCESSOR_MAPPING_NAMES.get(AutoConfig.from_pretrained(path, **hub).model_type)
    import transformers

    return getattr(transformers, name, None) if name else None


def _feature_extractor(path: str, **hub: Any) -> Any:
    """The checkpoint's feature extractor, or its torch-only stand-in where the original
    needs torchaudio and torchaudio does not load (torch_features.py)."""
    from transformers import AutoFeatureExtractor
    from transformers.feature_extraction_utils import FeatureExtractionMixin

    try:
        return AutoFeatureExtractor.from_pretrained(path, **hub)
    except ImportError:
        from sonicaps.backends.hf.torch_features import TORCH_ONLY

        settings, _ = FeatureExtractionMixin.get_feature_extractor_dict(path, **hub)
        stand_in = TORCH_ONLY.get(settings.get("feature_extractor_type", ""))
        if stand_in is None:
            raise
        log.info("%s: torchaudio is not available; computing its features with %s", path, stand_in.__name__)
        return stand_in.from_pretrained(path, **hub)


def _audio_only_processor(path: str, **hub: Any) -> Any:
    """The family's processor without its image and video parts."""
    from transformers import AutoTokenizer

    cls = _processor_class(path, **hub)
    if cls is None:
        raise ValueError(f"{path}: no processor class found")

    class AudioOnly(cls):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument is None and argument_name in ("image_processor", "video_processor"):
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    AudioOnly.__name__ = cls.__name__
    tokenizer = AutoTokenizer.from_pretrained(path, **hub)
    parts: dict[str, Any] = {}
    for name in cls.get_attributes():
        if name == "tokenizer":
            parts[name] = tokenizer
        elif name in ("feature_extractor", "audio_processor"):
            parts[name] = _feature_extractor(path, **hub)
        else:
            parts[name] = None
    params = inspect.signature(cls.__init__).parameters
    cfg = Path(path) / "processor_config.json"
    extra = json.loads(cfg.read_text()) if cfg.is_file() else {}
    parts.update({k: v for k, v in extra.items() if k in params and k not in parts})
    parts["chat_template"] = tokenizer.chat_template  # every ProcessorMixin takes one
    return AudioOnly(**parts)


def load_processor(path: str, **hub: Any) -> Any:
    """The checkpoint's processor (`hub`: from_pretrained options such as a revision)."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(path, **hub)
    except (ImportError, ValueError, AttributeError, TypeError):
        missing = [m for m in ("torchvision", "torchaudio") if not _loads(m)]
        if not missing:
            raise
        log.info("%s: %s cannot be imported; loading the processor's audio parts without it",
                 path, " and ".join(missing))
        return _audio_only_processor(path, **hub)


def _loads(module: str) -> bool:
    """Whether a module imports (a torchvision/torchaudio wheel built for another torch is
    installed yet fails on import)."""
    if importlib.util.find_spec(module) is None:
        return False
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - any failure means it cannot be used
        return False
    return True


@functools.cache
def _no_vision_classes() -> tuple[type, type]:
    """A config type for Gemma 3n's vision settings that AutoModel maps to a placeholder
    module (registered once, through transformers' own AutoModel.register)."""
    from transformers import AutoModel, Gemma3nVisionConfig, PreTrainedModel

    class NoVisionTowerConfig(Gemma3nVisionConfig):
        model_type = "sonicaps_no_vision_tower"

    class NoVisionTower(PreTrainedModel):
        config_class = NoVisionTowerConfig
        # Collected by the parent model: the checkpoint's tower weights are skipped quietly.
        _keys_to_ignore_on_load_unexpected = [r"vision_tower\."]

        def __init__(self, config: NoVisionTowerConfig) -> None:
            super().__init__(config)
            self.post_init()

        def forward(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("sonicaps loads Gemma 3n for audio and text only: images are not supported")

    AutoModel.register(NoVisionTowerConfig, NoVisionTower)
    return NoVisionTowerConfig, NoVisionTower


def without_vision_tower(config: Any) -> Any:
    """The model config with its vision tower replaced by the placeholder; the vision
    settings the text path reads (soft-token vocabulary, hidden size) are kept."""
    config_class, _ = _no_vision_classes()
    kept = {k: v for k, v in config.vision_config.to_dict().items()
            if k not in ("model_type", "transformers_version", "label_names", "num_classes", "architectures")}
    config.vision_config = config_class(**kept, num_labels=0)
    return config
