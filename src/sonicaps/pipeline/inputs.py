"""What to caption: files, folders, CSV/Parquet manifests and AudioSet segment lists.

Inputs become `Source`s (a file, optionally a time span and known labels), listed
lazily; each source is decoded into `Clip`s only when a worker reaches it.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow as pa

from sonicaps.audio import AUDIO_EXTENSIONS, stream_segments
from sonicaps.clip import Clip
from sonicaps.pipeline.store import printable


class ManifestError(ValueError):
    """A manifest that cannot be read at all (missing file, missing column)."""


@dataclass(frozen=True)
class Source:
    path: str
    key: str  # id prefix: relative path without extension, "/" -> "__"
    start_s: float = 0.0
    end_s: float | None = None
    labels: tuple[str, ...] | None = None
    clip_id: str | None = None  # a manifest may give the id of a single-clip source
    error: str | None = None  # a row that could not be turned into a source
    origin: str | None = None  # "<manifest> row <n>": named in failure records


def _fmt(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".")


def clip_id(key: str, start_s: float, end_s: float) -> str:
    return f"{key}_{_fmt(start_s)}_{_fmt(end_s)}"


def _key(path: Path, root: Path) -> str:
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    return printable(str(rel.with_suffix("")).replace(os.sep, "__"))


def iter_folder(root: Path) -> Iterator[Source]:
    """Audio files under root, recursively, in a stable (sorted) order."""
    seen: set[str] = set()  # real paths already walked: symlink cycles end here
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        seen.add(os.path.realpath(dirpath))
        dirnames[:] = sorted(d for d in dirnames
                             if os.path.realpath(os.path.join(dirpath, d)) not in seen)
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in AUDIO_EXTENSIONS:
                yield Source(str(p), _key(p, root))


def _split_labels(value) -> tuple[str, ...] | None:
    if value is None or value != value:  # None or NaN
        return None
    if isinstance(value, list | tuple):
        items = [str(v).strip() for v in value]
    else:
        items = [v.strip() for v in str(value).split(";")]
    items = [v for v in items if v]
    return tuple(items) or None


def _manifest_rows(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        if "path" not in pf.schema_arrow.names:
            raise ManifestError(f"{path}: manifest needs a 'path' column "
                                f"(found: {', '.join(pf.schema_arrow.names)})")
        kind = pf.schema_arrow.field("path").type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)):
            raise ManifestError(f"{path}: the 'path' column holds {kind}, not text (file paths)")
        for batch in pf.iter_batches(batch_size=4096):
            yield from batch.to_pylist()
        return
    # utf-8-sig: a spreadsheet's byte-order mark would otherwise become part of "path".
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                raise ManifestError(f"{path}: empty file: a manifest needs a header line with a "
                                    "'path' column")
            if "path" not in reader.fieldnames:
                raise ManifestError(f"{path}: manifest needs a 'path' column "
                                    f"(found: {', '.join(reader.fieldnames)})")
            yield from reader
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not UTF-8 text ({e.reason}: byte "
                                f"{e.object[e.start:e.start + 1]!r}); save it as UTF-8") from None


def _float(value, name: str, row: int) -> float | None:
    if value is None or value == "" or value != value:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"row {row}: {name}={value!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"row {row}: {name}={value!r} is not a finite number")
    return x


def iter_manifest(path: Path) -> Iterator[Source]:
    """Rows of a CSV/Parquet manifest: path (relative to the manifest), optional id,
    start_s, end_s and labels (';'-separated). A bad row becomes a Source with an error;
    its record's source is the row (`<manifest>:row <n>`), so it never marks the audio
    file finished for the file's other rows."""
    base = path.parent
    ids: dict[str, int] = {}  # id -> first row holding it
    spans: dict[tuple[str, float, float | None], int] = {}  # rows without an id
    for n, row in enumerate(_manifest_rows(path), start=2 if path.suffix != ".parquet" else 1):
        raw = row.get("path")
        here = f"{path}:row {n}"
        if not raw:
            yield Source(here, f"row{n}", error=f"row {n}: empty 'path'")
            continue
        p = Path(raw) if os.path.isabs(raw) else base / raw
        cid = str(row["id"]) if row.get("id") not in (None, "") else None
        try:
            start = _float(row.get("start_s"), "start_s", n) or 0.0
            end = _float(row.get("end_s"), "end_s", n)
            if start < 0:
                raise ValueError(f"row {n}: start_s ({start}) is negative")
            if end is not None and end <= start:
                raise ValueError(f"row {n}: end_s ({end}) must be after start_s ({start})")
            if cid is not None and cid in ids:  # two clips under one id: one would be lost
                raise ValueError(f"row {n}: duplicate id {cid!r} (row {ids[cid]} has it)")
            if cid is None and (str(p), start, end) in spans:
                raise ValueError(f"row {n}: same file and span as row {spans[str(p), start, end]}")
        except ValueError as e:
            yield Source(here, f"row{n}", error=f"{e} ({raw})")
            continue
        if cid is None:
            spans[str(p), start, end] = n
        else:
            ids[cid] = n
        yield Source(str(p), _key(p, base), start, end, _split_labels(row.get("labels")),
                     clip_id=cid, origin=f"{path.name} row {n}")


_AUDIOSET_LINE = re.compile(r'^\s*([^,#\s]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*"?([^"]*)"?)?')


def iter_audioset(path: Path, audio_root: Path, mid_to_name: dict[str, str] | None = None
                  ) -> Iterator[Source]:
    """AudioSet segment lists (`YTID, start_seconds, end_seconds, positive_labels`, with
    '#' comment lines), or AudioCaps caption CSVs (`youtube_id, start_time`: 10-s clips,
    one source per clip however many captions it has, named `<YTID>_<start>` as `convert`
    and `score` name them). The audio file is found under audio_root as a cut segment
    (`[Y]<YTID>_<start>_<end>.*` or `[Y]<YTID>_<start>.*`) or a whole video (`[Y]<YTID>.*`)."""
    index: dict[str, Path] = {}
    for src in iter_folder(audio_root):
        index.setdefault(Path(src.path).stem, Path(src.path))
    with open(path, encoding="utf-8-sig") as f:
        head = next((line for line in f if line.strip() and not line.lstrip().startswith("#")), "")
    if "youtube_id" in head and "start_time" in head:
        yield from _iter_audiocaps(path, audio_root, index)
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _AUDIOSET_LINE.match(line)
            if not m:
                yield Source(f"{path}:line {n}", f"line{n}",
                             error=f"line {n}: not 'YTID, start_seconds, end_seconds': {line[:80]!r}")
                continue
            ytid, start, end = m.group(1), float(m.group(2)), float(m.group(3))
            if end <= start:
                yield Source(f"{path}:line {n}", f"line{n}",
                             error=f"line {n}: end_seconds ({end:g}) must be after start_seconds "
                                   f"({start:g}) for {ytid}")
                continue
            labels = None
            if m.group(4):
                mids = [x.strip() for x in m.group(4).split(",") if x.strip()]
                labels = tuple(mid_to_name.get(x, x) for x in mids) if mid_to_name else tuple(mids)
            yield _segment(index, audio_root, ytid, start, end, labels, clip_id(ytid, start, end),
                           f"{path.name} line {n}")


def _iter_audiocaps(path: Path, audio_root: Path, index: dict[str, Path]) -> Iterator[Source]:
    from sonicaps.formats.identity import CLIP_S, clip_key

    seen: set[str] = set()
    with open(path, encoding="utf-8-sig", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), 2):
            ytid = (row.get("youtube_id") or "").strip()
            try:
                start = float(row.get("start_time") or "")
            except ValueError:
                yield Source(f"{path}:line {n}", f"line{n}",
                             error=f"line {n}: start_time {row.get('start_time')!r} is not a number")
                continue
            cid = clip_key(ytid, start)
            if not ytid or cid in seen:
                continue
            seen.add(cid)
            yield _segment(index, audio_root, ytid, start, start + CLIP_S, None, cid, f"{path.name} line {n}")


def _segment(index: dict[str, Path], audio_root: Path, ytid: str, start: float, end: float,
             labels: tuple[str, ...] | None, cid: str, origin: str) -> Source:
    """The source of one YouTube segment: its cut file, else its span of the whole video."""
    cut = [f"{y}{ytid}_{s}" for y in ("", "Y")
           for s in (f"{start:.3f}_{end:.3f}", f"{_fmt(start)}_{_fmt(end)}",
                     f"{int(start)}_{int(end)}", f"{int(start)}", f"{start:.3f}")]
    hit = next((index[c] for c in cut if c in index), None)
    if hit is not None:
        return Source(str(hit), ytid, labels=labels, clip_id=cid)
    if (whole := index.get(ytid) or index.get("Y" + ytid)) is not None:
        return Source(str(whole), ytid, start, end, labels, clip_id=cid, origin=origin)
    return Source(str(audio_root / ytid), ytid, labels=labels, clip_id=cid,
                  error=f"no audio file for {ytid} under {audio_root}")


def iter_sources(inputs: list[str | Path], audio_root: str | Path | None = None) -> Iterator[Source]:
    """Sources from any mix of files, folders and manifests (.csv/.parquet with a path
    column; AudioSet segment CSVs when audio_root is given).

    Two files whose keys (hence clip ids) would be equal - `a.wav` beside `a.mp3`, or
    `x/a.wav` and `y/a.wav` given as two inputs - keep them apart: the later one's key gets
    its extension (then a number), in the stable order the inputs are listed in."""
    owner: dict[str, str] = {}  # key -> the file holding it
    for src in _sources(inputs, audio_root):
        if src.clip_id is None and src.error is None and owner.setdefault(src.key, src.path) != src.path:
            key, k = src.key + Path(src.path).suffix, 1
            while owner.setdefault(key, src.path) != src.path:
                k += 1
                key = f"{src.key}{Path(src.path).suffix}~{k}"
            src = replace(src, key=printable(key))
        yield src


def _sources(inputs: list[str | Path], audio_root: str | Path | None) -> Iterator[Source]:
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            yield from iter_folder(p)
        elif p.suffix in (".csv", ".parquet") and audio_root is not None:
            yield from iter_audioset(p, Path(audio_root), _yamnet_mids())
        elif p.suffix in (".csv", ".parquet"):
            if not p.is_file():
                raise ManifestError(f"{p}: manifest not found")
            yield from iter_manifest(p)
        else:
            yield Source(str(p), _key(p, p.parent))


def _yamnet_mids() -> dict[str, str] | None:
    """AudioSet mid -> display name, from the YAMNet class map (when installed)."""
    try:
        from sonicaps.weights import YAMNET_CLASSES, locate

        with open(locate(YAMNET_CLASSES), newline="", encoding="utf-8") as f:
            return {r["mid"]: r["display_name"] for r in csv.DictReader(f)}
    except Exception:  # labels then stay as mids; captioning does not depend on them
        return None


def is_span(src: Source) -> bool:
    """A part of a file (a manifest row's or segment list's start/end): a file may have
    several, so whether the file is done does not say whether this part is."""
    return src.error is None and (src.start_s > 0 or src.end_s is not None)


def last_clip_id(src: Source, segment_s: float, min_tail_s: float) -> str | None:
    """The id decode_source gives a span's last clip, from the span alone (None when the
    span runs to the end of the file, whose length only decoding tells)."""
    if src.end_s is None:
        return None
    n = max(1, math.ceil((src.end_s - src.start_s) / segment_s - 1e-9))
    end = src.end_s
    if n > 1 and src.end_s - (src.start_s + (n - 1) * segment_s) < min_tail_s:  # tail dropped
        n -= 1
        end = src.start_s + n * segment_s
    start = round(src.start_s + (n - 1) * segment_s, 3)
    if src.clip_id:
        return src.clip_id if n == 1 else clip_id(src.clip_id, start, round(end, 3))
    return clip_id(src.key, start, round(end, 3))


def decode_source(src: Source, segment_s: float, min_tail_s: float) -> Iterator[Clip]:
    """Clips of one source; the last one is flagged. Raises AudioError on bad audio."""
    if src.error:
        raise ValueError(src.error)
    prev = None
    segments = stream_segments(src.path, segment_s, start_s=src.start_s, end_s=src.end_s,
                               min_tail_s=min_tail_s, check_end=True)
    try:
        for n, seg in enumerate(segments):
            if prev is not None:
                yield prev
            start, end = round(seg.start_s, 3), round(seg.end_s, 3)
            # A manifest id names the row's clip; further pieces of a long file extend it.
            if src.clip_id:
                cid = src.clip_id if n == 0 else clip_id(src.clip_id, start, end)
            else:
                cid = clip_id(src.key, start, end)
            prev = Clip(cid, src.path, start, end, seg.audio, src.labels)
    except Exception:
        if prev is not None:  # decoded before the error: kept; the error finishes the source
            yield prev
        raise
    if prev is not None:
        prev.last_in_source = True
        yield prev
