"""The Ray engine: the local runner's output on a local cluster, and exactly-once after a kill."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pandas as pd
import pytest

from sonicaps.pipeline.config import PipelineConfig, PoolSpec, RayConfig
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.store import Store

try:
    import ray  # noqa: F401 - the module needs it; the cluster comes from conftest.py
except ImportError:  # pragma: no cover - CI installs it through scripts/setup.sh
    if os.environ.get("CI"):
        raise
    pytest.skip("ray is not installed (scripts/setup.sh installs it)", allow_module_level=True)

from sonicaps.pipeline.ray_runner import ClusterTooSmall, check_resources, run_ray


@pytest.fixture(scope="module")
def cluster(ray_cluster) -> str:
    """The session's local cluster (conftest.py)."""
    return ray_cluster


@pytest.fixture(scope="module")
def collection(examples, tmp_path_factory):
    """Three copies of the demo scenes (21 clips; a 25-s file is cut in three) and two bad files."""
    d = tmp_path_factory.mktemp("ray_in")
    for k in range(3):
        for f in examples.iterdir():
            shutil.copy(f, d / f"{k}_{f.name}")
    (d / "empty.wav").write_bytes(b"")
    (d / "notes.wav").write_text("not audio")
    return d


def _records(out) -> tuple[pd.DataFrame, list[tuple]]:
    rows = pd.read_parquet(out).sort_values("id").reset_index(drop=True)
    fails = sorted((f["source"], f["id"], f["stage"], f["error"]) for f in Store(out).read_failures())
    return rows, fails


@pytest.mark.parametrize("pool", ["actors", "tasks"])
def test_ray_gives_the_local_runners_output(cluster, collection, tmp_path, backends, pool):
    cfg = PipelineConfig(batch_size=4)
    run([collection], tmp_path / "local", cfg, backends=backends, progress=False)
    pools = RayConfig(ask=PoolSpec(pool=pool, size=2, num_cpus=0.5), write=PoolSpec(pool=pool))
    summary = run_ray([collection], tmp_path / "ray", replace(cfg, ray=pools), progress=False)
    local, local_fails = _records(tmp_path / "local")
    got, got_fails = _records(tmp_path / "ray")
    assert summary.clips == len(got) == 21
    assert list(got["id"]) == list(local["id"])
    assert list(got["caption"]) == list(local["caption"])
    assert list(got["accepted"]) == list(local["accepted"])
    assert got_fails == local_fails and len(got_fails) == 2
    # A second run finds everything done.
    again = run_ray([collection], tmp_path / "ray", cfg, progress=False)
    assert again.clips == 0 and again.skipped_sources == len(list(collection.iterdir()))


def test_killed_driver_then_rerun_is_exactly_once(cluster, collection, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sonicaps.cli", "caption", str(collection), "-o", str(out),
           "--engine", "ray", "--address", cluster, "--batch-size", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(out.glob("part-*.parquet"))) < 2:
        if proc.poll() is not None:
            pytest.fail(f"finished before the kill: {proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = len(pd.read_parquet(out))
    assert 0 < partial < 21
    summary = run_ray([collection], out, PipelineConfig(batch_size=2), progress=False)
    rows, fails = _records(out)
    assert rows["id"].is_unique and len(rows) == 21
    assert summary.clips == 21 - partial
    assert len(fails) == 2 and len({f[0] for f in fails}) == 2  # each bad file recorded once


def test_a_pool_the_cluster_cannot_place_is_an_error_not_a_hang():
    rc = RayConfig(ask=PoolSpec(size=2, num_gpus=1))
    with pytest.raises(ClusterTooSmall, match=r"\[ray.ask\] asks for 1 GPU per actor, the cluster has 0"):
        check_resources(rc, {"CPU": 8.0})
    need = r"need 6 CPU in all \(decode 2 x 1, ask 1 x 1, write 3 x 1\), the cluster has 4"
    with pytest.raises(ClusterTooSmall, match=need):
        check_resources(RayConfig(write=PoolSpec(size=3)), {"CPU": 4.0})
    check_resources(RayConfig(ask=PoolSpec(num_gpus=0.5, size=2)), {"CPU": 8.0, "GPU": 1.0})


def test_server_backed_stages_run_as_task_pools(cluster, examples, tmp_path, backends):
    """The openai backends on Ray task pools, calling one `sonicaps serve` on 127.0.0.1."""
    from sonicaps.backends.builtin.writer import BuiltinWriter
    from sonicaps.pipeline.config import BackendSpec
    from sonicaps.serve import BackgroundServer, Service, create_app

    src = tmp_path / "in"
    src.mkdir()
    for name in ("cow.mp3", "dog_then_man.wav", "woman_speaking.flac"):
        shutil.copy(examples / name, src / name)
    service = Service(backends.asker, BuiltinWriter(), "sonicaps-builtin")
    with BackgroundServer(create_app(service)) as server:
        opts = {"base_url": server.url, "model": "sonicaps-builtin", "concurrency": 4}
        pools = RayConfig(ask=PoolSpec(pool="tasks", size=2, num_cpus=0.5),
                          write=PoolSpec(pool="tasks", size=2, num_cpus=0.5))
        cfg = PipelineConfig(ask=BackendSpec("openai", opts), write=BackendSpec("openai", opts),
                             check=BackendSpec("textsim"), batch_size=2, ray=pools)
        summary = run_ray([src], tmp_path / "out", cfg, progress=False)
    rows = pd.read_parquet(tmp_path / "out").sort_values("id")
    assert summary.clips == len(rows) == 3 and Store(tmp_path / "out").read_failures() == []
    assert set(rows["asker"]) == {"openai:sonicaps-builtin"}
    captions = dict(zip(rows["id"], rows["caption"], strict=True))
    assert captions["dog_then_man_0_10"] == "A dog barks, then a man speaks"


def test_failure_records_before_clips_do_not_stop_the_run(cluster, examples, tmp_path):
    """Ray turns a decode output of only failure records (dicts) into an Arrow struct
    column; a file-level record (id null) and a clip-level one (id set) then a block of
    clips could not be merged, and the whole run died (found by
    benchmarks/crash_safety.py, on a folder whose bad files sort first)."""
    import numpy as np
    import soundfile as sf

    d = tmp_path / "in"
    d.mkdir()
    (d / "a_empty.wav").write_bytes(b"")
    sf.write(d / "b_nan.wav", np.full(16_000, np.nan, np.float32), 16_000, subtype="FLOAT")
    shutil.copy(examples / "cow.mp3", d / "c_cow.mp3")
    pools = RayConfig(ask=PoolSpec(pool="tasks", size=1), write=PoolSpec(pool="tasks", size=1))
    summary = run_ray([d], tmp_path / "out", PipelineConfig(batch_size=4, ray=pools), progress=False)
    rows, fails = _records(tmp_path / "out")
    assert summary.clips == len(rows) == 1
    assert [(f[0].rsplit("/", 1)[1], f[2]) for f in fails] == [("a_empty.wav", "decode"),
                                                               ("b_nan.wav", "decode")]
