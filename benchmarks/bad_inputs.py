"""Bad input beside good input, through the real command line: every kind must be recorded,
handled or refused with a clear error; none may crash the run or come out silently wrong.

    .venv/bin/python benchmarks/bad_inputs.py [--hours 2] [--keep DIR]

Builds, in a temporary folder, short synthetic good files (tones, noise, chirps as
wav/flac/ogg/mp3) and more than 40 kinds of bad input (broken files, odd but valid audio,
awkward file names, links, a file deleted mid-run, broken CSV/Parquet/AudioSet manifests,
a 2-hour file, a full disk, a read-only output folder), and runs
`sonicaps caption INPUTS -o OUT --quiet` with the default built-in backends on them.

Each kind has the outcome it should have, decided here beside it:
  recorded  a failure record in OUT/_failures.jsonl whose message names the file and what is
            wrong (clips that decoded before the damage may be kept);
  handled   captioned correctly (valid audio in an unusual form), with the right ids/spans;
  refused   a manifest (or output) that is unusable as a whole stops the run up front (or at
            the failing write) with exit 2 and a one-line `sonicaps: error:` naming the cause:
            nothing can be captioned from it, and a silent partial run would hide the mistake;
and what happened is classified as one of those or as
  crashed         the run died (traceback / unexplained non-zero exit) or good files were lost;
  silently wrong  a clip captioned from garbage, a wrong span, a bad row dropped with no record.

Prints one line per kind and the totals; every good file must be captioned exactly once.
Exits 1 if any kind is not as expected. The 2-hour file (default settings, its own run)
prints the peak RSS of the caption process beside that of a 1-hour and a 1-minute file:
the pipeline streams 10-s clips, so the 2-hour peak must be within 50 MB of the 1-hour
one (the models' bounded caches fill in both; the 1-minute run shows their size). The full
disk is a small tmpfs when this runs as root (mount), else RLIMIT_FSIZE on the child
(writes fail with EFBIG); the read-only output is a read-only bind mount as root (root
ignores chmod), else chmod 555.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import soundfile as sf

SR = 16_000
# Peak RSS may grow this much from the half-length file to the long one. Decoding the other
# hour whole would take 230 MB of float32; the bounded caches are full in both runs.
RSS_FLAT_MB = 50.0


# ---------------------------------------------------------------- synthetic audio

def tone(seconds: float, freq: float = 440.0, sr: int = SR, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


def noise(seconds: float, seed: int = 0, sr: int = SR) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * sr))).astype(np.float32)


def chirp(seconds: float, f0: float = 200.0, f1: float = 4000.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * seconds)))).astype(np.float32)


def beeps(seconds: float, sr: int = SR) -> np.ndarray:
    x = tone(seconds, 880.0, sr)
    x[(np.arange(len(x)) // (sr // 4)) % 2 == 1] = 0.0
    return x


GOOD_MAKERS = [("tone", lambda s: tone(s, 440.0)), ("noise", noise), ("chirp", chirp),
               ("beeps", beeps), ("low_tone", lambda s: tone(s, 150.0))]


def write_good(d: Path, n: int, prefix: str = "good", seconds: float = 4.0) -> list[Path]:
    """n short good files in rotating formats and sounds."""
    out = []
    for k in range(n):
        name, make = GOOD_MAKERS[k % len(GOOD_MAKERS)]
        ext = ("wav", "flac", "ogg", "mp3")[k % 4]
        p = d / f"{prefix}{k:02d}_{name}.{ext}"
        sf.write(p, make(seconds), SR)
        out.append(p)
    return out


def cut_in_half(src: Path, dst: Path) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


# ---------------------------------------------------------------- running the CLI

def cli() -> list[str]:
    exe = Path(sys.executable).with_name("sonicaps")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sonicaps.cli"]


@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    max_rss_mb: float
    seconds: float
    out: Path
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    fails: list[dict] = field(default_factory=list)

    @property
    def clear_error(self) -> bool:
        """Exit 2 with a one-line `sonicaps: error:` and no traceback."""
        return self.rc == 2 and "sonicaps: error:" in self.stderr and "Traceback" not in self.stderr

    @property
    def crashed(self) -> bool:
        return self.rc != 0 and not self.clear_error

    def error_line(self) -> str:
        lines = [x for x in self.stderr.splitlines() if x.strip()]
        return lines[-1] if lines else f"exit {self.rc}"


def read_out(out: Path) -> tuple[pd.DataFrame, list[dict]]:
    shards = sorted(out.glob("part-*.parquet")) if out.is_dir() else []
    rows = (pd.concat([pd.read_parquet(s) for s in shards], ignore_index=True) if shards
            else pd.DataFrame(columns=["id", "source", "start_s", "end_s", "caption"]))
    fpath = out / "_failures.jsonl"
    fails = [json.loads(x) for x in fpath.read_text(encoding="utf-8").splitlines() if x.strip()] \
        if fpath.exists() else []
    return rows, fails


def caption(inputs: list[str | Path], out: Path, *extra: str, during: Callable[[], None] | None = None,
            preexec: Callable[[], None] | None = None, timeout: float = 1200) -> Run:
    """Run `sonicaps caption` as a child; return its exit, output and peak RSS."""
    cmd = [*cli(), "caption", *map(str, inputs), "-o", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, preexec_fn=preexec)
        if during is not None:
            during()
        deadline = time.time() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        so.seek(0)
        se.seek(0)
        stdout, stderr = so.read().decode(errors="replace"), se.read().decode(errors="replace")
    run = Run(proc.returncode, stdout, stderr, usage.ru_maxrss / 1024, time.perf_counter() - t0, out)
    run.rows, run.fails = read_out(out)
    return run


def shown(path: str | Path) -> str:
    """A path as the output records it: undecodable bytes of a name as \\xNN escapes."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


# ---------------------------------------------------------------- outcomes

@dataclass
class Result:
    kind: str
    expected: str
    observed: str
    reason: str

    @property
    def ok(self) -> bool:
        return self.observed == self.expected


def observe(run: Run, path: str | Path, *, keyword: str | tuple[str, ...] = (), clips: int | None = None,
            span: tuple[float, float] | None = None, kept_ok: bool = False,
            check_rows: Callable[[pd.DataFrame], str | None] | None = None) -> tuple[str, str]:
    """Classify what a run did with one source. `keyword`: words one of which a failure
    message must hold to be a clear reason (besides the file's name). `clips`/`span`: what a
    handled file must yield. `kept_ok`: clips decoded before the damage may be kept."""
    if run.crashed:
        return "crashed", run.error_line()[:90]
    src = shown(path)
    rows = run.rows[run.rows["source"] == src]
    fails = [f for f in run.fails if f["source"] == src]
    keywords = (keyword,) if isinstance(keyword, str) else keyword
    if fails:
        msg = " | ".join(f["message"] for f in fails)
        name = Path(src).name
        clear = (name in msg or Path(src).stem in msg) and (
            not keywords or any(k.lower() in msg.lower() for k in keywords))
        if not clear:
            return "silently wrong", f"unclear reason: {msg}"
        if len(rows) and not kept_ok:
            return "silently wrong", f"{len(rows)} clip(s) captioned and a failure: {msg}"
        return "recorded", msg + (f" [{len(rows)} clip(s) kept]" if len(rows) else "")
    if not len(rows):
        return "silently wrong", "no row and no failure record"
    if not rows["id"].is_unique:
        return "silently wrong", f"duplicate ids {list(rows['id'])}"
    if clips is not None and len(rows) != clips:
        return "silently wrong", f"{len(rows)} clips, expected {clips}: {list(rows['id'])}"
    if span is not None:
        got = (float(rows["start_s"].min()), float(rows["end_s"].max()))
        if abs(got[0] - span[0]) > 0.1 or abs(got[1] - span[1]) > 0.1:
            return "silently wrong", f"span {got}, expected {span}"
    if rows["caption"].str.strip().eq("").any():
        return "silently wrong", "empty caption"
    if check_rows is not None and (why := check_rows(rows)):
        return "silently wrong", why
    return "handled", f"{len(rows)} clip(s): {rows['caption'].iloc[0]}"


def good_report(runs: list[tuple[Run, list[Path], int]]) -> tuple[int, int, list[str]]:
    """Each good file of each run captioned exactly once (clip count), with no failure."""
    done, total, problems = 0, 0, []
    for run, goods, per_file in runs:
        counts = Counter(run.rows["source"]) if len(run.rows) else Counter()
        ids = Counter(run.rows["id"]) if len(run.rows) else Counter()
        dup = [i for i, c in ids.items() if c > 1]
        if dup:
            problems.append(f"{run.out.name}: duplicate ids {dup[:5]}")
        failed = {f["source"] for f in run.fails}
        for g in goods:
            total += 1
            if counts[shown(g)] == per_file and shown(g) not in failed:
                done += 1
            else:
                problems.append(f"{run.out.name}: {g.name}: {counts[shown(g)]} clips, "
                                f"{'failed' if shown(g) in failed else 'no failure'}")
    return done, total, problems


# ---------------------------------------------------------------- the campaign

def wav_header_only(path: Path, declared_s: float) -> Path:
    """A 44-byte PCM wav header declaring `declared_s` of audio, with no samples."""
    data = int(declared_s * SR) * 2
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
                     + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
                     + b"data" + struct.pack("<I", data))
    return path


def video_only_mp4(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for k in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), k * 20, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def folder_campaign(root: Path) -> tuple[list[Result], tuple[Run, list[Path], int]]:
    d = root / "folder"
    d.mkdir()
    goods = write_good(d, 8)
    b = d / "bad"
    b.mkdir()
    spare = root / "spare"
    spare.mkdir()
    kinds: list[tuple[str, str, Path, dict]] = []  # (kind, expected, path, observe options)

    def add(kind: str, expected: str, path: Path, **opts) -> None:
        kinds.append((kind, expected, path, opts))

    (b / "empty.wav").write_bytes(b"")
    add("empty file (0 bytes)", "recorded", b / "empty.wav", keyword="empty")
    sf.write(b / "header_only.wav", np.zeros(0, np.float32), SR)
    add("header-only wav (0 frames)", "recorded", b / "header_only.wav", keyword="no audio")
    add("wav header declaring 10 s, no data", "recorded",
        wav_header_only(b / "header_lies.wav", 10.0), keyword=("no audio", "truncated"))
    (b / "text.wav").write_text("this is a text file, not audio\n" * 40)
    add("text file named .wav", "recorded", b / "text.wav", keyword="not a decodable")
    (b / "random.wav").write_bytes(np.random.default_rng(1).bytes(50_000))
    add("random bytes named .wav", "recorded", b / "random.wav", keyword="not a decodable")
    (b / "random.mp3").write_bytes(b"ID3" + np.random.default_rng(2).bytes(50_000))
    add("ID3 tag + random bytes (.mp3)", "recorded", b / "random.mp3",
        keyword=("not a decodable", "no audio"))
    for ext in ("mp3", "flac", "ogg", "wav"):
        full = spare / f"whole.{ext}"
        sf.write(full, chirp(30.0), SR)
        add(f"truncated {ext} (first half of 30 s)", "recorded",
            cut_in_half(full, b / f"truncated.{ext}"), keyword=("truncated", "cut short"), kept_ok=True)
    x = noise(5.0)
    x[8000:9000] = np.nan
    sf.write(b / "nan.wav", x, SR, subtype="FLOAT")
    add("NaN samples (float wav)", "recorded", b / "nan.wav", keyword="non-finite")
    x = noise(5.0)
    x[100] = np.inf
    x[200] = -np.inf
    sf.write(b / "inf.wav", x, SR, subtype="FLOAT")
    add("Inf samples (float wav)", "recorded", b / "inf.wav", keyword="non-finite")
    sf.write(b / "short_50ms.wav", tone(0.05), SR)
    add("50-ms clip", "handled", b / "short_50ms.wav", clips=1, span=(0.0, 0.05))
    sf.write(b / "eight_channels.wav", tone(4.0, 300.0, channels=8), SR)
    add("8 channels", "handled", b / "eight_channels.wav", clips=1, span=(0.0, 4.0))
    sf.write(b / "telephone_8k.wav", tone(4.0, 300.0, sr=8000), 8000)
    add("8 kHz", "handled", b / "telephone_8k.wav", clips=1, span=(0.0, 4.0))
    sf.write(b / "hires_96k_24bit.wav", chirp(4.0, sr=96_000), 96_000, subtype="PCM_24")
    add("96 kHz 24-bit", "handled", b / "hires_96k_24bit.wav", clips=1, span=(0.0, 4.0))
    sf.write(b / "silence.wav", np.zeros(4 * SR, np.float32), SR)
    add("digital silence", "handled", b / "silence.wav", clips=1, span=(0.0, 4.0))
    sf.write(b / "long_25s.flac", chirp(25.0), SR)
    add("25-s file (3 clips, 5-s tail)", "handled", b / "long_25s.flac", clips=3, span=(0.0, 25.0))
    sf.write(b / "tail_20_4s.wav", chirp(20.4), SR)
    add("20.4-s file (0.4-s tail dropped)", "handled", b / "tail_20_4s.wav", clips=2, span=(0.0, 20.0))
    sf.write(spare / "flac_inside.flac", tone(4.0, 600.0), SR)
    shutil.copy(spare / "flac_inside.flac", b / "flac_named.mp3")
    add("FLAC data named .mp3", "handled", b / "flac_named.mp3", clips=1, span=(0.0, 4.0))
    add("video-only mp4 (no audio stream)", "recorded", video_only_mp4(b / "video_only.mp4"),
        keyword="no audio stream")
    (b / "x.wav").mkdir()
    sf.write(b / "x.wav" / "inside.wav", tone(4.0, 700.0), SR)
    add("directory named x.wav (walked as a folder)", "handled", b / "x.wav" / "inside.wav",
        clips=1, check_rows=lambda r: None if r["id"].iloc[0] == "bad__x.wav__inside_0_4"
        else f"id {r['id'].iloc[0]}")
    (b / "loop.wav").symlink_to("loop.wav")
    add("symlink loop (loop.wav -> loop.wav)", "recorded", b / "loop.wav", keyword="symlink loop")
    (b / "dangling.wav").symlink_to("gone_away.wav")
    add("dangling symlink", "recorded", b / "dangling.wav", keyword=("broken symlink", "gone_away"))
    (b / "cycle").mkdir()
    sf.write(b / "cycle" / "in_cycle.wav", tone(4.0, 500.0), SR)
    (b / "cycle" / "back").symlink_to("..", target_is_directory=True)
    add("directory symlink cycle (walked once)", "handled", b / "cycle" / "in_cycle.wav", clips=1)
    raw = os.path.join(os.fsencode(b), b"latin1_caf\xe9_\xff.wav")
    sf.write(spare / "latin.wav", tone(4.0, 350.0), SR)
    shutil.copy(spare / "latin.wav", raw)
    add("non-UTF-8 file name (bytes)", "handled", Path(os.fsdecode(raw)), clips=1,
        check_rows=lambda r: None if r["id"].iloc[0] == "bad__latin1_caf\\xe9_\\xff_0_4"
        else f"id {r['id'].iloc[0]!r}")
    uni = b / "café_日本語_🎵_שלום.flac"
    sf.write(uni, tone(4.0, 550.0), SR)
    add("unicode file name (CJK, emoji, RTL)", "handled", uni, clips=1)
    nfd = b / unicodedata.normalize("NFD", "crème_brûlée.ogg")
    sf.write(nfd, tone(4.0, 650.0), SR)
    add("NFD-normalised unicode name", "handled", nfd, clips=1)
    missing = root / "typo_not_there.wav"
    add("missing path on the command line", "recorded", missing, keyword="no such file")

    run = caption([d, missing], root / "out_folder")
    results = []
    for kind, expected, path, opts in kinds:
        observed, reason = observe(run, path, **opts)
        results.append(Result(kind, expected, observed, reason))
    return results, (run, goods, 1)


def deleted_campaign(root: Path) -> tuple[list[Result], tuple[Run, list[Path], int]]:
    """40 files; the last (in the sorted order the run follows) is deleted once the first
    shard is committed. With --batch-size 2 the decoders are at most ~12 files ahead."""
    d = root / "many"
    d.mkdir()
    goods = write_good(d, 39, "a", seconds=2.0)
    victim = d / "z_deleted_mid_run.wav"
    sf.write(victim, tone(2.0), SR)
    out = root / "out_deleted"
    when = {}

    def delete_after_first_shard() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not list(out.glob("part-*.parquet")):
            time.sleep(0.02)
        victim.unlink()
        when["shards"] = len(list(out.glob("part-*.parquet")))

    run = caption([d], out, "--batch-size", "2", during=delete_after_first_shard)
    observed, reason = observe(run, victim, keyword="no such file")
    if observed != "recorded" and when.get("shards", 0) == 0:
        reason = "inconclusive: deleted before the first shard"
    return [Result("file deleted mid-run", "recorded", observed, reason)], (run, goods, 1)


def write_csv(path: Path, rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f).writerows(rows)
    return path


def manifest_campaign(root: Path) -> tuple[list[Result], list[tuple[Run, list[Path], int]]]:
    m = root / "manifest"
    m.mkdir()
    goods = write_good(m, 4, "row")
    sf.write(m / "long.wav", chirp(12.0), SR)
    sf.write(m / "other.wav", tone(4.0, 330.0), SR)
    (m / "adir").mkdir()
    kinds: list[tuple[str, str, str, dict]] = []  # kind, expected, id, options
    header = ["path", "id", "start_s", "end_s", "labels"]
    rows = [[g.name, f"good{k}", "", "", ""] for k, g in enumerate(goods)]

    def add(kind, expected, path, start, end, cid, **opts):
        rows.append([path, opts.pop("csv_id", cid), start, end, opts.pop("labels", "")])
        kinds.append((kind, expected, cid, opts))

    add("row: span of a file (2-7 s)", "handled", "long.wav", "2", "7", "span_ok", span=(2.0, 7.0),
        clips=1)
    add("row: labels given (;-separated)", "handled", "other.wav", "0", "4", "labelled",
        labels="Sine wave; Beep, bleep",
        check_rows=lambda r: None if list(r["labels"].iloc[0]) == ["Sine wave", "Beep, bleep"]
        else f"labels {list(r['labels'].iloc[0])}")
    add("row: negative start_s", "recorded", "long.wav", "-3", "5", "negative", keyword="start_s")
    add("row: inverted span (end < start)", "recorded", "long.wav", "8", "3", "inverted",
        keyword="end_s")
    add("row: start beyond the end of the file", "recorded", "long.wav", "100", "110", "beyond_start",
        keyword=("past the end", "beyond"))
    add("row: end beyond the end of the file", "recorded", "long.wav", "5", "60", "beyond_end",
        keyword=("past the end", "beyond", "ends at"), kept_ok=True)
    add("row: non-numeric start_s", "recorded", "long.wav", "abc", "5", "nonnumeric",
        keyword="not a number")
    add("row: NaN / inf times", "recorded", "long.wav", "nan", "inf", "nan_times",
        keyword=("not a finite", "not a number"))
    add("row: missing file", "recorded", "no_such_file.wav", "", "", "missing", keyword="no such file")
    add("row: a directory as path", "recorded", "adir", "", "", "dir_row", keyword="directory")
    add("row: duplicate id (another file)", "recorded", "other.wav", "", "", "good0",
        keyword="duplicate")
    add("row: exact duplicate row", "recorded", "long.wav", "2", "7", "span_ok", keyword="duplicate")
    add("row: file and span without an id", "handled", "long.wav", "8", "11", "long_8_11", csv_id="",
        span=(8.0, 11.0), clips=1)
    add("row: same file and span again, no id", "recorded", "long.wav", "8", "11", "long_8_11",
        csv_id="", keyword="same file and span")
    rows.append(["", "empty_path", "", "", ""])
    kinds.append(("row: empty path cell", "recorded", "empty_path", {"keyword": "empty"}))
    man = write_csv(m / "manifest.csv", [header, *rows])
    run = caption([man], root / "out_manifest")

    results = []
    firsts: dict[str, int] = {}
    for n, (kind, expected, cid, opts) in enumerate(kinds):
        line = len(goods) + n + 2  # csv line of this row (header is line 1)
        # A row's records: its id, or a record naming its line.
        rows_of = run.rows[run.rows["id"].astype(str).str.startswith(cid)] if cid else run.rows[:0]
        path = rows[len(goods) + n][0]
        unique = path and sum(r[0] == path for r in rows) == 1
        fails = [f for f in run.fails if f.get("id") == cid or f"row {line}:" in f.get("message", "")
                 or (unique and f["source"] == shown(m / path))]
        if cid in firsts or cid.startswith("good"):  # a duplicate: the first holder keeps its row
            rows_of = rows_of[:0]
        firsts.setdefault(cid, n)
        results.append(Result(kind, expected, *classify_row(run, rows_of, fails, line, **opts)))

    # Manifests broken as a whole: refused up front (own runs, each beside a good file).
    good_runs: list[tuple[Run, list[Path], int]] = [(run, goods, 1)]

    def whole(kind: str, expected: str, manifest: Path, keyword: str, **more) -> None:
        g = write_good(m, 1, f"beside_{manifest.stem}")
        r = caption([manifest, *g], root / f"out_{manifest.stem}")
        if expected == "refused":
            ok = r.clear_error and keyword.lower() in r.stderr.lower() and manifest.name in r.stderr
            observed = "refused" if ok else ("crashed" if r.crashed else "silently wrong")
            results.append(Result(kind, expected, observed, r.error_line() if r.rc else "ran"))
        else:
            results.append(Result(kind, expected, *more["check"](r)))
            good_runs.append((r, g, 1))

    write_csv(m / "no_path_column.csv", [["file", "start_s"], ["row00_tone.wav", "0"]])
    whole("manifest without a path column", "refused", m / "no_path_column.csv", "path")
    (m / "empty.csv").write_bytes(b"")
    whole("empty CSV (0 bytes)", "refused", m / "empty.csv", "empty")
    (m / "latin1.csv").write_bytes("path,labels\nrow00_tone.wav,Caf\xe9\n".encode("latin-1"))
    whole("CSV in Latin-1, not UTF-8", "refused", m / "latin1.csv", "utf-8")
    pq.write_table(pa.table({"path": pa.array([1, 2], pa.int64())}), m / "int_paths.parquet")
    whole("Parquet: path column of integers", "refused", m / "int_paths.parquet", "path")

    write_csv(m / "header_only.csv", [header])
    whole("CSV with a header and no rows", "handled", m / "header_only.csv", "",
          check=lambda r: ("crashed", r.error_line()) if r.crashed else
          ("handled", "nothing to do; the good file beside it captioned") if r.rc == 0
          else ("silently wrong", r.error_line()))
    sf.write(m / "bom.wav", tone(4.0, 420.0), SR)
    (m / "bom.csv").write_bytes("\ufeffpath,id\nbom.wav,bom_row\n".encode())
    whole("CSV with a UTF-8 BOM (Excel)", "handled", m / "bom.csv", "",
          check=lambda r: ("crashed", r.error_line()) if r.crashed else
          ("handled", "row read") if "bom_row" in set(r.rows.get("id", [])) else
          ("silently wrong", r.error_line() if r.rc else "row not captioned"))
    sf.write(m / "typed.wav", chirp(12.0), SR)
    pq.write_table(pa.table({"path": ["typed.wav", "typed.wav"], "id": ["typed_ok", "typed_bad"],
                             "start_s": ["1.5", "soon"], "end_s": ["6", "8"]}),
                   m / "string_times.parquet")

    def typed(r: Run) -> tuple[str, str]:
        if r.crashed:
            return "crashed", r.error_line()
        ok = r.rows[r.rows["id"] == "typed_ok"]
        bad = [f for f in r.fails if "soon" in f["message"]]
        if len(ok) == 1 and abs(ok["start_s"].iloc[0] - 1.5) < 1e-6 and bad and \
                not (r.rows["id"] == "typed_bad").any():
            return "recorded", bad[0]["message"]
        return "silently wrong", f"rows {list(r.rows['id'])}, failures {[f['message'] for f in r.fails]}"
    whole("Parquet: times as strings ('1.5', 'soon')", "recorded", m / "string_times.parquet", "",
          check=typed)
    return results, good_runs


def classify_row(run: Run, rows: pd.DataFrame, fails: list[dict], line: int, *,
                 keyword: str | tuple[str, ...] = (), clips: int | None = None,
                 span: tuple[float, float] | None = None, kept_ok: bool = False,
                 check_rows: Callable[[pd.DataFrame], str | None] | None = None) -> tuple[str, str]:
    """Like `observe`, for a manifest row found by its id or line number."""
    if run.crashed:
        return "crashed", run.error_line()[:90]
    keywords = (keyword,) if isinstance(keyword, str) else keyword
    if fails:
        msg = " | ".join(f["message"] for f in fails)
        clear = not keywords or any(k.lower() in msg.lower() for k in keywords)
        if not clear:
            return "silently wrong", f"unclear reason: {msg}"
        if len(rows) and not kept_ok:
            return "silently wrong", f"captioned and a failure: {msg}"
        return "recorded", msg + (f" [{len(rows)} clip(s) kept]" if len(rows) else "")
    if not len(rows):
        return "silently wrong", "no row and no failure record"
    if clips is not None and len(rows) != clips:
        return "silently wrong", f"{len(rows)} clips: {list(rows['id'])}"
    if span is not None:
        got = (float(rows["start_s"].min()), float(rows["end_s"].max()))
        if abs(got[0] - span[0]) > 0.05 or abs(got[1] - span[1]) > 0.05:
            return "silently wrong", f"span {got}, expected {span}"
    if check_rows is not None and (why := check_rows(rows)):
        return "silently wrong", why
    return "handled", f"{len(rows)} clip(s) {rows['start_s'].min():g}-{rows['end_s'].max():g} s: " \
        f"{rows['caption'].iloc[0]}"


def audioset_campaign(root: Path) -> tuple[list[Result], tuple[Run, list[Path], int]]:
    a = root / "audioset"
    audio = a / "audio"
    audio.mkdir(parents=True)
    sf.write(audio / "-abc_DEF-12_30.000_40.000.flac", chirp(10.0), SR)  # a cut segment
    sf.write(audio / "Ywhole_video1.wav", noise(30.0), SR)  # a whole file, cut by the list
    sf.write(audio / "Ylooping.wav", tone(20.0), SR)
    text = "\n".join([
        "# Segments csv created Sun Mar  5 10:54:31 2017",
        "# num_ytids=5, num_segs=5, num_unique_labels=527, num_positive_labels=9",
        "# YTID, start_seconds, end_seconds, positive_labels",
        '-abc_DEF-12, 30.000, 40.000, "/m/09x0r,/t/dd00088"',
        'whole_video1, 10.000, 20.000, "/m/07rwj3x"',
        'not_downloaded, 0.000, 10.000, "/m/09x0r"',
        "this line is not a segment",
        'looping, 15.000, 5.000, "/m/09x0r"',
        ""])
    seg = a / "segments.csv"
    seg.write_text(text)
    run = caption([seg], root / "out_audioset", "--audio-root", str(audio))

    def by_id(cid: str) -> pd.DataFrame:
        return run.rows[run.rows["id"] == cid]

    results = []
    good = by_id("-abc_DEF-12_30_40")
    whole = by_id("whole_video1_10_20")
    if run.crashed:
        results.append(Result("AudioSet list: comments, quoted labels", "handled", "crashed",
                              run.error_line()))
    elif len(good) == 1 and len(whole) == 1 and \
            list(good["labels"].iloc[0]) and abs(whole["start_s"].iloc[0] - 10) < 1e-6 \
            and abs(whole["end_s"].iloc[0] - 20) < 1e-6:
        results.append(Result("AudioSet list: comments, quoted labels", "handled", "handled",
                              f"cut file + 10-20 s of a whole file, labels {list(good['labels'].iloc[0])}"))
    else:
        results.append(Result("AudioSet list: comments, quoted labels", "handled", "silently wrong",
                              f"rows {list(run.rows['id'])}"))
    for kind, needle, kw in [("AudioSet row: audio not downloaded", "not_downloaded", "no audio file"),
                             ("AudioSet row: malformed line", "line 7", "not 'YTID"),
                             ("AudioSet row: inverted span", "looping", "end")]:
        fails = [f for f in run.fails if needle in f["message"] or needle in (f.get("id") or "")]
        rows = run.rows[run.rows["id"].str.startswith(needle)] if len(run.rows) else run.rows
        results.append(Result(kind, "recorded", *classify_row(run, rows, fails, 0, keyword=kw)))
    return results, (run, [], 0)


def long_file(path: Path, hours: float) -> Path:
    """A long FLAC of varied 60-s blocks (chirps, noise, beeps, tones), written block by block."""
    block = np.concatenate([chirp(10.0), noise(10.0, seed=3), beeps(10.0), tone(10.0, 220.0),
                            noise(10.0, seed=4) * 0.2, chirp(10.0, 3000, 300)])
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(int(round(hours * 60))):
            f.write(block)
    return path


def two_hour_campaign(root: Path, hours: float) -> Result:
    """The long file in its own run (default settings). Its peak RSS is compared with a file
    half as long: both outgrow the models' bounded caches (YAMNet keeps 256 clips), so a
    pipeline that streams shows the same peak for both, one that accumulates twice the growth."""
    d = root / "long"
    d.mkdir()
    minute = caption([long_file(d / "one_minute.flac", 1 / 60)], root / "out_minute")
    half = caption([long_file(d / "half.flac", hours / 2)], root / "out_half")
    run = caption([long_file(d / "long.flac", hours)], root / "out_long")
    want = int(round(hours * 3600 / 10))
    kind = f"{hours:g}-hour file (own run, default settings)"
    print(f"  peak RSS of the caption process: 1-minute file {minute.max_rss_mb:.0f} MB "
          f"({minute.seconds:.0f} s), {hours / 2:g}-hour {half.max_rss_mb:.0f} MB ({half.seconds:.0f} s), "
          f"{hours:g}-hour {run.max_rss_mb:.0f} MB ({run.seconds:.0f} s)")
    if any(r.crashed for r in (run, half, minute)):
        why = next(r.error_line() for r in (run, half, minute) if r.crashed)
        return Result(kind, "handled", "crashed", why)
    if len(run.rows) != want or not run.rows["id"].is_unique or run.fails:
        return Result(kind, "handled", "silently wrong",
                      f"{len(run.rows)} clips of {want}, failures {[f['message'] for f in run.fails][:2]}")
    grow = run.max_rss_mb - half.max_rss_mb
    if grow > RSS_FLAT_MB:
        return Result(kind, "handled", "silently wrong",
                      f"peak RSS grew {grow:.0f} MB from {hours / 2:g} h to {hours:g} h "
                      f"(> {RSS_FLAT_MB:.0f})")
    return Result(kind, "handled", "handled", f"{want} clips; peak RSS {run.max_rss_mb:.0f} MB, "
                  f"{hours / 2:g} h: {half.max_rss_mb:.0f} MB ({grow:+.0f} MB), "
                  f"1 min: {minute.max_rss_mb:.0f} MB")


def _mount(*args: str) -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None and \
        subprocess.run(["mount", *args], capture_output=True).returncode == 0


def output_campaign(root: Path) -> tuple[list[Result], list[tuple[Run, list[Path], int]]]:
    """A full disk and a read-only output folder: a clear error, nothing committed lost, and
    the same command after the space (or the permission) is back finishes the rest once."""
    d = root / "outputs"
    d.mkdir()
    goods = write_good(d, 12, "disk", seconds=3.0)
    ref = caption([d], root / "out_reference", "--batch-size", "2")
    need = sum(p.stat().st_blocks * 512 for p in ref.out.iterdir())
    results, good_runs = [], [(ref, goods, 1)]

    # Full disk.
    mnt = root / "full_disk"
    mnt.mkdir()
    preexec = None
    if _mount("-t", "tmpfs", "-o", f"size={max(8192, need // 2)}", "tmpfs", str(mnt)):
        how = f"tmpfs of {max(8192, need // 2) // 1024} KiB (output needs {need // 1024} KiB)"
    else:
        limit = max(1, need // 12 // 2)

        def preexec() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        how = f"RLIMIT_FSIZE={limit} B (no mount: not root)"
    out = mnt / "out"
    try:
        first = caption([d], out, "--batch-size", "2", preexec=preexec)
        kept, _ = read_out(out)
        if _mount("-o", "remount,size=64m", str(mnt)):
            preexec = None
        second = caption([d], out, "--batch-size", "2")
        results.append(_output_result(f"full disk ({how})", first, kept, second, ref))
        good_runs.append((second, goods, 1))
    finally:
        if os.path.ismount(mnt):
            subprocess.run(["umount", str(mnt)], check=False)

    # Read-only output folder, after a first run committed half of the inputs.
    out = root / "out_readonly"
    caption(sorted(d.glob("disk*"))[:6], out, "--batch-size", "2")  # the same sources as the walk's
    before, _ = read_out(out)
    bind = _mount("--bind", str(out), str(out)) and _mount("-o", "remount,ro,bind", str(out))
    if not bind:
        subprocess.run(["umount", str(out)], capture_output=True, check=False)  # a half-made mount
        out.chmod(0o555)
    try:
        blocked = caption([d], out, "--batch-size", "2")
    finally:
        if bind:  # (os.path.ismount cannot see a bind mount of the same filesystem)
            subprocess.run(["umount", str(out)], check=False)
        out.chmod(0o755)
    after, _ = read_out(out)
    lost = set(before["id"]) - set(after["id"])
    second = caption([d], out, "--batch-size", "2")
    how = "read-only bind mount" if bind else "chmod 555"
    res = _output_result(f"read-only output folder ({how})", blocked, after, second, ref)
    if lost:
        res = Result(res.kind, res.expected, "crashed", f"lost {sorted(lost)}")
    results.append(res)
    good_runs.append((second, goods, 1))
    return results, good_runs


def _output_result(kind: str, failed: Run, kept: pd.DataFrame, resumed: Run, ref: Run) -> Result:
    """refused = clear error + what was committed stays + the re-run ends with exactly the
    reference's clips."""
    want = sorted(ref.rows["id"])
    final = sorted(resumed.rows["id"])
    if failed.rc == 0:
        return Result(kind, "refused", "silently wrong", "the run reported success")
    if not failed.clear_error:
        return Result(kind, "refused", "crashed", failed.error_line()[:120])
    if not set(kept["id"]) <= set(final) or final != want or resumed.rc != 0:
        return Result(kind, "refused", "crashed",
                      f"after re-run {len(final)} clips of {len(want)} (exit {resumed.rc})")
    return Result(kind, "refused", "refused", f"{failed.error_line()} [{len(kept)} kept, re-run "
                  f"finished {len(final) - len(kept)}]")


STEPS = (folder_campaign, deleted_campaign, manifest_campaign, audioset_campaign, output_campaign)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=2.0, help="length of the long file")
    ap.add_argument("--keep", help="build and keep the inputs and outputs in this folder")
    ap.add_argument("--only", nargs="*", choices=[s.__name__.split("_")[0] for s in STEPS] + ["long"],
                    help="run only these parts (default: all)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    root = Path(args.keep or tempfile.mkdtemp(prefix="bad_inputs_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        results: list[Result] = []
        good_runs: list[tuple[Run, list[Path], int]] = []
        for step in STEPS:
            if args.only and step.__name__.split("_")[0] not in args.only:
                continue
            got, goods = step(root)
            results += got
            good_runs += goods if isinstance(goods, list) else [goods]
            print(f"  {step.__name__}: done at {time.perf_counter() - t0:.0f} s", flush=True)
        if not args.only or "long" in args.only:
            results.append(two_hour_campaign(root, args.hours))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    width = max(len(r.kind) for r in results)
    print(f"\n{'kind':<{width}}  {'expected':<9} {'observed':<15} ok    reason")
    for r in results:
        reason = r.reason.replace(str(root), "…").replace("\n", " ")
        print(f"{r.kind:<{width}}  {r.expected:<9} {r.observed:<15} {'OK  ' if r.ok else 'FAIL'}  "
              f"{reason[:110]}")
    count = Counter(r.observed for r in results)
    done, total, problems = good_report(good_runs)
    print(f"\nkinds tried {len(results)}: recorded {count['recorded']}, handled {count['handled']}, "
          f"refused {count['refused']}, crashed {count['crashed']}, silently wrong "
          f"{count['silently wrong']}; as expected {sum(r.ok for r in results)}/{len(results)}")
    print(f"good files captioned exactly once: {done}/{total}")
    for p in problems:
        print(f"  good file problem: {p}")
    print(f"wall time {time.perf_counter() - t0:.0f} s")
    broken = count["crashed"] + count["silently wrong"] + (total - done) + sum(not r.ok for r in results)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
