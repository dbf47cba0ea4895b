"""Captioned clips for retrieval, read from the layouts sonicaps writes or reads.

- A dataset directory with `captions.csv` (AudioCaps layout, `id, caption`, several rows
  per clip) and `audio/<id>.<ext>`; `splits.csv` and `events.jsonl` are used when present
  (SceneCaps writes all four).
- A pipeline output directory (Parquet shards): each row's caption and source span.
- A plain folder of audio: clips without captions (for indexing only).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sonicaps.audio import AUDIO_EXTENSIONS
from sonicaps.metrics.caption_files import read_captions


@dataclass(frozen=True)
class Item:
    id: str
    audio: Path
    captions: tuple[str, ...]
    split: str
    start_s: float = 0.0
    end_s: float | None = None  # None: to the end of the file
    classes: tuple[str, ...] = ()  # ground-truth sound classes, when known


def hash_split(key: str) -> str:
    """80 / 10 / 10 by a stable hash, for data that comes without splits."""
    r = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10
    return "test" if r == 0 else "val" if r == 1 else "train"


def _audio_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS}


def is_captioned(root: str | Path) -> bool:
    """A dataset folder with captions or a pipeline output (not a plain audio folder)."""
    root = Path(root)
    return root.is_dir() and ((root / "captions.csv").is_file() or any(root.glob("*.parquet")))


def read_dataset(root: str | Path) -> list[Item]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    if (root / "captions.csv").is_file():
        return _read_captioned_dir(root)
    if any(root.glob("*.parquet")):
        return _read_pipeline_output(root)
    files = _audio_files(root)
    if not files:
        raise ValueError(f"{root}: no captions.csv, no Parquet shards and no audio files")
    return [Item(stem, path, (), hash_split(stem)) for stem, path in files.items()]


def _read_captioned_dir(root: Path) -> list[Item]:
    captions = read_captions(root / "captions.csv")
    audio_dir = root / "audio" if (root / "audio").is_dir() else root
    files = _audio_files(audio_dir)
    missing = [i for i in captions if i not in files]
    if missing:
        raise ValueError(f"{root}: {len(missing)} captioned ids have no audio file in "
                         f"{audio_dir} (first: {missing[0]!r})")
    splits: dict[str, str] = {}
    if (root / "splits.csv").is_file():
        df = pd.read_csv(root / "splits.csv", dtype=str)
        splits = dict(zip(df["id"], df["split"], strict=True))
    classes: dict[str, tuple[str, ...]] = {}
    if (root / "events.jsonl").is_file():
        with open(root / "events.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                classes[rec["id"]] = tuple(dict.fromkeys(e["class"] for e in rec["events"]))
    return [Item(i, files[i], tuple(caps), splits.get(i) or hash_split(i),
                 classes=classes.get(i, ())) for i, caps in captions.items()]


def _read_pipeline_output(root: Path) -> list[Item]:
    df = pd.read_parquet(root, columns=["id", "source", "start_s", "end_s", "caption"])
    df = df[df["caption"].fillna("").str.strip() != ""]
    return [Item(r.id, Path(r.source), (r.caption,), hash_split(r.source), float(r.start_s),
                 float(r.end_s)) for r in df.itertuples()]
