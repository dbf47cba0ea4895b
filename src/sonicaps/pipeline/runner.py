"""The local runner: decode ahead in threads, caption in batches, commit, resume.

Decoder threads turn sources into clips and feed a bounded queue (memory stays flat
however large the collection or the file); the main thread takes batches off the
queue, runs the stages and commits each batch to the store. Re-running the same
command skips every clip (and every source) the output directory already holds.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue

import numpy as np
from tqdm import tqdm

from sonicaps.audio import AudioError
from sonicaps.clip import Clip
from sonicaps.pipeline.config import PipelineConfig, caption_settings
from sonicaps.pipeline.inputs import Source, decode_source, is_span, iter_sources, last_clip_id
from sonicaps.pipeline.stages import Backends, caption_batch, failure
from sonicaps.pipeline.store import Progress, Store, printable


@dataclass
class RunSummary:
    clips: int = 0  # captioned in this run
    failures: int = 0  # recorded in this run
    skipped_sources: int = 0  # already finished by an earlier run
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def clips_per_s(self) -> float:
        return self.clips / self.seconds if self.seconds else 0.0


_END = object()


def _decoder(sources: Iterator[Source], lock: threading.Lock, out: Queue, cfg: PipelineConfig,
             done_ids: set[str], stop: threading.Event, timings: dict[str, float]) -> None:
    while not stop.is_set():
        with lock:
            src = next(sources, None)
        if src is None:
            break
        t0 = time.perf_counter()
        try:
            for clip in decode_source(src, cfg.segment_s, cfg.min_tail_s):
                timings["decode"] += time.perf_counter() - t0
                if clip.id not in done_ids:
                    bad = int(np.count_nonzero(~np.isfinite(clip.audio)))
                    out.put(clip if not bad else failure(clip, "decode", AudioError(
                        f"{clip.source}: {bad} non-finite (NaN/Inf) samples in {clip.id}")))
                if stop.is_set():
                    return
                t0 = time.perf_counter()
        except Exception as e:  # the file (or the rest of it) is unreadable: record, go on
            out.put(failure(source_of_failure(src), "decode", e, where=src.origin))
    out.put(_END)


def source_of_failure(src: Source) -> str:
    """What a failure that ends a whole source is recorded under: the file, or for a span
    the row or line naming it (one file's other spans are not finished by it)."""
    return src.origin if is_span(src) and src.origin else src.path


def _finished(src: Source, prog: Progress, cfg: PipelineConfig) -> bool:
    if not is_span(src):
        return printable(src.path) in prog.done_sources
    if src.origin and printable(src.origin) in prog.done_sources:
        return True
    return last_clip_id(src, cfg.segment_s, cfg.min_tail_s) in prog.finished_ids


def pending(inputs: Iterable[str | Path], audio_root: str | Path | None, store: Store,
            cfg: PipelineConfig) -> tuple[list[Source], RunSummary, set[str]]:
    """The sources an output directory does not hold yet, a summary counting the rest, and
    the clip ids the remaining sources already have records for (to skip). What the
    directory holds (every record's id) is read here and let go on return."""
    prog = store.load_progress()
    todo: list[Source] = []
    skipped = 0
    for src in iter_sources(list(inputs), audio_root):
        if _finished(src, prog, cfg):
            skipped += 1
        else:
            todo.append(src)
    # A span is redone from its start: every recorded clip of a file with spans to do is
    # skipped (a file finished by another of its spans counts as done for whole files).
    spans = {printable(s.path) for s in todo if is_span(s)}
    skip = prog.unfinished_ids | {cid for cid, source in prog.recorded if source in spans}
    return todo, RunSummary(skipped_sources=skipped), skip


def commit(store: Store | None, rows: list[dict], fails: list[dict], summary: RunSummary, bar: tqdm,
           start: float) -> None:
    """Store one batch's records (if there is a store) and count them in the summary and the
    progress bar."""
    t0 = time.perf_counter()
    if store is not None:
        store.commit(rows, fails)
    summary.timings["store"] += time.perf_counter() - t0
    summary.clips += len(rows)
    summary.failures += len(fails)
    bar.update(sum(1 for r in rows if r["last_in_source"]) + sum(1 for f in fails if f["last_in_source"]))
    bar.set_postfix(clips=summary.clips, clips_s=f"{summary.clips / (time.perf_counter() - start):.1f}",
                    failed=summary.failures, refresh=False)


def run(inputs: Iterable[str | Path], out_dir: str | Path, cfg: PipelineConfig | None = None, *,
        audio_root: str | Path | None = None, backends: Backends | None = None,
        progress: bool = True, overwrite: bool = False) -> RunSummary:
    """Caption every clip of `inputs` into `out_dir`, skipping what is already there. An
    output made with other settings is refused unless `overwrite` (Store.claim)."""
    summary = RunSummary()
    for _ in iter_run(inputs, out_dir, cfg, audio_root=audio_root, backends=backends, progress=progress,
                      overwrite=overwrite, summary=summary):
        pass
    return summary


def iter_run(inputs: Iterable[str | Path], out_dir: str | Path | None, cfg: PipelineConfig | None = None, *,
             audio_root: str | Path | None = None, backends: Backends | None = None,
             progress: bool = True, overwrite: bool = False, summary: RunSummary | None = None
             ) -> Iterator[tuple[list[dict], list[dict]]]:
    """`run`, one batch at a time: yields each batch's (rows, failure records) once it is
    committed to `out_dir` (or, with no output, once captioned: nothing is written and
    nothing skipped). `summary`, when given, is filled in as the run goes."""
    cfg = cfg or PipelineConfig()
    summary = summary if summary is not None else RunSummary()
    if out_dir is not None:
        store: Store | None = Store(out_dir)
        store.claim(caption_settings(cfg), overwrite)
        todo, done, skip = pending(inputs, audio_root, store, cfg)
        summary.skipped_sources = done.skipped_sources
    else:
        store, todo, skip = None, list(iter_sources(list(inputs), audio_root)), set()
    if not todo:
        return
    backends = backends or Backends.from_config(cfg)

    queue: Queue = Queue(maxsize=cfg.batch_size * 4)
    stop = threading.Event()
    lock = threading.Lock()
    it = iter(todo)
    workers = [threading.Thread(target=_decoder, name=f"decode-{k}", daemon=True,
                                args=(it, lock, queue, cfg, skip, stop, summary.timings))
               for k in range(min(cfg.decode_workers, len(todo)))]
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="file", disable=not progress, dynamic_ncols=True,
               desc="captioning")
    try:
        for w in workers:
            w.start()
        alive = len(workers)
        while alive:
            clips: list[Clip] = []
            fails: list[dict] = []
            while alive and len(clips) < cfg.batch_size:
                item = queue.get()
                if item is _END:
                    alive -= 1
                elif isinstance(item, Clip):
                    clips.append(item)
                else:
                    fails.append(item)
            rows: list[dict] = []
            if clips:
                rows, bad = caption_batch(clips, backends, cfg, summary.timings)
                fails += bad
            commit(store, rows, fails, summary, bar, start)
            yield rows, fails
    finally:
        stop.set()
        while any(w.is_alive() for w in workers):  # unblock decoders waiting on a full queue
            while not queue.empty():
                queue.get_nowait()
            for w in workers:
                w.join(timeout=0.05)
        bar.close()
        summary.seconds = time.perf_counter() - start
