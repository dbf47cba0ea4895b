"""Write CaptionRecords as hf (a Hugging Face dataset, with an Audio feature when clips
have audio), parquet, jsonl, webdataset (.tar shards: <key>.json plus the audio file) or
audiocaps-csv (one row per caption, as AudioCaps ships). Records stream through in
batches; nothing holds the whole dataset."""

from __future__ import annotations

import csv
import io
import json
import tarfile
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sonicaps.formats.records import AudioFinder, CaptionRecord

TARGETS = ("hf", "parquet", "jsonl", "webdataset", "audiocaps-csv")
BATCH = 1000  # records per Parquet row group / written batch
SHARD_RECORDS = 1000  # records per webdataset shard


def _batches(records: Iterable[CaptionRecord], n: int) -> Iterator[list[CaptionRecord]]:
    it = iter(records)
    while batch := list(islice(it, n)):
        yield batch


def _flat(rec: CaptionRecord) -> dict[str, Any]:
    """A record with its free-form fields as JSON text (a fixed Arrow schema)."""
    d = rec.to_dict()
    d["qa"] = json.dumps(d["qa"], ensure_ascii=False) if d["qa"] is not None else None
    d["extra"] = json.dumps(d["extra"], ensure_ascii=False, default=str) if d["extra"] else None
    return d


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([("id", pa.string()), ("captions", pa.list_(pa.string())), ("audio", pa.string()),
                      ("start_s", pa.float64()), ("end_s", pa.float64()), ("youtube_id", pa.string()),
                      ("labels", pa.list_(pa.string())), ("split", pa.string()), ("qa", pa.string()),
                      ("caption_ids", pa.list_(pa.string())), ("extra", pa.string())])


def write_parquet(records: Iterable[CaptionRecord], dest: Path) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with pq.ParquetWriter(dest, _schema(), compression="zstd") as writer:
        for batch in _batches(records, BATCH):
            writer.write_table(pa.Table.from_pylist([_flat(r) for r in batch], schema=_schema()))
            n += len(batch)
    return n


def write_jsonl(records: Iterable[CaptionRecord], dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(dest, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec.to_dict(), ensure_ascii=False, default=str) + "\n")
            n += 1
    return n


def write_audiocaps_csv(records: Iterable[CaptionRecord], dest: Path) -> int:
    """audiocap_id, youtube_id, start_time, caption: one row per caption."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
        for rec in records:
            ids = rec.caption_ids or [""] * len(rec.captions)
            # Without a YouTube id and start the id itself goes in youtube_id and start_time
            # stays empty, so reading the file back gives the same id.
            yt = rec.youtube_id if rec.youtube_id and rec.start_s is not None else rec.id
            start = f"{rec.start_s:g}" if rec.youtube_id and rec.start_s is not None else ""
            for cid, caption in zip(ids, rec.captions, strict=True):
                w.writerow([cid, yt, start, caption])
            n += 1
    return n


def write_webdataset(records: Iterable[CaptionRecord], dest: Path, audio_root: Path | None = None) -> int:
    """Shards dest/shard-000000.tar, ...; keys are record numbers (webdataset splits keys at
    the first dot, so ids, which may hold dots, live in the JSON)."""
    dest.mkdir(parents=True, exist_ok=True)
    finder = AudioFinder(audio_root)
    n = 0
    for shard_no, batch in enumerate(_batches(records, SHARD_RECORDS)):
        with tarfile.open(dest / f"shard-{shard_no:06d}.tar", "w") as tar:
            for rec in batch:
                key = f"{n:09d}"
                _add(tar, f"{key}.json", json.dumps(rec.to_dict(), ensure_ascii=False, default=str).encode())
                path = finder.find(rec)
                if path is not None:
                    _add(tar, f"{key}{path.suffix.lower()}", path.read_bytes())
                n += 1
    return n


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_hf(records: Iterable[CaptionRecord], dest: Path, audio_root: Path | None = None) -> int:
    """datasets.Dataset.save_to_disk; clips with audio get an `audio` column (Audio feature,
    file bytes embedded, decoded on access once cast with decode=True)."""
    import datasets

    finder = AudioFinder(audio_root)

    def rows() -> Iterator[dict[str, Any]]:
        for rec in records:
            d = _flat(rec)
            path = finder.find(rec)
            # The file goes in the Audio column when it exists (datasets would try to read a
            # missing one); the record's path always stays in audio_path.
            d["audio_path"] = d["audio"]
            d["audio"] = {"path": path.name, "bytes": path.read_bytes()} if path else None
            yield d

    features = datasets.Features({
        "id": datasets.Value("string"), "captions": datasets.Sequence(datasets.Value("string")),
        # Audio's Arrow storage; cast to the Audio feature below (encoding through the
        # feature itself would need torchcodec, which nothing else here needs).
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "audio_path": datasets.Value("string"), "start_s": datasets.Value("float64"),
        "end_s": datasets.Value("float64"), "youtube_id": datasets.Value("string"),
        "labels": datasets.Sequence(datasets.Value("string")), "split": datasets.Value("string"),
        "qa": datasets.Value("string"), "caption_ids": datasets.Sequence(datasets.Value("string")),
        "extra": datasets.Value("string")})
    # Streams to an Arrow cache. A fresh fingerprint: the records are a one-off stream that
    # datasets could neither hash (generators do not pickle) nor reuse from its cache.
    with tempfile.TemporaryDirectory() as cache:
        ds = datasets.Dataset.from_generator(rows, features=features, cache_dir=cache,
                                             fingerprint=uuid.uuid4().hex)
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
        ds.save_to_disk(str(dest))
        return len(ds)


def write_records(records: Iterable[CaptionRecord], dest: str | Path, to: str,
                  audio_root: str | Path | None = None) -> int:
    """Write records in format `to`; returns how many. Audio files (found relative to
    audio_root) are embedded by hf and webdataset, referenced by path elsewhere."""
    dest = Path(dest)
    root = Path(audio_root) if audio_root else None
    if to == "parquet":
        return write_parquet(records, dest)
    if to == "jsonl":
        return write_jsonl(records, dest)
    if to == "audiocaps-csv":
        return write_audiocaps_csv(records, dest)
    if to == "webdataset":
        return write_webdataset(records, dest, root)
    if to == "hf":
        return write_hf(records, dest, root)
    raise ValueError(f"unknown target format {to!r}; choose from {', '.join(TARGETS)}")
