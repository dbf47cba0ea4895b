"""The output directory: Parquet shards of captions plus failures.jsonl.

Exactly-once under SIGKILL: every batch is committed by (1) appending its failures to
_failures.jsonl and fsyncing, then (2) writing its Parquet shard under a hidden name and
renaming it into place (atomic on POSIX), then (3) appending the failures that finish a
source (last_in_source). A re-run skips a source once a record marks it finished, so that
record is written after every other record of its batch: a kill anywhere leaves a source
either finished with all its records, or unfinished, and the re-run redoes exactly the
clips that have no record. Readers
(`pandas.read_parquet(OUT_DIR)`) never see hidden files, so they never see half a shard.
One run writes to a directory at a time.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# The underscore keeps `pandas.read_parquet(OUT_DIR)` working: pyarrow skips files whose
# names start with "_" or "." when it reads a directory, and would choke on a .jsonl.
FAILURES = "_failures.jsonl"

SCHEMA = pa.schema([
    ("id", pa.string()),
    ("source", pa.string()),
    ("start_s", pa.float64()),
    ("end_s", pa.float64()),
    ("caption", pa.string()),
    ("question_1", pa.string()),
    ("question_2", pa.string()),
    ("question_3", pa.string()),
    ("answer_1", pa.string()),
    ("answer_2", pa.string()),
    ("answer_3", pa.string()),
    ("labels", pa.list_(pa.string())),
    ("label_source", pa.string()),  # "given" (manifest) or "detected" (asker)
    ("check_score", pa.float64()),
    ("label_score", pa.float64()),  # null when the clip came without labels
    ("check_rule", pa.string()),  # "label_score" or "threshold=<t>"
    ("accepted", pa.bool_()),
    ("attempts", pa.int32()),
    ("evidence", pa.string()),  # JSON: what the asker measured
    ("asker", pa.string()),
    ("writer", pa.string()),
    ("scorer", pa.string()),
    ("prompt_version", pa.string()),
    ("sonicaps_version", pa.string()),
    ("last_in_source", pa.bool_()),
    ("created_at", pa.timestamp("s", tz="UTC")),
])


@dataclass
class Progress:
    """What an output directory already holds."""

    done_ids: set[str] = field(default_factory=set)
    done_sources: set[str] = field(default_factory=set)  # finished or failed whole
    # Recorded clips of sources not finished yet: all a re-run of the rest must skip.
    unfinished_ids: set[str] = field(default_factory=set)
    rows: int = 0
    failures: int = 0


class Store:
    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        if self.dir.exists() and not self.dir.is_dir():
            raise NotADirectoryError(f"{self.dir} exists and is not a directory")
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".part-*.tmp"):  # shards a killed run never renamed
            stale.unlink(missing_ok=True)
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._seq = 0

    @property
    def failures_path(self) -> Path:
        return self.dir / FAILURES

    def shards(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet"))

    def load_progress(self) -> Progress:
        prog = Progress()
        recorded: list[tuple[str, str]] = []  # (id, source)
        for shard in self.shards():
            t = pq.read_table(shard, columns=["id", "source", "last_in_source"])
            ids, sources = t.column("id").to_pylist(), t.column("source").to_pylist()
            prog.rows += len(ids)
            recorded += zip(ids, sources, strict=True)
            for src, last in zip(sources, t.column("last_in_source").to_pylist(), strict=True):
                if last:
                    prog.done_sources.add(src)
        for rec in self.read_failures():
            prog.failures += 1
            if rec.get("id"):
                recorded.append((rec["id"], rec["source"]))
            if rec.get("last_in_source") or not rec.get("id"):
                prog.done_sources.add(rec["source"])
        prog.done_ids = {cid for cid, _ in recorded}
        prog.unfinished_ids = {cid for cid, src in recorded if src not in prog.done_sources}
        return prog

    def read_failures(self) -> list[dict[str, Any]]:
        """Failure records; a torn last line (a kill mid-write) is cut off the file."""
        path = self.failures_path
        if not path.exists():
            return []
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(cut)
            data = data[:cut]
        return [json.loads(line) for line in data.splitlines() if line.strip()]

    def commit(self, rows: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        self._append_failures([f for f in failures if not f["last_in_source"]])
        self._write_shard(rows)
        self._append_failures([f for f in failures if f["last_in_source"]])

    def _append_failures(self, failures: list[dict[str, Any]]) -> None:
        if failures:
            with open(self.failures_path, "a", encoding="utf-8") as f:
                for rec in failures:
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())

    def _write_shard(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            table = pa.Table.from_pylist(rows, schema=SCHEMA)
            name = f"part-{self._run}-{self._seq:06d}.parquet"
            tmp = self.dir / f".{name}.tmp"
            pq.write_table(table, tmp, compression="zstd")
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.dir / name)
            self._seq += 1
