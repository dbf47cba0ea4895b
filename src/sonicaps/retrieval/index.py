"""Text-to-audio (and audio-to-audio) search over a collection, with faiss.

An index directory holds `vectors.faiss` (an HNSW graph over unit vectors, inner
product), `items.sqlite` (one row per vector: file, span, caption) and `model.json` (which
retrieval run embedded it). Building is incremental: files already in the index are
skipped, and every batch is committed, so an interrupted build resumes where it stopped.
Rows are committed before the vector file is replaced; on open, rows without a vector
(a build killed between the two) are embedded again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from sonicaps.retrieval.data import Item, read_dataset
from sonicaps.retrieval.features import audio_features, embed_audio, embed_texts
from sonicaps.retrieval.model import DualEncoder

VECTORS, ROWS, META = "vectors.faiss", "items.sqlite", "model.json"
HNSW_M = 32
EF_SEARCH = 512  # candidates per query: 99 % first-hit at 1M vectors, 9 ms (benchmarks/search_speed.py)
BATCH = 256


@dataclass
class Hit:
    score: float
    id: str
    path: str
    start_s: float
    end_s: float | None
    caption: str


def _new_index(dim: int):
    import faiss

    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    return index


class VectorIndex:
    """Vectors in faiss, their rows in SQLite; vector k is row k."""

    def __init__(self, root: str | Path, dim: int | None = None, model_run: str | None = None,
                 text_model: str | None = None):
        import faiss

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / META
        if meta_path.is_file():
            self.meta = json.loads(meta_path.read_text())
            if model_run and _run_key(model_run) != self.meta["run"]:
                raise ValueError(f"{self.root} was built with {self.meta['run']}, not {model_run}: "
                                 "vectors of different models cannot share an index")
        elif dim is None:
            raise FileNotFoundError(f"{self.root}: no index here (build one with `sonicaps index`)")
        else:
            self.meta = {"run": _run_key(model_run) if model_run else None, "dim": dim,
                         "text_model": text_model}
            meta_path.write_text(json.dumps(self.meta))
        self.db = sqlite3.connect(self.root / ROWS)
        self.db.execute("CREATE TABLE IF NOT EXISTS items (k INTEGER PRIMARY KEY, id TEXT, path TEXT,"
                        " start_s REAL, end_s REAL, caption TEXT)")
        self.db.execute("CREATE INDEX IF NOT EXISTS by_path ON items (path, start_s)")
        for stale in self.root.glob(f".{VECTORS}.*"):  # a vector file a killed build never renamed
            if not _alive(stale.suffix.lstrip(".")):
                stale.unlink(missing_ok=True)
        vec_path = self.root / VECTORS
        self.index = faiss.read_index(str(vec_path)) if vec_path.is_file() else _new_index(self.meta["dim"])
        self.index.hnsw.efSearch = EF_SEARCH

    def __len__(self) -> int:
        return self.index.ntotal

    def rows(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def known(self) -> set[tuple[str, float]]:
        return {(p, s) for p, s in self.db.execute("SELECT path, start_s FROM items")}

    def unvectored(self) -> list[tuple[int, str, float, float | None]]:
        return self.db.execute("SELECT k, path, start_s, end_s FROM items WHERE k >= ? ORDER BY k",
                               (self.index.ntotal,)).fetchall()

    def add(self, items: Sequence[Item], vectors: np.ndarray) -> None:
        start = self.rows()
        with self.db:
            self.db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)", [
                (start + n, i.id, str(i.audio), i.start_s, i.end_s, " | ".join(i.captions))
                for n, i in enumerate(items)])
        self.append(vectors)

    def append(self, vectors: np.ndarray) -> None:
        """Add vectors for rows already committed, and replace the vector file atomically."""
        import faiss

        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        tmp = self.root / f".{VECTORS}.{os.getpid()}"
        faiss.write_index(self.index, str(tmp))
        tmp.replace(self.root / VECTORS)

    def search(self, query: np.ndarray, k: int = 10) -> list[Hit]:
        if len(self) == 0:
            return []
        scores, keys = self.index.search(np.ascontiguousarray(query[None], dtype=np.float32),
                                         min(k, len(self)))
        hits = []
        for score, key in zip(scores[0], keys[0], strict=True):
            if key < 0:
                continue
            row = self.db.execute("SELECT id, path, start_s, end_s, caption FROM items WHERE k = ?",
                                  (int(key),)).fetchone()
            hits.append(Hit(float(score), *row))
        return hits


def _alive(pid: str) -> bool:
    """Whether the process that names a temporary file is still running (and writing it)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _run_key(run: str | Path) -> str:
    """A run folder or checkpoint file by its absolute path; a published name as given."""
    return str(Path(run).resolve()) if Path(run).exists() else str(run)


class Tower(Protocol):
    """What index and search need from a retrieval model."""

    dim: int

    def embed_items(self, items: Sequence[Item]) -> tuple[list[Item], np.ndarray]: ...
    def embed_text(self, text: str) -> np.ndarray: ...
    def embed_file(self, path: str | Path) -> np.ndarray: ...


class SceneCapsTower:
    """sonicaps' own retrieval runs (YAMNet patches + sentence vectors)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.model = DualEncoder.load(run_dir)
        self.dim = self.model.cfg.dim

    def embed_items(self, items: Sequence[Item]) -> tuple[list[Item], np.ndarray]:
        feats = audio_features([(i.audio, i.start_s, i.end_s) for i in items], progress=False)
        kept = [(i, f) for i, f in zip(items, feats, strict=True) if f is not None]
        if not kept:
            return [], np.zeros((0, self.dim), np.float32)
        return [i for i, _ in kept], self.model.audio_vectors([f.patches for _, f in kept])

    def embed_text(self, text: str) -> np.ndarray:
        return self.model.text_vectors(embed_texts([text]))[0]

    def embed_file(self, path: str | Path) -> np.ndarray:
        from sonicaps.audio import load_audio

        return self.model.audio_vectors([embed_audio([load_audio(path)])[0].patches])[0]


def open_tower(run: str | Path, text_model: str | None = None) -> Tower:
    """A train-retrieval run folder, or an AudioSetCaps/WavCaps retrieval checkpoint."""
    from sonicaps.audiosetcaps.tasks import RetrievalTower, is_checkpoint

    return RetrievalTower(str(run), text_model) if is_checkpoint(run) else SceneCapsTower(run)


def build_index(collection: str | Path, index_dir: str | Path, run_dir: str | Path,
                progress: bool = True, text_model: str | None = None) -> tuple[int, int, int]:
    """Embed every clip of a collection not yet in the index; (added, skipped, failed)."""
    model = open_tower(run_dir, text_model)
    idx = VectorIndex(index_dir, dim=model.dim, model_run=str(run_dir), text_model=text_model)
    repair = idx.unvectored()
    if repair:  # rows committed by a build that died before writing its vectors
        items = [Item(str(k), Path(p), (), "", s, e) for k, p, s, e in repair]
        kept, vecs = model.embed_items(items)
        if len(kept) != len(items):
            raise RuntimeError(f"{index_dir}: {len(items) - len(kept)} indexed files are gone; "
                               "rebuild the index")
        idx.append(vecs)
    known = idx.known()
    todo = [i for i in read_dataset(collection) if (str(i.audio), i.start_s) not in known]
    added = failed = 0
    for b in tqdm(range(0, len(todo), BATCH), desc="indexing", unit="batch",
                  disable=not progress or not todo):
        batch = todo[b:b + BATCH]
        kept, vecs = model.embed_items(batch)
        if kept:
            idx.add(kept, vecs)
        added += len(kept)
        failed += len(batch) - len(kept)
    return added, len(known), failed


def search(index_dir: str | Path, text: str | None = None, audio: str | Path | None = None,
           k: int = 10) -> list[Hit]:
    """The k clips nearest to a text query or to an example recording."""
    if (text is None) == (audio is None):
        raise ValueError("give either a text query or an audio file")
    idx = VectorIndex(index_dir)
    model = open_tower(idx.meta["run"], idx.meta.get("text_model"))
    query = model.embed_text(text) if text is not None else model.embed_file(audio)
    return idx.search(query, k)
