"""`sonicaps serve`: an OpenAI-compatible server in front of sonicaps backends.

One server per GPU, many pipeline workers pointing at it (the `openai` backends). It
answers `POST /v1/chat/completions` (with `"stream": true`, as server-sent events the way
the OpenAI API sends them), `GET /v1/models` and `GET /v1/models/{id}`:

- a conversation with an audio part (`input_audio` or an `audio_url` data URL) goes to the
  ask backend, which answers the three sonicaps questions of that clip at once; the
  answers are kept (LRU) so the conversation's next turns cost nothing;
- a conversation without audio goes to the write backend: its last user message must be
  the writer prompt (`prompts.writer_message`), whose answers the writer reads.

`Faults` makes the server misbehave on purpose (errors, empty answers, broken JSON,
delays), so clients can be tested against a real server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sonicaps.audio import load_audio
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import QUESTIONS, answers_in, message_text

SR = 16_000
CACHE_CLIPS = 256  # answered clips kept for the later turns of their conversations
# Largest request body read: a 10 s clip is 0.4 MB of base64 WAV, so 32 MB leaves room for
# long clips in any format while a client cannot make the server buffer gigabytes.
MAX_BODY_BYTES = 32 * 2**20
# Longest audio answered: compressed audio is small (30 min of quiet FLAC is 90 kB) but
# the model's time grows with its length, and every other request waits for the model.
MAX_AUDIO_S = 600.0
# Idle keep-alive connections are closed after this long. uvicorn's default, 5 s, equals
# httpx's (and so the openai client's) pool expiry: a client reusing a connection just as
# the server closes it got a dropped request (1 in 400 under benchmarks/server_load.py).
# Longer than the clients' expiry, the client always lets go first.
KEEP_ALIVE_S = 75
FAULT_KINDS = ("ok", "empty", "garbage", "500", "503", "429", "sleep")


class RequestError(ValueError):
    """A request the server cannot answer (HTTP 400 with an OpenAI-style error body)."""


@dataclass
class Faults:
    """Misbehaviour for tests: one entry per request, in order, then normal service.

    Entries: "ok", "empty" (200 with an empty answer), "garbage" (200 with a body that is
    not JSON), "500" / "503" / "429" (that status), "sleep:<seconds>" (answer late).
    """

    script: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        for entry in self.script:
            if entry.split(":")[0] not in FAULT_KINDS:
                raise ValueError(f"unknown fault {entry!r}; use one of {FAULT_KINDS}")

    def next(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"


def decode_audio_part(part: dict[str, Any]) -> tuple[bytes, str]:
    """(file bytes, format) of an `input_audio` or `audio_url` (data URL) content part."""
    kind = part.get("type")
    spec = part.get(kind)
    if not isinstance(spec, dict):
        raise RequestError(f"'{kind}' must be an object")
    if kind == "input_audio":
        data, fmt = spec.get("data"), spec.get("format", "wav")
        if not isinstance(fmt, str):
            raise RequestError("input_audio.format must be a string such as 'wav'")
    else:
        url = spec.get("url")
        m = re.fullmatch(r"data:audio/([\w.+-]+);base64,(.*)", url, flags=re.DOTALL) \
            if isinstance(url, str) else None
        if not m:
            raise RequestError("audio_url must be a base64 data URL (data:audio/<format>;base64,...)")
        fmt, data = m.group(1), m.group(2)
    if not isinstance(data, str) or not data:
        raise RequestError("audio part without data")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as e:
        raise RequestError(f"audio data is not valid base64: {e}") from e
    fmt = {"x-wav": "wav", "wave": "wav", "mpeg": "mp3"}.get(fmt, fmt)
    if not re.fullmatch(r"[a-z0-9]{1,8}", fmt):
        raise RequestError(f"unknown audio format {fmt!r}")
    return raw, fmt


class Service:
    """What the HTTP layer calls: parses a chat request and runs the backends.

    Models run one call at a time (a lock): a CPU model gains nothing from overlapping
    calls, and GPU backends batch inside one call.
    """

    def __init__(self, asker: Any, writer: Any, model_name: str, max_audio_s: float = MAX_AUDIO_S) -> None:
        self.asker, self.writer, self.model_name = asker, writer, model_name
        self.max_audio_s = max_audio_s
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, Answers] = OrderedDict()

    def complete(self, body: dict[str, Any]) -> str:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise RequestError("'messages' must be a non-empty list")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if not users:
            raise RequestError("no user message")
        audio = [p for m in users if isinstance(m.get("content"), list) for p in m["content"]
                 if isinstance(p, dict) and p.get("type") in ("input_audio", "audio_url")]
        question = message_text(users[-1].get("content")).strip()
        if audio:
            return self._ask(audio[0], question)
        return self._write(question)

    def _ask(self, part: dict[str, Any], question: str) -> str:
        if question not in QUESTIONS:
            raise RequestError(f"model {self.model_name} answers only the three sonicaps questions "
                               "(sonicaps.prompts.QUESTIONS)")
        raw, fmt = decode_audio_part(part)
        key = hashlib.sha256(raw).hexdigest()
        answers = self._cached(key)
        if answers is None:
            clip = self._clip(key, raw, fmt)
            with self._lock:
                answers = self.asker.ask([clip], QUESTIONS)[0]
            with self._lock:
                self._answers[key] = answers
                while len(self._answers) > CACHE_CLIPS:
                    self._answers.popitem(last=False)
        return answers.texts[QUESTIONS.index(question)]

    def _cached(self, key: str) -> Answers | None:
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        return None

    def _clip(self, key: str, raw: bytes, fmt: str) -> Clip:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"audio.{fmt}"
            path.write_bytes(raw)
            try:
                audio = load_audio(path, end_s=self.max_audio_s + 1.0)  # never decode it all
            except Exception as e:  # undecodable audio is the client's error, reported as such
                detail = str(e).replace(f"{path}: ", "").replace(str(path), "the audio")  # not our temp path
                raise RequestError(f"cannot decode the {fmt} audio: {detail}") from e
        if audio.size == 0:
            raise RequestError("the audio is empty")
        if len(audio) > self.max_audio_s * SR:
            raise RequestError(f"the audio is longer than {self.max_audio_s:g} s; send clips "
                               "(sonicaps caption cuts files into segment_s pieces)")
        return Clip(key[:16], "request", 0.0, len(audio) / SR, audio.astype(np.float32))

    def _write(self, message: str) -> str:
        answers = answers_in(message)
        if answers is None:
            raise RequestError(f"model {self.model_name} writes captions from the sonicaps writer prompt "
                               "(sonicaps.prompts.writer_message); no 'Answer 1:' line found")
        clip = Clip("request", "request", 0.0, 0.0, np.zeros(0, np.float32))
        with self._lock:
            return self.writer.write([clip], [Answers(answers)], 0)[0]


def create_app(service: Service, faults: Faults | None = None, *,
               max_body_bytes: int = MAX_BODY_BYTES) -> Any:
    """The FastAPI application. Every error, ours or the framework's (unknown route, wrong
    method, a crash), has the OpenAI error body, which OpenAI clients read."""
    app = FastAPI(title="sonicaps serve")
    faults = faults or Faults()

    def error(status: int, message: str, kind: str) -> JSONResponse:
        return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}},
                            status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        response = error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", kind)
        response.headers.update(exc.headers or {})  # e.g. Allow on a 405
        return response

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {type(exc).__name__}", "server_error")

    model_card = {"id": service.model_name, "object": "model", "created": 0, "owned_by": "sonicaps"}

    # Async: a health check must not wait for a thread behind requests queued on the model.
    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> Any:
        if model_id != service.model_name:
            response = error(404, f"The model '{model_id}' does not exist; this server serves "
                             f"'{service.model_name}'", "invalid_request_error")
            return response
        return model_card

    def answer(body: Any, fault: str) -> Any:
        """The reply's text, or the error response to send instead."""
        kind, _, arg = fault.partition(":")
        if kind in ("500", "503", "429"):
            return error(int(kind), f"injected fault {kind}", "server_error")
        if kind == "sleep":
            time.sleep(float(arg or 1))
        if kind == "garbage":
            return PlainTextResponse("{not json", media_type="application/json")
        if not isinstance(body, dict):
            return error(400, "the request body must be a JSON object", "invalid_request_error")
        if not isinstance(body.get("stream", False), bool):
            return error(400, "'stream' must be true or false", "invalid_request_error")
        try:
            return "" if kind == "empty" else service.complete(body)
        except RequestError as e:
            return error(400, str(e), "invalid_request_error")

    def completion(text: str) -> dict:
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                "created": int(time.time()), "model": service.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}

    async def read_body(request: Request) -> bytes | None:
        """The body, or None once it passes the limit (announced or really sent): the
        server never buffers more than `max_body_bytes`."""
        try:
            if int(request.headers.get("content-length") or 0) > max_body_bytes:
                return None
        except ValueError:
            return None
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return None
        return bytes(body)

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        raw = await read_body(request)
        if raw is None:
            response = error(413, f"the request body is larger than {max_body_bytes} bytes",
                             "invalid_request_error")
            response.headers["Connection"] = "close"  # the rest of the body is not read
            return response
        try:
            body = json.loads(raw)
        except ValueError:
            return error(400, "the request body is not JSON", "invalid_request_error")
        # Models block: run them in the thread pool, off the event loop.
        text = await run_in_threadpool(answer, body, faults.next())
        if not isinstance(text, str):
            return text  # an error, sent as it is even when a stream was asked for
        if body.get("stream") is True:
            options = body.get("stream_options")
            usage = bool(isinstance(options, dict) and options.get("include_usage"))
            return StreamingResponse(sse_chunks(text, service.model_name, usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        return completion(text)

    return app


def sse_chunks(text: str, model: str, include_usage: bool = False) -> Iterator[str]:
    """A reply as the OpenAI API streams it: `chat.completion.chunk` events (the role, then
    the content, then an empty delta with finish_reason "stop", then usage if asked),
    each a `data: <json>` server-sent event, and `data: [DONE]`. The backends produce a
    caption whole, so the content comes word by word only after it is written: streaming
    gives clients the API they expect, not an earlier first word."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": None}

    def event(delta: dict, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**base, "choices": [choice]}
        if include_usage:
            chunk["usage"] = None
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    pieces = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)):]  # trailing (or only) whitespace
    for piece in pieces + ([tail] if tail else []):
        yield event({"content": piece})
    yield event({}, "stop")
    if include_usage:
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def build_service(cfg: Any, model_name: str | None = None) -> Service:
    """The service for a pipeline config: its ask and write backends."""
    from sonicaps.backends import create

    asker = create("ask", cfg.ask.backend, **cfg.ask.options)
    writer = create("write", cfg.write.backend, **cfg.write.options)
    return Service(asker, writer, model_name or f"sonicaps-{cfg.ask.backend}")


class BackgroundServer:
    """Run the app with uvicorn in a thread (tests, notebooks); `url` once started."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/v1") -> None:
        import uvicorn

        self.path = path
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                   timeout_keep_alive=KEEP_ALIVE_S))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}{self.path}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
