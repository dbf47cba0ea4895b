"""Ask and write through any OpenAI-compatible server: vLLM, Ollama, llama.cpp, hosted APIs,
or `sonicaps serve`.

The official `openai` client does the transport: timeouts, and retries with exponential
backoff and jitter on connection errors, timeouts, 429 and 5xx (`max_retries`). Around it:
- a request must be complete within `timeout_s` as a whole (the client's timeouts bound
  each read, so a server trickling its body could hold a request for ever);
- each reply is checked to be an answer: a body that is not a completion (cut JSON, an
  HTML page), no choices, empty text, a reply longer than `max_tokens` tokens can be,
  markup (a gateway's error page as the text), or, for the writer, no caption after
  cleaning (a paragraph) is asked again
  (`answer_retries`), then the clip fails with BadOutput and the last reason. So a clip
  costs at most (max_retries + 1) x (answer_retries + 1) requests per turn;
- bounded concurrency: one request per clip and turn, `concurrency` at once (servers such
  as vLLM batch them), every clip of a batch run even when one fails;
- a small memo of finished clips, so that when one clip of a batch fails and the stage
  retries the batch clip by clip, the others are not sent again, nor the failed one (its
  retries are spent; it gets its failure back).
"""

from __future__ import annotations

import base64
import functools
import importlib
import io
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, TypeVar

import soundfile as sf

from sonicaps.backends.base import BadOutput
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import WRITER_SYSTEM, caption_problem, clean_caption, reply_problem, writer_message

T = TypeVar("T")
SR = 16_000
MEMO_SIZE = 4096  # finished clips remembered for clip-by-clip retries
AUDIO_FORMATS = ("input_audio", "audio_url")
# No English text averages more characters per token (about 4 is usual): a longer reply
# did not come from a model held to max_tokens (a proxy's page, a runaway server).
MAX_CHARS_PER_TOKEN = 8


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


@functools.cache
def _deadline_transport() -> type:
    """A transport class for the httpx package the installed openai client is built on
    (httpx, or its fork httpx2), in which a response must be complete by a deadline."""
    import openai

    base = next(c for c in openai.DefaultHttpxClient.__mro__ if c.__name__ == "Client")
    httpx = importlib.import_module(base.__module__.partition(".")[0])

    class DeadlineStream(httpx.SyncByteStream):
        def __init__(self, inner: Any, deadline: float, total_s: float, request: Any) -> None:
            self.inner, self.deadline, self.total_s, self.request = inner, deadline, total_s, request

        def __iter__(self) -> Any:
            for chunk in self.inner:
                if time.monotonic() > self.deadline:
                    raise httpx.ReadTimeout(f"the response was not complete within {self.total_s} s",
                                            request=self.request)
                yield chunk

        def close(self) -> None:
            self.inner.close()

    class DeadlineTransport(httpx.BaseTransport):
        """Checks the deadline as the body's bytes arrive, so a request ends at most one read
        (itself bounded by the timeout) after it."""

        def __init__(self, total_s: float) -> None:
            # The openai client's own pool limits, which a transport of ours replaces.
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
            self.inner, self.total_s = httpx.HTTPTransport(limits=limits), total_s

        def handle_request(self, request: Any) -> Any:
            deadline = time.monotonic() + self.total_s
            response = self.inner.handle_request(request)
            return httpx.Response(response.status_code, headers=response.headers,
                                  stream=DeadlineStream(response.stream, deadline, self.total_s, request),
                                  extensions=response.extensions)

        def close(self) -> None:
            self.inner.close()

    return DeadlineTransport


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
        http = openai.DefaultHttpxClient(transport=_deadline_transport()(timeout_s), timeout=timeout_s)
        self.client = openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout_s,
                                    max_retries=max_retries, http_client=http)
        self._not_a_completion = (json.JSONDecodeError, openai.APIResponseValidationError)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="openai")

    def chat(self, messages: list[dict[str, Any]], check: Callable[[str], str | None] | None = None,
             **params: Any) -> str:
        """The reply's text. A reply that is no answer (see the module's docstring), or in
        which `check` finds a problem, is asked again, then raises BadOutput."""
        problem: str | None = None
        for _ in range(self.answer_retries + 1):
            try:
                resp = self.client.chat.completions.create(model=self.model, messages=messages, **params)
            except self._not_a_completion as e:  # the transport does not retry these
                problem = f"a body that is not a completion ({type(e).__name__}: {str(e)[:120]})"
                continue
            text, problem = reply_text(resp, params.get("max_tokens"))
            if problem is None and check is not None:
                problem = check(text)
            if problem is None:
                return text
        raise BadOutput(f"{self.model} at {self.base_url} gave no usable reply in "
                        f"{self.answer_retries + 1} attempts; the last: {problem}")

    def map(self, fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
        """fn over items, concurrently, in order. Every item runs, even when one fails (a
        batch left half-done would be retried clip by clip, one at a time); then the first
        failure is raised."""
        futures = [self._pool.submit(fn, item) for item in items]
        wait(futures)
        return [f.result() for f in futures]


def reply_text(resp: Any, max_tokens: int | None = None) -> tuple[str, str | None]:
    """(text, None) of a chat completion, or ("", why it holds no answer)."""
    if isinstance(resp, str):  # the openai client hands back a non-JSON body as text
        return "", f"a body that is not a completion: {resp[:80]!r}"
    choices = getattr(resp, "choices", None)
    if not choices:
        return "", "a completion without choices"
    text = getattr(getattr(choices[0], "message", None), "content", None)
    if not isinstance(text, str) or not text.strip():
        return "", "an empty reply"
    text = text.strip()
    if max_tokens and len(text) > max_tokens * MAX_CHARS_PER_TOKEN:
        return "", (f"a reply too long for max_tokens={max_tokens} ({len(text)} characters): "
                    f"{text[:80]!r}")
    return text, None


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


class _Memo:
    """A bounded, thread-safe memo of finished results. A failure is remembered for the next
    call only: the stage's clip-by-clip retry after a failed batch gets it back without a
    request (the client spent the clip's retries already); a later call asks anew."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get_or_run(self, key: Any, fn: Callable[[], T]) -> T:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                value = self._data[key]
                if not isinstance(value, _Failed):
                    return value
                del self._data[key]
                raise value.error
        try:
            value = fn()
        except Exception as e:
            with self._lock:
                self._data[key] = _Failed(e)
            raise
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
            answer = self.client.chat(messages, check=reply_problem, **self.params)
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
        reply = self.client.chat(messages, check=lambda r: caption_problem(clean_caption(r)),
                                 max_tokens=self.max_tokens, temperature=temperature)
        return clean_caption(reply)
