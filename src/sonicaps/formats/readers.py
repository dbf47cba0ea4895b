"""Read caption datasets into CaptionRecords, streaming where the format allows.

Layouts are recognised by their columns, whatever the container (CSV/TSV, Parquet, JSON
lines, a saved Hugging Face dataset):

- audiocaps: audiocap_id, youtube_id, start_time, caption (one row per caption)
- clotho: file_name, caption_1..caption_N (Clotho v2; also WavCaps' CSV copies)
- dcase: file_name, caption_predicted (a DCASE task 6 submission)
- audiosetcaps: id, caption; Q&A from question_1..3, answer_1..3 columns, a `--qa` file or
  a `<name>_qa.csv` beside the captions (`qa.csv` beside `captions.csv`)
- sonicaps records: id, captions (what the hf, parquet, jsonl and webdataset writers write)
- table: any id column (id, file_name, youtube_id, ...) with caption, text, raw_text or
  captions

plus WavCaps JSON (`{"data": [...]}`: pretraining items with `caption`, fine-tuning items
with `caption_1..N` and `wav`), other JSON (a list of rows, or `{id: caption(s)}`), a
`sonicaps caption` output folder, and webdataset shards.

Ids are kept byte for byte (Clotho names that begin with a space keep it); which clip a
record is, across layouts, is `sonicaps.formats.identity`. Bad rows never vanish
silently: a row that cannot be read is reported with its file and line in
`Report.skipped` (or raises FormatError when `strict`); a file that lacks a required
column raises FormatError naming it; text that is not in the given encoding raises
FormatError naming the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonicaps.formats.identity import CLIP_S, clip_key, parse_youtube_name
from sonicaps.formats.records import CaptionRecord
from sonicaps.formats.text import FormatError, csv_header, csv_rows, decode_error, read_text

__all__ = ["FORMATS", "FormatError", "Report", "detect", "read_records"]

FORMATS = ("audiocaps", "audiosetcaps", "clotho", "dcase", "wavcaps", "table", "sonicaps", "hf",
           "parquet", "jsonl", "webdataset")
# Column names taken as a clip's id, in order of preference. AudioCaps' `audiocap_id` is
# per caption, not per clip, so it is deliberately absent.
ID_COLUMNS = ("id", "file_name", "fname", "filename", "youtube_id", "ytid", "audio_id", "path", "file")
CAPTION_COLUMNS = ("caption", "text", "raw_text", "caption_predicted")
NUMBERED = re.compile(r"^caption_?(\d+)$")
QA_COLUMNS = tuple(f"{k}_{i}" for k in ("question", "answer") for i in (1, 2, 3))

Rows = Iterable[tuple[str, dict[str, Any]]]  # (where, row): "file:line" or "file row n"


@dataclass
class Report:
    """What a read skipped, and why (file:line: reason), and what it did on its own."""

    skipped: list[str] = field(default_factory=list)
    strict: bool = False
    notes: list[str] = field(default_factory=list)

    def skip(self, where: str, reason: str) -> None:
        if self.strict:
            raise FormatError(f"{where}: {reason}")
        self.skipped.append(f"{where}: {reason}")


def layout(columns: Iterable[str]) -> str | None:
    """The caption layout a set of column names is, or None."""
    cols = set(columns)
    if {"id", "captions"} <= cols:
        return "records"
    if {"youtube_id", "start_time", "caption"} <= cols:
        return "audiocaps"
    if "file_name" in cols and any(NUMBERED.match(c) for c in cols):
        return "clotho"
    if {"file_name", "caption_predicted"} <= cols:
        return "dcase"
    if {"id", "caption"} <= cols:
        return "audiosetcaps"
    if any(c in cols for c in ID_COLUMNS) and (any(c in cols for c in CAPTION_COLUMNS) or "captions" in cols
                                               or any(NUMBERED.match(c) for c in cols)):
        return "table"
    return None


def detect(path: Path, encoding: str = "utf-8") -> str:
    """The format of a path, from its layout and (for tables) its columns."""
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
    if suffix in (".csv", ".tsv"):
        header = csv_header(path, encoding, "\t" if suffix == ".tsv" else ",")
        found = layout(header)
        if found is None or found == "records":
            raise _no_layout(path, header)
        return found
    raise FormatError(f"{path}: unknown file type {suffix!r}; give the format with --from")


def _no_layout(path: Path, columns: list[str]) -> FormatError:
    what = ("no id column; expected one of " + ", ".join(ID_COLUMNS)
            if not any(c in columns for c in ID_COLUMNS) else
            "no caption column; expected one of " + ", ".join(CAPTION_COLUMNS) + ", caption_1..N or captions")
    return FormatError(f"{path}: {what} (found: {', '.join(columns)})")


def _cell(value: Any) -> str:
    """A cell as text: Parquet and JSON give numbers where CSV gives strings."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _seconds(value: Any) -> float | None:
    text = _cell(value).strip()
    return float(text) if text else None


def _qa(row: dict[str, Any]) -> dict[str, str] | None:
    if not any(c in row for c in QA_COLUMNS):
        return None
    return {c: _cell(row.get(c)) for c in QA_COLUMNS}


def _audiocaps(rows: Rows, report: Report, answers: dict[str, dict[str, str]]) -> Iterator[CaptionRecord]:
    """One record per clip (youtube_id + start_time), its captions in file order. AudioCaps
    spreads a clip's captions over the file, so clips are grouped in memory (50k rows)."""
    clips: dict[str, CaptionRecord] = {}
    for where, row in rows:
        yt, caption = _cell(row.get("youtube_id")), row.get("caption")
        try:
            start = _seconds(row.get("start_time"))  # empty: not an AudioSet clip
        except ValueError:
            report.skip(where, f"start_time {row.get('start_time')!r} is not a number")
            continue
        if not yt.strip() or caption is None:
            report.skip(where, "empty youtube_id or missing caption")
            continue
        key = clip_key(yt, start)
        rec = clips.get(key)
        if rec is None:
            end = start + CLIP_S if start is not None else None
            rec = clips[key] = CaptionRecord(key, [], audio=_cell(row.get("audio")) or None,
                                             youtube_id=yt if start is not None else None,
                                             start_s=start, end_s=end, caption_ids=[], qa=_qa(row))
        rec.captions.append(_cell(caption))
        rec.caption_ids.append(_cell(row.get("audiocap_id")))
    for key, rec in clips.items():
        rec.qa = answers.pop(key, rec.qa)
    yield from clips.values()


def _audiosetcaps(rows: Rows, report: Report, answers: dict[str, dict[str, str]],
                  splits: dict[str, str]) -> Iterator[CaptionRecord]:
    """id, caption rows (a repeated id: several captions). An AudioSetCaps id is
    `<YouTube id>_<start>_<duration>`; the record keeps it as its id, byte for byte."""
    clips: dict[str, CaptionRecord] = {}
    for where, row in rows:
        rid = _cell(row.get("id"))
        if not rid.strip():
            report.skip(where, "empty id")
            continue
        if rid in clips:
            clips[rid].captions.append(_cell(row.get("caption")))
            continue
        yt, start, end = parse_youtube_name(rid) or (None, None, None)
        if start is None:  # a bare name is no evidence of a YouTube clip (SceneCaps' scene_00001)
            yt = end = None
        clips[rid] = CaptionRecord(rid, [_cell(row.get("caption"))], audio=_cell(row.get("audio")) or None,
                                   youtube_id=yt, start_s=start, end_s=end, split=splits.get(rid),
                                   qa=_qa(row))
    for rid, rec in clips.items():
        rec.qa = answers.pop(rid, rec.qa)
    yield from clips.values()


def _numbered(columns: Iterable[str]) -> list[str]:
    """caption_1..caption_N columns in number order."""
    found = [(int(m.group(1)), c) for c in columns if (m := NUMBERED.match(c))]
    return [c for _, c in sorted(found)]


def _clotho(rows: Rows, report: Report, columns: list[str], caption_col: str | None = None
            ) -> Iterator[CaptionRecord]:
    """One row per clip: file_name and its captions (a blank cell: one caption fewer)."""
    numbered = _numbered(columns)
    cols = [caption_col] if caption_col else numbered
    seen: set[str] = set()
    for where, row in rows:
        name = _cell(row.get("file_name"))
        captions = [_cell(row.get(c)) for c in cols if _cell(row.get(c))]
        if not name or not captions:
            report.skip(where, "empty file_name or no caption")
            continue
        if name in seen:
            report.skip(where, f"duplicate file_name {name!r}")
            continue
        seen.add(name)
        yield CaptionRecord(name, captions, audio=_cell(row.get("audio")) or name)


def _table(rows: Rows, report: Report, columns: list[str]) -> Iterator[CaptionRecord]:
    """Any id column with captions: one row per caption, numbered caption columns, or a
    `captions` list. Grouped by id in file order."""
    id_col = next(c for c in ID_COLUMNS if c in columns)
    numbered = _numbered(columns)
    text_col = next((c for c in CAPTION_COLUMNS if c in columns), None)
    clips: dict[str, CaptionRecord] = {}
    for where, row in rows:
        rid = _cell(row.get(id_col))
        if not rid:
            report.skip(where, f"empty {id_col}")
            continue
        if numbered:
            captions = [_cell(row.get(c)) for c in numbered if _cell(row.get(c))]
        elif text_col is not None:
            captions = [_cell(row.get(text_col))]
        else:
            values = row.get("captions")
            if not isinstance(values, list | tuple) and not hasattr(values, "tolist"):
                report.skip(where, f"id {rid!r}: `captions` must be a list")
                continue
            captions = [_cell(v) for v in list(values)]
        rec = clips.get(rid)
        if rec is None:
            rec = clips[rid] = CaptionRecord(rid, [], audio=_cell(row.get("audio")) or None)
            if id_col in ("youtube_id", "ytid"):
                rec.youtube_id = rid
            if "start_time" in row:
                rec.start_s = _seconds(row.get("start_time"))
                rec.end_s = rec.start_s + CLIP_S if rec.start_s is not None else None
        rec.captions.extend(captions)
    yield from clips.values()


def _from_dict(d: dict[str, Any]) -> CaptionRecord:
    """A record from the dict the sonicaps writers write (qa and extra may be JSON text)."""
    fields = CaptionRecord.__dataclass_fields__
    d = {k: v for k, v in d.items() if k in fields}
    for k in ("qa", "extra"):
        if isinstance(d.get(k), str):
            d[k] = json.loads(d[k]) if d[k] else None
    d["extra"] = d.get("extra") or {}
    rec = CaptionRecord(**d)
    rec.captions = list(rec.captions)
    for k in ("labels", "caption_ids"):
        if getattr(rec, k) is not None:
            setattr(rec, k, list(getattr(rec, k)))
    return rec


def _records(rows: Rows, report: Report, columns: list[str], path: Path, fmt: str | None,
             qa: Path | None, encoding: str) -> Iterator[CaptionRecord]:
    """Records of rows in whatever layout their columns are (or `fmt`, when given)."""
    kind = fmt if fmt in ("audiocaps", "audiosetcaps", "clotho", "dcase", "table") else layout(columns)
    required = {"audiocaps": ("youtube_id", "start_time", "caption"), "audiosetcaps": ("id", "caption"),
                "clotho": ("file_name",), "dcase": ("file_name", "caption_predicted")}.get(kind or "", ())
    missing = [c for c in required if c not in columns]
    if kind is None:
        raise _no_layout(path, columns)
    if missing:
        raise FormatError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(columns)})")
    if qa is not None and kind not in ("audiocaps", "audiosetcaps"):
        raise FormatError(f"{path}: a Q&A file joins only AudioCaps or AudioSetCaps captions, not {kind}")
    if kind == "records":
        return (_from_dict(row) for _, row in rows)
    if kind == "clotho":
        if not any(NUMBERED.match(c) for c in columns):
            raise FormatError(f"{path}: no caption_1..caption_N columns")
        return _clotho(rows, report, columns)
    if kind == "dcase":
        return _clotho(rows, report, columns, "caption_predicted")
    if kind == "table":
        return _table(rows, report, columns)
    answers = _answers(qa, path, report, encoding)
    if kind == "audiocaps":
        return _checked_answers(_audiocaps(rows, report, answers), answers, report)
    splits: dict[str, str] = {}
    if (path.parent / "splits.csv").is_file():  # SceneCaps: a splits.csv (id, split) beside the file
        splits = {row["id"]: row["split"] for _, row in csv_rows(path.parent / "splits.csv", ("id", "split"))}
    return _checked_answers(_audiosetcaps(rows, report, answers, splits), answers, report)


def _checked_answers(records: Iterator[CaptionRecord], answers: dict[str, dict[str, str]],
                     report: Report) -> Iterator[CaptionRecord]:
    yield from records
    for rid in answers:  # Q&A whose id no caption row has
        report.skip(f"Q&A {rid!r}", "no caption row has this id")


def qa_file_for(path: Path) -> Path | None:
    """The Q&A file written beside a caption CSV: `<name>_qa.csv`, or `qa.csv` beside
    `captions.csv` (the AudioSetCaps layout `sonicaps export` writes)."""
    for candidate in (path.with_name(f"{path.stem}_qa{path.suffix}"),
                      path.with_name("qa.csv") if path.name == "captions.csv" else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _answers(qa: Path | None, path: Path, report: Report, encoding: str) -> dict[str, dict[str, str]]:
    if qa is None and path.suffix.lower() == ".csv":
        qa = qa_file_for(path)
        if qa is not None:
            report.notes.append(f"joined the Q&A in {qa}")
    if qa is None:
        return {}
    answers: dict[str, dict[str, str]] = {}
    for line, row in csv_rows(qa, ("id", *QA_COLUMNS), encoding):
        if row["id"] in answers:
            report.skip(f"{qa}:{line}", f"duplicate id {row['id']!r}")
            continue
        answers[row["id"]] = {c: row[c] for c in QA_COLUMNS}
    return answers


def _csv(path: Path, report: Report, fmt: str | None, qa: Path | None, encoding: str
         ) -> Iterator[CaptionRecord]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    columns = csv_header(path, encoding, delimiter)
    rows = ((f"{path}:{line}", row) for line, row in csv_rows(path, (), encoding, delimiter))
    return _records(rows, report, columns, path, fmt, qa, encoding)


def read_json(path: Path, report: Report, encoding: str = "utf-8") -> Iterator[CaptionRecord]:
    """WavCaps' `{"data": [...]}`, a list of rows, or `{id: caption or [captions]}`."""
    try:
        data = json.loads(read_text(path, encoding))
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from e
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return _wavcaps(path, data["data"], report)
    if isinstance(data, dict) and data and all(isinstance(v, list) and all(isinstance(x, str) for x in v)
                                               for v in data.values()) and not _caption_map(data):
        raise FormatError(f"{path}: lists of ids with no captions ({', '.join(data)}), such as a WavCaps "
                          "blacklist; use it with `sonicaps dedupe --eval`")
    if isinstance(data, dict):
        data = [{"id": k, "captions": v if isinstance(v, list) else [v]} for k, v in data.items()]
    if isinstance(data, list) and all(isinstance(d, dict) for d in data):
        columns = list(dict.fromkeys(k for d in data for k in d))
        rows = ((f"{path}: [{n}]", d) for n, d in enumerate(data))
        return _records(rows, report, columns, path, None, None, encoding)
    raise FormatError(f'{path}: expected {{"data": [...]}} (WavCaps), a list of objects or {{id: caption}}')


def _caption_map(data: dict[str, Any]) -> bool:
    """{id: [captions]} rather than {source: [ids]}: ids name clips, captions have spaces."""
    return any(" " in x for v in data.values() for x in v[:20])


def _wavcaps(path: Path, items: list[Any], report: Report) -> Iterator[CaptionRecord]:
    """WavCaps items: pretraining (`id`, `caption`, `audio`, ...) or fine-tuning
    (`caption_1..N`, `wav`, `audio`, maybe `id`); the other fields go to `extra`."""
    seen: set[str] = set()
    for n, item in enumerate(items):
        where = f"{path}: data[{n}]"
        if not isinstance(item, dict):
            report.skip(where, "not an object")
            continue
        numbered = _numbered(item)
        if isinstance(item.get("caption"), str):
            captions, audio_key = [item["caption"]], "audio"
        elif numbered and all(isinstance(item[k], str) for k in numbered):
            captions, audio_key = [item[k] for k in numbered], "wav" if "wav" in item else "audio"
        else:
            report.skip(where, "needs a caption string or caption_1..N strings")
            continue
        audio = item.get(audio_key) if isinstance(item.get(audio_key), str) else None
        rid = _cell(item.get("id")) or (Path(audio).name if audio else "")
        if not rid:
            report.skip(where, "no id, and no wav or audio path to name it by")
            continue
        if rid in seen:
            report.skip(where, f"duplicate id {rid!r}")
            continue
        seen.add(rid)
        skip = {"id", "caption", audio_key, *numbered}
        extra = {k: v for k, v in item.items() if k not in skip}
        yield CaptionRecord(rid, captions, audio=audio, extra=extra)


def read_sonicaps(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import pyarrow.dataset as pads

    shards = sorted(str(p) for p in path.glob("part-*.parquet"))
    for batch in pads.dataset(shards, format="parquet").to_batches():
        for row in batch.to_pylist():
            qa = {k: row[k] for k in QA_COLUMNS}
            # audio is the source file, start/end the clip's span in it
            yield CaptionRecord(row["id"], [row["caption"]], audio=row["source"], start_s=row["start_s"],
                                end_s=row["end_s"], labels=list(row["labels"] or []), qa=qa,
                                extra={"accepted": row["accepted"], "check_score": row["check_score"],
                                       "audio_is_source": True})


def _jsonl(path: Path, report: Report, fmt: str | None, encoding: str) -> Iterator[CaptionRecord]:
    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        from sonicaps.formats.text import open_text

        with open_text(path, encoding) as f:
            line = 0
            while True:
                try:
                    text = f.readline()
                except UnicodeDecodeError as e:
                    raise decode_error(path, encoding, e) from e
                if not text:
                    return
                line += 1
                if not text.strip():
                    continue
                try:
                    d = json.loads(text)
                except json.JSONDecodeError as e:
                    report.skip(f"{path}:{line}", f"not valid JSON ({e.msg})")
                    continue
                if not isinstance(d, dict):
                    report.skip(f"{path}:{line}", "not a JSON object")
                    continue
                yield f"{path}:{line}", d

    it = rows()
    first = next(it, None)
    if first is None:
        return iter(())
    return _records(_chain(first, it), report, list(first[1]), path, fmt, None, encoding)


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _parquet(path: Path, report: Report, fmt: str | None, qa: Path | None, encoding: str
             ) -> Iterator[CaptionRecord]:
    import pyarrow as pa
    import pyarrow.dataset as pads

    files = sorted(str(p) for p in path.glob("*.parquet")) if path.is_dir() else [str(path)]
    dataset = pads.dataset(files, format="parquet")
    columns: dict[str, Any] = {name: pads.field(name) for name in dataset.schema.names}
    audio = dataset.schema.field("audio").type if "audio" in columns else None
    if audio is not None and not pa.types.is_string(audio):
        # A hub dataset's Audio column ({bytes, path}): the path only, the bytes stay unread.
        if pa.types.is_struct(audio) and audio.get_field_index("path") >= 0:
            columns["audio"] = pads.field("audio", "path")
        else:
            del columns["audio"]

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        n = 0
        for batch in dataset.to_batches(columns=columns):
            for row in batch.to_pylist():
                n += 1
                yield f"{path} row {n}", row

    return _records(rows(), report, list(columns), path, fmt, qa, encoding)


def read_hf(path: Path, report: Report, fmt: str | None, encoding: str) -> Iterator[CaptionRecord]:
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        raise FormatError(f"{path}: a DatasetDict ({', '.join(ds)}); give one split's folder")
    text = ds.select_columns([c for c in ds.column_names if c != "audio"])  # text only
    if "audio_path" in ds.column_names:  # written by sonicaps: audio_path is the record's path
        return (_from_dict({**d, "audio": d.get("audio_path")}) for d in text)
    rows = ((f"{path} row {n + 1}", d) for n, d in enumerate(text))
    return _records(rows, report, text.column_names, path, fmt, None, encoding)


def read_webdataset(path: Path, report: Report) -> Iterator[CaptionRecord]:
    import tarfile

    for shard in sorted(path.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                if member.name.endswith(".json"):
                    yield _from_dict(json.loads(tar.extractfile(member).read()))


def read_records(path: str | Path, fmt: str | None = None, *, qa: str | Path | None = None,
                 report: Report | None = None, encoding: str = "utf-8") -> Iterator[CaptionRecord]:
    """Records of a dataset, in its order. `qa` joins an AudioSetCaps Q&A file (found on
    its own beside the captions as `<name>_qa.csv`); `encoding` is the text files'."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    fmt = fmt or detect(path, encoding)
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    report = report if report is not None else Report()
    qa_path = Path(qa) if qa else None
    if fmt == "sonicaps":
        return read_sonicaps(path, report)
    if fmt == "webdataset":
        return read_webdataset(path, report)
    if fmt == "hf":
        return read_hf(path, report, None, encoding)
    if fmt == "wavcaps" or path.suffix.lower() == ".json":
        return read_json(path, report, encoding)
    if fmt == "jsonl" or path.suffix.lower() in (".jsonl", ".ndjson"):
        return _jsonl(path, report, None if fmt == "jsonl" else fmt, encoding)
    if fmt == "parquet" or path.suffix.lower() == ".parquet" or path.is_dir():
        return _parquet(path, report, None if fmt == "parquet" else fmt, qa_path, encoding)
    return _csv(path, report, fmt, qa_path, encoding)
