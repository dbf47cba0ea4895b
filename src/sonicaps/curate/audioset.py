"""Choose AudioSet clips to caption, as AudioCaps §3.1 did: label filters, then a
balanced sample. Every step reports what it removed.

Inputs are AudioSet's own files: ontology.json and segment CSVs (`YTID, start_seconds,
end_seconds, positive_labels` after '#' comment lines), from paths or URLs (downloaded
once into the sonicaps cache). Label counts and candidates are kept as ids and label
sets only; audio is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sonicaps.sources import cache_dir

MUSIC = "/m/04rlf"  # the root of AudioSet's music subtree
_LINE = re.compile(r'^\s*([^,#\s]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*"?([^"]*)"?\s*$')


@dataclass(frozen=True)
class Segment:
    ytid: str
    start_s: float
    end_s: float
    labels: tuple[str, ...]  # label ids (/m/...)


@dataclass
class Step:
    name: str
    labels_removed: int
    clips_removed: int
    clips_left: int
    detail: str = ""


@dataclass
class Selection:
    segments: list[Segment]
    steps: list[Step] = field(default_factory=list)
    skipped_lines: list[str] = field(default_factory=list)


def local_copy(path_or_url: str | Path) -> Path:
    """A path as is; a URL downloaded once into $SONICAPS_CACHE/audioset/."""
    text = str(path_or_url)
    if not re.match(r"https?://", text):
        return Path(text)
    name = hashlib.sha1(text.encode()).hexdigest()[:12] + "-" + text.rsplit("/", 1)[-1]
    target = cache_dir() / "audioset" / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        with urllib.request.urlopen(text, timeout=60) as resp, open(tmp, "wb") as f:
            f.write(resp.read())
        tmp.replace(target)
    return target


def read_ontology(path_or_url: str | Path) -> dict[str, dict]:
    """Ontology entries by id (name, child_ids, restrictions)."""
    data = json.loads(local_copy(path_or_url).read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(e, dict) and {"id", "name"} <= set(e) for e in data):
        raise ValueError(f"{path_or_url}: not an AudioSet ontology (a JSON list of entries with id and name)")
    return {e["id"]: e for e in data}


def subtree(ontology: dict[str, dict], root: str) -> set[str]:
    """root and everything below it."""
    out, todo = set(), [root]
    while todo:
        node = todo.pop()
        if node not in out:
            out.add(node)
            todo.extend(ontology.get(node, {}).get("child_ids", []))
    return out


def read_segments(paths: Iterable[str | Path], skipped: list[str]) -> Iterator[Segment]:
    for p in paths:
        path = local_copy(p)
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                m = _LINE.match(line)
                if not m:
                    skipped.append(f"{path}:{n}: not 'YTID, start, end, \"labels\"'")
                    continue
                labels = tuple(x.strip() for x in m.group(4).split(",") if x.strip())
                yield Segment(m.group(1), float(m.group(2)), float(m.group(3)), labels)


def _ids(ontology: dict[str, dict], names_or_ids: Iterable[str], what: str) -> set[str]:
    by_name = {e["name"].lower(): i for i, e in ontology.items()}
    out = set()
    for x in names_or_ids:
        key = x if x in ontology else by_name.get(x.strip().lower())
        if key is None:
            raise ValueError(f"{what}: {x!r} is neither an ontology id nor a label name")
        out.add(key)
    return out


def _keep(segments: list[Segment], allowed: set[str] | None, banned: set[str], steps: list[Step],
          name: str, detail: str = "") -> list[Segment]:
    before_labels = {label for s in segments for label in s.labels}
    out = []
    for s in segments:
        labels = tuple(x for x in s.labels if x not in banned and (allowed is None or x in allowed))
        if labels:
            out.append(Segment(s.ytid, s.start_s, s.end_s, labels))
    after_labels = {label for s in out for label in s.labels}
    steps.append(Step(name, len(before_labels - after_labels), len(segments) - len(out), len(out), detail))
    return out


def select(ontology: dict[str, dict], segment_files: Iterable[str | Path], *, min_clips: int = 0,
           drop_music: bool = False, drop_labels: Iterable[str] = (),
           keep_labels: Iterable[str] | None = None, cap: int | None = None, seed: int = 0) -> Selection:
    """The AudioCaps selection: drop rare labels (< min_clips clips), the music subtree, the
    given labels; keep only keep_labels if given; then at most `cap` clips per label,
    preferring clips with more labels (ties broken by a seeded hash, so runs repeat)."""
    skipped: list[str] = []
    segments = list(read_segments(segment_files, skipped))
    steps = [Step("read", 0, 0, len(segments), f"{len({x for s in segments for x in s.labels})} labels")]
    unknown = {x for s in segments for x in s.labels} - set(ontology)
    if unknown:
        segments = _keep(segments, None, unknown, steps, "unknown label ids", ", ".join(sorted(unknown)[:5]))
    if min_clips:
        counts = Counter(x for s in segments for x in s.labels)
        rare = {x for x, c in counts.items() if c < min_clips}
        segments = _keep(segments, None, rare, steps, f"labels with < {min_clips} clips")
    if drop_music:
        segments = _keep(segments, None, subtree(ontology, MUSIC), steps, "music subtree")
    banned = _ids(ontology, drop_labels, "drop_labels")
    if banned:
        names = ", ".join(sorted(ontology[x]["name"] for x in banned))
        segments = _keep(segments, None, banned, steps, "not identifiable from sound", names)
    if keep_labels is not None:
        allowed = _ids(ontology, keep_labels, "keep_labels")
        segments = _keep(segments, allowed, set(), steps, "kept label list")
    if cap:
        segments = _balanced(segments, cap, seed, steps)
    return Selection(segments, steps, skipped)


def _balanced(segments: list[Segment], cap: int, seed: int, steps: list[Step]) -> list[Segment]:
    def tiebreak(s: Segment) -> str:
        return hashlib.sha1(f"{seed}:{s.ytid}:{s.start_s}".encode()).hexdigest()

    counts: Counter = Counter()
    chosen = []
    for s in sorted(segments, key=lambda s: (-len(s.labels), tiebreak(s))):
        if any(counts[x] < cap for x in s.labels):
            chosen.append(s)
            counts.update(s.labels)
    order = {id(s): k for k, s in enumerate(segments)}
    chosen.sort(key=lambda s: order[id(s)])  # back in input order
    removed = len(segments) - len(chosen)
    steps.append(Step(f"balanced: at most {cap} clips per label", 0, removed, len(chosen)))
    return chosen


def write_segments(selection: Selection, path: str | Path) -> None:
    """The selected segments in AudioSet's CSV layout (readable by `sonicaps caption --audio-root`)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write(f"# Segments selected by sonicaps: {len(selection.segments)} clips\n")
        f.write("# YTID, start_seconds, end_seconds, positive_labels\n")
        w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        for s in selection.segments:
            w.writerow([s.ytid, f"{s.start_s:.3f}", f"{s.end_s:.3f}", ",".join(s.labels)])


def report_table(selection: Selection) -> str:
    lines = [f"{'step':<44}{'labels removed':>15}{'clips removed':>15}{'clips left':>12}"]
    for st in selection.steps:
        lines.append(f"{st.name:<44}{st.labels_removed:>15}{st.clips_removed:>15}{st.clips_left:>12}"
                     + (f"  ({st.detail})" if st.detail else ""))
    if selection.skipped_lines:
        lines.append(f"{len(selection.skipped_lines)} unreadable line(s), e.g. {selection.skipped_lines[0]}")
    return "\n".join(lines)
