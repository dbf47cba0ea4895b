"""Backends by name. Choosing one is configuration: `create("ask", "builtin", **options)`.

Entries are import paths, so a backend's heavy dependencies load only when chosen.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

REGISTRY: dict[str, dict[str, str]] = {
    "ask": {"builtin": "sonicaps.backends.builtin.asker:BuiltinAsker",
            "openai": "sonicaps.backends.openai_api:OpenAIAsker",
            "transformers": "sonicaps.backends.hf.audio_lm:AudioLMAsker",
            "none": "sonicaps.captioning.backend:SkipAsker"},
    "write": {"builtin": "sonicaps.backends.builtin.writer:BuiltinWriter",
              "llamacpp": "sonicaps.backends.llamacpp:LlamaCppWriter",
              "openai": "sonicaps.backends.openai_api:OpenAIWriter",
              "transformers": "sonicaps.backends.hf.chat_writer:ChatWriter",
              "audio-lm": "sonicaps.backends.hf.audio_lm:AudioLMCaptioner",
              "captioner": "sonicaps.captioning.backend:CaptionerWriter",
              "audiosetcaps": "sonicaps.audiosetcaps.backends:AudioSetCapsWriter"},
    "check": {"textsim": "sonicaps.backends.builtin.textsim:TextSimScorer",
              "retrieval": "sonicaps.retrieval.scorer:RetrievalScorer",
              "clap": "sonicaps.backends.hf.clap:ClapScorer",
              "audiosetcaps": "sonicaps.audiosetcaps.backends:AudioSetCapsScorer"},
}


def available(stage: str) -> list[str]:
    return sorted(REGISTRY.get(stage, {}))


def create(stage: str, name: str, **options: Any) -> Any:
    """Instantiate the backend `name` for `stage` ("ask", "write" or "check")."""
    if stage not in REGISTRY:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(REGISTRY)}")
    target = REGISTRY[stage].get(name)
    if target is None:
        raise ValueError(
            f"unknown {stage} backend {name!r}; available: {', '.join(available(stage))}"
        )
    module, _, attr = target.partition(":")
    try:
        cls = getattr(import_module(module), attr)
    except ImportError as e:
        raise ImportError(f"{stage} backend {name!r} needs a missing package: {e}") from e
    try:
        return cls(**options)
    except TypeError as e:
        raise ValueError(f"bad options for {stage} backend {name!r}: {e}") from e
