"""Audio-language models (audio + text in, text out) on transformers, in process.

One implementation for every family in `families.py`: the checkpoint's config picks the
family, the family's own processor renders the chat and expands the audio placeholders,
and all clips of a batch go through one left-padded `generate` (in chunks of `batch_size`).

Two stages use it:
- `[ask] backend = "transformers"`: the recipe's three questions, one conversation per clip
  (the audio with the first question; each later question sees the earlier answers);
- `[write] backend = "audio-lm"`: the model captions the clip directly from its audio with
  one prompt (Audio Flamingo 3, Qwen3-Omni-Captioner), no asker needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sonicaps.backends.base import BadOutput
from sonicaps.backends.hf.audio_only import load_processor
from sonicaps.backends.hf.common import load_options, model_device, place
from sonicaps.backends.hf.families import SR, Family, family_of
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import clean_caption

log = logging.getLogger(__name__)

# Clips per generate call. 8 fills a 7B model's batch on one 40-80 GB GPU with 10-s clips
# and 128 new tokens; lower it on smaller GPUs, raise it for 3B models.
BATCH_SIZE = 8
CAPTION_PROMPT = ("Write one sentence that describes what can be heard in this audio, in the order "
                  "it happens. Reply with the caption only.")


def merge_adapter(model: Any, path: str, name: str, subfolder: str, **hub: Any) -> Any:
    """The model with the checkpoint's LoRA adapter (in `subfolder`) merged into its weights:
    sonicaps only ever sends audio, so the speech adapter is always the active one and a
    merged model runs at the base model's speed. PEFT reads and merges it (transformers'
    own load_adapter asks for a newer PEFT than PyPI has)."""
    from peft import PeftModel

    peft = PeftModel.from_pretrained(model, path, subfolder=subfolder, adapter_name=name, **hub)
    return peft.merge_and_unload()


class AudioLM:
    """A loaded audio-language model and its processor: batched chats with audio -> replies."""

    def __init__(self, model: str, dtype: str = "auto", device: str | None = None,
                 device_map: str | dict | None = None, attn_implementation: str | None = None,
                 max_new_tokens: int = 128, batch_size: int = BATCH_SIZE,
                 revision: str | None = None) -> None:
        import torch
        import transformers
        from transformers import AutoConfig

        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        hub = {"revision": revision} if revision else {}  # a branch, tag or commit of a hub id
        config = AutoConfig.from_pretrained(model, **hub)
        self.family: Family = family_of(config.model_type)
        self.processor = load_processor(model, **hub)
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"  # generation continues at the right end
        opts = load_options(dtype, device_map)
        if attn_implementation:
            opts["attn_implementation"] = attn_implementation
        if self.family.model_config:
            config = self.family.model_config(config)
        cls = getattr(transformers, self.family.model_class)
        loaded = cls.from_pretrained(model, config=config, **opts, **hub)
        if self.family.adapter:
            loaded = merge_adapter(loaded, model, *self.family.adapter, **hub)
        self.model = place(loaded, device, device_map)
        if hasattr(self.model, "disable_talker"):  # omni models: text out only, free the speech half
            self.model.disable_talker()
        self.generator = getattr(self.model, self.family.generator) if self.family.generator else self.model
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size
        self.forwards: list[int] = []  # clips per generate call, for benchmarks
        self._torch = torch

    def _inputs(self, chats: list[list[dict[str, Any]]], audio: list) -> Any:
        if self.family.tokenized_chat:
            # The tokenizer renders, tokenizes and pads the batch (its processor pads by
            # default) and hands back each audio part's array for the feature extractor.
            return self.processor.apply_chat_template(chats, tokenize=True, return_dict=True,
                                                      return_tensors="pt")
        texts = [self.processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                 for c in chats]
        # Padding is asked of the text only: each feature extractor pads audio its own way
        # (Whisper-style ones to a fixed 30-s window that their encoders expect).
        return self.processor(text=texts, audio=audio, return_tensors="pt", text_kwargs={"padding": True},
                              audio_kwargs={"sampling_rate": SR}, **self.family.processor_kwargs)

    def generate(self, chats: Sequence[list[dict[str, Any]]], audio: Sequence, sample: dict[str, Any]
                 ) -> list[str]:
        """One reply per chat; `audio[i]` is the array of chat i's audio part."""
        out: list[str] = [""] * len(chats)
        for part in self.batches(audio):
            replies = self._generate([chats[i] for i in part], [audio[i] for i in part], sample)
            for i, text in zip(part, replies, strict=True):
                out[i] = text
        return out

    def batches(self, audio: Sequence) -> list[list[int]]:
        """Indices of the clips that share a generate call: consecutive runs of `batch_size`,
        or, for a family whose encoder sees padding, runs of clips of equal length."""
        groups: dict[int, list[int]] = {}
        for i, a in enumerate(audio):
            groups.setdefault(len(a) if self.family.batch_by_length else 0, []).append(i)
        return [g[k:k + self.batch_size] for g in groups.values() for k in range(0, len(g), self.batch_size)]

    def _generate(self, chats: list, audio: list, sample: dict[str, Any]) -> list[str]:
        inputs = self._inputs(chats, audio).to(model_device(self.model))
        dtype = self.model.dtype
        for key, value in inputs.items():  # features in the model's dtype (bfloat16 on GPUs)
            if hasattr(value, "is_floating_point") and value.is_floating_point():
                inputs[key] = value.to(dtype)
        pad = self.tokenizer.pad_token_id
        with self._torch.inference_mode():
            ids = self.generator.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                          pad_token_id=pad, **sample)
        self.forwards.append(len(chats))
        new = ids[:, inputs["input_ids"].shape[1]:]
        return [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def user_turn(self, audio: Any, text: str | None) -> dict[str, Any]:
        """The first user message: the clip's audio part and the prompt, in the family's order."""
        prompt = [{"type": "text", "text": text}] if text else []
        sound = [self.family.audio_part(audio)]
        return {"role": "user", "content": prompt + sound if self.family.text_first else sound + prompt}


class AudioLMAsker:
    """The ask stage: the three questions as one conversation per clip, all clips of a batch
    advancing together (three batched generate calls per batch, greedy)."""

    def __init__(self, model: str = "Qwen/Qwen2-Audio-7B-Instruct", system: str | None = None,
                 **options: Any) -> None:
        self.lm = AudioLM(model, **options)
        self.system = system
        self.model_id = f"transformers:{model}"

    def conversations(self, clips: Sequence[Clip], questions: Sequence[str],
                      answers: Sequence[Sequence[str]]) -> list[list[dict[str, Any]]]:
        """The chat of each clip up to its next question, given the answers so far."""
        out = []
        for clip, done in zip(clips, answers, strict=True):
            conv: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
            for k in range(len(done) + 1):
                conv.append(self.lm.user_turn(clip.audio, questions[k]) if k == 0
                            else {"role": "user", "content": [{"type": "text", "text": questions[k]}]})
                if k < len(done):
                    conv.append({"role": "assistant", "content": done[k]})
            out.append(conv)
        return out

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        answers: list[list[str]] = [[] for _ in clips]
        audio = [c.audio for c in clips]
        for _ in questions:
            chats = self.conversations(clips, questions, answers)
            replies = self.lm.generate(chats, audio, {"do_sample": False})
            for done, text in zip(answers, replies, strict=True):
                done.append(text)
        return [Answers(tuple(a), {"model": self.model_id}) for a in answers]


class AudioLMCaptioner:
    """The write stage straight from the audio: one prompt, one caption per clip (the answers
    of the ask stage are not used; pair it with `[ask] backend = "none"` or keep them as
    evidence). Attempt 0 decodes greedily; retries sample at `retry_temperature`.
    `prompt = ""` sends the audio alone (Qwen3-Omni-Captioner takes no text prompt)."""

    def __init__(self, model: str = "nvidia/audio-flamingo-3-hf", prompt: str = CAPTION_PROMPT,
                 system: str | None = None, retry_temperature: float = 0.7, seed: int = 0,
                 max_new_tokens: int = 96, **options: Any) -> None:
        self.lm = AudioLM(model, max_new_tokens=max_new_tokens, **options)
        self.prompt, self.system = prompt, system
        self.retry_temperature, self.seed = retry_temperature, seed
        self.model_id = f"transformers:{model}"

    def chat(self, clip: Clip) -> list[dict[str, Any]]:
        conv: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
        return [*conv, self.lm.user_turn(clip.audio, self.prompt)]

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        sample: dict[str, Any] = {"do_sample": False}
        if attempt > 0:
            self.lm._torch.manual_seed(self.seed + attempt)
            sample = {"do_sample": True, "temperature": self.retry_temperature}
        captions = [clean_caption(t) for t in self.lm.generate([self.chat(c) for c in clips],
                                                                [c.audio for c in clips], sample)]
        if any(not c for c in captions):
            raise BadOutput("the audio-language model generated an empty caption")
        return captions
