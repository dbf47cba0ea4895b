"""Ask and write through any OpenAI-compatible server: vLLM, Ollama, llama.cpp, hosted APIs,
or `sonicaps serve`.

The official `openai` client does the transport: timeouts, and retries with exponential
backoff and jitter on connection errors, timeouts, 429 and 5xx. On top of it: bounded
concurrency (one request per clip and turn, `concurrency` at once, which servers such as
vLLM batch), a check that each answer holds text (an empty or missing answer is asked
again, then the clip fails with BadOutput), and a small memo of finished clips, so that
when one clip of a batch fails and the stage retries the batch clip by clip, the others
are not sent again.
"""

from __future__ import annotations

import base64
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import soundfile as sf

from sonicaps.backends.base import BadOutput
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import WRITER_SYSTEM, clean_caption, writer_message

T = TypeVar("T")
SR = 16_000
MEMO_SIZE = 4096  # finished clips remembered for clip-by-clip retries
AUDIO_FORMATS = ("input_audio", "audio_url")


def wav_base64(clip: Clip) -> str:
    """The clip as a 16-bit 16 kHz mono WAV file, base64-encoded."""
    buf = io.BytesIO()
    sf.write(buf, clip.audio, SR, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def audio_part(clip: Clip, kind: str) -> dict[str, Any]:
    """An audio content part: `input_audio` (vLLM's form for Qwen2-Audio, OpenAI's) or
    `audio_url` with a data URL."""
    data = wav_base64(clip)
    if kind == "input_audio":
        return {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}
    if kind == "audio_url":
        return {"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}}
    raise ValueError(f"audio_format must be one of {AUDIO_FORMATS}, not {kind!r}")


class ChatClient:
    """Chat completions against one server and model, `concurrency` requests at a time."""

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 120.0, max_retries: int = 4, concurrency: int = 8,
                 answer_retries: int = 2) -> None:
        import openai

        if concurrency < 1 or max_retries < 0 or answer_retries < 0 or timeout_s <= 0:
            raise ValueError("concurrency >= 1, max_retries >= 0, answer_retries >= 0, timeout_s > 0")
        # Local servers take any key; hosted APIs read theirs from the environment.
        key = os.environ.get(api_key_env) or "sonicaps-no-key"
        self.base_url, self.model, self.answer_retries = base_url, model, answer_retries
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s,
                                    max_retries=max_retries)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="openai")

    def chat(self, messages: list[dict[str, Any]], **params: Any) -> str:
        """The reply's text; an empty reply is asked again, then raises BadOutput."""
        for _ in range(self.answer_retries + 1):
            resp = self.client.chat.completions.create(model=self.model, messages=messages, **params)
            choices = getattr(resp, "choices", None)
            text = choices[0].message.content if choices else None
            if isinstance(text, str) and text.strip():
                return text.strip()
        raise BadOutput(f"{self.model} at {self.base_url} gave no text in "
                        f"{self.answer_retries + 1} attempts")

    def map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """fn over items, concurrently, in order; the first failure is raised."""
        return list(self._pool.map(fn, items))


class _Memo:
    """A bounded, thread-safe memo of finished results."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get_or_run(self, key: Any, fn: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = fn()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


class OpenAIAsker:
    """The three questions as one conversation per clip: the audio goes with the first
    question, and each later question sees the earlier answers."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1",
                 model: str = "Qwen/Qwen2-Audio-7B-Instruct", audio_format: str = "input_audio",
                 system: str | None = None, max_tokens: int = 256,
                 temperature: float = 0.0, **client: Any) -> None:
        if audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio_format must be one of {AUDIO_FORMATS}, not {audio_format!r}")
        self.client = ChatClient(base_url, model, **client)
        self.audio_format, self.system = audio_format, system
        self.params = {"max_tokens": max_tokens, "temperature": temperature}
        self.model_id = f"openai:{model}"
        self._memo = _Memo()

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        return self.client.map(lambda c: self._memo.get_or_run((c.id, tuple(questions)),
                                                               lambda: self._ask_one(c, questions)), clips)

    def _ask_one(self, clip: Clip, questions: Sequence[str]) -> Answers:
        messages: list[dict[str, Any]] = [{"role": "system", "content": self.system}] if self.system else []
        texts = []
        for k, question in enumerate(questions):
            content: Any = [audio_part(clip, self.audio_format), {"type": "text", "text": question}] \
                if k == 0 else question
            messages.append({"role": "user", "content": content})
            answer = self.client.chat(messages, **self.params)
            messages.append({"role": "assistant", "content": answer})
            texts.append(answer)
        return Answers(tuple(texts), {"model": self.client.model})


class OpenAIWriter:
    """One caption per clip from its answers (speech/music answers that say there is none
    are left out of the prompt); retries are sampled at a higher temperature."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1",
                 model: str = "mistralai/Mistral-7B-Instruct-v0.3", system: str = WRITER_SYSTEM,
                 max_tokens: int = 64, temperature: float = 0.0, retry_temperature: float = 0.7,
                 **client: Any) -> None:
        self.client = ChatClient(base_url, model, **client)
        self.system, self.max_tokens = system, max_tokens
        self.temperature, self.retry_temperature = temperature, retry_temperature
        self.model_id = f"openai:{model}"
        self._memo = _Memo()

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        def one(pair: tuple[Clip, Answers]) -> str:
            clip, ans = pair
            return self._memo.get_or_run((clip.id, attempt, ans.texts), lambda: self._write_one(ans, attempt))

        return self.client.map(one, list(zip(clips, answers, strict=True)))

    def _write_one(self, answers: Answers, attempt: int) -> str:
        messages = [{"role": "system", "content": self.system},
                    {"role": "user", "content": writer_message(answers.texts)}]
        temperature = self.temperature if attempt == 0 else self.retry_temperature
        reply = self.client.chat(messages, max_tokens=self.max_tokens, temperature=temperature)
        caption = clean_caption(reply)
        if not caption:
            raise BadOutput(f"{self.client.model} replied without a caption")
        return caption
