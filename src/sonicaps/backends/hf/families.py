"""The audio-language model families the transformers backend runs, one small adapter each.

A family is found from the checkpoint's config (`model_type`), never from its name. What
differs between families is kept here: the model class, where the audio part goes in the
first user turn, the content part the chat template expects, and, for the omni models, the
text generator inside the model (their `thinker`; sonicaps never asks for speech output).
Everything else (loading, batching, generation, decoding) is shared in `audio_lm.py`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sonicaps.backends.hf.audio_only import without_vision_tower

SR = 16_000


def _audio_placeholder(audio: np.ndarray) -> dict[str, Any]:
    # The array goes to the processor beside the rendered text; the template only places
    # the family's audio token where this part stands.
    return {"type": "audio"}


def _input_audio(audio: np.ndarray) -> dict[str, Any]:
    """Voxtral's tokenizer (mistral-common) takes the audio inside the chat itself, as an
    OpenAI input_audio part (base64 WAV), and returns the decoded array with the tokens."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="WAV", subtype="FLOAT")
    return {"type": "input_audio",
            "input_audio": {"data": base64.b64encode(buf.getvalue()).decode("ascii"), "format": "wav"}}


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]  # config.json model_type values of this family
    model_class: str  # the transformers class that loads a checkpoint
    hub_ids: tuple[str, ...]  # released instruct checkpoints (for docs and error messages)
    text_first: bool = False  # the family's own examples put the prompt before the audio
    audio_part: Callable[[np.ndarray], dict[str, Any]] = _audio_placeholder
    # Inputs come from the chat template itself (tokenize=True) instead of processor(text, audio).
    tokenized_chat: bool = False
    generator: str | None = None  # attribute of the model that generates text ("thinker")
    # Extra processor(...) keyword arguments.
    processor_kwargs: dict[str, Any] = field(default_factory=dict)
    # Applied to the checkpoint's config before the model is built (parts sonicaps leaves out).
    model_config: Callable[[Any], Any] | None = None
    # A LoRA adapter shipped in a subfolder of the checkpoint that audio input needs:
    # (adapter name, subfolder). Loaded with PEFT and made active.
    adapter: tuple[str, str] | None = None
    # The audio encoder lets zero-padded frames into valid ones (convolutions or attention
    # without a padding mask), so a clip's features would depend on its batch-mates: only
    # clips of equal length share a generate call (the 10-s segments of longer files all do).
    batch_by_length: bool = False


FAMILIES: tuple[Family, ...] = (
    Family("Qwen2-Audio", ("qwen2_audio",), "Qwen2AudioForConditionalGeneration",
           ("Qwen/Qwen2-Audio-7B-Instruct",)),
    Family("Qwen2.5-Omni", ("qwen2_5_omni",), "Qwen2_5OmniForConditionalGeneration",
           ("Qwen/Qwen2.5-Omni-7B", "Qwen/Qwen2.5-Omni-3B"), generator="thinker"),
    Family("Qwen3-Omni", ("qwen3_omni_moe",), "Qwen3OmniMoeForConditionalGeneration",
           ("Qwen/Qwen3-Omni-30B-A3B-Instruct", "Qwen/Qwen3-Omni-30B-A3B-Captioner"), generator="thinker"),
    Family("Audio Flamingo 3", ("audioflamingo3",), "AudioFlamingo3ForConditionalGeneration",
           ("nvidia/audio-flamingo-3-hf",), text_first=True),
    Family("Voxtral", ("voxtral",), "VoxtralForConditionalGeneration",
           ("mistralai/Voxtral-Mini-3B-2507", "mistralai/Voxtral-Small-24B-2507"),
           audio_part=_input_audio, tokenized_chat=True),
    # Built without its vision tower (a timm MobileNetV5): see audio_only.py. Its audio
    # subsampling convolutions see the padded frames (a shorter clip's last encoder frame
    # changes with its batch-mates).
    Family("Gemma 3n", ("gemma3n",), "Gemma3nForConditionalGeneration",
           ("google/gemma-3n-E4B-it", "google/gemma-3n-E2B-it"), model_config=without_vision_tower,
           batch_by_length=True),
    # Audio input goes through the checkpoint's speech LoRA (its model card loads it the
    # same way); the NeMo subsampling and conformer convolutions see padded frames.
    Family("Phi-4-multimodal", ("phi4_multimodal",), "Phi4MultimodalForCausalLM",
           ("microsoft/Phi-4-multimodal-instruct",), adapter=("speech", "speech-lora"), batch_by_length=True),
    # Its conformer attends within blocks of 200 frames with no padding mask; its LoRA
    # adapter is loaded by transformers itself and switched on when audio is given. Without
    # torchaudio its features come from torch_features.py.
    Family("Granite Speech", ("granite_speech",), "GraniteSpeechForConditionalGeneration",
           ("ibm-granite/granite-speech-3.3-8b", "ibm-granite/granite-speech-3.3-2b"), batch_by_length=True),
)


def family_of(model_type: str) -> Family:
    """The family of a checkpoint's config model_type; a ValueError names the supported ones."""
    for fam in FAMILIES:
        if model_type in fam.model_types:
            return fam
    supported = ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES)
    raise ValueError(f"no audio-language family for model_type {model_type!r}; supported: {supported}")
