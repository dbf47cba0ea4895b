"""The ask stage on Qwen2-Audio (transformers' Qwen2AudioForConditionalGeneration).

The three questions are one conversation per clip: the audio goes with the first question
and each later question sees the earlier answers, as a chat with the model would go. All
clips of a batch advance together: three batched generate calls per batch, left-padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sonicaps.backends.hf.common import load_options, model_device, place
from sonicaps.clip import Answers, Clip

SR = 16_000


class Qwen2AudioAsker:
    def __init__(self, model: str = "Qwen/Qwen2-Audio-7B-Instruct", dtype: str = "auto",
                 device: str | None = None, device_map: str | dict | None = None,
                 max_new_tokens: int = 128, system: str | None = None) -> None:
        import torch
        from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

        self.processor = AutoProcessor.from_pretrained(model)
        self.processor.tokenizer.padding_side = "left"  # generation continues at the right end
        self.model = place(Qwen2AudioForConditionalGeneration.from_pretrained(
            model, **load_options(dtype, device_map)), device, device_map)
        self.max_new_tokens, self.system = max_new_tokens, system
        self.model_id = f"transformers:{model}"
        self._torch = torch

    def conversations(self, clips: Sequence[Clip], questions: Sequence[str],
                      answers: Sequence[Sequence[str]]) -> list[list[dict[str, Any]]]:
        """The chat of each clip up to its next question, given the answers so far."""
        out = []
        for clip, done in zip(clips, answers, strict=True):
            conv: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
            for k in range(len(done) + 1):
                content: list[dict[str, Any]] = [{"type": "text", "text": questions[k]}]
                if k == 0:  # the audio comes with the first question only
                    content.insert(0, {"type": "audio", "audio_url": clip.id})
                conv.append({"role": "user", "content": content})
                if k < len(done):
                    conv.append({"role": "assistant", "content": done[k]})
            out.append(conv)
        return out

    def prompts(self, conversations: list[list[dict[str, Any]]]) -> list[str]:
        return [self.processor.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                for c in conversations]

    def inputs(self, texts: list[str], audio: list, cache: dict[str, Any]) -> Any:
        """Model inputs for one turn. The processor computes the 30-s Whisper features and
        expands each audio placeholder to as many tokens as the features give; the audio does
        not change between turns, so later turns reuse the first turn's features and its
        placeholder counts, and only tokenize the new text."""
        if not cache:
            inputs = self.processor(text=texts, audio=audio, sampling_rate=SR, return_tensors="pt",
                                    padding=True)
            cache["counts"] = (inputs["input_ids"] == self.processor.audio_token_id).sum(-1).tolist()
            cache["audio"] = {k: inputs[k] for k in ("input_features", "feature_attention_mask")}
            return inputs
        token = self.processor.audio_token
        expanded = [t.replace(token, token * n, 1) for t, n in zip(texts, cache["counts"], strict=True)]
        inputs = self.processor.tokenizer(expanded, return_tensors="pt", padding=True)
        inputs.update(cache["audio"])
        return inputs

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        answers: list[list[str]] = [[] for _ in clips]
        audio = [c.audio for c in clips]
        cache: dict[str, Any] = {}
        for _ in questions:
            texts = self.prompts(self.conversations(clips, questions, answers))
            inputs = self.inputs(texts, audio, cache).to(model_device(self.model))
            with self._torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            new = out[:, inputs["input_ids"].shape[1]:]
            for done, text in zip(answers, self.processor.batch_decode(new, skip_special_tokens=True),
                                  strict=True):
                done.append(text.strip())
        return [Answers(tuple(a), {"model": self.model_id}) for a in answers]
