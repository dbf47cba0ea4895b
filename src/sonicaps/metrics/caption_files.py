"""Read caption files for `sonicaps score` and pair candidates with references.

Files are read by sonicaps.formats.readers, so every layout `convert` reads scores too
(AudioCaps and Clotho CSVs, a DCASE submission's `file_name, caption_predicted`, WavCaps
JSON, AudioSetCaps CSV, any table with an id and a caption column, Parquet/JSONL/hf,
`sonicaps caption` output), with the same ids. Candidates are matched to references by
clip identity (sonicaps.formats.identity): the same id, the same name, or the same
YouTube clip whatever layout named it (`Y<ytid>.wav` against an AudioCaps row).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sonicaps.formats.identity import ClipIndex, identity
from sonicaps.formats.readers import Report, read_records
from sonicaps.formats.records import CaptionRecord


def read_caption_records(path: str | Path, encoding: str = "utf-8") -> list[CaptionRecord]:
    """The clips of a caption file; a row that cannot be read is an error naming it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such caption file")
    return list(read_records(path, report=Report(strict=True), encoding=encoding))


def read_captions(path: str | Path, encoding: str = "utf-8") -> dict[str, list]:
    """Map each id to its captions, in file order."""
    return {rec.id: list(rec.captions) for rec in read_caption_records(path, encoding)}


@dataclass
class Pairs:
    """Candidates and their references, in the candidates' order."""

    ids: list[str]  # the candidates' ids
    candidates: list  # one caption per id, or a list of them with several=True (SPIDEr-max)
    references: list[list[str]]
    unscored: list[str] = field(default_factory=list)  # reference ids with no candidate


def pair(candidates: list[CaptionRecord], references: list[CaptionRecord], several: bool = False) -> Pairs:
    """Each candidate with its reference clip: the same id, else the one clip its identity
    matches. Every candidate must have exactly one caption and one reference; references
    without a candidate are allowed and listed in `unscored` (CIDEr-D's idf then comes
    from the scored clips only). several=True (SPIDEr-max) takes each id's candidates as a list."""
    extra = next((c for c in candidates if len(c.captions) != 1), None)
    if extra is not None and not several:
        raise ValueError(f"id {extra.id!r} has {len(extra.captions)} candidate captions; "
                         "the candidates file needs exactly one per id (several are scored by "
                         "--metrics spider_max)")
    by_id = {r.id: r for r in references}
    index = ClipIndex()
    for r in references:
        index.add(identity(r), r.id)
        if r.youtube_id:  # a candidate keyed by the bare YouTube id (a `youtube_id` column)
            index.names[r.youtube_id].append(r.id)
    chosen: dict[str, str] = {}  # reference id -> candidate id
    missing, ambiguous = [], []
    refs = []
    for cand in candidates:
        found = [cand.id] if cand.id in by_id else index.find(identity(cand))
        if not found:
            missing.append(cand.id)
            continue
        if len(found) > 1:
            ambiguous.append(f"{cand.id!r} (matches {', '.join(map(repr, found[:3]))})")
            continue
        if found[0] in chosen:
            raise ValueError(f"candidates {chosen[found[0]]!r} and {cand.id!r} are both the reference clip "
                             f"{found[0]!r}")
        chosen[found[0]] = cand.id
        refs.append(by_id[found[0]].captions)
    if missing:
        raise ValueError(f"{len(missing)} candidate ids have no references, e.g. {missing[:3]}")
    if ambiguous:
        raise ValueError(f"{len(ambiguous)} candidate ids match several reference clips: "
                         + "; ".join(ambiguous[:3]))
    unscored = [r.id for r in references if r.id not in chosen]
    chosen_captions = [list(c.captions) if several else c.captions[0] for c in candidates]
    return Pairs([c.id for c in candidates], chosen_captions, refs, unscored)
