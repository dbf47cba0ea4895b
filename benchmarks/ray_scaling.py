"""The local runner against the Ray engine on the same clips: clips/s and engine overhead.

    .venv/bin/python benchmarks/ray_scaling.py [--clips 240] [--batch-size 16]

Captions N SceneCaps scenes (10-s clips, built first) with the built-in backends, once
with the local runner and then on a local Ray cluster with 1 and with 2 actors per pool
(ask; write + check), the ask actors sharing the cores between them. Each run is timed
end to end, model loading and worker start-up included; Ray's own start (`ray.init`) is
timed apart. Prints clips/s, the ratio to the local runner, the speed-up of 2 actors over
1, and the engine's overhead per clip. All runs must produce the same ids and captions,
or the benchmark fails.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import ray

from sonicaps.pipeline.config import PipelineConfig, PoolSpec, RayConfig
from sonicaps.pipeline.ray_runner import run_ray
from sonicaps.pipeline.runner import run
from sonicaps.scenes.make import make


def captions(out: Path) -> list[tuple[str, str]]:
    df = pd.read_parquet(out).sort_values("id")
    return list(zip(df["id"], df["caption"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make(root / "scenes", args.clips, seed=0, progress=False)
        audio = root / "scenes" / "audio"
        cfg = PipelineConfig(batch_size=args.batch_size)

        t0 = time.perf_counter()
        run([audio], root / "local", cfg, progress=False)
        local_s = time.perf_counter() - t0
        expected = captions(root / "local")
        assert len(expected) == args.clips, len(expected)

        t0 = time.perf_counter()
        ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
        init_s = time.perf_counter() - t0
        ray_s = {}
        try:
            for actors in (1, 2):
                # The ask stage is nearly all the work: its actors share the machine's cores
                # (Ray sets OMP_NUM_THREADS to an actor's CPUs, and YAMNet follows it), as the
                # local runner's YAMNet session uses them all.
                cores = os.cpu_count() or 1
                pools = RayConfig(ask=PoolSpec(size=actors, num_cpus=max(1, cores // actors)),
                                  write=PoolSpec(size=actors, num_cpus=0.5))
                out = root / f"ray{actors}"
                t0 = time.perf_counter()
                run_ray([audio], out, PipelineConfig(batch_size=args.batch_size, ray=pools), progress=False)
                ray_s[actors] = time.perf_counter() - t0
                if captions(out) != expected:
                    raise SystemExit(f"Ray with {actors} actor(s) gave other captions than the local runner")
        finally:
            ray.shutdown()

    n = args.clips
    print(f"{n} SceneCaps clips (10 s), batch {args.batch_size}, built-in backends, {os.cpu_count()} cores")
    print(f"local runner:          {local_s:6.1f} s  {n / local_s:5.2f} clips/s")
    for actors, s in ray_s.items():
        print(f"ray, {actors} actor(s)/pool:  {s:6.1f} s  {n / s:5.2f} clips/s  "
              f"({local_s / s:.2f}x the local runner)")
    print(f"ray.init: {init_s:.1f} s (once per cluster, not included above)")
    print(f"2 actors vs 1: {ray_s[1] / ray_s[2]:.2f}x")
    print(f"engine overhead per clip (ray 1 actor - local): {(ray_s[1] - local_s) / n * 1000:+.0f} ms")
    print("identical ids and captions in all runs")


if __name__ == "__main__":
    main()
