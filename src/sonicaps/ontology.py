"""The AudioSet ontology: which classes are kinds of which.

The built-in asker needs it offline, so it is kept in the sonicaps cache: downloaded once
from its published location (checked by sha256) at first use, by `sonicaps
download-weights` or by `python -m sonicaps.sources fetch`, or copied from a local file
(`--ontology PATH`).
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from sonicaps.sources import cache_dir
from sonicaps.weights import MissingWeights, download_verified

URL = "https://raw.githubusercontent.com/audioset/ontology/master/ontology.json"
SHA256 = "9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d"


def path() -> Path:
    return cache_dir() / "audioset" / f"ontology-{SHA256[:12]}.json"


def install(source: str | Path | None = None) -> Path:
    """Put the ontology in the cache from a local file or its URL; a wrong file is refused."""
    target = path()
    if target.is_file():
        return target
    try:
        return download_verified(source if source is not None else URL, target, SHA256)
    except ValueError as e:
        raise MissingWeights(f"{e} (AudioSet ontology)") from None


@cache
def parents_by_name() -> dict[str, frozenset[str]]:
    """Class name -> names of its direct parents (a class may have several)."""
    p = path()
    if not p.is_file():
        logging.getLogger(__name__).warning("the AudioSet ontology is not in %s: downloading it from %s "
                                            "(once)", p, URL)
        try:
            install()
        except (OSError, ValueError) as e:  # no network (urllib's URLError is an OSError)
            raise MissingWeights(f"the AudioSet ontology is not in {p} and could not be downloaded "
                                 f"from {URL} ({e}): run `sonicaps download-weights` where it can be, "
                                 "or `python -m sonicaps.sources fetch --ontology FILE` with a copy") from e
    entries = json.loads(p.read_text(encoding="utf-8"))
    name = {e["id"]: e["name"] for e in entries}
    out: dict[str, set[str]] = {e["name"]: set() for e in entries}
    for e in entries:
        for c in e.get("child_ids", []):
            out[name[c]].add(e["name"])
    return {k: frozenset(v) for k, v in out.items()}


@cache
def ancestors(name: str) -> frozenset[str]:
    """Every class above `name` (empty for top-level classes and unknown names)."""
    parents = parents_by_name()
    seen: set[str] = set()
    todo = list(parents.get(name, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(parents.get(n, ()))
    return frozenset(seen)


def related(a: str, b: str) -> bool:
    """One class is a kind of the other (Aircraft engine / Aircraft / Vehicle)."""
    return a == b or a in ancestors(b) or b in ancestors(a)

