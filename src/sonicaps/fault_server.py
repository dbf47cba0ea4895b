"""A misbehaving OpenAI-compatible server with a stand-in model, for testing clients.

`sonicaps serve --fault` puts the real models behind FastAPI/uvicorn and can answer with an
error status, an empty answer, broken JSON or late. A fault campaign needs more: a
connection dropped before the response or in the middle of the body, a body trickled
byte by byte, an HTML page where JSON was expected. Those live below the ASGI layer, so
this server is written on the standard library's `http.server`, where every byte sent is
ours. Its model is a stand-in that answers at once (the campaign measures the client, not
a model, on shared CPUs) and whose answers name the clip they are about: the dominant
frequency of the audio it was sent ("A steady 440 Hz tone hums."), so a caption stored
under the wrong clip is seen, and every request is counted per clip.

    with FaultServer(kinds=("503", "hang"), rate=0.3, seed=0, timeout_s=1.0) as server:
        ...  # point an `openai` backend at server.url
        server.requests_per_clip()
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf

from sonicaps.prompts import QUESTIONS, message_text

FAULTS: dict[str, str] = {
    "429": "429 without Retry-After",
    "429-retry-after": "429 with Retry-After: 1",
    "500": "500 with a JSON error",
    "503": "503 with a JSON error",
    "hang": "no answer for longer than the client timeout, then the socket is closed",
    "bad-json": "200, application/json, a body cut mid-way (not JSON)",
    "no-choices": "200 with a completion whose choices list is empty",
    "long": "200 with a 5000-character single-line answer",
    "html-200": "200 with an HTML error page (text/html)",
    "html-502": "502 with an HTML error page, as a proxy sends",
    "html-content": "200 with a completion whose text is an HTML error page (a gateway's upstream error)",
    "drop-before": "the socket is closed before any response byte",
    "drop-mid": "headers and half the body, then the socket is closed",
    "slow": "headers at once, then the body a few bytes at a time, each gap under the timeout",
}
LONG_CHARS = 5000
HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n<body>"
             "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n")
SPEECH_ANSWER = "There is no speech in this audio."
MUSIC_ANSWER = "There is no music in this audio."


def dominant_hz(wav: bytes) -> int:
    """The strongest frequency of an audio file, to the nearest hertz: the clip's name here."""
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    x = audio.mean(axis=1)
    spectrum = np.abs(np.fft.rfft(x, n=max(len(x), sr)))  # at least 1 Hz resolution
    return int(round(float(np.argmax(spectrum[1:]) + 1) * sr / max(len(x), sr)))


def tone_answer(hz: int) -> str:
    return f"A steady {hz} Hz tone hums without a break."


def tone_caption(hz: int) -> str:
    return f"A steady {hz} Hz tone hums."


def stand_in_reply(body: dict[str, Any]) -> tuple[str, str]:
    """(clip key, reply) of the stand-in model: the key is "<hz> Hz" of the clip the request
    is about ("?" if none), the reply answers the sonicaps question or writer prompt."""
    users = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    audio = [p for m in users if isinstance(m.get("content"), list) for p in m["content"]
             if isinstance(p, dict) and p.get("type") in ("input_audio", "audio_url")]
    last = message_text(users[-1].get("content")) if users else ""
    if audio:
        part = audio[0]
        data = (part.get("input_audio") or {}).get("data") if part["type"] == "input_audio" \
            else (part.get("audio_url") or {}).get("url", "").partition(",")[2]
        hz = dominant_hz(base64.b64decode(data or ""))
        question = last.strip()
        reply = {QUESTIONS[0]: tone_answer(hz), QUESTIONS[1]: SPEECH_ANSWER,
                 QUESTIONS[2]: MUSIC_ANSWER}.get(question, "I answer only the sonicaps questions.")
        return f"{hz} Hz", reply
    m = re.search(r"Answer 1: .*?\b(\d+) Hz", last)
    if m:
        return f"{m.group(1)} Hz", tone_caption(int(m.group(1)))
    return "?", "I write captions from the sonicaps writer prompt only."


def completion(text: str, model: str = "stand-in") -> dict[str, Any]:
    return {"id": f"chatcmpl-{random.getrandbits(64):016x}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


@dataclass
class Served:
    """One request as the server saw it."""

    clip: str  # "<hz> Hz", or "?" when the request names no clip
    fault: str  # a FAULTS key, or "ok"
    at: float  # seconds since the server started
    # Until the answer was sent, or the client was seen to give up (a hang or a slow body
    # watches the socket for the client closing it); None while in progress.
    seconds: float | None = None


class FaultServer:
    """The server in a background thread. Chat requests first get the faults of `script`,
    one each in order ("ok" for none); after that each gets a fault with probability `rate`,
    drawn from `kinds` with a seeded generator (the sequence of draws is reproducible;
    which request gets which draw depends on arrival order). `timeout_s` is the client's:
    a hang lasts longer, a slow body's gaps are shorter."""

    def __init__(self, kinds: tuple[str, ...] | list[str] = (), rate: float = 0.0, seed: int = 0,
                 timeout_s: float = 1.0, script: tuple[str, ...] | list[str] = (),
                 host: str = "127.0.0.1", port: int = 0) -> None:
        unknown = [k for k in (*kinds, *script) if k not in FAULTS and k != "ok"]
        if unknown or not 0.0 <= rate <= 1.0 or (rate > 0 and not kinds):
            raise ValueError(f"faults must be among {sorted(FAULTS)} (got {unknown}) and 0 <= rate <= 1")
        self.kinds, self.rate, self.timeout_s = tuple(kinds), rate, timeout_s
        self.script = list(script)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.log: list[Served] = []
        self._start = time.monotonic()
        self._http = ThreadingHTTPServer((host, port), _Handler)
        self._http.daemon_threads = True
        self._http.block_on_close = False
        self._http.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._http.serve_forever, name="fault-server", daemon=True)
        h, p = self._http.server_address[:2]
        self.url = f"http://{h}:{p}/v1"

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    def draw(self, clip: str) -> tuple[str, Served]:
        with self._lock:
            if self.script:
                fault = self.script.pop(0)
            elif self.kinds and self._rng.random() < self.rate:
                fault = self._rng.choice(self.kinds)
            else:
                fault = "ok"
            self.log.append(Served(clip, fault, time.monotonic() - self._start))
            return fault, self.log[-1]

    def finish(self, served: Served) -> None:
        with self._lock:
            served.seconds = time.monotonic() - self._start - served.at

    def requests_per_clip(self) -> Counter:
        with self._lock:
            return Counter(s.clip for s in self.log)

    def longest_request_s(self) -> float:
        """The longest a request was held, answered or given up by the client."""
        with self._lock:
            return max((s.seconds or 0.0 for s in self.log), default=0.0)

    def faults_injected(self) -> Counter:
        with self._lock:
            return Counter(s.fault for s in self.log if s.fault != "ok")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai client's pool expects

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    @property
    def owner(self) -> FaultServer:
        return self.server.owner  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers=headers)

    def _client_gone(self, wait_s: float) -> bool:
        """Whether the client closed the connection, waiting up to wait_s to see it."""
        readable, _, _ = select.select([self.connection], [], [], wait_s)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "stand-in", "object": "model",
                                                         "created": 0, "owned_by": "sonicaps"}]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        try:
            body = json.loads(raw)
            clip, reply = stand_in_reply(body)
        except (ValueError, TypeError, KeyError, AttributeError, sf.LibsndfileError) as e:
            clip, reply = "?", f"bad request: {e}"
        fault, served = self.owner.draw(clip)
        try:
            if clip == "?":
                self._json(400, {"error": {"message": reply, "type": "invalid_request_error"}})
            else:
                self._answer(fault, reply)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up first
            self.close_connection = True
        finally:
            self.owner.finish(served)

    def _answer(self, fault: str, reply: str) -> None:
        timeout = self.owner.timeout_s
        error = {"error": {"message": f"injected fault {fault}", "type": "server_error"}}
        if fault == "ok":
            self._json(200, completion(reply))
        elif fault in ("429", "500", "503"):
            self._json(int(fault), error)
        elif fault == "429-retry-after":
            self._json(429, error, headers={"Retry-After": "1"})
        elif fault == "hang":
            self._client_gone(timeout * 2.5)
            self._drop()
        elif fault == "bad-json":
            body = json.dumps(completion(reply)).encode()
            self._send(200, body[: len(body) // 2])
        elif fault == "no-choices":
            self._json(200, {**completion(reply), "choices": []})
        elif fault == "long":
            self._json(200, completion(((reply + " ") * (LONG_CHARS // len(reply) + 1))[:LONG_CHARS]))
        elif fault == "html-content":
            self._json(200, completion(HTML_PAGE))
        elif fault in ("html-200", "html-502"):
            self._send(200 if fault == "html-200" else 502, HTML_PAGE.encode(), "text/html")
        elif fault == "drop-before":
            self._drop()
        elif fault == "drop-mid":
            body = json.dumps(completion(reply)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._drop()
        elif fault == "slow":
            body = json.dumps(completion(reply)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            step, gap = 4, timeout * 0.4  # each gap under the timeout; the whole well over it
            for k in range(0, len(body), step):
                if self._client_gone(gap):
                    return self._drop()
                self.wfile.write(body[k:k + step])
                self.wfile.flush()
        else:
            raise AssertionError(fault)
