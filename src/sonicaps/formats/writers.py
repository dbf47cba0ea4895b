"""Write CaptionRecords as hf (a Hugging Face dataset, with an Audio feature when clips
have audio; `hf://datasets/<org>/<name>` uploads it to the Hub), parquet, jsonl,
webdataset (.tar shards: <key>.json plus the audio), or in a peer layout (peers.py:
audiocaps-csv, audiosetcaps-csv, clotho-csv, wavcaps-json, dcase-csv). Records stream
through in batches; nothing holds the whole dataset.

hf and webdataset embed audio. A clip of a longer source file (a `sonicaps caption` clip)
is embedded as its own span, encoded as FLAC at the source's rate and channels, unless
`whole_files`: a 3-minute file cut into 18 clips is stored once per clip as 10 s, not 18
times whole.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import tarfile
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sonicaps.formats import peers
from sonicaps.formats.peers import WriteReport
from sonicaps.formats.records import AudioFinder, CaptionRecord

TARGETS = ("hf", "parquet", "jsonl", "webdataset", "audiocaps-csv", "audiosetcaps-csv", "clotho-csv",
           "wavcaps-json", "dcase-csv")
EMBEDS_AUDIO = ("hf", "webdataset")
BATCH = 1000  # records per Parquet row group / written batch
SHARD_RECORDS = 1000  # records per webdataset shard


def _batches(records: Iterable[CaptionRecord], n: int) -> Iterator[list[CaptionRecord]]:
    it = iter(records)
    while batch := list(islice(it, n)):
        yield batch


def _counted(records: Iterable[CaptionRecord], report: WriteReport) -> Iterator[CaptionRecord]:
    for rec in records:
        report.written += 1
        yield rec


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


def write_parquet(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dest.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(dest, _schema(), compression="zstd") as writer:
        for batch in _batches(_counted(records, report), BATCH):
            writer.write_table(pa.Table.from_pylist([_flat(r) for r in batch], schema=_schema()))
    return report.written


def write_jsonl(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", encoding="utf-8") as f:
        for rec in _counted(records, report):
            f.write(json.dumps(rec.to_dict(), ensure_ascii=False, default=str) + "\n")
    return report.written


class ClipAudio:
    """The audio to embed for a record: (file name, bytes, whether it is the clip's own
    span), or None when no file is found (counted in the report)."""

    def __init__(self, root: Path | None, report: WriteReport, whole_files: bool = False) -> None:
        self.finder, self.report, self.whole_files = AudioFinder(root), report, whole_files

    def __call__(self, rec: CaptionRecord) -> tuple[str, bytes, bool] | None:
        path = self.finder.find(rec)
        if path is None:
            where = f" ({rec.audio!r})" if rec.audio else ""
            self.report.missing_audio.append((rec.id, f"no audio file{where}"))
            return None
        if rec.extra.get("audio_is_source") and not self.whole_files:
            try:
                return f"{Path(rec.id).name}.flac", span_flac(path, rec.start_s or 0.0, rec.end_s), True
            except Exception as e:  # one undecodable file costs its clips, reported, not the run
                self.report.missing_audio.append((rec.id, f"{path} could not be cut ({e})"))
                return None
        return path.name, path.read_bytes(), not rec.extra.get("audio_is_source")


def span_flac(path: Path, start_s: float, end_s: float | None) -> bytes:
    """[start_s, end_s) of an audio file as FLAC at its own rate and channels (soundfile
    seeks without decoding what comes before); files libsndfile cannot read are decoded
    by sonicaps.audio (PyAV) as 48 kHz mono."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            sr = f.samplerate
            f.seek(min(int(round(start_s * sr)), f.frames))
            frames = -1 if end_s is None else max(0, int(round((end_s - start_s) * sr)))
            data = f.read(frames, dtype="float32", always_2d=True)
            subtype = "PCM_24" if f.subtype in ("PCM_24", "PCM_32", "FLOAT", "DOUBLE") else "PCM_16"
    except sf.LibsndfileError:
        from sonicaps.audio import load_audio

        sr, subtype = 48_000, "PCM_16"
        data = load_audio(path, start_s=start_s, end_s=end_s, sample_rate=sr)
    buf = io.BytesIO()
    sf.write(buf, data, sr, format="FLAC", subtype=subtype)
    return buf.getvalue()


def write_webdataset(records: Iterable[CaptionRecord], dest: Path, audio: ClipAudio) -> int:
    """Shards dest/shard-000000.tar, ...; keys are record numbers (webdataset splits keys at
    the first dot, so ids, which may hold dots, live in the JSON)."""
    dest.mkdir(parents=True, exist_ok=True)
    report = audio.report
    n = 0
    for shard_no, batch in enumerate(_batches(records, SHARD_RECORDS)):
        with tarfile.open(dest / f"shard-{shard_no:06d}.tar", "w") as tar:
            for rec in batch:
                key = f"{n:09d}"
                found = audio(rec)
                meta = rec.to_dict()
                if found is not None:
                    meta["audio_is_clip"] = found[2]  # the embedded file is the clip itself
                _add(tar, f"{key}.json", json.dumps(meta, ensure_ascii=False, default=str).encode())
                if found is not None:
                    _add(tar, f"{key}{Path(found[0]).suffix.lower()}", found[1])
                n += 1
                report.written += 1
    return n


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_hf(records: Iterable[CaptionRecord], dest: Path, audio: ClipAudio) -> int:
    """datasets.Dataset.save_to_disk; clips with audio get an `audio` column (Audio feature,
    the clip's bytes embedded; read them with `Audio(decode=False)` and soundfile, see
    docs/formats.md). `audio_path` keeps the record's own path, `audio_is_clip` says
    whether the embedded audio is the clip itself or its whole source file."""
    import datasets

    def rows() -> Iterator[dict[str, Any]]:
        for rec in records:
            d = _flat(rec)
            found = audio(rec)
            # The file goes in the Audio column when it exists (datasets would try to read a
            # missing one); the record's path always stays in audio_path.
            d["audio_path"] = d["audio"]
            d["audio"] = {"path": found[0], "bytes": found[1]} if found else None
            d["audio_is_clip"] = found[2] if found else None
            audio.report.written += 1
            yield d

    features = datasets.Features({
        "id": datasets.Value("string"), "captions": datasets.LargeList(datasets.Value("string")),
        # Audio's Arrow storage; cast to the Audio feature below (encoding through the
        # feature itself would need torchcodec, which does not load beside torch 2.13).
        "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
        "audio_path": datasets.Value("string"), "audio_is_clip": datasets.Value("bool"),
        "start_s": datasets.Value("float64"),
        "end_s": datasets.Value("float64"), "youtube_id": datasets.Value("string"),
        "labels": datasets.LargeList(datasets.Value("string")), "split": datasets.Value("string"),
        "qa": datasets.Value("string"), "caption_ids": datasets.LargeList(datasets.Value("string")),
        "extra": datasets.Value("string")})
    # Streams to an Arrow cache in a fresh folder: the records are a one-off stream that
    # datasets can neither hash (generators do not pickle) nor reuse. datasets >= 5 takes
    # the fingerprint to use; 4.x hashes what it can and draws a random one otherwise.
    fresh = {"fingerprint": uuid.uuid4().hex} \
        if "fingerprint" in inspect.signature(datasets.Dataset.from_generator).parameters else {}
    with tempfile.TemporaryDirectory() as cache:
        ds = datasets.Dataset.from_generator(rows, features=features, cache_dir=cache, **fresh)
        ds = ds.cast_column("audio", datasets.Audio(decode=False))
        ds.save_to_disk(str(dest))
        return len(ds)


class HubUnavailable(RuntimeError):
    """An hf:// destination that cannot be written (offline, no token, no such repo)."""


def hub_repo(dest: str) -> str | None:
    """The dataset repo id of `hf://datasets/<org>/<name>` (or `hf://<org>/<name>`), else None."""
    if not dest.startswith("hf://"):
        return None
    repo = dest[len("hf://"):].removeprefix("datasets/").strip("/")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ValueError(f"{dest}: expected hf://datasets/<user or org>/<dataset name>")
    return repo


def push_to_hub(records: Iterable[CaptionRecord], repo: str, audio: ClipAudio) -> int:
    """Build the hf dataset in a temporary folder and upload it with huggingface_hub
    (`Dataset.push_to_hub`: Parquet shards in the dataset repo). Offline, it says so before
    reading any record, and nothing is written locally."""
    import datasets
    import huggingface_hub

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise HubUnavailable(f"hf://datasets/{repo}: HF_HUB_OFFLINE is set, so nothing can be uploaded; "
                             "write to a local folder (-o DIR --to hf) and upload it later")
    try:
        huggingface_hub.HfApi().whoami()
    except Exception as e:  # no network, no token: say which, before any work is done
        raise HubUnavailable(f"hf://datasets/{repo}: cannot use the Hugging Face Hub ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:200] if str(e) else 'no detail'}); log in with "
                             "`hf auth login` or write to a local folder and upload it later") from e
    with tempfile.TemporaryDirectory() as tmp:
        n = write_hf(records, Path(tmp) / "ds", audio)
        datasets.load_from_disk(str(Path(tmp) / "ds")).push_to_hub(repo)
    audio.report.notes.append(f"uploaded to https://huggingface.co/datasets/{repo}")
    return n


def write_records(records: Iterable[CaptionRecord], dest: str | Path, to: str,
                  audio_root: str | Path | None = None, *, whole_files: bool = False,
                  report: WriteReport | None = None) -> int:
    """Write records in format `to`; returns how many were written. `report` (if given)
    collects what the write dropped, which audio it did not find and which fields the
    layout could not hold. Audio files (found relative to audio_root) are embedded by hf
    and webdataset, referenced by path elsewhere."""
    report = report if report is not None else WriteReport()
    if to not in TARGETS:
        raise ValueError(f"unknown target format {to!r}; choose from {', '.join(TARGETS)}")
    root = Path(audio_root) if audio_root else None
    audio = ClipAudio(root, report, whole_files)
    text = str(dest)
    if "://" in text:
        repo = hub_repo(text)
        if repo is None or to != "hf":
            raise ValueError(f"{text}: write a local path, or hf://datasets/<org>/<name> with --to hf")
        return push_to_hub(records, repo, audio)
    dest = Path(dest)
    writers = {"parquet": write_parquet, "jsonl": write_jsonl, "audiocaps-csv": peers.write_audiocaps_csv,
               "audiosetcaps-csv": peers.write_audiosetcaps_csv, "clotho-csv": peers.write_clotho_csv,
               "wavcaps-json": peers.write_wavcaps_json, "dcase-csv": peers.write_dcase_csv}
    if to in writers:
        return writers[to](records, dest, report)
    if to == "webdataset":
        return write_webdataset(records, dest, audio)
    return write_hf(records, dest, audio)
