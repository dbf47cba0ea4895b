"""Keep evaluation clips out of training data.

A training clip is removed when its YouTube id and time span overlap a clip of any given
evaluation set (AudioCaps val/test CSVs, VGGSound's CSV, AudioSet segment lists, or any
dataset sonicaps reads, such as Clotho, whose clips are matched by id), and optionally
when its audio nearly equals an evaluation clip's (YAMNet embeddings, cosine similarity):
the same recording re-encoded, re-cut or re-uploaded under another id. AudioSetCaps warns
that AudioCaps and VGGSound test clips are inside its data; this is the filter.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sonicaps.formats.readers import read_records
from sonicaps.formats.records import CaptionRecord, split_audioset_id
from sonicaps.formats.torch_dataset import CaptionDataset

CLIP_S = 10.0  # AudioSet, AudioCaps and VGGSound clips are 10 s from their start
_VGGSOUND = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass
class EvalSet:
    name: str
    spans: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    ids: set[str] = field(default_factory=set)

    def hit(self, rec: CaptionRecord) -> bool:
        if rec.id in self.ids:
            return True
        yt, start, end = _span(rec)
        if yt is None or yt not in self.spans:
            return False
        if start is None:  # a whole video: any clip of it overlaps
            return True
        end = end if end is not None else start + CLIP_S
        return any(start < e and s < end for s, e in self.spans[yt])


def _span(rec: CaptionRecord) -> tuple[str | None, float | None, float | None]:
    if rec.youtube_id:
        return rec.youtube_id, rec.start_s, rec.end_s
    parts = split_audioset_id(rec.id)
    return parts if parts else (None, None, None)


def read_eval_set(path: str | Path) -> EvalSet:
    """Spans and ids of an evaluation set, whatever its format."""
    path = Path(path)
    ev = EvalSet(path.name)
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            first = f.readline()
        if first.startswith("#") or _headerless_vggsound(first):
            for row in _plain_rows(path):
                start = float(row[1])
                end = float(row[2]) if len(row) > 2 and _is_number(row[2]) else start + CLIP_S
                yt = row[0][1:] if len(row[0]) == 12 and row[0].startswith("Y") else row[0]
                ev.spans[yt].append((start, end))
            return ev
    for rec in read_records(path):
        ev.ids.add(rec.id)
        yt, start, end = _span(rec)
        if yt is not None and start is not None:
            ev.spans[yt].append((start, end if end is not None else start + CLIP_S))
    return ev


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


def _plain_rows(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.reader(f, skipinitialspace=True):
            if row and not row[0].startswith("#") and len(row) >= 2 and _is_number(row[1]):
                yield [c.strip() for c in row]


@dataclass
class DedupeReport:
    kept: int = 0
    removed: dict[str, list[str]] = field(default_factory=dict)  # eval set -> removed ids

    def table(self) -> str:
        lines = [f"kept {self.kept} clips"]
        lines += [f"removed {len(ids)} overlapping {name}" for name, ids in self.removed.items()]
        return "\n".join(lines)


def dedupe(records: Iterable[CaptionRecord], eval_sets: list[EvalSet], report: DedupeReport,
           near: dict[str, tuple[str, float]] | None = None) -> Iterator[CaptionRecord]:
    """The training records that overlap no evaluation clip (each removal is reported under
    the first evaluation set it overlaps), nor sound like one (`near`, from near_duplicates)."""
    for ev in eval_sets:
        report.removed.setdefault(ev.name, [])
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
