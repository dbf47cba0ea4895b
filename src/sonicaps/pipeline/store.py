"""The output directory: Parquet shards of captions plus failures.jsonl.

Exactly-once under SIGKILL: every batch is committed by (1) appending its failures to
_failures.jsonl and fsyncing, then (2) writing its Parquet shard under a hidden name and
renaming it into place (atomic on POSIX), then (3) appending the failures that finish a
source (last_in_source). A re-run skips a source once a record marks it finished, so that
record is written after every other record of its batch: a kill anywhere leaves a source
either finished with all its records, or unfinished, and the re-run redoes exactly the
clips that have no record. A span of a file (a manifest row) is finished by the record of
its last clip, or by a failure recorded under its row, never by the file's other spans
(runner.pending). Readers
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
import pyarrow.fs as pafs
import pyarrow.parquet as pq

# The underscore keeps `pandas.read_parquet(OUT_DIR)` working: pyarrow skips files whose
# names start with "_" or "." when it reads a directory, and would choke on a .jsonl.
FAILURES = "_failures.jsonl"
CONFIG = "_config.json"  # the settings that made the captions (config.caption_settings)

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
    ("check_rule", pa.string()),  # label_score, threshold=<t>, uncalibrated, confidence>=<t>
    ("accepted", pa.bool_()),
    ("attempts", pa.int32()),
    ("dropped_sources", pa.string()),  # JSON: sources the check found unsupported, and why
    ("evidence", pa.string()),  # JSON: what the asker measured
    ("asker", pa.string()),
    ("writer", pa.string()),
    ("scorer", pa.string()),
    ("prompt_version", pa.string()),
    ("sonicaps_version", pa.string()),
    ("last_in_source", pa.bool_()),
    ("created_at", pa.timestamp("s", tz="UTC")),
])


def printable(text: str) -> str:
    """Text as the output can hold it: Parquet and JSON need valid UTF-8, but a Linux file
    name may be any bytes (Python hands them over as lone surrogates). Those bytes become
    `\\xNN` escapes; valid text is returned unchanged, so one function maps a path both when
    it is recorded and when a re-run looks it up."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class OutputError(OSError):
    """The output directory cannot be written (full disk, read-only, no permission)."""


class ConfigMismatch(ValueError):
    """The output holds captions made with other settings than this run's."""


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} there, {b!r} now")
    return out


_RESUME = "what was committed before is kept; fix that and run the same command again"


@dataclass
class Progress:
    """What an output directory already holds."""

    done_ids: set[str] = field(default_factory=set)
    done_sources: set[str] = field(default_factory=set)  # finished or failed whole
    # Recorded clips of sources not finished yet: all a re-run of the rest must skip.
    unfinished_ids: set[str] = field(default_factory=set)
    finished_ids: set[str] = field(default_factory=set)  # records that finish their source
    recorded: list[tuple[str, str]] = field(default_factory=list)  # (id, source) of every record
    rows: int = 0
    failures: int = 0


class Store:
    """The output directory: a local path, or a URI of any filesystem pyarrow supports
    (s3://bucket/prefix, gs://..., hdfs://...; S3 options go in the query string, e.g.
    ?endpoint_override=host:port&scheme=http, credentials in the usual environment
    variables). An object store cannot append or rename, but an upload appears whole or not
    at all, so there each shard is uploaded under its final name and each batch's failures
    go to their own `_failures-<run>-<seq>.jsonl` object, in the same order as locally."""

    def __init__(self, out_dir: str | Path) -> None:
        self.fs, self.root = _filesystem(out_dir)
        self.local = isinstance(self.fs, pafs.LocalFileSystem)
        self.dir = Path(self.root) if self.local else None
        info = self.fs.get_file_info(self.root)
        if info.type == pafs.FileType.File:
            raise NotADirectoryError(f"{out_dir} exists and is not a directory")
        try:
            self.fs.create_dir(self.root, recursive=True)
            if self.local:  # a read-only folder fails here, before any model is loaded
                probe = self.dir / f".probe-{uuid.uuid4().hex}"
                probe.touch()
                probe.unlink()
        except OSError as e:
            raise OutputError(f"output {out_dir} is not writable: {e}") from e
        for stale in self._names(".part-", ".tmp"):  # shards a killed run never renamed
            self.fs.delete_file(f"{self.root}/{stale}")
        self._run = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self._seq = 0
        self._failure_seq = 0

    def claim(self, settings: dict[str, Any], overwrite: bool = False) -> None:
        """Record this run's settings in the output, or check them against the recorded ones.
        Other settings are refused (a re-run would skip every clip the earlier run did and
        mix two pipelines' captions) unless `overwrite`, which deletes the earlier captions
        and failures. An output written before settings were recorded adopts this run's."""
        path = f"{self.root}/{CONFIG}"
        recorded = None
        if self.fs.get_file_info(path).type == pafs.FileType.File:
            recorded = json.loads(self._read(path))
        if recorded is not None and recorded.get("settings") == settings:
            return
        if recorded is not None and not overwrite:
            diff = "; ".join(_differences(recorded.get("settings", {}), settings))
            raise ConfigMismatch(
                f"{self.root} holds captions made with other settings ({diff}): write to a new output "
                f"folder, or pass --overwrite (overwrite=True) to delete them and start again")
        if overwrite:
            for name in [*self._names("part-", ".parquet"), *self._names("_failures", ".jsonl")]:
                self.fs.delete_file(f"{self.root}/{name}")
        from sonicaps import __version__

        data = json.dumps({"settings": settings, "sonicaps_version": __version__}, indent=2).encode()
        try:
            if self.local:
                tmp = self.dir / f".{CONFIG}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, self.dir / CONFIG)
            else:
                with self.fs.open_output_stream(path) as f:
                    f.write(data)
        except OSError as e:
            raise OutputError(f"cannot write to the output {self.root}: {e}") from e

    def _names(self, prefix: str, suffix: str = "") -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.File
                      and i.base_name.startswith(prefix) and i.base_name.endswith(suffix))

    @property
    def failures_path(self) -> Path:
        """The local failures file (on object stores: `_failures-*.jsonl` objects)."""
        if self.dir is None:
            raise ValueError("a remote store keeps its failures in _failures-*.jsonl objects")
        return self.dir / FAILURES

    def shards(self) -> list[str]:
        return [f"{self.root}/{name}" for name in self._names("part-", ".parquet")]

    def load_progress(self) -> Progress:
        prog = Progress()
        recorded: list[tuple[str, str]] = []  # (id, source)
        for shard in self.shards():
            t = pq.read_table(shard, columns=["id", "source", "last_in_source"], filesystem=self.fs)
            ids, sources = t.column("id").to_pylist(), t.column("source").to_pylist()
            prog.rows += len(ids)
            recorded += zip(ids, sources, strict=True)
            for cid, src, last in zip(ids, sources, t.column("last_in_source").to_pylist(), strict=True):
                if last:
                    prog.done_sources.add(src)
                    prog.finished_ids.add(cid)
        for rec in self.read_failures():
            prog.failures += 1
            if rec.get("id"):
                recorded.append((rec["id"], rec["source"]))
                if rec.get("last_in_source"):
                    prog.finished_ids.add(rec["id"])
            if rec.get("last_in_source") or not rec.get("id"):
                prog.done_sources.add(rec["source"])
        prog.done_ids = {cid for cid, _ in recorded}
        prog.unfinished_ids = {cid for cid, src in recorded if src not in prog.done_sources}
        prog.recorded = recorded
        return prog

    def read_failures(self) -> list[dict[str, Any]]:
        """Failure records; a torn last line (a kill mid-write) is cut off the local file."""
        if not self.local:
            data = b"".join(self._read(f"{self.root}/{name}") for name in self._names("_failures-", ".jsonl"))
            return [json.loads(line) for line in data.splitlines() if line.strip()]
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

    def _read(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    def commit(self, rows: list[dict[str, Any]], failures: list[dict[str, Any]]) -> None:
        try:
            self._append_failures([f for f in failures if not f["last_in_source"]])
            self._write_shard(rows)
            self._append_failures([f for f in failures if f["last_in_source"]])
        except OSError as e:  # a full disk, a folder made read-only mid-run
            raise OutputError(f"cannot write to the output {self.root}: {e}; {_RESUME}") from e

    def _append_failures(self, failures: list[dict[str, Any]]) -> None:
        if not failures:
            return
        data = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in failures).encode()
        if not self.local:
            name = f"_failures-{self._run}-{self._failure_seq:06d}.jsonl"
            self._failure_seq += 1
            with self.fs.open_output_stream(f"{self.root}/{name}") as f:
                f.write(data)
            return
        with open(self.failures_path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    def _write_shard(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        name = f"part-{self._run}-{self._seq:06d}.parquet"
        self._seq += 1
        if not self.local:
            pq.write_table(table, f"{self.root}/{name}", compression="zstd", filesystem=self.fs)
            return
        tmp = self.dir / f".{name}.tmp"
        pq.write_table(table, tmp, compression="zstd")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / name)


def _filesystem(out_dir: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path inside it) for a local path or a filesystem URI."""
    text = str(out_dir)
    if "://" not in text:
        return pafs.LocalFileSystem(), str(Path(text).absolute())
    fs, path = pafs.FileSystem.from_uri(text)
    return fs, path.rstrip("/")
