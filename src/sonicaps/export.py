"""Pipeline output -> the AudioSetCaps release layout (`id,caption` and the Q&A file)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.dataset as ds

QA_COLUMNS = ["id", "question_1", "question_2", "question_3", "answer_1", "answer_2", "answer_3"]


def export_dir(out_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Where an export of `out_dir` goes: `dest`, by default `<out_dir>-export` beside it.
    Never inside the Parquet folder: pyarrow would try to read a CSV there as a shard, and
    `pandas.read_parquet(out_dir)` and `sonicaps score out_dir` would fail."""
    out_dir = Path(out_dir).absolute()
    dest = Path(dest).absolute() if dest is not None else out_dir.with_name(out_dir.name + "-export")
    if dest == out_dir or dest.is_relative_to(out_dir):
        raise ValueError(f"{dest} is inside the caption output {out_dir}, which must hold only its "
                         f"Parquet shards: export elsewhere, e.g. -o {out_dir.name}-export")
    return dest


def export(out_dir: str | Path, dest: str | Path | None = None, fmt: str = "csv",
           accepted_only: bool = False) -> tuple[Path, Path, int]:
    """Write `captions.<fmt>` and `qa.<fmt>` into dest (see export_dir), streaming the shards."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}; expected csv or jsonl")
    out_dir, dest = Path(out_dir), export_dir(out_dir, dest)
    shards = sorted(out_dir.glob("part-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{out_dir}: no caption shards (part-*.parquet) to export")
    dest.mkdir(parents=True, exist_ok=True)
    cap_path, qa_path = dest / f"captions.{fmt}", dest / f"qa.{fmt}"
    dataset = ds.dataset([str(s) for s in shards], format="parquet")
    filt = ds.field("accepted") if accepted_only else None
    n = 0
    with open(cap_path, "w", newline="", encoding="utf-8") as fc, \
         open(qa_path, "w", newline="", encoding="utf-8") as fq:
        if fmt == "csv":
            wc, wq = csv.writer(fc), csv.writer(fq)
            wc.writerow(["id", "caption"])
            wq.writerow(QA_COLUMNS)
        for batch in dataset.to_batches(columns=["caption", *QA_COLUMNS], filter=filt):
            for row in batch.to_pylist():
                n += 1
                if fmt == "csv":
                    wc.writerow([row["id"], row["caption"]])
                    wq.writerow([row[c] for c in QA_COLUMNS])
                else:
                    fc.write(json.dumps({"id": row["id"], "caption": row["caption"]},
                                        ensure_ascii=False) + "\n")
                    fq.write(json.dumps({c: row[c] for c in QA_COLUMNS}, ensure_ascii=False)
                             + "\n")
    return cap_path, qa_path, n
