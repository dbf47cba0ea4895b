"""Build a SceneCaps dataset: design, mix and describe n scenes into a directory.

Layout written:
    audio/<id>.wav|flac   10-s 16 kHz mono scenes
    captions.csv          id, caption (five rows per clip, the AudioCaps layout)
    events.jsonl          the ground-truth timeline of every clip
    splits.csv            id, split
    sources.csv           every source the scenes may use, with its licence (attribution)
    README.md, classes.png  the dataset card

Scene i always gets the same split, design and audio for a given seed and source set,
whatever n is, so a larger build extends a smaller one.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from sonicaps.audio import SAMPLE_RATE
from sonicaps.scenes.card import write_card
from sonicaps.scenes.catalog import SPLITS, Source, classes, read_sources, sources
from sonicaps.scenes.describe import describe
from sonicaps.scenes.design import Pool, Scene, design_scene
from sonicaps.scenes.fetch import fetch
from sonicaps.scenes.mix import render
from sonicaps.scenes.prepare import load_prepared

FORMATS = {"wav": "PCM_16", "flac": "PCM_16"}


def split_of(i: int) -> str:
    """70 / 15 / 15, interleaved so that every prefix of a build has all three splits."""
    r = i % 20
    return "test" if r < 3 else "val" if r < 6 else "train"


@dataclass
class Built:
    out_dir: Path
    clips: dict[str, int]  # per split
    seconds: float


def scene_record(scene: Scene, mix_gain_db: float) -> dict:
    by_class = classes()
    bg = next((e for e in scene.events if e.role == "background"), None)
    events = []
    for e in scene.events:
        d = asdict(e)
        d["class"] = d.pop("cls")
        d["audioset"] = by_class[e.cls].audioset
        d["onset"], d["offset"] = round(e.onset, 3), round(e.offset, 3)
        d["gain_db"] = round(e.gain_db, 2)
        d["snr_db"] = round(e.gain_db - bg.gain_db, 2) if bg is not None and e is not bg else None
        events.append(d)
    return {"id": scene.id, "split": scene.split, "seed": scene.seed,
            "band_hz": round(scene.band_hz, 1), "loudness_dbfs": round(scene.loudness_dbfs, 2),
            "mix_gain_db": round(mix_gain_db, 2), "events": events}


def make(out_dir: str | Path, n: int, seed: int = 0, fmt: str = "wav",
         manifest: str | Path | None = None, progress: bool = True) -> Built:
    import time

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    if n < 1:
        raise ValueError("n must be at least 1")
    t0 = time.perf_counter()
    srcs: Sequence[Source] = read_sources(Path(manifest)) if manifest else sources()
    fetch(srcs, progress=progress)
    by_id = {s.id: s for s in srcs}
    audio: dict[str, np.ndarray] = {}

    def audio_of(source_id: str) -> np.ndarray:
        if source_id not in audio:
            audio[source_id] = load_prepared(by_id[source_id])
        return audio[source_id]

    def length(src: Source) -> float:
        return len(audio_of(src.id)) / SAMPLE_RATE

    pools = {split: Pool.of(srcs, split) for split in SPLITS}
    out = Path(out_dir)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    counts = dict.fromkeys(SPLITS, 0)
    width = max(6, len(str(n - 1)))
    with (open(out / "captions.csv", "w", newline="") as cap_f,
          open(out / "events.jsonl", "w") as ev_f,
          open(out / "splits.csv", "w", newline="") as split_f):
        cap_w, split_w = csv.writer(cap_f), csv.writer(split_f)
        cap_w.writerow(["id", "caption"])
        split_w.writerow(["id", "split"])
        for i in tqdm(range(n), desc="scenes", unit="scene", disable=not progress):
            split = split_of(i)
            rng = np.random.default_rng([seed, i])
            scene = design_scene(rng, pools[split], length, f"scene_{i:0{width}d}", split, seed)
            mix, gain_db = render(scene, audio_of, rng)
            path = out / "audio" / f"{scene.id}.{fmt}"
            sf.write(path, mix, SAMPLE_RATE, subtype=FORMATS[fmt], format=fmt.upper())
            for c in describe(scene, rng):
                cap_w.writerow([scene.id, c])
            split_w.writerow([scene.id, split])
            ev_f.write(json.dumps(scene_record(scene, gain_db)) + "\n")
            counts[split] += 1
    shutil.copyfile(Path(manifest) if manifest else Path(__file__).with_name("sources.csv"),
                    out / "sources.csv")
    write_card(out, seed=seed, manifest=srcs)
    return Built(out, counts, time.perf_counter() - t0)
