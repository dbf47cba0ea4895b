"""The openai backends against a real `sonicaps serve` on 127.0.0.1 (built-in models behind
it, audio really decoded and analysed), including a server told to misbehave."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import openai
import pandas as pd
import pytest

from sonicaps.backends.builtin.writer import BuiltinWriter
from sonicaps.pipeline.config import BackendSpec, PipelineConfig
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.store import Store
from sonicaps.prompts import QUESTIONS, writer_message
from sonicaps.serve import BackgroundServer, Faults, Service, create_app

CLIPS = ("cow.mp3", "dog_then_man.wav", "woman_speaking.flac")


@pytest.fixture(scope="module")
def service(backends) -> Service:
    return Service(backends.asker, BuiltinWriter(), "sonicaps-builtin")


@pytest.fixture
def collection(examples, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for name in CLIPS:
        shutil.copy(examples / name, d / name)
    return d


def served(service: Service, *faults: str | Faults) -> BackgroundServer:
    script = faults[0] if len(faults) == 1 and isinstance(faults[0], Faults) else Faults(list(faults))
    return BackgroundServer(create_app(service, script))


def openai_config(url: str, **client) -> PipelineConfig:
    opts = {"base_url": url, "model": "sonicaps-builtin", "concurrency": 2, **client}
    return PipelineConfig(ask=BackendSpec("openai", opts), write=BackendSpec("openai", opts),
                          check=BackendSpec("textsim"), batch_size=2)


def rows_and_failures(out) -> tuple[pd.DataFrame, list[dict]]:
    return pd.read_parquet(out).sort_values("id").reset_index(drop=True), Store(out).read_failures()


def test_pipeline_through_the_server_matches_the_models_behind_it(service, collection, tmp_path, backends):
    with served(service) as server:
        run([collection], tmp_path / "remote", openai_config(server.url), progress=False)
    run([collection], tmp_path / "local", PipelineConfig(check=BackendSpec("textsim"), batch_size=2),
        progress=False)
    remote, fails = rows_and_failures(tmp_path / "remote")
    local, _ = rows_and_failures(tmp_path / "local")
    assert fails == [] and list(remote["id"]) == list(local["id"])
    for k in (1, 2, 3):  # the server's asker heard the same audio
        assert list(remote[f"answer_{k}"]) == list(local[f"answer_{k}"])
    assert set(remote["asker"]) == {"openai:sonicaps-builtin"}
    captions = dict(zip(remote["id"], remote["caption"], strict=True))
    assert captions["dog_then_man_0_10"] == "A dog barks, then a man speaks"
    assert captions["cow_0_10"] == "A cow moos"


def test_5xx_429_and_timeouts_are_retried_and_nothing_is_lost(service, collection, tmp_path):
    faults = Faults(["503", "429", "sleep:3", "500"])
    with served(service, faults) as server:
        cfg = openai_config(server.url, timeout_s=1.0, max_retries=5)
        summary = run([collection], tmp_path / "out", cfg, progress=False)
    rows, fails = rows_and_failures(tmp_path / "out")
    assert faults.script == []  # every fault was served, and still nothing was lost
    assert fails == [] and summary.clips == len(rows) == len(CLIPS)


def test_garbage_is_retried_and_empty_answers_become_failures(service, collection, tmp_path):
    garbage = Faults(["garbage"])
    with served(service, garbage) as server:
        run([collection], tmp_path / "garbage", openai_config(server.url), progress=False)
    rows, fails = rows_and_failures(tmp_path / "garbage")
    assert garbage.script == []
    assert fails == [] and len(rows) == len(CLIPS)

    # A server that only ever answers with nothing: every clip is recorded, none is lost.
    empty = Faults(["empty"] * 1000)
    with served(service, empty) as server:
        summary = run([collection], tmp_path / "empty", openai_config(server.url, answer_retries=1),
                      progress=False)
    assert len(empty.script) < 1000
    assert summary.clips == 0 and summary.failures == len(CLIPS)
    fails = Store(tmp_path / "empty").read_failures()
    assert sorted(f["id"] for f in fails) == sorted(f"{n.split('.')[0]}_0_10" for n in CLIPS)
    assert {(f["stage"], f["error"]) for f in fails} == {("ask", "BadOutput")}


def _chat(client: openai.OpenAI, content) -> str:
    resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
    return resp.choices[0].message.content


def test_server_api_and_bad_requests(service, examples):
    wav = base64.b64encode((examples / "cow.mp3").read_bytes()).decode()
    with served(service) as server:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["sonicaps-builtin"]
        question = {"type": "text", "text": QUESTIONS[0]}
        mp3_part = {"type": "input_audio", "input_audio": {"data": wav, "format": "mp3"}}
        answer = _chat(client, [mp3_part, question])
        data_url = f"data:audio/mpeg;base64,{wav}"
        assert "cow" in answer.lower()
        assert _chat(client, [{"type": "audio_url", "audio_url": {"url": data_url}}, question]) == answer
        caption = _chat(client, writer_message((answer, "There is no speech.", "There is no music.")))
        assert caption.startswith("A cow moos")

        text_as_wav = base64.b64encode(b"this is not audio at all").decode()
        bad = {
            "not valid base64": [{"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}},
                                 question],
            "cannot decode": [{"type": "input_audio", "input_audio": {"data": text_as_wav, "format": "wav"}},
                              question],
            "three sonicaps questions": [
                {"type": "input_audio", "input_audio": {"data": wav, "format": "mp3"}},
                {"type": "text", "text": "Tell me a joke."}],
            "writer prompt": "Write a poem.",
        }
        for expected, content in bad.items():
            with pytest.raises(openai.BadRequestError, match=expected):
                _chat(client, content)


def test_caption_command_through_the_serve_command(examples, tmp_path):
    """Both CLI commands as a user runs them: `sonicaps serve`, then `sonicaps caption --config`."""
    import socket
    import subprocess
    import sys
    import time

    import yaml

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "sonicaps.cli", "serve", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
        deadline = time.time() + 120
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                if time.time() > deadline or server.poll() is not None:
                    server.kill()
                    pytest.fail(f"server did not start: {server.communicate()[0][-3000:]}")
                time.sleep(0.2)
        shipped = yaml.safe_load((Path(__file__).parents[1] / "configs" / "serve-client.yaml").read_text())
        for stage in ("ask", "write"):
            shipped[stage]["base_url"] = f"http://127.0.0.1:{port}/v1"
        config = tmp_path / "client.yaml"
        config.write_text(yaml.safe_dump(shipped))
        src = tmp_path / "in"
        src.mkdir()
        shutil.copy(examples / "dog_then_man.wav", src)
        cmd = [sys.executable, "-m", "sonicaps.cli", "caption", str(src), "-o", str(tmp_path / "out"),
               "--config", str(config), "--no-progress"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = pd.read_parquet(tmp_path / "out")
        assert list(rows["caption"]) == ["A dog barks, then a man speaks"]
    finally:
        server.terminate()
        server.wait(timeout=30)
