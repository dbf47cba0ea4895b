"""Read caption datasets into CaptionRecords, streaming where the format allows.

Formats (`fmt`): audiocaps (CSV: audiocap_id, youtube_id, start_time, caption), audiosetcaps
(CSV: id, caption; Q&A from a second CSV with id, question_1..3, answer_1..3), clotho
(CSV: file_name, caption_1..caption_N), wavcaps (JSON: {"data": [...]}), sonicaps (a
`sonicaps caption` output folder), and the formats sonicaps writes: hf (a saved Hugging
Face dataset), parquet, jsonl, webdataset (a folder of .tar shards).

Bad rows never vanish silently: a row that cannot be read is reported with its file and
line number in `Report.skipped` (or raises FormatError when `strict`); a file that lacks
a required column raises FormatError naming it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonicaps.formats.records import CaptionRecord, clip_key, split_audioset_id

FORMATS = ("audiocaps", "audiosetcaps", "clotho", "wavcaps", "sonicaps", "hf", "parquet", "jsonl",
           "webdataset")


class FormatError(ValueError):
    """A file that cannot be read as the format it claims to be."""


@dataclass
class Report:
    """What a read skipped, and why (file:line: reason)."""

    skipped: list[str] = field(default_factory=list)
    strict: bool = False

    def skip(self, where: str, reason: str) -> None:
        if self.strict:
            raise FormatError(f"{where}: {reason}")
        self.skipped.append(f"{where}: {reason}")


def detect(path: Path) -> str:
    """The format of a path, from its layout and (for CSVs) its header."""
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "state.json").exists():
            return "hf"
        if any(path.glob("*.tar")):
            return "webdataset"
        if any(path.glob("part-*.parquet")):
            return "sonicaps"
        if any(path.glob("*.parquet")):
            return "parquet"
        raise FormatError(f"{path}: a folder with no dataset sonicaps recognises")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "wavcaps"
    if suffix == ".csv":
        header = set(_header(path))
        if {"youtube_id", "caption"} <= header:
            return "audiocaps"
        if "file_name" in header and any(h.startswith("caption_") for h in header):
            return "clotho"
        if {"id", "caption"} <= header:
            return "audiosetcaps"
        raise FormatError(f"{path}: a CSV whose columns ({', '.join(sorted(header))}) match no known format")
    raise FormatError(f"{path}: unknown file type {suffix!r}; give the format with --from")


def _open_text(path: Path) -> io.TextIOWrapper:
    return open(path, encoding="utf-8", newline="")


def _header(path: Path) -> list[str]:
    with _open_text(path) as f:
        try:
            return [h.strip() for h in next(csv.reader(f), [])]
        except UnicodeDecodeError as e:
            raise FormatError(f"{path}: not UTF-8 text ({e})") from e


def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV, after checking its columns; non-UTF-8 raises with the line."""
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
        except UnicodeDecodeError as e:
            raise FormatError(f"{path}: not UTF-8 text ({e})") from e
        reader.fieldnames = header
        missing = [c for c in required if c not in header]
        if missing:
            raise FormatError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise FormatError(f"{path}: line {reader.line_num + 1} is not UTF-8 text ({e})") from e
            except csv.Error as e:
                raise FormatError(f"{path}: line {reader.line_num}: {e}") from e
            yield reader.line_num, row


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def read_audiocaps(path: Path, report: Report) -> Iterator[CaptionRecord]:
    """One record per clip (youtube_id + start_time), its captions in file order. AudioCaps
    spreads a clip's captions over the file, so clips are grouped in memory (50k rows)."""
    clips: dict[str, CaptionRecord] = {}
    for line, row in _csv_rows(path, ("youtube_id", "start_time", "caption")):
        yt, caption = (row.get("youtube_id") or "").strip(), row.get("caption")
        try:
            start = _float((row.get("start_time") or "").strip())  # empty: not an AudioSet clip
        except ValueError:
            report.skip(f"{path}:{line}", f"start_time {row.get('start_time')!r} is not a number")
            continue
        if not yt or caption is None:
            report.skip(f"{path}:{line}", "empty youtube_id or missing caption")
            continue
        key = clip_key(yt, start)
        rec = clips.get(key)
        if rec is None:
            rec = clips[key] = CaptionRecord(key, [], youtube_id=yt if start is not None else None,
                                             start_s=start, end_s=start + 10.0 if start is not None else None,
                                             caption_ids=[])
        rec.captions.append(caption)
        rec.caption_ids.append((row.get("audiocap_id") or "").strip())
    yield from clips.values()


def read_audiosetcaps(path: Path, report: Report, qa: Path | None = None) -> Iterator[CaptionRecord]:
    """id, caption rows (repeated ids: several captions); ids normalised to
    "<YouTube id>_<start>" when they are AudioSet ids. A Q&A file (id, question_1..3,
    answer_1..3) is joined by the same normalised id."""
    answers: dict[str, dict[str, str]] = {}
    if qa is not None:
        cols = tuple(f"{k}_{i}" for k in ("question", "answer") for i in (1, 2, 3))
        for line, row in _csv_rows(qa, ("id", *cols)):
            key, _ = _normal_id(row["id"])
            if key in answers:
                report.skip(f"{qa}:{line}", f"duplicate id {row['id']!r}")
                continue
            answers[key] = {c: row[c] for c in cols}
    # A splits.csv (id, split) beside the file gives each clip its split (SceneCaps).
    splits = {}
    if (path.parent / "splits.csv").is_file():
        rows = _csv_rows(path.parent / "splits.csv", ("id", "split"))
        splits = {row["id"]: row["split"] for _, row in rows}
    clips: dict[str, CaptionRecord] = {}  # several rows per id are several captions (SceneCaps)
    for line, row in _csv_rows(path, ("id", "caption")):
        key, parts = _normal_id(row["id"])
        if not key:
            report.skip(f"{path}:{line}", "empty id")
            continue
        if key in clips:
            clips[key].captions.append(row["caption"])
            continue
        yt, start, end = parts if parts else (None, None, None)
        clips[key] = CaptionRecord(key, [row["caption"]], youtube_id=yt, start_s=start, end_s=end,
                                   split=splits.get(row["id"]), qa=answers.get(key),
                                   extra={"source_id": row["id"]})
    yield from clips.values()


def _normal_id(raw: str) -> tuple[str, tuple | None]:
    parts = split_audioset_id(raw)
    if parts is None:
        return raw.strip(), None
    yt, start, end = parts
    return clip_key(yt, start), parts


def read_clotho(path: Path, report: Report) -> Iterator[CaptionRecord]:
    columns = _header(path)
    numbered = sorted((c for c in columns if c.startswith("caption_") and c[8:].isdigit()),
                      key=lambda c: int(c[8:]))
    if not numbered:
        raise FormatError(f"{path}: no caption_1..caption_N columns")
    seen: set[str] = set()
    for line, row in _csv_rows(path, ("file_name", numbered[0])):
        name = (row.get("file_name") or "").strip()
        captions = [row[c] for c in numbered if row.get(c)]
        if not name or not captions:
            report.skip(f"{path}:{line}", "empty file_name or no caption")
            continue
        if name in seen:
            report.skip(f"{path}:{line}", f"duplicate file_name {name!r}")
            continue
        seen.add(name)
        yield CaptionRecord(name, captions, audio=name)


def read_wavcaps(path: Path, report: Report) -> Iterator[CaptionRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise FormatError(f"{path}: not UTF-8 text ({e})") from e
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from e
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise FormatError(f'{path}: expected {{"data": [...]}} as in the WavCaps release')
    seen: set[str] = set()
    for n, item in enumerate(items):
        where = f"{path}: data[{n}]"
        if not isinstance(item, dict) or not item.get("id") or not isinstance(item.get("caption"), str):
            report.skip(where, "needs an id and a caption string")
            continue
        rid = str(item["id"])
        if rid in seen:
            report.skip(where, f"duplicate id {rid!r}")
            continue
        seen.add(rid)
        extra = {k: v for k, v in item.items() if k not in ("id", "caption", "audio")}
        yield CaptionRecord(rid, [item["caption"]], audio=item.get("audio"), extra=extra)


def read_sonicaps(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import pyarrow.dataset as pads

    shards = sorted(str(p) for p in path.glob("part-*.parquet"))
    for batch in pads.dataset(shards, format="parquet").to_batches():
        for row in batch.to_pylist():
            qa = {k: row[k] for k in (f"{p}_{i}" for p in ("question", "answer") for i in (1, 2, 3))}
            # audio is the source file, start/end the clip's span in it
            yield CaptionRecord(row["id"], [row["caption"]], audio=row["source"], start_s=row["start_s"],
                                end_s=row["end_s"], labels=list(row["labels"] or []), qa=qa,
                                extra={"accepted": row["accepted"], "check_score": row["check_score"],
                                       "audio_is_source": True})


def _from_dict(d: dict[str, Any]) -> CaptionRecord:
    fields = CaptionRecord.__dataclass_fields__
    rec = CaptionRecord(**{k: v for k, v in d.items() if k in fields})
    rec.captions = list(rec.captions)
    return rec


def read_jsonl(path: Path, report: Report) -> Iterator[CaptionRecord]:
    with open(path, encoding="utf-8") as f:
        for line, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                d = json.loads(text)
                yield _from_dict({**d, "extra": d.get("extra") or {}})
            except (json.JSONDecodeError, TypeError) as e:
                report.skip(f"{path}:{line}", f"not a caption record ({e})")


def read_parquet(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import pyarrow.dataset as pads

    files = sorted(str(p) for p in path.glob("*.parquet")) if path.is_dir() else [str(path)]
    for batch in pads.dataset(files, format="parquet").to_batches():
        for d in batch.to_pylist():
            yield _from_dict({**d, "qa": json.loads(d["qa"]) if d.get("qa") else None,
                              "extra": json.loads(d["extra"]) if d.get("extra") else {}})


def read_hf(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    for d in ds.select_columns([c for c in ds.column_names if c != "audio"]):  # text only
        yield _from_dict({**d, "audio": d.get("audio_path"),
                          "qa": json.loads(d["qa"]) if d.get("qa") else None,
                          "extra": json.loads(d["extra"]) if d.get("extra") else {}})


def read_webdataset(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import tarfile

    for shard in sorted(path.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    d = json.loads(tar.extractfile(member).read())
                    yield _from_dict({**d, "extra": d.get("extra") or {}})


def read_records(path: str | Path, fmt: str | None = None, *, qa: str | Path | None = None,
                 report: Report | None = None) -> Iterator[CaptionRecord]:
    """Records of a dataset, in its order. `qa` joins an AudioSetCaps Q&A file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    fmt = fmt or detect(path)
    report = report if report is not None else Report()
    readers = {"audiocaps": read_audiocaps, "clotho": read_clotho, "wavcaps": read_wavcaps,
               "sonicaps": read_sonicaps, "jsonl": read_jsonl, "parquet": read_parquet, "hf": read_hf,
               "webdataset": read_webdataset}
    if fmt == "audiosetcaps":
        return read_audiosetcaps(path, report, Path(qa) if qa else None)
    if fmt not in readers:
        raise FormatError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return readers[fmt](path, report)
