"""The clips under review: a catalog of review items in SQLite, filled from the data.

A pipeline output folder can hold a million clips in tens of thousands of Parquet
shards; reading every footer before showing a page would take minutes. So the catalog
is filled in the background, shard by shard (shards are immutable once renamed into
place, so a shard indexed once never changes), and the page works on what is indexed
so far. A reopened collection only indexes shards it has not seen. The catalog keeps
what lists and filters need (id, caption, labels, check score) and where the row lives;
a clip's answers and evidence are read from its shard when it is shown.

Any other dataset sonicaps reads (AudioCaps CSV, Clotho, hf, ...) is streamed once into
the catalog, one item per caption (`<id>#<k>` when a clip has several), and re-indexed
when its files change.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REVIEW_DIR = "_review"  # inside a pipeline output folder; "_" keeps pyarrow readers away
DB_NAME = "review.sqlite"
# Shards indexed per transaction: short enough not to hold up a reviewer's write.
SHARDS_PER_COMMIT = 500
FIRST_SHARDS = 8
RECORDS_PER_COMMIT = 5000
# How often the background indexer looks for new shards of a running pipeline.
RESCAN_S = 30.0
INDEX_COLUMNS = ("id", "caption", "labels", "check_score", "accepted")  # what lists and filters need
STATUSES = ("unreviewed", "reviewed", "accept", "edit", "reject")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pos INTEGER PRIMARY KEY,      -- order of the collection
    item TEXT NOT NULL UNIQUE,    -- what a review refers to
    clip TEXT NOT NULL,
    caption TEXT NOT NULL,
    labels TEXT NOT NULL,         -- '|a|b|', so LIKE '%|a|%' finds a label
    score REAL,                   -- check score
    accepted INTEGER,             -- the pipeline's check decision (NULL outside pipelines)
    shard TEXT, row INTEGER,      -- pipeline output: where the full row lives
    record TEXT                   -- other datasets: the record as JSON
);
CREATE TABLE IF NOT EXISTS shards (name TEXT PRIMARY KEY, rows INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('accept', 'edit', 'reject')),
    caption TEXT NOT NULL,        -- the caption as accepted or edited; the machine's on reject
    machine_caption TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_item ON reviews (item, reviewer, id);
CREATE INDEX IF NOT EXISTS reviews_reviewer ON reviews (reviewer, id);
"""


class CollectionError(ValueError):
    """The path is not something that can be reviewed."""


@dataclass(frozen=True)
class Filters:
    """What the list shows. `status` is relative to one reviewer."""

    status: str | None = None  # one of STATUSES
    label: str | None = None  # exact label name, case-insensitive
    min_score: float | None = None
    max_score: float | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; choose from {', '.join(STATUSES)}")


def connect(db: Path) -> sqlite3.Connection:
    """A connection for one thread. WAL lets reviewers write while the indexer and
    other reviewers read; writers wait for each other (busy timeout) instead of failing."""
    con = sqlite3.connect(db, timeout=30.0, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("PRAGMA busy_timeout=30000")
    con.row_factory = sqlite3.Row
    return con


def review_dir_for(data: Path) -> Path:
    """Where reviews live: inside a pipeline output folder, else beside the dataset."""
    if _is_pipeline_output(data):
        return data / REVIEW_DIR
    return data.parent / f"{data.name}.review"


def _is_pipeline_output(path: Path) -> bool:
    return path.is_dir() and (any(path.glob("part-*.parquet")) or (path / "_failures.jsonl").exists())


class Collection:
    """A dataset opened for review: its catalog, the review database, and its audio."""

    def __init__(self, data: str | Path, *, fmt: str | None = None, db_dir: str | Path | None = None,
                 audio_root: str | Path | None = None) -> None:
        self.data = Path(data).resolve()
        if not self.data.exists():
            raise CollectionError(f"{data}: no such file or folder")
        self.pipeline = fmt in (None, "sonicaps") and _is_pipeline_output(self.data)
        if not self.pipeline:
            from sonicaps.formats.readers import detect

            self.fmt = fmt or detect(self.data)
        else:
            self.fmt = "sonicaps"
        self.dir = Path(db_dir) if db_dir else review_dir_for(self.data)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = self.dir / DB_NAME
        # Audio may only come from these folders (symlinks resolved); None: the pipeline's
        # own source paths, which are the collection's audio by construction.
        roots = [Path(audio_root).resolve()] if audio_root else []
        if not self.pipeline:
            roots.append(self.data if self.data.is_dir() else self.data.parent)
        self.audio_roots = roots or None
        self._local = threading.local()
        con = self.con
        con.executescript(SCHEMA)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.indexing = False
        self.index_error: str | None = None

    @property
    def con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = connect(self.db)
        return con

    # --- indexing ---------------------------------------------------------------------

    def index(self, limit_s: float | None = None) -> int:
        """Add what is new in the data to the catalog; returns the items added."""
        return self._index_shards(limit_s) if self.pipeline else self._index_records()

    def start_indexing(self) -> None:
        """Index in a background thread; a pipeline folder is rescanned for new shards."""
        def loop() -> None:
            while not self._stop.is_set():
                self.indexing = True
                try:
                    self.index()
                    self.index_error = None
                except Exception as e:  # shown on the page; the collection stays usable
                    self.index_error = f"{type(e).__name__}: {e}"
                finally:
                    self.indexing = False
                if not self.pipeline or self._stop.wait(RESCAN_S):
                    return

        self._thread = threading.Thread(target=loop, name="sonicaps-review-index", daemon=True)
        self.indexing = True
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _shard_names(self) -> list[str]:
        return sorted(e.name for e in os.scandir(self.data)
                      if e.name.startswith("part-") and e.name.endswith(".parquet"))

    def _index_shards(self, limit_s: float | None) -> int:
        import pyarrow.dataset as pads

        con = self.con
        done = {r[0] for r in con.execute("SELECT name FROM shards")}
        todo = [n for n in self._shard_names() if n not in done]
        added, start = 0, time.monotonic()
        k = 0
        while k < len(todo):
            # A small first step, so the first page is there at once.
            names = todo[k : k + (FIRST_SHARDS if k == 0 else SHARDS_PER_COMMIT)]
            k += len(names)
            # One scan over many small files reads ahead in threads: 3x faster than a
            # read_table per file. Batches arrive in file order, tagged with their file.
            scan = pads.dataset([str(self.data / n) for n in names], format="parquet").scanner(
                columns=list(INDEX_COLUMNS), fragment_readahead=16)
            batch = {n: {c: [] for c in INDEX_COLUMNS} for n in names}
            for tagged in scan.scan_batches():
                cols = batch[Path(tagged.fragment.path).name]
                for key, values in tagged.record_batch.to_pydict().items():
                    cols[key] += values
            con.execute("BEGIN IMMEDIATE")
            try:
                for name, cols in batch.items():
                    # Another process may have indexed it meanwhile.
                    if con.execute("INSERT OR IGNORE INTO shards VALUES (?, ?)",
                                   (name, len(cols["id"]))).rowcount == 0:
                        continue
                    rows = [(cid, cid, cap or "", _labels(lab), score, None if acc is None else int(acc),
                             name, r)
                            for r, (cid, cap, lab, score, acc) in enumerate(zip(
                                cols["id"], cols["caption"], cols["labels"], cols["check_score"],
                                cols["accepted"], strict=True))]
                    added += con.executemany(
                        "INSERT OR IGNORE INTO items (item, clip, caption, labels, score, accepted, shard,"
                        " row) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows).rowcount
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            if self._stop.is_set() or (limit_s is not None and time.monotonic() - start > limit_s):
                break
        return added

    def _signature(self) -> str:
        files = [self.data] if self.data.is_file() else sorted(p for p in self.data.rglob("*") if p.is_file())
        return json.dumps([[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files[:10000]])

    def _index_records(self) -> int:
        from sonicaps.formats.readers import Report, read_records

        con = self.con
        sig = self._signature()
        row = con.execute("SELECT value FROM meta WHERE key = 'signature'").fetchone()
        if row is not None and row[0] == sig:
            return 0
        report = Report()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM items")
            added, batch = 0, []
            for rec in read_records(self.data, self.fmt, report=report):
                for k, caption in enumerate(rec.captions):
                    item = rec.id if len(rec.captions) == 1 else f"{rec.id}#{k + 1}"
                    score = rec.extra.get("check_score")
                    accepted = rec.extra.get("accepted")
                    batch.append((item, rec.id, caption or "", _labels(rec.labels), score,
                                  None if accepted is None else int(accepted),
                                  json.dumps(rec.to_dict(), ensure_ascii=False, default=str)))
                if len(batch) >= RECORDS_PER_COMMIT:
                    added += self._insert_records(batch)
                    batch = []
            added += self._insert_records(batch)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('signature', ?)", (sig,))
            con.execute("INSERT OR REPLACE INTO meta VALUES ('skipped', ?)",
                        (json.dumps(report.skipped[:100]),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return added

    def _insert_records(self, batch: list[tuple]) -> int:
        return self.con.executemany(
            "INSERT OR IGNORE INTO items (item, clip, caption, labels, score, accepted, record)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)", batch).rowcount

    # --- queries ----------------------------------------------------------------------

    def count(self) -> int:
        return self.con.execute("SELECT count(*) FROM items").fetchone()[0]

    def progress(self, reviewer: str) -> dict[str, Any]:
        con = self.con
        reviewed = con.execute("SELECT count(DISTINCT item) FROM reviews WHERE reviewer = ?",
                               (reviewer,)).fetchone()[0]
        shards = con.execute("SELECT count(*) FROM shards").fetchone()[0] if self.pipeline else None
        return {"items": self.count(), "reviewed": reviewed, "indexing": self.indexing,
                "shards_indexed": shards, "index_error": self.index_error}

    def _where(self, filters: Filters, reviewer: str) -> tuple[str, list]:
        sql, args = [], []
        latest = ("(SELECT action FROM reviews r WHERE r.item = i.item AND r.reviewer = ?"
                  " ORDER BY r.id DESC LIMIT 1)")
        if filters.status == "unreviewed":
            sql.append(f"{latest} IS NULL")
            args.append(reviewer)
        elif filters.status == "reviewed":
            sql.append(f"{latest} IS NOT NULL")
            args.append(reviewer)
        elif filters.status is not None:
            sql.append(f"{latest} = ?")
            args += [reviewer, filters.status]
        if filters.label:
            sql.append("i.labels LIKE ? ESCAPE '\\'")
            escaped = filters.label.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(f"%|{escaped}|%")
        if filters.min_score is not None:
            sql.append("i.score >= ?")
            args.append(filters.min_score)
        if filters.max_score is not None:
            sql.append("i.score <= ?")
            args.append(filters.max_score)
        return (" AND ".join(sql) or "1"), args

    def page(self, filters: Filters, reviewer: str, *, after: int = 0, limit: int = 50,
             before: int | None = None) -> list[dict[str, Any]]:
        """Items after position `after` (or the `limit` before `before`), in order."""
        where, args = self._where(filters, reviewer)
        if before is not None:
            rows = self.con.execute(
                f"SELECT * FROM items i WHERE i.pos < ? AND {where} ORDER BY i.pos DESC LIMIT ?",
                [before, *args, limit]).fetchall()[::-1]
        else:
            rows = self.con.execute(
                f"SELECT * FROM items i WHERE i.pos > ? AND {where} ORDER BY i.pos LIMIT ?",
                [after, *args, limit]).fetchall()
        latest = self.latest_reviews([r["item"] for r in rows], reviewer)
        return [{**_summary(r), "review": latest.get(r["item"])} for r in rows]

    def latest_reviews(self, items: list[str], reviewer: str) -> dict[str, dict[str, Any]]:
        if not items:
            return {}
        marks = ",".join("?" * len(items))
        rows = self.con.execute(
            f"SELECT * FROM reviews WHERE id IN (SELECT max(id) FROM reviews WHERE reviewer = ? "
            f"AND item IN ({marks}) GROUP BY item)", [reviewer, *items]).fetchall()
        return {r["item"]: dict(r) for r in rows}

    def item(self, pos: int) -> dict[str, Any] | None:
        row = self.con.execute("SELECT * FROM items WHERE pos = ?", (pos,)).fetchone()
        return None if row is None else dict(row)

    def detail(self, pos: int, reviewer: str) -> dict[str, Any] | None:
        """Everything the page shows for one item."""
        row = self.item(pos)
        if row is None:
            return None
        out = _summary(row)
        if row["shard"] is not None:
            full = self._shard_row(row["shard"], row["row"])
            evidence = json.loads(full.get("evidence") or "{}")
            out.update(
                qa=[{"question": full[f"question_{k}"], "answer": full[f"answer_{k}"]} for k in (1, 2, 3)],
                detections=evidence.get("labels") or [[lab, None] for lab in full.get("labels") or []],
                check_rule=full.get("check_rule"), label_score=_number(full.get("label_score")),
                start_s=full.get("start_s"), end_s=full.get("end_s"), source=full.get("source"),
                writer=full.get("writer"), asker=full.get("asker"), attempts=full.get("attempts"))
        else:
            rec = json.loads(row["record"])
            qa = rec.get("qa") or {}
            out.update(
                qa=[{"question": qa.get(f"question_{k}", ""), "answer": qa.get(f"answer_{k}", "")}
                    for k in (1, 2, 3) if qa.get(f"answer_{k}")],
                detections=[[lab, None] for lab in rec.get("labels") or []],
                start_s=rec.get("start_s"), end_s=rec.get("end_s"), source=rec.get("audio"),
                other_captions=[c for c in rec["captions"] if c != row["caption"]])
        out["review"] = self.latest_reviews([row["item"]], reviewer).get(row["item"])
        return out

    def output_row(self, pos: int) -> dict[str, Any]:
        """The full pipeline output row of an item (answers, evidence, scores); a
        LookupError for an item of another dataset format."""
        row = self.item(pos)
        if row is None or row["shard"] is None:
            raise LookupError(f"no pipeline output row at position {pos}")
        return self._shard_row(row["shard"], row["row"])

    def _shard_row(self, shard: str, row: int) -> dict[str, Any]:
        import pyarrow.parquet as pq

        f = pq.ParquetFile(self.data / shard)
        meta = f.metadata
        for g in range(meta.num_row_groups):  # read only the row group holding the row
            n = meta.row_group(g).num_rows
            if row < n:
                return f.read_row_group(g).slice(row, 1).to_pylist()[0]
            row -= n
        raise IndexError(f"{shard} has no row {row}")

    def audio_span(self, pos: int) -> tuple[Path, float, float | None]:
        """(file, start s, end s) of an item's audio; raises LookupError if it has none or
        PermissionError if the file lies outside the collection's audio folders."""
        row = self.item(pos)
        if row is None:
            raise LookupError(f"no item at position {pos}")
        if row["shard"] is not None:
            full = self._shard_row(row["shard"], row["row"])
            path, start, end = full["source"], full["start_s"] or 0.0, full["end_s"]
        else:
            from sonicaps.formats.readers import _from_dict
            from sonicaps.formats.records import AudioFinder

            rec = _from_dict(json.loads(row["record"]))
            found = AudioFinder(self.audio_roots[0]).find(rec)
            if found is None:
                raise LookupError(f"{row['item']}: no audio file")
            path, start, end = str(found), 0.0, None
            if rec.extra.get("audio_is_source"):  # a span of a source file, not a cut clip
                start, end = rec.start_s or 0.0, rec.end_s
        real = Path(path).resolve()
        if self.audio_roots is not None and not any(real.is_relative_to(r) for r in self.audio_roots):
            raise PermissionError(f"{row['item']}: its audio {path} lies outside the collection")
        if not real.is_file():
            raise LookupError(f"{row['item']}: audio file {path} not found")
        return real, float(start), end


def _labels(labels: list[str] | None) -> str:
    return "|" + "|".join(labels) + "|" if labels else ""


def _number(x: Any) -> float | None:
    return None if x is None or x != x else float(x)


def _summary(row: sqlite3.Row | dict) -> dict[str, Any]:
    return {"pos": row["pos"], "item": row["item"], "clip": row["clip"], "caption": row["caption"],
            "labels": [x for x in row["labels"].split("|") if x], "score": _number(row["score"]),
            "accepted": None if row["accepted"] is None else bool(row["accepted"])}


def iter_items(collection: Collection) -> Iterator[dict[str, Any]]:
    """Every catalog item in order, a page at a time."""
    after = 0
    while True:
        rows = collection.con.execute("SELECT * FROM items WHERE pos > ? ORDER BY pos LIMIT 1000",
                                      (after,)).fetchall()
        if not rows:
            return
        for r in rows:
            yield dict(r)
        after = rows[-1]["pos"]
