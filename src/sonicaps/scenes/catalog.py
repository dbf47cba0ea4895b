"""The curated SceneCaps sources: which files, which class, which split, and how to name them.

The data lives beside this module (sources.csv, classes.toml, packages.toml) so that
curation is a reviewable diff, not code.
"""

from __future__ import annotations

import csv
import tomllib
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
SPLITS = ("train", "val", "test")
PATTERNS = ("once", "repeat", "sequence", "loop")
ROLES = ("foreground", "background")
GENERATED = ("espeak-ng", "flite", "fluidsynth")  # packages whose "files" sonicaps renders
LOCAL = "local"  # a user's own recordings: path is a file path (relative to the manifest)


@dataclass(frozen=True)
class Source:
    """One recording (or one rendered file) that scenes are mixed from."""

    id: str
    cls: str
    role: str  # "foreground" | "background"
    pattern: str  # how an event uses it: once, repeat, sequence (steps, strokes), loop
    split: str
    package: str
    path: str  # inside the package; for rendered sources, what to render
    detail: str  # fills "{detail}" in the class phrases (e.g. the surface under footsteps)
    licence: str
    md5: str  # of the file as extracted; empty for rendered sources

    @property
    def generated(self) -> bool:
        return self.package in GENERATED

    @property
    def local(self) -> bool:
        return self.package == LOCAL


@dataclass(frozen=True)
class SoundClass:
    name: str
    group: str
    audioset: str
    clause: tuple[str, ...]
    noun: tuple[str, ...]
    detect: tuple[str, ...]


@dataclass(frozen=True)
class Package:
    name: str
    kind: str  # "deb" | "npm" | "wheel"
    url: str
    sha256: str
    licence_file: str
    files: tuple[str, ...] = ()  # extra files to keep (sound fonts)


class CatalogError(ValueError):
    pass


@cache
def classes() -> dict[str, SoundClass]:
    data = tomllib.loads((HERE / "classes.toml").read_text())
    out = {}
    for name, d in data.items():
        for key in ("clause", "noun"):
            if len(d.get(key, ())) < 2:
                raise CatalogError(f"classes.toml [{name}]: needs at least 2 {key} phrasings")
        out[name] = SoundClass(name, d["group"], d["audioset"], tuple(d["clause"]),
                               tuple(d["noun"]), tuple(d.get("detect", ())))
    return out


@cache
def packages() -> dict[str, Package]:
    data = tomllib.loads((HERE / "packages.toml").read_text())
    return {n: Package(n, d["kind"], d["url"], d["sha256"], d.get("licence_file", ""),
                       tuple(d.get("files", ()))) for n, d in data.items()}


def read_sources(path: Path | None = None) -> list[Source]:
    """Read and validate a source manifest (ours by default, or a user's own library)."""
    path = path or HERE / "sources.csv"
    known = classes()
    out: list[Source] = []
    seen: dict[str, int] = {}
    with open(path, newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            try:
                src = Source(row["id"], row["class"], row["role"], row["pattern"], row["split"],
                             row["package"], row["path"], row.get("detail") or "",
                             row.get("licence") or "", row.get("md5") or "")
            except (KeyError, TypeError) as e:
                raise CatalogError(f"{path}:{n}: missing column {e}") from None
            problems = [
                f"unknown class {src.cls!r}" if src.cls not in known else "",
                f"role must be one of {ROLES}" if src.role not in ROLES else "",
                f"pattern must be one of {PATTERNS}" if src.pattern not in PATTERNS else "",
                f"split must be one of {SPLITS}" if src.split not in SPLITS else "",
                f"duplicate id (first on line {seen.get(src.id)})" if src.id in seen else "",
            ]
            if src.local and not Path(src.path).is_absolute():
                src = replace(src, path=str((Path(path).parent / src.path).resolve()))
            if any(problems):
                raise CatalogError(f"{path}:{n} ({src.id}): " + "; ".join(p for p in problems if p))
            seen[src.id] = n
            out.append(src)
    return out


@cache
def sources() -> tuple[Source, ...]:
    return tuple(read_sources())
