"""Keep evaluation clips out of training data.

A training clip is removed when it is an evaluation clip: the same name, or the same
YouTube video with an overlapping time span, whatever layout names either side (an
AudioCaps row, WavCaps' `Y<ytid>.wav`, AudioSetCaps' `<ytid>_<start>_<duration>`, a
`sonicaps caption` clip; see sonicaps.formats.identity). Evaluation sets are any caption
file sonicaps reads, AudioSet segment lists, VGGSound's CSV, WavCaps' blacklist JSONs and
plain id lists (one per line). Optionally a clip is also removed when its audio nearly
equals an evaluation clip's (YAMNet embeddings, cosine similarity): the same recording
re-encoded, re-cut or re-uploaded under another id. AudioSetCaps warns that AudioCaps and
VGGSound test clips are inside its data; this is the filter.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonicaps.formats.identity import CLIP_S, ClipIdentity, ClipIndex, identity, name_identity
from sonicaps.formats.readers import read_records
from sonicaps.formats.records import CaptionRecord
from sonicaps.formats.text import FormatError, read_text
from sonicaps.formats.torch_dataset import CaptionDataset

_VGGSOUND = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass
class EvalSet:
    """The clips of one evaluation set, indexed by name and by YouTube id and span."""

    name: str
    index: ClipIndex = field(default_factory=ClipIndex)
    clips: int = 0

    def add(self, ident: ClipIdentity) -> None:
        self.clips += 1
        self.index.add(ident, self.name)

    def hit(self, rec: CaptionRecord) -> bool:
        return bool(self.index.find(identity(rec)))


def read_eval_set(path: str | Path, encoding: str = "utf-8") -> EvalSet:
    """The clips of an evaluation set, whatever its layout."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such evaluation set")
    ev = EvalSet(path.name)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            first = f.readline()
        if first.startswith("#") or _headerless_vggsound(first):
            for row in _plain_rows(path, encoding):
                start = float(row[1])
                end = float(row[2]) if len(row) > 2 and _is_number(row[2]) else start + CLIP_S
                yt = row[0][1:] if len(row[0]) == 12 and row[0].startswith("Y") else row[0]
                ev.add(ClipIdentity(frozenset(), yt, start, end))
            return ev
    if suffix in (".txt", ".lst", ".ids"):
        for line in read_text(path, encoding).splitlines():
            if line.strip() and not line.startswith("#"):
                ev.add(name_identity(line.rstrip("\r\n")))
        return ev
    if suffix == ".json":
        ids = _id_lists(path, encoding)
        if ids is not None:
            for name in ids:
                ev.add(name_identity(name))
            return ev
    for rec in read_records(path, encoding=encoding):
        ev.add(identity(rec))
    return ev


def _id_lists(path: Path, encoding: str) -> list[str] | None:
    """The ids of a JSON id list (`[...]`) or WavCaps blacklist (`{"AudioSet": [...],
    "FreeSound": [...]}`), or None when the JSON holds captions."""
    try:
        data = json.loads(read_text(path, encoding))
    except json.JSONDecodeError as e:
        raise FormatError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from e
    lists = [data] if isinstance(data, list) else list(data.values()) if isinstance(data, dict) else []
    if lists and all(isinstance(v, list) and all(isinstance(x, str | int) for x in v) for v in lists) \
            and not (isinstance(data, dict) and "data" in data):
        names = [str(x) for v in lists for x in v]
        if not any(" " in n for n in names[:50]):  # ids, not {id: [captions]}
            return names
    return None


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def _headerless_vggsound(line: str) -> bool:
    """VGGSound's CSV: `YTID,start_seconds,label,split`, no header."""
    cells = next(csv.reader([line]), [])
    return len(cells) >= 2 and bool(_VGGSOUND.match(cells[0].strip())) and _is_number(cells[1].strip())


def _plain_rows(path: Path, encoding: str) -> Iterator[list[str]]:
    for row in csv.reader(read_text(path, encoding).splitlines(), skipinitialspace=True):
        if row and not row[0].startswith("#") and len(row) >= 2 and _is_number(row[1]):
            yield [c.strip() for c in row]


@dataclass
class DedupeReport:
    kept: int = 0
    removed: dict[str, list[str]] = field(default_factory=dict)  # eval set -> removed ids
    sizes: dict[str, int] = field(default_factory=dict)  # eval set -> its clips

    def table(self) -> str:
        lines = [f"kept {self.kept} clips"]
        for name, ids in self.removed.items():
            size = f" ({self.sizes[name]} evaluation clips)" if name in self.sizes else ""
            lines.append(f"removed {len(ids)} overlapping {name}{size}")
        return "\n".join(lines)


def dedupe(records: Iterable[CaptionRecord], eval_sets: list[EvalSet], report: DedupeReport,
           near: dict[str, tuple[str, float]] | None = None) -> Iterator[CaptionRecord]:
    """The training records that overlap no evaluation clip (each removal is reported under
    the first evaluation set it overlaps), nor sound like one (`near`, from near_duplicates)."""
    for ev in eval_sets:
        report.removed.setdefault(ev.name, [])
        report.sizes[ev.name] = ev.clips
    for rec in records:
        hit = next((ev for ev in eval_sets if ev.hit(rec)), None)
        if hit is None and near and rec.id in near:
            report.removed.setdefault("near-duplicate audio", []).append(rec.id)
            continue
        if hit is None:
            report.kept += 1
            yield rec
        else:
            report.removed[hit.name].append(rec.id)


def audio_vectors(dataset: CaptionDataset, indices: Sequence[int]) -> np.ndarray:
    """Unit-length clip vectors: the mean of YAMNet's 1024-d patch embeddings."""
    from sonicaps.retrieval.features import embed_audio

    feats = embed_audio([dataset.audio(i) for i in indices])
    vecs = np.stack([f.patches.astype(np.float32).mean(axis=0) for f in feats])
    return vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)


def near_duplicates(train: CaptionDataset, evals: Sequence[CaptionDataset], threshold: float,
                    batch: int = 16) -> dict[str, tuple[str, float]]:
    """Training clips whose audio is at least `threshold` cosine-similar to an evaluation
    clip: {train id: (eval id, similarity)}. The evaluation vectors sit in a faiss index;
    training clips stream through in batches, so memory follows the evaluation sets only."""
    import faiss

    eval_ids = [rec.id for ev in evals for rec in ev.records]
    vecs = [audio_vectors(ev, range(i, min(i + batch, len(ev))))
            for ev in evals for i in range(0, len(ev), batch)]
    if not vecs:
        return {}
    index = faiss.IndexFlatIP(1024)
    index.add(np.concatenate(vecs))
    found: dict[str, tuple[str, float]] = {}
    for start in range(0, len(train), batch):
        sims, hits = index.search(audio_vectors(train, range(start, min(start + batch, len(train)))), 1)
        for k, (sim, hit) in enumerate(zip(sims[:, 0], hits[:, 0], strict=True)):
            if sim >= threshold:
                found[train.records[start + k].id] = (eval_ids[hit], float(sim))
    return found
