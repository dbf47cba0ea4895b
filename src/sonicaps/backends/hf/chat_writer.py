"""The write stage on any chat causal LM (an instruction-tuned 7B such as Mistral-7B-Instruct)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sonicaps.backends.hf.common import load_options, model_device, place
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import WRITER_SYSTEM, clean_caption, writer_message


class ChatWriter:
    """One caption per clip from its answers, batched with left padding. Attempt 0 decodes
    greedily; retries sample at `retry_temperature` so they can differ."""

    def __init__(self, model: str = "mistralai/Mistral-7B-Instruct-v0.3", dtype: str = "auto",
                 device: str | None = None, device_map: str | dict | None = None,
                 max_new_tokens: int = 64, system: str = WRITER_SYSTEM, retry_temperature: float = 0.7,
                 seed: int = 0) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model, padding_side="left")
        if self.tokenizer.pad_token is None:  # many chat LMs ship without one
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = place(AutoModelForCausalLM.from_pretrained(model, **load_options(dtype, device_map)),
                           device, device_map)
        self.max_new_tokens, self.system = max_new_tokens, system
        self.retry_temperature, self.seed = retry_temperature, seed
        self.model_id = f"transformers:{model}"
        self._torch = torch

    def prompt(self, answers: Answers) -> str:
        """The chat for one clip, rendered. Templates that refuse a system role (some
        Mistral ones) get the instructions at the top of the user turn instead."""
        user = writer_message(answers.texts)
        try:
            return self.tokenizer.apply_chat_template(
                [{"role": "system", "content": self.system}, {"role": "user", "content": user}],
                tokenize=False, add_generation_prompt=True)
        except Exception:  # jinja2 TemplateError raised by the template itself
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": f"{self.system}\n\n{user}"}], tokenize=False,
                add_generation_prompt=True)

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        inputs = self.tokenizer([self.prompt(a) for a in answers], return_tensors="pt", padding=True,
                                add_special_tokens=False).to(model_device(self.model))
        sample: dict[str, Any] = {"do_sample": False}
        if attempt > 0:
            self._torch.manual_seed(self.seed + attempt)
            sample = {"do_sample": True, "temperature": self.retry_temperature}
        with self._torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, **sample)
        new = out[:, inputs["input_ids"].shape[1]:]
        return [clean_caption(t) for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
