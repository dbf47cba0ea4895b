"""`sonicaps serve` and `sonicaps review` under load and under attack, as figures.

    .venv/bin/python benchmarks/server_load.py [--requests 400] [--in-flight 200]

Everything runs on 127.0.0.1 from inputs made in a temp dir (synthetic WAV/FLAC clips, a
`sonicaps caption` run over them, a JSONL dataset); nothing is downloaded.

- serve, bind: started without --host it listens on 127.0.0.1 only (/proc/net/tcp and a
  connection attempt on every non-loopback address of the machine).
- serve, load: `--requests` chat completions and /v1/models calls, `--in-flight` of them
  at once (asyncio + httpx): first turns with a distinct base64 WAV each (every one a
  model call), later turns of a conversation, writer prompts. Throughput, latency
  p50/p90/p99/max, errors, and silently wrong answers (each reply compared with what the
  same backends answer in this process, one request at a time).
- serve, rejections: oversized bodies (a 100 MB Content-Length, a body over the limit
  really sent, chunked), 30 min of audio in a 120 kB request, bad base64, base64 that
  is not audio, empty audio, malformed audio parts, bad JSON, missing messages, unknown
  route, wrong method: each a 4xx with an OpenAI-shaped error body, and the server still answering afterwards.
- review: binds 127.0.0.1 by default; HTML/JS in clip ids, captions, answers, labels,
  reviewer names, edits and reasons shown as text in headless Chromium (no script runs,
  no element injected), the JS has no markup sinks, JSON served as JSON; path traversal
  (raw, %-encoded, double-encoded) refused without leaking a byte; SQL metacharacters in
  every text field stored verbatim; the token off loopback; reviews acknowledged before a
  SIGKILL of the server all present after a restart, `PRAGMA integrity_check` ok.

Prints one table of checks (PASS/FAIL/SKIP) and the load figures; exits 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 16_000
PY = sys.executable
XSS = ('<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "<svg onload=alert(1)>",
       "</textarea><script>alert(2)</script>", "javascript:alert(3)")
SQL = "'); DROP TABLE reviews;--"
SQL_FIELD = "Robert'); DROP TABLE reviews;-- \"x\" 100% _a_ \\ ok"

results: list[tuple[str, str, str, str]] = []  # (area, check, PASS/FAIL/SKIP, detail)


def check(area: str, name: str, ok: bool | None, detail: str = "") -> bool:
    results.append((area, name, "SKIP" if ok is None else "PASS" if ok else "FAIL", detail))
    return bool(ok)


# --- processes, ports, raw HTTP ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A CLI server in a subprocess, its output in a file (a pipe could fill and block it)."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        self.p = subprocess.Popen([PY, "-m", "sonicaps.cli", *args], stdout=log.open("w"),
                                  stderr=subprocess.STDOUT, env=env)

    def wait_http(self, url: str, timeout: float = 120.0) -> None:
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.p.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()[-2000:]}")
            try:
                httpx.get(url, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not answer {url}: {self.output()[-2000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()

    def kill9(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()


def listening(port: int) -> list[str]:
    """Local addresses in LISTEN state on `port` (Linux /proc/net/tcp, tcp6)."""
    out = []
    for name, v6 in (("tcp", False), ("tcp6", True)):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) != port or f[3] != "0A":
                continue
            raw = bytes.fromhex(addr)
            if v6:
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                out.append(socket.inet_ntop(socket.AF_INET6, raw))
            else:
                out.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
    return out


def local_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (from /proc/net/fib_trie)."""
    try:
        text = Path("/proc/net/fib_trie").read_text()
    except OSError:
        return []
    found = set(re.findall(r"\|-- (\d+\.\d+\.\d+\.\d+)\n\s+/32 host LOCAL", text))
    return sorted(a for a in found if not a.startswith("127."))


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def check_bind(area: str, port: int, banner: str) -> None:
    addrs = listening(port)
    check(area, "listens on 127.0.0.1 only (default --host)",
          bool(addrs) and set(addrs) == {"127.0.0.1"}, f"LISTEN {addrs}")
    check(area, "startup message names 127.0.0.1", f"http://127.0.0.1:{port}" in banner,
          banner.strip().splitlines()[0][:90] if banner.strip() else "(no output)")
    others = local_addresses()
    if others:
        reached = [a for a in others if connects(a, port)]
        check(area, "unreachable on the machine's other addresses", not reached,
              f"tried {', '.join(others)}; reached {reached or 'none'}")
    else:
        check(area, "unreachable on the machine's other addresses", None, "no non-loopback address")


def raw_http(port: int, head: str, body: Iterable[bytes] = (),
             timeout: float = 15.0) -> tuple[int | None, bytes, str]:
    """Send a request byte for byte (nothing normalised) while reading the answer in a
    thread, so an answer sent before the body is complete is still seen. Returns
    (status or None, body, note)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = bytearray()
    closed = threading.Event()

    def reader() -> None:
        try:
            while chunk := sock.recv(65536):
                got.extend(chunk)
        except OSError:
            pass
        closed.set()

    threading.Thread(target=reader, daemon=True).start()
    note = ""
    start = time.monotonic()
    try:
        sock.sendall(head.encode("latin-1"))
        for chunk in body:
            if got:  # answered already: stop sending, as a client reading the answer would
                note = "answered before the body was sent"
                break
            sock.sendall(chunk)
    except OSError as e:
        note = f"sending stopped ({type(e).__name__})"
    closed.wait(timeout)
    sock.close()
    note = (note + f"; {time.monotonic() - start:.1f} s").lstrip("; ")
    if not got:
        return None, b"", note + " (no answer)"
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/") else None
    return status, bytes(got.partition(b"\r\n\r\n")[2]), note


def openai_error(status: int | None, body: bytes) -> bool:
    """A 4xx whose body is {"error": {"message": str, "type": str, ...}}."""
    try:
        err = json.loads(body)["error"]
        return (status is not None and 400 <= status < 500 and isinstance(err["message"], str)
                and isinstance(err["type"], str))
    except (ValueError, KeyError, TypeError):
        return False


# --- audio -----------------------------------------------------------------------------


def clip_audio(k: int, seconds: float = 1.5) -> np.ndarray:
    """A distinct short clip per k: one or two tones over a little noise."""
    rng = np.random.default_rng(k)
    t = np.arange(int(seconds * SR)) / SR
    x = 0.25 * np.sin(2 * np.pi * (150 + 37 * k % 3000) * t)
    if k % 2:
        x += 0.15 * np.sin(2 * np.pi * (800 + 11 * k) * t) * (t > seconds / 2)
    return (x + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def wav_b64(audio: np.ndarray) -> str:
    buf = io.BytesIO()
    sf.write(buf, audio, SR, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


# --- sonicaps serve ----------------------------------------------------------------------


def serve_campaign(tmp: Path, env: dict[str, str], n_requests: int, in_flight: int) -> dict[str, Any]:
    from sonicaps.prompts import QUESTIONS, writer_message

    port = free_port()
    proc = Proc(["serve", "--port", str(port)], tmp / "serve.log", env)
    figures: dict[str, Any] = {}
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/v1/models")
        check_bind("serve", port, proc.output())
        figures = serve_load(port, n_requests, in_flight, QUESTIONS, writer_message)
        serve_rejections(port, QUESTIONS)
    finally:
        proc.stop()
    return figures


def make_requests(n: int, questions: tuple[str, ...], writer_message: Any) -> list[tuple[str, dict | None]]:
    """(kind, body): first turns on distinct clips, later turns, writer prompts, model lists."""
    reqs: list[tuple[str, dict | None]] = []
    convo_clips = [wav_b64(clip_audio(10_000 + k)) for k in range(8)]
    for i in range(n):
        kind = ("ask", "turn", "write", "models")[i % 4]
        if kind == "ask":
            part = {"type": "input_audio", "input_audio": {"data": wav_b64(clip_audio(i)), "format": "wav"}}
            if i % 8 == 4:
                part = {"type": "audio_url",
                        "audio_url": {"url": "data:audio/wav;base64," + part["input_audio"]["data"]}}
            body = {"model": "m", "messages": [{"role": "user", "content": [
                part, {"type": "text", "text": questions[0]}]}]}
        elif kind == "turn":  # the client's second or third turn: audio in the first message
            data = convo_clips[i % len(convo_clips)]
            k = 1 + (i // 4) % 2
            messages: list[dict] = [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}},
                {"type": "text", "text": questions[0]}]}]
            for q in questions[1:k + 1]:
                messages += [{"role": "assistant", "content": "(earlier answer)"},
                             {"role": "user", "content": q}]
            body = {"model": "m", "messages": messages, "temperature": 0}
        elif kind == "write":
            answers = (f"A dog barks {i % 7 + 1} times.", "There is no speech in this audio.",
                       "There is no music in this audio." if i % 3 else "A piano plays softly.")
            body = {"model": "m", "max_tokens": 64,
                    "messages": [{"role": "system", "content": "Write one caption."},
                                 {"role": "user", "content": writer_message(answers)}]}
        else:
            body = None
        reqs.append((kind, body))
    return reqs


def serve_load(port: int, n: int, in_flight: int, questions: tuple[str, ...], writer_message: Any) -> dict:
    import httpx

    from sonicaps.pipeline.config import PipelineConfig
    from sonicaps.serve import build_service

    reqs = make_requests(n, questions, writer_message)
    url = f"http://127.0.0.1:{port}/v1"
    lat: dict[str, list[float]] = {}
    statuses: dict[str, int] = {}
    replies: list[Any] = [None] * n
    errors: list[str] = []
    active = peak = 0

    async def main() -> float:
        nonlocal active, peak
        sem = asyncio.Semaphore(in_flight)
        limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
        async with httpx.AsyncClient(limits=limits, timeout=300) as client:
            async def one(i: int) -> None:
                nonlocal active, peak
                kind, body = reqs[i]
                async with sem:
                    active += 1
                    peak = max(peak, active)
                    t0 = time.perf_counter()
                    try:
                        if body is None:
                            r = await client.get(f"{url}/models")
                        else:
                            r = await client.post(f"{url}/chat/completions", json=body)
                        dt = time.perf_counter() - t0
                        statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                        lat.setdefault(kind, []).append(dt)
                        lat.setdefault("all", []).append(dt)
                        if r.status_code != 200:
                            errors.append(f"{kind} {r.status_code} {r.text[:120]}")
                        else:
                            data = r.json()
                            replies[i] = (data["data"][0]["id"] if body is None
                                          else data["choices"][0]["message"]["content"])
                    except Exception as e:  # a failed request is a figure, not a crash
                        statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
                        errors.append(f"{kind} {e!r} after {time.perf_counter() - t0:.2f} s")
                    finally:
                        active -= 1

            t0 = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(n)))
            return time.perf_counter() - t0

    wall = asyncio.run(main())
    # What the same backends answer here, one request at a time.
    ref = build_service(PipelineConfig(), "sonicaps-builtin")
    wrong = []
    for i, (kind, body) in enumerate(reqs):
        if replies[i] is None:
            continue
        want = "sonicaps-builtin" if body is None else ref.complete(body)
        if replies[i] != want:
            wrong.append(f"#{i} {kind}: {replies[i]!r} != {want!r}")
    served = sum(1 for r in replies if r is not None)
    check("serve", f"load: {n} requests, {in_flight} in flight, 0 errors", not errors and peak >= in_flight,
          f"peak in flight {peak}; statuses {statuses}" + (f"; first: {errors[0]}" if errors else ""))
    check("serve", "load: 0 silently wrong replies", not wrong and served > 0,
          f"{len(wrong)} wrong of {served} compared" + (f"; {wrong[0][:150]}" if wrong else ""))
    return {"wall": wall, "n": n, "in_flight": in_flight, "peak": peak, "lat": lat, "statuses": statuses,
            "errors": len(errors), "wrong": len(wrong), "error_list": errors[:5]}


def serve_rejections(port: int, questions: tuple[str, ...]) -> None:
    import httpx

    from sonicaps import serve as serve_module

    limit = getattr(serve_module, "MAX_BODY_BYTES", 32 * 2**20)
    url = f"http://127.0.0.1:{port}"

    def chat(content: Any) -> dict:
        return {"model": "m", "messages": [{"role": "user", "content": content}]}

    def audio(data: Any, fmt: Any = "wav") -> dict:
        return chat([{"type": "input_audio", "input_audio": {"data": data, "format": fmt}},
                     {"type": "text", "text": questions[0]}])

    empty_wav = wav_b64(np.zeros(0, np.float32))
    buf = io.BytesIO()
    sf.write(buf, np.zeros(30 * 60 * SR, np.int16), SR, format="FLAC")  # 30 min: ~90 kB
    long_flac = base64.b64encode(buf.getvalue()).decode()
    cases: list[tuple[str, str, Any]] = [  # (name, method path, body: dict, bytes or None)
        ("bad base64", "POST /v1/chat/completions", audio("%%%not base64%%%")),
        ("valid base64, not audio", "POST /v1/chat/completions",
         audio(base64.b64encode(b"this is plain text, not a wav file" * 20).decode())),
        ("empty audio data", "POST /v1/chat/completions", audio("")),
        ("WAV with no samples", "POST /v1/chat/completions", audio(empty_wav)),
        ("input_audio not an object", "POST /v1/chat/completions",
         chat([{"type": "input_audio", "input_audio": "abc"}, {"type": "text", "text": questions[0]}])),
        ("audio_url not an object", "POST /v1/chat/completions",
         chat([{"type": "audio_url", "audio_url": "abc"}, {"type": "text", "text": questions[0]}])),
        ("audio_url not a data URL", "POST /v1/chat/completions",
         chat([{"type": "audio_url", "audio_url": {"url": "file:///etc/passwd"}},
               {"type": "text", "text": questions[0]}])),
        ("format not a string", "POST /v1/chat/completions", audio(wav_b64(clip_audio(1)), ["wav"])),
        ("format with a path", "POST /v1/chat/completions", audio(wav_b64(clip_audio(1)), "../../x")),
        ("data not a string", "POST /v1/chat/completions", audio(12345)),
        (f"30 min of quiet FLAC in {len(long_flac) // 1000} kB", "POST /v1/chat/completions",
         audio(long_flac, "flac")),
        ("not JSON", "POST /v1/chat/completions", b"{this is not json"),
        ("JSON not an object", "POST /v1/chat/completions", b"[1, 2, 3]"),
        ("invalid UTF-8", "POST /v1/chat/completions", b'{"messages": "\xff\xfe"}'),
        ("missing messages", "POST /v1/chat/completions", {"model": "m"}),
        ("empty messages", "POST /v1/chat/completions", {"model": "m", "messages": []}),
        ("messages not a list", "POST /v1/chat/completions", {"model": "m", "messages": "hello"}),
        ("no user message", "POST /v1/chat/completions",
         {"model": "m", "messages": [{"role": "system", "content": "x"}]}),
        ("question not one of sonicaps'", "POST /v1/chat/completions",
         chat([{"type": "input_audio", "input_audio": {"data": wav_b64(clip_audio(1)), "format": "wav"}},
               {"type": "text", "text": "Tell me a joke."}])),
        ("text without the writer prompt", "POST /v1/chat/completions", chat("Write a poem.")),
        ("unknown route", "GET /v1/nope", None),
        ("unknown route (POST)", "POST /v1/completions", {"prompt": "x"}),
        ("wrong method on chat", "GET /v1/chat/completions", None),
        ("wrong method on models", "DELETE /v1/models", None),
    ]
    for name, target, body in cases:
        method, path = target.split(" ")
        with httpx.Client(timeout=60) as client:  # a fresh connection each: a 500 closes it
            if isinstance(body, dict):
                r = client.request(method, url + path, json=body)
            else:
                r = client.request(method, url + path, content=body,
                                   headers={"content-type": "application/json"} if body else {})
        alive = httpx.get(url + "/v1/models", timeout=30).status_code == 200
        try:
            shown = json.loads(r.content)["error"]["message"][:60]
        except (ValueError, KeyError, TypeError):
            shown = r.text[:60]
        check("serve", f"rejects: {name}", openai_error(r.status_code, r.content) and alive,
              f"{r.status_code} {shown!r}" + ("" if alive else "; server DOWN"))

    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Connection: close\r\n")
    big = [
        ("100 MB Content-Length, 2 bytes sent", head + "Content-Length: 100000000\r\n\r\n", [b"{}"]),
        (f"body of {limit // 2**20 + 1} MB really sent", head + f"Content-Length: {limit + 2**20}\r\n\r\n",
         (b'{"messages": "' + b"a" * (2**20 - 14) if k == 0 else b"a" * 2**20
          for k in range(limit // 2**20 + 1))),
        (f"chunked body over {limit // 2**20} MB", head + "Transfer-Encoding: chunked\r\n\r\n",
         (b"100000\r\n" + b"a" * 2**20 + b"\r\n" for _ in range(limit // 2**20 + 2))),
    ]
    for name, h, body in big:
        status, data, note = raw_http(port, h, body, timeout=20)
        alive = httpx.get(url + "/v1/models", timeout=30).status_code == 200
        check("serve", f"rejects: {name}", status == 413 and openai_error(status, data) and alive,
              f"{status} {data[:60]!r}; {note}" + ("" if alive else "; server DOWN"))


# --- sonicaps review ---------------------------------------------------------------------


def make_collection(tmp: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A pipeline output (caption run over synthetic clips, one file named with markup,
    plus a shard whose ids, captions, answers and labels are attacks) and a JSONL
    dataset of the same kind."""
    import pandas as pd

    from sonicaps.pipeline.store import Store

    clips = tmp / "clips"
    clips.mkdir()
    for k, name in enumerate(("plain", XSS[1], "a'b;--")):
        sf.write(clips / f"{name}.wav" if k != 2 else clips / f"{name}.flac", clip_audio(k, 2.0), SR)
    out = tmp / "captions"
    done = subprocess.run([PY, "-m", "sonicaps.cli", "caption", str(clips), "-o", str(out), "--quiet"],
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    table = pd.read_parquet(out)
    base = table.iloc[0].to_dict()
    evil_rows = []
    for k, (cid, cap) in enumerate([(XSS[0], XSS[1]), (SQL, SQL_FIELD), (XSS[2], XSS[3]), (XSS[4], XSS[0])]):
        row = dict(base, id=cid, caption=cap, answer_1=XSS[k % len(XSS)], answer_2=SQL, answer_3=XSS[1],
                   labels=np.array([XSS[1], SQL], dtype=object),
                   evidence=json.dumps({"labels": [[XSS[0], 0.9], [SQL, 0.5]]}))
        evil_rows.append(row)
    Store(out).commit(evil_rows, [])
    ds = tmp / "dataset"
    (ds / "audio").mkdir(parents=True)
    sf.write(ds / "audio" / "a.wav", clip_audio(7), SR)
    lines = [{"id": XSS[1], "captions": [XSS[0], SQL], "audio": "audio/a.wav", "labels": [XSS[2]]},
             {"id": SQL, "captions": [XSS[3]], "audio": "audio/a.wav"}]
    (ds / "set.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return out, ds / "set.jsonl"


class Http:
    """http.client requests sent as written (no path normalisation), JSON helpers."""

    def __init__(self, host: str, port: int, host_header: str | None = None) -> None:
        self.host, self.port = host, port
        self.host_header = host_header or f"{host}:{port}"

    def req(self, method: str, path: str, body: Any = None,
            headers: dict | None = None) -> tuple[int, bytes, dict]:
        import http.client

        con = http.client.HTTPConnection(self.host, self.port, timeout=60)
        h = {"Host": self.host_header, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
            h["Content-Length"] = str(len(data))
        con.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in h.items():
            con.putheader(k, v)
        con.endheaders(data)
        r = con.getresponse()
        out = r.status, r.read(), {k.lower(): v for k, v in r.getheaders()}
        con.close()
        return out

    def json(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> tuple[int, Any]:
        status, data, _ = self.req(method, path, body, headers)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data


def review_campaign(tmp: Path, env: dict[str, str]) -> None:
    out, dataset = make_collection(tmp, env)
    port = free_port()
    proc = Proc(["review", str(out), "--port", str(port), "--reviewer", "bench"], tmp / "review.log", env)
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/api/info")
        check_bind("review", port, proc.output())
        http = Http("127.0.0.1", port)
        wait_indexed(http, 7)
        review_headers_and_js(http)
        review_traversal(http)
        review_sql(http, out / "_review" / "review.sqlite")
        check("review", "Host header other than loopback refused (DNS rebinding)",
              http.req("GET", "/api/info", headers={"Host": "attacker.example"})[0] == 403)
        review_browser("pipeline output", http, f"http://127.0.0.1:{port}")
    finally:
        proc.stop()
    # The JSONL dataset: ids and captions with markup from another reader.
    port = free_port()
    proc = Proc(["review", str(dataset), "--port", str(port)], tmp / "review2.log", env)
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/api/info")
        http = Http("127.0.0.1", port)
        wait_indexed(http, 3)
        review_browser("JSONL dataset", http, f"http://127.0.0.1:{port}")
    finally:
        proc.stop()
    review_token(tmp, out, env)
    review_sigkill(tmp, out, env)


def wait_indexed(http: Http, n: int) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        status, info = http.json("GET", "/api/info")
        if status == 200 and info["items"] >= n and not info["indexing"]:
            return
        time.sleep(0.2)
    raise RuntimeError(f"collection not indexed: {info}")


def review_headers_and_js(http: Http) -> None:
    from importlib import resources

    status, items = http.json("GET", "/api/items?limit=500")
    bad = []
    for path in ["/api/info", "/api/items?limit=500", *[f"/api/items/{it['pos']}" for it in items]]:
        _, body, h = http.req("GET", path)
        if (not h.get("content-type", "").startswith("application/json")
                or h.get("x-content-type-options") != "nosniff"):
            bad.append(path)
    check("review", "data only as JSON (application/json, nosniff)", status == 200 and not bad,
          f"{len(items)} items; wrong on {bad[:3]}")
    _, page, h = http.req("GET", "/")
    csp = h.get("content-security-policy", "")
    check("review", "page carries a CSP without inline scripts",
          "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp[:60])
    leaked = [x for x in (*XSS, SQL) if x.encode() in page]
    check("review", "HTML page holds no data (all data via JSON)", not leaked, f"found {leaked[:2]}")
    js = resources.files("sonicaps.review").joinpath("static", "app.js").read_text()
    code = re.sub(r"//[^\n]*", "", js)
    sinks = [s for s in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                         "new Function", "setAttribute(\"on", ".srcdoc", "createContextualFragment",
                         "DOMParser") if s in code]
    check("review", "app.js has no markup sinks (innerHTML, eval, ...)", not sinks, f"found {sinks}")


def review_traversal(http: Http) -> None:
    secret = Path("/etc/passwd").read_bytes()[:20] if Path("/etc/passwd").exists() else b"root:"
    import sonicaps

    src = (Path(sonicaps.__file__).parent / "review" / "app.py").read_bytes()[:60]
    paths = [
        "/static/../../etc/passwd", "/static/../app.py", "/static/..%2f..%2f..%2fetc%2fpasswd",
        "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/%252e%252e%252fetc%252fpasswd", "/static/..%252f..%252fetc%252fpasswd",
        "/static/..\\..\\app.py", "/static/%2e%2e%5c%2e%2e%5capp.py", "/static//etc/passwd",
        "/static/%2fetc%2fpasswd", "/static/app.js%00.py", "/static/..%c0%af..%c0%afetc%c0%afpasswd",
        "/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
        "/api/items/1/../../../../etc/passwd", "/api/items/..%2f..%2f..%2fetc%2fpasswd/audio",
        "/api/items/%2e%2e%2f%2e%2e%2fetc%2fpasswd/audio", "/api/items/%252e%252e%252fetc/audio",
        "/api/items/-1/audio", "/api/items/99999/audio", "/api/items/1e3/audio",
        "/api/items/1/audio/../../../../etc/passwd", "/api/items/1/spectrogram.png/..%2f..%2fetc%2fpasswd",
    ]
    bad = []
    for path in paths:
        status, body, _ = http.req("GET", path)
        if not 400 <= status < 500 or secret in body or src in body or b"root:x:" in body:
            bad.append(f"{path} -> {status}")
    check("review", f"path traversal refused ({len(paths)} raw/encoded/double-encoded paths)", not bad,
          "; ".join(bad[:3]) or "all 4xx, nothing leaked")


def review_sql(http: Http, db: Path) -> None:
    _, items = http.json("GET", "/api/items?limit=500")
    sql_items = [it for it in items if "DROP TABLE" in it["clip"]] or items[:1]
    sent = []
    for k, it in enumerate(items):
        reviewer = f"{SQL} #{k}"
        if k % 3 == 0:
            body = {"action": "edit", "caption": f"{SQL_FIELD} {k}", "reason": SQL, "expected": None}
        elif k % 3 == 1:
            body = {"action": "reject", "reason": f"{SQL_FIELD} {k}", "expected": None}
        else:
            body = {"action": "accept", "reason": "", "expected": None}
        status, rev = http.json("POST", f"/api/items/{it['pos']}/review", body, {"X-Reviewer": reviewer})
        if status == 200:
            sent.append((rev["id"], it["item"], reviewer, body))
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT id, item, reviewer, action, caption, reason FROM reviews")}
    verbatim = all(rows.get(i) is not None and rows[i][0] == item and rows[i][1] == who
                   and (body["action"] != "edit" or rows[i][3] == body["caption"])
                   and (body["action"] != "reject" or rows[i][4] == body["reason"])
                   for i, item, who, body in sent)
    check("review", "SQL metacharacters in ids, reviewer, caption, reason stored verbatim",
          len(sent) == len(items) and verbatim and {"reviews", "items"} <= tables,
          f"{len(sent)}/{len(items)} reviews saved; ids with SQL: {len(sql_items)}; tables {sorted(tables)}")
    checks = []
    for label, want in ((SQL, len(items) - 3), ("%", 0), ("_", 0), ("'", 0), ("\\", 0)):
        status, found = http.json("GET", "/api/items?limit=500&label=" + urllib.parse.quote(label))
        checks.append((label, status, len(found) if isinstance(found, list) else found, want))
    check("review", "SQL/LIKE metacharacters in the label filter match literally",
          all(s == 200 and n == w for _, s, n, w in checks),
          "; ".join(f"{lab!r}: {n}" for lab, _, n, _ in checks))
    status, found = http.json("GET", "/api/items?status=" + urllib.parse.quote(SQL))
    check("review", "SQL in the status filter refused (400)", status == 400, str(status))
    con.close()


def review_browser(what: str, http: Http, url: str) -> None:
    area = f"review ({what})"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        check(area, "browser: markup in data shown as text", None, "playwright not installed")
        return
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        check(area, "browser: markup in data shown as text", None, "no chromium")
        return
    _, items = http.json("GET", "/api/items?limit=500")
    evil_reviewer = '<img src=x onerror=alert("who")>'
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium)
        try:
            # CSP bypassed: the page's own code must never turn data into markup.
            page = browser.new_page(bypass_csp=True)
            page.add_init_script("window.__alerts = []; for (const f of ['alert', 'confirm', 'prompt'])"
                                 " window[f] = (m) => { window.__alerts.push(String(m)); };")
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/?reviewer={urllib.parse.quote(evil_reviewer)}")
            page.wait_for_function("document.getElementById('clip-id').textContent.length > 0")
            mismatches = []
            for it in items:
                page.evaluate(f"show({it['pos']})")
                page.wait_for_function(f"state.current === {it['pos']} && state.detail.pos === {it['pos']}")
                _, d = http.json("GET", f"/api/items/{it['pos']}")
                shown = page.evaluate("""() => ({
                    clip: document.getElementById('clip-id').textContent,
                    caption: document.getElementById('caption').textContent,
                    answers: [...document.querySelectorAll('#qa dd')].map(e => e.textContent),
                    hints: [...document.querySelectorAll('#hints li')].map(e => e.textContent),
                    list: [...document.querySelectorAll('#list li b')].map(e => e.textContent)})""")
                want_answers = [q["answer"] for q in d.get("qa", [])] + list(d.get("other_captions", []))
                if (shown["clip"] != d["clip"] or shown["caption"] != d["caption"]
                        or shown["answers"] != want_answers or d["clip"] not in shown["list"]
                        or any(not h.startswith(lab) for h, (lab, _) in zip(shown["hints"], d["detections"],
                                                                             strict=False))):
                    mismatches.append(d["clip"])
            # Write through the page: an edit and a rejection full of markup.
            first = items[0]["pos"]
            page.evaluate(f"show({first})")
            page.wait_for_function(f"state.current === {first}")
            page.keyboard.press("e")
            page.fill("#edit-text", XSS[3] + " " + XSS[1])
            page.keyboard.press("Control+Enter")
            page.wait_for_function(f"state.current !== {first}")
            second = page.evaluate("state.current")
            page.keyboard.press("r")
            page.fill("#reason-text", XSS[0])
            page.keyboard.press("Enter")
            page.wait_for_function(f"state.current !== {second}")
            page.evaluate(f"show({first})")
            page.wait_for_function(f"state.current === {first} && state.detail.review !== null")
            state_text = page.inner_text("#review-state")
            page.wait_for_timeout(300)
            dom = page.evaluate("""() => ({
                scripts: document.scripts.length, imgs: document.images.length,
                svg: document.querySelectorAll('svg').length,
                handlers: [...document.querySelectorAll('*')].filter(e =>
                    [...e.attributes].some(a => a.name.startsWith('on'))).length,
                alerts: window.__alerts})""")
            check(area, f"browser: {len(items)} clips' ids, captions, answers, labels shown verbatim",
                  not mismatches, f"mismatch on {mismatches[:2]}" if mismatches else "textContent == data")
            check(area, "browser: no script ran, no element injected",
                  dom["alerts"] == [] and dom["scripts"] == 1 and dom["imgs"] == 1 and dom["svg"] == 0
                  and dom["handlers"] == 0 and not errors,
                  f"alerts {dom['alerts']}, scripts {dom['scripts']}, imgs {dom['imgs']}, svg {dom['svg']}, "
                  f"on* attributes {dom['handlers']}, page errors {errors[:1]}")
            check(area, "browser: markup in reviewer name and edit shown as text",
                  evil_reviewer in state_text and XSS[3] in state_text, state_text[:80])
            # A reviewer name outside Latin-1 (headers carry Latin-1 only).
            page2 = browser.new_page(bypass_csp=True)  # for the waits, evaluated scripts
            errs2: list[str] = []
            page2.on("pageerror", lambda e: errs2.append(str(e)))
            name = "Zoë 王芳"
            page2.goto(f"{url}/?reviewer={urllib.parse.quote(name)}")
            try:
                page2.wait_for_function("document.getElementById('clip-id').textContent.length > 0",
                                        timeout=10000)
                page2.keyboard.press("a")
                page2.wait_for_function("document.getElementById('message').textContent.includes('saved')",
                                        timeout=10000)
                ok, detail = True, page2.inner_text("#progress")
            except Exception as e:  # a failed wait: say what the page showed
                ok, detail = False, f"{page2.inner_text('#message')!r} {errs2[:1]} {str(e)[:80]}"
            check(area, f"browser: a reviewer named {name!r} can review", ok, detail)
        finally:
            browser.close()


def review_token(tmp: Path, out: Path, env: dict[str, str]) -> None:
    area = "review token"
    no_token_env = {k: v for k, v in env.items() if k != "SONICAPS_REVIEW_TOKEN"}
    done = subprocess.run([PY, "-m", "sonicaps.cli", "review", str(out), "--host", "0.0.0.0",
                           "--review-db", str(tmp / "tok0")], env=no_token_env, capture_output=True,
                          text=True, timeout=120)
    check(area, "non-loopback --host without a token refused", done.returncode == 2,
          f"exit {done.returncode}: {done.stderr.strip()[:70]}")
    others = local_addresses()
    host = others[0] if others else "0.0.0.0"
    target = others[0] if others else "127.0.0.1"
    port = free_port()
    token = "s3cret-" + os.urandom(8).hex()
    proc = Proc(["review", str(out), "--host", host, "--port", str(port), "--token", token,
                 "--review-db", str(tmp / "tok1")], tmp / "review_tok.log", no_token_env)
    try:
        deadline = time.time() + 60
        while not connects(target, port) and time.time() < deadline:
            time.sleep(0.2)
        http = Http(target, port)
        cases = [
            ("no token", {}, "/api/info", 401),
            ("wrong token", {"Authorization": "Bearer wrong"}, "/api/info", 401),
            ("token prefix", {"Authorization": f"Bearer {token[:-1]}"}, "/api/info", 401),
            ("non-ASCII token", {}, "/api/info?token=%C3%A9t%C3%A9", 401),
            ("non-ASCII cookie", {"Cookie": "sonicaps_review_token=\u00e9t\u00e9".encode().decode("latin-1")},
             "/api/info", 401),
            ("no token on audio", {}, "/api/items/1/audio", 401),
            ("no token on the page", {}, "/", 401),
            ("Bearer token", {"Authorization": f"Bearer {token}"}, "/api/info", 200),
            ("cookie", {"Cookie": f"sonicaps_review_token={token}"}, "/api/info", 200),
        ]
        for name, headers, path, want in cases:
            status = http.req("GET", path, headers=headers)[0]
            check(area, f"bound to {host}: {name} -> {want}", status == want, str(status))
        status, _, h = http.req("GET", f"/?token={token}")
        check(area, f"bound to {host}: ?token= sets an HttpOnly SameSite cookie",
              status == 200 and "HttpOnly" in h.get("set-cookie", "")
              and "SameSite=strict" in h.get("set-cookie", ""),
              h.get("set-cookie", "")[:40] + "...")
    finally:
        proc.stop()


def stored_reviews(db_dir: Path) -> tuple[set[int], str]:
    """The review ids in a review database, and SQLite's integrity check of it."""
    con = sqlite3.connect(db_dir / "review.sqlite")
    try:
        have = {r[0] for r in con.execute("SELECT id FROM reviews")}
        return have, con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def review_sigkill(tmp: Path, out: Path, env: dict[str, str], n: int = 60) -> None:
    """N acknowledged reviews, kill -9, restart: all there; then writers still writing when
    the server is killed: every acknowledged review there."""
    area = "review SIGKILL"
    db_dir = tmp / "killdb"
    port = free_port()
    args = ["review", str(out), "--port", str(port), "--review-db", str(db_dir)]
    proc = Proc(args, tmp / "kill1.log", env)
    proc.wait_http(f"http://127.0.0.1:{port}/api/info")
    http = Http("127.0.0.1", port)
    wait_indexed(http, 7)
    _, items = http.json("GET", "/api/items?limit=500")
    acked: list[int] = []
    for k in range(n):
        it = items[k % len(items)]
        status, rev = http.json("POST", f"/api/items/{it['pos']}/review",
                                {"action": "accept", "expected": None}, {"X-Reviewer": f"r{k}"})
        if status == 200:
            acked.append(rev["id"])
    proc.kill9()
    proc = Proc(args, tmp / "kill2.log", env)
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/api/info")
        have, integrity = stored_reviews(db_dir)
        seen = sum(http.json("GET", "/api/info", headers={"X-Reviewer": f"r{k}"})[1]["reviewed"]
                   for k in range(n))
        check(area, f"{n} reviews acknowledged, kill -9, restart: all present",
              len(acked) == n and set(acked) <= have and seen == n and integrity == "ok",
              f"{len(set(acked) & have)}/{len(acked)} in DB, {seen} via API, integrity {integrity}")
        # Writers running while the server is killed.
        stop = threading.Event()
        acked2: list[int] = []
        lock = threading.Lock()

        def writer(w: int) -> None:
            k = 0
            while not stop.is_set():
                it = items[k % len(items)]
                try:
                    status, rev = http.json("POST", f"/api/items/{it['pos']}/review",
                                            {"action": "accept", "expected": None},
                                            {"X-Reviewer": f"w{w}-{k}"})
                except OSError:
                    return
                if status == 200:
                    with lock:
                        acked2.append(rev["id"])
                k += 1

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.time() + 120
        while len(acked2) < 80 and all(t.is_alive() for t in threads) and time.time() < deadline:
            time.sleep(0.01)
        proc.kill9()
        stop.set()
        for t in threads:
            t.join()
    finally:
        proc.stop()
    proc = Proc(args, tmp / "kill3.log", env)
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/api/info")
        have, integrity = stored_reviews(db_dir)
        lost = set(acked2) - have
        check(area, "kill -9 while 4 writers write: every acknowledged review present",
              len(acked2) >= 80 and not lost and set(acked) <= have and integrity == "ok",
              f"{len(acked2)} acknowledged, {len(lost)} lost, {len(have)} rows, integrity {integrity}")
    finally:
        proc.stop()


# --- report ------------------------------------------------------------------------------


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q)) * 1000 if xs else float("nan")


def report(figures: dict[str, Any], elapsed: float) -> int:
    if figures:
        print(f"\nsonicaps serve (built-in backends), {figures['n']} requests, "
              f"{figures['in_flight']} in flight "
              f"(peak {figures['peak']}), 2-core machine shared with the client")
        print(f"  throughput {figures['n'] / figures['wall']:.1f} req/s over {figures['wall']:.1f} s; "
              f"statuses {figures['statuses']}; errors {figures['errors']}; "
              f"silently wrong {figures['wrong']}")
        print(f"  {'kind':<8}{'n':>5}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}")
        for kind in ("ask", "turn", "write", "models", "all"):
            xs = figures["lat"].get(kind, [])
            print(f"  {kind:<8}{len(xs):>5}{pct(xs, 50):>10.0f}{pct(xs, 90):>10.0f}{pct(xs, 99):>10.0f}"
                  f"{max(xs, default=float('nan')) * 1000:>10.0f}")
    width = max(len(r[1]) for r in results)
    area_w = max(len(r[0]) for r in results)
    print(f"\n{'area':<{area_w}}  {'check':<{width}}  result  detail")
    for area, name, verdict, detail in results:
        print(f"{area:<{area_w}}  {name:<{width}}  {verdict:<6}  {detail}")
    failed = [r for r in results if r[2] == "FAIL"]
    print(f"\n{len(results)} checks: {len(results) - len(failed)} pass or skip, {len(failed)} fail; "
          f"{elapsed:.0f} s")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--in-flight", type=int, default=200)
    ap.add_argument("--skip-review", action="store_true")
    ap.add_argument("--skip-serve", action="store_true")
    args = ap.parse_args()
    start = time.time()
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    sys.path.insert(0, src)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sonicaps-server-load-") as d:
        tmp = Path(d)
        if not args.skip_serve:
            figures = serve_campaign(tmp, env, args.requests, args.in_flight)
        if not args.skip_review:
            review_campaign(tmp, env)
    return report(figures, time.time() - start)


if __name__ == "__main__":
    sys.exit(main())
