"""The round-trip check every writer must pass: nothing lost without a word."""

from __future__ import annotations

from pathlib import Path

from sonicaps.formats.identity import identity
from sonicaps.formats.readers import read_records
from sonicaps.formats.writers import TARGETS, WriteReport, write_records

DEST = {"hf": "hf", "parquet": "out.parquet", "jsonl": "out.jsonl", "webdataset": "wds",
        "audiocaps-csv": "out.csv", "audiosetcaps-csv": "out.csv", "clotho-csv": "out.csv",
        "wavcaps-json": "out.json", "dcase-csv": "out.csv"}
FULL = ("hf", "parquet", "jsonl", "webdataset")  # sonicaps' own formats keep every field
assert set(DEST) == set(TARGETS)


def round_trip(original: list, to: str, folder: Path) -> tuple[list, WriteReport]:
    """Write `original` as `to` under folder, read it back; checks that every record is either
    written or listed as dropped, and that every field that changed is listed as lost."""
    report = WriteReport()
    dest = folder / DEST[to]
    n = write_records(iter(original), dest, to, report=report)
    back = list(read_records(dest))
    dropped = {rid for rid, _ in report.dropped}
    kept = [r for r in original if r.id not in dropped]
    assert n == report.written == len(back) == len(kept), (to, n, len(back), len(kept), report.dropped)
    for a, b in zip(kept, back, strict=True):
        assert b.captions == a.captions, (to, a.id)  # every caption, in order
        ia, ib = identity(a), identity(b)
        assert (ib.youtube_id, ib.start_s, ib.end_s) == (ia.youtube_id, ia.start_s, ia.end_s), (to, a.id)
        for name, value in a.to_dict().items():
            if value in (None, [], {}, "") or getattr(b, name) == value:
                continue
            if name in ("youtube_id", "start_s", "end_s"):
                continue  # the identity above is what must survive: the id may spell it out
            assert any(k.split(" ")[0] == name for k in report.lost), (to, a.id, name, value,
                                                                       getattr(b, name))
    if to in FULL:
        assert [r.to_dict() for r in back] == [r.to_dict() for r in kept]
        assert not report.lost
    return back, report
