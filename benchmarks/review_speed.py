"""How fast `sonicaps review` opens a large collection and shows a clip.

    .venv/bin/python benchmarks/review_speed.py [--clips 1000000] [--dir /tmp/sonicaps-review-bench]

Builds (once, kept in --dir) a pipeline output folder of --clips clips in shards of 16
rows, the pipeline's default batch, written through the pipeline's own Store; the clips
are 10-s spans of 20 one-minute recordings. Then, over HTTP against a served app:
- first open: a new review database; time until the first page of clips and the first
  clip's details are served (indexing goes on in the background), and how long the
  whole index takes;
- reopen: the same collection again, already indexed;
- per clip: details + audio + spectrogram of clips never shown before (median, p95);
- filters deep in the collection: a label, a check-score range, "unreviewed"; and two
  that match nothing, so they scan every clip.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import soundfile as sf

SHARD_ROWS = 16
LABELS = ["Speech", "Dog", "Bark", "Music", "Vehicle", "Car", "Rain", "Bird", "Wind", "Engine", "Cat",
          "Water", "Footsteps", "Door", "Laughter", "Siren"]


def build(folder: Path, clips: int) -> None:
    from sonicaps.pipeline.store import Store

    if (folder / "DONE").exists() and json.loads((folder / "DONE").read_text())["clips"] == clips:
        return
    shutil.rmtree(folder, ignore_errors=True)
    audio = folder / "audio"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    sources = []
    for k in range(20):
        path = audio / f"rec{k:02d}.flac"
        t = np.arange(60 * 16000) / 16000
        x = 0.2 * np.sin(2 * np.pi * (200 + 40 * k) * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2
        sf.write(path, (x + 0.02 * rng.standard_normal(len(t))).astype(np.float32), 16000)
        sources.append(str(path))
    out = folder / "captions"
    store = Store(out)
    start = time.perf_counter()
    for first in range(0, clips, SHARD_ROWS):
        rows = []
        for i in range(first, min(clips, first + SHARD_ROWS)):
            labels = [LABELS[i % 16], LABELS[(i * 7) % 16]]
            src, offset = sources[i % 20], (i // 20) % 5 * 10.0
            rows.append({
                "id": f"clip{i:07d}", "source": src, "start_s": offset, "end_s": offset + 10.0,
                "caption": f"A {labels[0].lower()} sound, then {labels[1].lower()} ({i})",
                "question_1": "q1", "question_2": "q2", "question_3": "q3",
                "answer_1": f"{labels[0]} from 0.0 s to 4.0 s.", "answer_2": "No speech.",
                "answer_3": "No music.",
                "labels": labels, "label_source": "detected", "check_score": (i * 0.618) % 1.0,
                "label_score": None, "check_rule": "threshold=0.42", "accepted": (i * 0.618) % 1.0 > 0.42,
                "attempts": 1, "evidence": json.dumps({"labels": [[lab, 0.9] for lab in labels]}),
                "asker": "bench", "writer": "bench", "scorer": "bench", "prompt_version": "bench",
                "sonicaps_version": "bench", "last_in_source": False, "created_at": None})
        store.commit(rows, [])
        if first % 100_000 == 0:
            print(f"  built {first} clips ({time.perf_counter() - start:.0f} s)", flush=True)
    (folder / "DONE").write_text(json.dumps({"clips": clips}))


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.read()


def timed(url: str) -> tuple[float, bytes]:
    t = time.perf_counter()
    body = get(url)
    return time.perf_counter() - t, body


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=1_000_000)
    p.add_argument("--dir", default="/tmp/sonicaps-review-bench")
    p.add_argument("--samples", type=int, default=30, help="clips timed one by one")
    args = p.parse_args()
    folder = Path(args.dir)
    t = time.perf_counter()
    build(folder, args.clips)
    print(f"collection: {args.clips} clips in {len(list((folder / 'captions').glob('part-*')))} shards "
          f"(ready in {time.perf_counter() - t:.0f} s)")

    from sonicaps.review.app import create_app
    from sonicaps.review.collection import Collection
    from sonicaps.serve import BackgroundServer

    db = folder / "review-db"
    shutil.rmtree(db, ignore_errors=True)
    t0 = time.perf_counter()
    col = Collection(folder / "captions", db_dir=db)
    col.start_indexing()
    with BackgroundServer(create_app(col, reviewer="bench"), path="") as server:
        while not json.loads(get(server.url + "/api/items?limit=50")):
            time.sleep(0.05)
        get(server.url + "/api/items/1")
        first_page = time.perf_counter() - t0
        print(f"first open (empty review database): first page and clip served after {first_page:.2f} s; "
              "indexing continues in the background")
        while col.indexing:
            time.sleep(0.5)
        full = time.perf_counter() - t0
        n = col.count()
        print(f"  whole index: {n} clips in {full:.1f} s ({n / full:,.0f} clips/s)")
    col.stop()

    t0 = time.perf_counter()
    col = Collection(folder / "captions", db_dir=db)
    col.start_indexing()
    with BackgroundServer(create_app(col, reviewer="bench"), path="") as server:
        page = json.loads(get(server.url + "/api/items?limit=50"))
        get(server.url + f"/api/items/{page[0]['pos']}")
        info = json.loads(get(server.url + "/api/info"))
        reopen = time.perf_counter() - t0
        print(f"reopen (indexed): first page, first clip and the count ({info['items']}) in {reopen:.2f} s")

        rng = random.Random(0)
        per_clip, parts = [], {"details": [], "audio": [], "spectrogram": []}
        for pos in rng.sample(range(1, n + 1), args.samples):
            t = time.perf_counter()
            for name, suffix in (("details", ""), ("audio", "/audio"), ("spectrogram", "/spectrogram.png")):
                dt, _ = timed(server.url + f"/api/items/{pos}{suffix}")
                parts[name].append(dt)
            per_clip.append(time.perf_counter() - t)
        per_clip.sort()
        p95 = per_clip[int(0.95 * (len(per_clip) - 1))]
        print(f"per clip (details + audio + spectrogram, {args.samples} clips never shown before): "
              f"median {1000 * statistics.median(per_clip):.0f} ms, p95 {1000 * p95:.0f} ms "
              f"({', '.join(f'{k} {1000 * statistics.median(v):.0f}' for k, v in parts.items())} ms)")

        deep = n - 1000
        for what, query in (("label", f"label=Siren&after={deep}"),
                            ("check score", f"min_score=0.9&after={deep}"),
                            ("unreviewed", f"status=unreviewed&after={deep}"), ("page 1", "label=Siren"),
                            ("no match", "label=Nothing"), ("rejected", "status=reject")):  # full scans
            dt, body = timed(server.url + f"/api/items?limit=50&{query}")
            print(f"  filter {what:<12} {1000 * dt:6.0f} ms ({len(json.loads(body))} clips)")
    col.stop()


if __name__ == "__main__":
    sys.exit(main())
