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
    Family("Gemma 3n", ("gemma3n",), "Gemma3nForConditionalGeneration",
           ("google/gemma-3n-E4B-it", "google/gemma-3n-E2B-it")),
    Family("Phi-4-multimodal", ("phi4_multimodal",), "Phi4MultimodalForCausalLM",
           ("microsoft/Phi-4-multimodal-instruct",)),
    Family("Granite Speech", ("granite_speech",), "GraniteSpeechForConditionalGeneration",
           ("ibm-granite/granite-speech-3.3-8b", "ibm-granite/granite-speech-3.3-2b")),
)


def family_of(model_type: str) -> Family:
    """The family of a checkpoint's config model_type; a ValueError names the supported ones."""
    for fam in FAMILIES:
        if model_type in fam.model_types:
            return fam
    supported = ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES)
    raise ValueError(f"no audio-language family for model_type {model_type!r}; supported: {supported}")
