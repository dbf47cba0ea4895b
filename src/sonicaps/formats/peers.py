"""Writers for the field's own layouts: AudioCaps and AudioSetCaps CSVs (each with its
Q&A in `<name>_qa.csv` beside it), Clotho's caption CSV, WavCaps' JSON and a DCASE
submission. Each layout holds less than a CaptionRecord; `keeps` says what it holds, and
the writer reports every field it could not write (`WriteReport.lost`) and every record
it could not write at all (`WriteReport.dropped`): nothing is lost without a word.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonicaps.formats.identity import CLIP_S, clip_key, identity, parse_youtube_name
from sonicaps.formats.records import CaptionRecord

QA_COLUMNS = ["id", "question_1", "question_2", "question_3", "answer_1", "answer_2", "answer_3"]


@dataclass
class WriteReport:
    """What a write did: records written, records it could not write and records whose
    audio it could not find (each as (id, why)), and per field, how many records lost it."""

    written: int = 0
    dropped: list[tuple[str, str]] = field(default_factory=list)
    missing_audio: list[tuple[str, str]] = field(default_factory=list)
    lost: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def _lost(rec: CaptionRecord, keeps: set[str], report: WriteReport) -> None:
    """Count the fields of `rec` with a value that the layout does not hold. A YouTube id
    and span that the record's id spells out are not lost: reading gets them back."""
    if (rec.youtube_id, rec.start_s, rec.end_s) == (parse_youtube_name(rec.id) or (None, None, None)):
        keeps = keeps | {"youtube_id", "start_s", "end_s"}
    for name, value in rec.to_dict().items():
        if name not in keeps and value not in (None, [], {}, ""):
            report.lost[name] += 1


def qa_path(dest: Path) -> Path:
    return dest.with_name(f"{dest.stem}_qa{dest.suffix or '.csv'}")


class _QAFile:
    """The Q&A file beside a caption CSV, created on the first record that has Q&A."""

    def __init__(self, dest: Path, report: WriteReport) -> None:
        self.path, self.report = qa_path(dest), report
        self._f: Any = None
        self._w: Any = None
        self.path.unlink(missing_ok=True)  # a stale one would be joined on reading

    def write(self, rid: str, qa: dict[str, str] | None) -> None:
        if not qa:
            return
        if self._w is None:
            self._f = open(self.path, "w", newline="", encoding="utf-8")
            self._w = csv.writer(self._f, lineterminator="\n")
            self._w.writerow(QA_COLUMNS)
            self.report.notes.append(f"wrote the Q&A to {self.path}")
        self._w.writerow([rid, *(qa.get(c, "") for c in QA_COLUMNS[1:])])

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def _youtube_span(rec: CaptionRecord) -> tuple[str, float, float] | None:
    """(YouTube id, start, end) in the video, when the record is known to be such a clip."""
    ident = identity(rec)
    if ident.youtube_id and ident.start_s is not None:
        end = ident.end_s if ident.end_s is not None else ident.start_s + CLIP_S
        return ident.youtube_id, ident.start_s, end
    return None


def write_audiocaps_csv(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    """audiocap_id, youtube_id, start_time, caption: one row per caption. A record that is
    no YouTube clip keeps its id in youtube_id with start_time empty (read back the same)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    qa = _QAFile(dest, report)
    keeps = {"id", "captions", "caption_ids", "youtube_id", "start_s", "end_s", "qa"}
    try:
        with open(dest, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
            for rec in records:
                span = _youtube_span(rec) if rec.youtube_id else None
                yt, start = (span[0], f"{span[1]:g}") if span else (rec.id, "")
                rid = clip_key(yt, span[1]) if span else rec.id
                if rid != rec.id:
                    report.lost["id (AudioCaps rows are named <youtube_id>_<start>)"] += 1
                if span and abs(span[2] - span[1] - CLIP_S) > 1e-6:
                    report.lost["end_s (AudioCaps clips last 10 s)"] += 1
                ids = rec.caption_ids if rec.caption_ids and len(rec.caption_ids) == len(rec.captions) \
                    else [""] * len(rec.captions)
                for cid, caption in zip(ids, rec.captions, strict=True):
                    w.writerow([cid, yt, start, caption])
                qa.write(rid, rec.qa)
                _lost(rec, keeps, report)
                report.written += 1
    finally:
        qa.close()
    return report.written


def audiosetcaps_id(rec: CaptionRecord) -> str:
    """The record's own name, or for an AudioCaps row (named by sonicaps) the AudioSetCaps
    form `<YouTube id>_<start>_<duration>`."""
    if rec.youtube_id and rec.start_s is not None and rec.id == clip_key(rec.youtube_id, rec.start_s):
        end = rec.end_s if rec.end_s is not None else rec.start_s + CLIP_S
        return f"{rec.youtube_id}_{rec.start_s:g}_{end - rec.start_s:g}"
    return rec.id


def write_audiosetcaps_csv(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    """id, caption (one row per caption, as AudioSetCaps ships one per clip), the Q&A in
    `<name>_qa.csv` beside it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    qa = _QAFile(dest, report)
    keeps = {"id", "captions", "qa", "youtube_id", "start_s", "end_s"}
    try:
        with open(dest, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "caption"])
            for rec in records:
                rid = audiosetcaps_id(rec)
                if not rec.captions:
                    report.dropped.append((rec.id, "no caption (an AudioSetCaps row is id, caption)"))
                    continue
                if rid != rec.id:
                    report.lost["id (written as <youtube_id>_<start>_<duration>)"] += 1
                for caption in rec.captions:
                    w.writerow([rid, caption])
                qa.write(rid, rec.qa)
                _lost(rec, keeps, report)
                report.written += 1
    finally:
        qa.close()
    return report.written


def _named_keeps(rec: CaptionRecord) -> set[str]:
    """A file_name layout keeps the id, the captions and an audio path that is the id."""
    return {"id", "captions"} | ({"audio"} if rec.audio == rec.id else set())


def write_clotho_csv(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    """file_name, caption_1..caption_N (N: the most captions any clip has, 5 in Clotho).
    Rows are spooled to a temporary file first, as N is known only at the end."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    most = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        for rec in records:
            captions = [c for c in rec.captions if c]
            if not captions:
                report.dropped.append((rec.id, "no caption (Clotho reads a row without one as none)"))
                continue
            if len(captions) < len(rec.captions):
                report.lost["empty captions (a blank Clotho cell is no caption)"] += 1
            _lost(rec, _named_keeps(rec), report)
            most = max(most, len(captions))
            spool.write(json.dumps([rec.id, *captions], ensure_ascii=False) + "\n")
            report.written += 1
        spool.seek(0)
        with open(dest, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["file_name", *(f"caption_{k}" for k in range(1, max(most, 1) + 1))])
            for line in spool:
                w.writerow(json.loads(line))
    return report.written


def write_dcase_csv(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    """file_name, caption_predicted: a DCASE task 6 submission, one caption per clip."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file_name", "caption_predicted"])
        for rec in records:
            if len(rec.captions) != 1:
                report.dropped.append((rec.id, f"{len(rec.captions)} captions (a submission has one)"))
                continue
            _lost(rec, _named_keeps(rec), report)
            w.writerow([rec.id, rec.captions[0]])
            report.written += 1
    return report.written


def write_wavcaps_json(records: Iterable[CaptionRecord], dest: Path, report: WriteReport) -> int:
    """`{"data": [...], "num_captions_per_audio": k}` as WavCaps ships it: a clip with one
    caption as a pretraining item (`id`, `caption`, `audio`), one with several as a
    fine-tuning item (`caption_1..N`, `wav`, `id`); the record's `extra` fields are the
    item's other fields. Streamed: items are written as they come."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    counts: set[int] = set()
    keeps = {"id", "captions", "audio", "extra"}
    with open(dest, "w", encoding="utf-8") as f:
        f.write('{"data": [')
        for rec in records:
            if not rec.captions:
                report.dropped.append((rec.id, "no caption"))
                continue
            item: dict[str, Any] = {"id": rec.id}
            if len(rec.captions) == 1:
                item["caption"] = rec.captions[0]
                audio_key = "audio"
            else:
                item.update({f"caption_{k}": c for k, c in enumerate(rec.captions, 1)})
                audio_key = "wav" if "wav" not in rec.extra else "audio"
            clash = [k for k in rec.extra if k in item or (k == audio_key and rec.audio is not None)]
            if clash:
                report.lost[f"extra fields named like WavCaps' own ({', '.join(clash)})"] += 1
            item.update({k: v for k, v in rec.extra.items() if k not in clash})
            if rec.audio is not None:
                item[audio_key] = rec.audio
            _lost(rec, keeps, report)
            text = json.dumps(item, ensure_ascii=False, default=str)
            f.write(("\n" if not report.written else ",\n") + text)
            counts.add(len(rec.captions))
            report.written += 1
        f.write("\n]")
        if len(counts) == 1:
            f.write(f', "num_captions_per_audio": {counts.pop()}')
        f.write("}\n")
    return report.written
