"""Text-to-audio (and audio-to-audio) search over a collection, with faiss.

An index directory holds `vectors.faiss` (an HNSW graph over unit vectors, inner
product), `items.sqlite` (one row per vector: file, span, caption, whether the clip holds
any sound source) and `model.json` (which retrieval run embedded it). Paths are stored
relative to the index directory, so a collection and its index move together. Audio
folders and files are cut into clips exactly as `sonicaps caption` cuts them (10 s by
default), so a hit is a clip, not a whole file. Clips that hold no sound source (silence,
a noise floor: YAMNet's top class is one of its noise classes) are ranked after every other
clip, whatever their score: a silent clip lies close to many texts. Building is
incremental: clips already in the index are skipped and every batch is committed, so an
interrupted build resumes where it stopped. Rows are committed before the vector file is
replaced; on open, rows without a vector (a build killed between the two) are embedded
again.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from sonicaps.retrieval.data import Item, is_captioned, read_dataset
from sonicaps.retrieval.features import ClipFeatures, audio_features, embed_audio, embed_texts
from sonicaps.retrieval.model import DualEncoder

VECTORS, ROWS, META = "vectors.faiss", "items.sqlite", "model.json"
PACKAGED_RUN = "sonicaps:packaged"  # model.json's name for the model sonicaps ships
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
        if dim is None and not (self.root / META).is_file():
            raise FileNotFoundError(f"{self.root}: no index here (build one with `sonicaps index`)")
        self.root.mkdir(parents=True, exist_ok=True)
        meta_path = self.root / META
        if meta_path.is_file():
            self.meta = json.loads(meta_path.read_text())
            if model_run and self.run_key(model_run) != self.run_key(self.model_run):
                raise ValueError(f"{self.root} was built with {self.meta['run']}, not {model_run}: "
                                 "vectors of different models cannot share an index")
        else:
            self.meta = {"run": self.stored_run(model_run) if model_run else None, "dim": dim,
                         "text_model": text_model}
            meta_path.write_text(json.dumps(self.meta))
        self.db = sqlite3.connect(self.root / ROWS)
        self.db.execute("CREATE TABLE IF NOT EXISTS items (k INTEGER PRIMARY KEY, id TEXT, path TEXT,"
                        " start_s REAL, end_s REAL, caption TEXT, sourceless INTEGER DEFAULT 0)")
        if "sourceless" not in {r[1] for r in self.db.execute("PRAGMA table_info(items)")}:
            self.db.execute("ALTER TABLE items ADD COLUMN sourceless INTEGER DEFAULT 0")  # older indexes
        self.db.execute("CREATE INDEX IF NOT EXISTS by_path ON items (path, start_s)")
        self.db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY)")  # fully indexed
        self._quiet: np.ndarray | None = None
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

    # -- paths: stored relative to the index, so that it moves with its collection ------------
    def stored(self, path: str | Path) -> str:
        return os.path.relpath(Path(path).absolute(), self.root.absolute())

    def resolved(self, stored: str) -> str:
        return os.path.normpath(self.root / stored)  # an older index's absolute path stays as is

    def stored_run(self, run: str | Path) -> str:
        from sonicaps.retrieval.scorer import PACKAGED

        if Path(run).exists() and Path(run).resolve() == PACKAGED:
            return PACKAGED_RUN
        return self.stored(run) if Path(run).exists() else str(run)

    @property
    def model_run(self) -> str | None:
        """The retrieval run or checkpoint that embedded the index, as a usable path or name."""
        from sonicaps.retrieval.scorer import PACKAGED

        run = self.meta.get("run")
        if run in (None, PACKAGED_RUN):
            return str(PACKAGED) if run else None
        return self.resolved(run) if (self.root / run).exists() else run

    @staticmethod
    def run_key(run: str | Path | None) -> str | None:
        return str(Path(run).resolve()) if run is not None and Path(run).exists() else run

    def known(self) -> set[tuple[str, float]]:
        return {(p, s) for p, s in self.db.execute("SELECT path, start_s FROM items")}

    def done_files(self) -> set[str]:
        return {p for (p,) in self.db.execute("SELECT path FROM files")}

    def unvectored(self) -> list[tuple[int, str, float, float | None]]:
        rows = self.db.execute("SELECT k, path, start_s, end_s FROM items WHERE k >= ? ORDER BY k",
                               (self.index.ntotal,)).fetchall()
        return [(k, self.resolved(p), s, e) for k, p, s, e in rows]

    def add(self, items: Sequence[Item], vectors: np.ndarray, sourceless: Sequence[bool] | None = None,
            files_done: Sequence[str | Path] = ()) -> None:
        """Commit rows (and the files they finish), then their vectors."""
        start = self.rows()
        quiet = [False] * len(items) if sourceless is None else [bool(q) for q in sourceless]
        with self.db:
            self.db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (start + n, i.id, self.stored(i.audio), i.start_s, i.end_s, " | ".join(i.captions), int(q))
                for n, (i, q) in enumerate(zip(items, quiet, strict=True))])
            self.db.executemany("INSERT OR IGNORE INTO files VALUES (?)",
                                [(self.stored(f),) for f in files_done])
        self._quiet = None
        self.append(vectors)

    def append(self, vectors: np.ndarray) -> None:
        """Add vectors for rows already committed, and replace the vector file atomically."""
        import faiss

        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        tmp = self.root / f".{VECTORS}.{os.getpid()}"
        faiss.write_index(self.index, str(tmp))
        tmp.replace(self.root / VECTORS)

    def _sourceless(self) -> np.ndarray:
        if self._quiet is None:
            rows = self.db.execute("SELECT k FROM items WHERE sourceless = 1")
            self._quiet = np.array([k for (k,) in rows], dtype=np.int64)
        return self._quiet

    def _nearest(self, query: np.ndarray, k: int, selector=None) -> list[tuple[float, int]]:
        import faiss

        params = faiss.SearchParametersHNSW(sel=selector, efSearch=self.index.hnsw.efSearch) \
            if selector is not None else None
        scores, keys = self.index.search(np.ascontiguousarray(query[None], dtype=np.float32), k,
                                         params=params)
        return [(float(s), int(key)) for s, key in zip(scores[0], keys[0], strict=True) if key >= 0]

    def search(self, query: np.ndarray, k: int = 10) -> list[Hit]:
        """The k nearest clips; clips without a sound source only after all the others."""
        import faiss

        if len(self) == 0:
            return []
        k = min(k, len(self))
        quiet = self._sourceless()
        if len(quiet):
            found = self._nearest(query, k, faiss.IDSelectorNot(faiss.IDSelectorBatch(quiet)))
            if len(found) < k:  # fewer sounding clips than asked: the silent ones follow
                found += self._nearest(query, k - len(found), faiss.IDSelectorBatch(quiet))
        else:
            found = self._nearest(query, k)
        hits = []
        for score, key in found:
            cid, path, start, end, caption = self.db.execute(
                "SELECT id, path, start_s, end_s, caption FROM items WHERE k = ?", (key,)).fetchone()
            hits.append(Hit(score, cid, self.resolved(path), start, end, caption))
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


class Tower(Protocol):
    """What index and search need from a retrieval model. `embed_items` returns the items it
    could read, their vectors, and for each whether it holds no sound source."""

    dim: int

    def embed_items(self, items: Sequence[Item]) -> tuple[list[Item], np.ndarray, np.ndarray]: ...
    def embed_text(self, text: str) -> np.ndarray: ...
    def embed_file(self, path: str | Path) -> np.ndarray: ...


def sourceless(features: Sequence[ClipFeatures]) -> np.ndarray:
    """Whether each clip holds no sound source: YAMNet's strongest class over the clip is one
    of its readings of silence, noise floors and rooms (the classes the built-in asker never
    names as a source)."""
    from sonicaps.backends.builtin.sources import NOISE
    from sonicaps.backends.builtin.yamnet import class_names

    names = class_names()
    return np.array([names[int(np.argmax(f.probs))] in NOISE for f in features], dtype=bool)


class SceneCapsTower:
    """sonicaps' own retrieval runs (YAMNet patches + sentence vectors)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.model = DualEncoder.load(run_dir)
        self.dim = self.model.cfg.dim

    def embed_items(self, items: Sequence[Item]) -> tuple[list[Item], np.ndarray, np.ndarray]:
        feats = audio_features([(i.audio, i.start_s, i.end_s) for i in items], progress=False)
        kept = [(i, f) for i, f in zip(items, feats, strict=True) if f is not None]
        if not kept:
            return [], np.zeros((0, self.dim), np.float32), np.zeros(0, bool)
        ok = [f for _, f in kept]
        return [i for i, _ in kept], self.model.audio_vectors([f.patches for f in ok]), sourceless(ok)

    def embed_clips(self, audios: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Vectors of decoded 16-kHz clips (no second decode), and whether each is sourceless."""
        feats = embed_audio(list(audios))
        return self.model.audio_vectors([f.patches for f in feats]), sourceless(feats)

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
                progress: bool = True, text_model: str | None = None, segment_s: float = 10.0
                ) -> tuple[int, int, int]:
    """Embed every clip of a collection not yet in the index; (added, skipped, failed).
    A captioned dataset or pipeline output brings its own clips; audio folders, files and
    manifests are cut into `segment_s` clips as `sonicaps caption` cuts them."""
    model = open_tower(run_dir, text_model)
    idx = VectorIndex(index_dir, dim=model.dim, model_run=str(run_dir), text_model=text_model)
    repair = idx.unvectored()
    if repair:  # rows committed by a build that died before writing its vectors
        items = [Item(str(k), Path(p), (), "", s, e) for k, p, s, e in repair]
        kept, vecs, _ = model.embed_items(items)
        if len(kept) != len(items):
            raise RuntimeError(f"{index_dir}: {len(items) - len(kept)} indexed files are gone; "
                               "rebuild the index")
        idx.append(vecs)
    known = idx.known()
    if is_captioned(collection):
        return _index_items(idx, model, collection, known, progress)
    return _index_audio(idx, model, collection, known, segment_s, progress)


def _index_items(idx: VectorIndex, model: Tower, collection: str | Path, known: set, progress: bool
                 ) -> tuple[int, int, int]:
    todo = [i for i in read_dataset(collection) if (idx.stored(i.audio), i.start_s) not in known]
    added = failed = 0
    for b in tqdm(range(0, len(todo), BATCH), desc="indexing", unit="batch",
                  disable=not progress or not todo):
        batch = todo[b:b + BATCH]
        kept, vecs, quiet = model.embed_items(batch)
        if kept:
            idx.add(kept, vecs, quiet)
        added += len(kept)
        failed += len(batch) - len(kept)
    return added, len(known), failed


def _index_audio(idx: VectorIndex, model: Tower, collection: str | Path, known: set, segment_s: float,
                 progress: bool) -> tuple[int, int, int]:
    """Clips of audio files, decoded once, in batches; a file is marked done with the batch
    that holds its last clip, so a resumed build skips it without decoding it again."""
    import logging

    from sonicaps.pipeline.inputs import decode_source, iter_sources

    done = idx.done_files()
    sources = [s for s in iter_sources([collection]) if idx.stored(s.path) not in done]
    added = failed = 0
    batch: list[tuple[Item, np.ndarray]] = []
    finished: list[str] = []

    def flush() -> None:
        nonlocal added
        items = [i for i, _ in batch]
        if hasattr(model, "embed_clips"):
            vecs, quiet = model.embed_clips([a for _, a in batch])
        else:  # a tower with its own front end reads the spans itself
            items, vecs, quiet = model.embed_items(items)
        idx.add(items, vecs, quiet, files_done=finished)
        added += len(items)
        batch.clear()
        finished.clear()

    for src in tqdm(sources, desc="indexing", unit="file", disable=not progress or not sources):
        try:
            for clip in decode_source(src, segment_s, 1.0):
                if (idx.stored(clip.source), clip.start_s) in known:
                    continue
                batch.append((Item(clip.id, Path(clip.source), (), "", clip.start_s, clip.end_s), clip.audio))
                if len(batch) >= BATCH // 4:  # 64 decoded clips: 40 MB of audio at most
                    flush()
        except Exception as e:  # one unreadable file never stops the build: its clips so far are kept
            logging.getLogger(__name__).warning("%s: %s", src.path, e)
            failed += 1
        finished.append(src.path)
    if batch or finished:
        flush()
    return added, len(known), failed


class Searcher:
    """An index with its model loaded once: every query after the first costs only the text
    (or audio) encoder and the vector search."""

    def __init__(self, index_dir: str | Path) -> None:
        self.index = VectorIndex(index_dir)
        self.model = open_tower(self.index.model_run, self.index.meta.get("text_model"))

    def __call__(self, text: str | None = None, audio: str | Path | None = None, k: int = 10) -> list[Hit]:
        if (text is None) == (audio is None):
            raise ValueError("give either a text query or an audio file")
        with _one_torch_thread():
            query = self.model.embed_text(text) if text is not None else self.model.embed_file(audio)
        return self.index.search(query, k)


@contextmanager
def _one_torch_thread():
    """One query is one short sentence: torch's intra-op threads only wait on each other. On
    this project's 2 busy cores, MiniLM took 300 ms (p90 1.2 s) per query with 2 threads and
    27 ms (p90 48 ms) with 1 (benchmarks/search_speed.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def search(index_dir: str | Path, text: str | None = None, audio: str | Path | None = None,
           k: int = 10) -> list[Hit]:
    """The k clips nearest to a text query or to an example recording (loads the model: for
    many queries, keep a Searcher)."""
    if (text is None) == (audio is None):
        raise ValueError("give either a text query or an audio file")
    return Searcher(index_dir)(text, audio, k)
