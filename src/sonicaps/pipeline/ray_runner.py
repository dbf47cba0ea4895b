"""The Ray runner: the same stages and output as the local runner, on a Ray cluster.

Ray Data streams the work: sources are decoded and cut in CPU tasks, the ask stage runs in
one pool and write + check in another (`[ray.ask]`, `[ray.write]`: actors that load the
models once, or bounded tasks for backends that call model servers), and the driver
commits each finished batch with the local runner's Store. So the schema, the failure
records, resume and the exactly-once guarantee are the local runner's: the driver is the
only writer, and with Ray's order preserved a source's finishing record never reaches the
store before its other clips. Items travel between operators as Python objects (Clip,
Answers, row dicts) pickled in a bytes column, so the stages receive exactly what they receive
locally.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import pickle
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from sonicaps.audio import AudioError
from sonicaps.backends import create
from sonicaps.clip import Clip
from sonicaps.pipeline.config import PipelineConfig, PoolSpec, RayConfig, caption_settings
from sonicaps.pipeline.inputs import Source, decode_source
from sonicaps.pipeline.runner import RunSummary, commit, pending, source_of_failure
from sonicaps.pipeline.stages import ask_batch, failure, write_batch
from sonicaps.pipeline.store import Store


class ClusterTooSmall(RuntimeError):
    """The cluster lacks the CPUs or GPUs a pool asks for (Ray would wait forever)."""


def _batch(kinds: list[str], items: list) -> dict[str, np.ndarray]:
    """Items travel pickled, as bytes. Left as objects, Ray gives a block of only dicts
    (failure records, rows) an Arrow struct type that it then cannot merge with a block
    of pickled clips, and the run dies (tests/test_ray.py)."""
    arr = np.empty(len(items), dtype=object)
    for k, item in enumerate(items):
        arr[k] = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
    return {"kind": np.array(kinds, dtype=object), "item": arr}


def _items(batch: dict[str, np.ndarray]) -> list[tuple[str, Any]]:
    """(kind, item) pairs of a batch made by `_batch`."""
    return [(k, pickle.loads(x)) for k, x in zip(batch["kind"], batch["item"], strict=True)]


def decode_sources(batch: dict[str, np.ndarray], cfg: PipelineConfig,
                   skip: frozenset[str]) -> Iterator[dict[str, np.ndarray]]:
    """Sources -> clips, yielded a model batch at a time (a long file never sits in memory
    whole). Bad audio becomes a failure record, as in the local runner."""
    kinds: list[str] = []
    items: list = []
    for fields in batch["source"]:
        src = Source(**fields)
        try:
            for clip in decode_source(src, cfg.segment_s, cfg.min_tail_s):
                if clip.id in skip:
                    continue
                bad = int(np.count_nonzero(~np.isfinite(clip.audio)))
                if bad:
                    kinds.append("failure")
                    items.append(failure(clip, "decode", AudioError(
                        f"{clip.source}: {bad} non-finite (NaN/Inf) samples in {clip.id}")))
                else:
                    kinds.append("clip")
                    items.append(clip)
                if len(items) >= cfg.batch_size:
                    yield _batch(kinds, items)
                    kinds, items = [], []
        except Exception as e:  # the file (or the rest of it) is unreadable: record, go on
            kinds.append("failure")
            items.append(failure(source_of_failure(src), "decode", e, where=src.origin))
    if items:
        yield _batch(kinds, items)


class AskStage:
    """The ask stage over a batch; an actor holds one (the asker loads once)."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.asker = create("ask", cfg.ask.backend, **cfg.ask.options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = _items(batch)
        clips = [x for k, x in pairs if k == "clip"]
        answers, fails = ask_batch(clips, self.asker)
        answered = {c.id: a for c, a in zip(clips, answers, strict=True) if a is not None}
        failed = {f["id"]: f for f in fails}
        kinds, items = [], []
        for kind, item in pairs:
            if kind != "clip":
                kinds.append(kind)
                items.append(item)
            elif item.id in answered:
                kinds.append("answered")
                items.append((item, answered[item.id], self.asker.model_id, _yamnet_result(item)))
            else:
                kinds.append("failure")
                items.append(failed[item.id])
        return _batch(kinds, items)


class WriteStage:
    """Write and check over a batch of answered clips; an actor holds one."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.writer = create("write", cfg.write.backend, **cfg.write.options)
        self.scorer = create("check", cfg.check.backend, **cfg.check.options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pairs = _items(batch)
        answered = [x for k, x in pairs if k == "answered"]
        by_asker: dict[str, list[tuple[Clip, Any]]] = {}
        for clip, ans, asker_id, yamnet in answered:
            if yamnet is not None:
                _remember_yamnet(clip, yamnet)
            by_asker.setdefault(asker_id, []).append((clip, ans))
        rows: dict[str, dict] = {}
        fails: dict[str, list[dict]] = {}
        for asker_id, done in by_asker.items():
            r, f = write_batch([c for c, _ in done], [a for _, a in done], asker_id,
                               self.writer, self.scorer, self.cfg)
            rows.update((row["id"], row) for row in r)
            for rec in f:
                fails.setdefault(rec["id"], []).append(rec)
        kinds, items = [], []
        for kind, item in pairs:
            if kind != "answered":
                kinds.append(kind)
                items.append(item)
                continue
            cid = item[0].id
            if cid in rows:
                kinds.append("row")
                items.append(rows[cid])
            for rec in fails.get(cid, []):
                kinds.append("failure")
                items.append(rec)
        return _batch(kinds, items)


def _yamnet_result(clip: Clip) -> Any:
    """The ask stage's YAMNet result for a clip, if it ran YAMNet (the built-in asker): it
    travels with the clip, so a check that needs it (the built-in retrieval scorer) in the
    write pool's process need not run the network again."""
    from sonicaps.backends.builtin import yamnet

    return yamnet.recent_result(clip.audio)


def _remember_yamnet(clip: Clip, result: Any) -> None:
    from sonicaps.backends.builtin import yamnet

    yamnet.remember(clip.audio, result)


# Task pools build their stage once per worker process (Ray reuses the processes).
_TASK_STAGES: dict[tuple[type, str], Any] = {}


def run_stage_task(batch: dict[str, np.ndarray], stage: type, cfg: PipelineConfig) -> dict[str, np.ndarray]:
    key = (stage, repr(cfg))
    if key not in _TASK_STAGES:
        _TASK_STAGES[key] = stage(cfg)
    return _TASK_STAGES[key](batch)


def required_resources(rc: RayConfig) -> dict[str, float]:
    """CPUs and GPUs the pools hold when all of them run."""
    pools = (rc.ask, rc.write)
    return {"CPU": rc.decode_tasks * rc.decode_cpus + sum(p.size * p.num_cpus for p in pools),
            "GPU": sum(p.size * p.num_gpus for p in pools)}


def check_resources(rc: RayConfig, available: dict[str, float]) -> None:
    """Raise ClusterTooSmall when a pool, or all of them together, cannot be placed."""
    problems = []
    for name, pool in (("ask", rc.ask), ("write", rc.write)):
        for res, each in (("CPU", pool.num_cpus), ("GPU", pool.num_gpus)):
            if each > 0 and each > available.get(res, 0.0):
                problems.append(f"[ray.{name}] asks for {each:g} {res} per {pool.pool[:-1]}, "
                                f"the cluster has {available.get(res, 0.0):g}")
    if not problems:
        for res, need in required_resources(rc).items():
            if need > available.get(res, 0.0) + 1e-9:
                each = "num_cpus" if res == "CPU" else "num_gpus"
                parts = [f"{name} {pool.size} x {getattr(pool, each):g}"
                         for name, pool in (("ask", rc.ask), ("write", rc.write))]
                if res == "CPU":
                    parts.insert(0, f"decode {rc.decode_tasks} x {rc.decode_cpus:g}")
                problems.append(f"the pools need {need:g} {res} in all ({', '.join(parts)}), "
                                f"the cluster has {available.get(res, 0.0):g}")
    if problems:
        raise ClusterTooSmall("; ".join(problems) + ". Lower the pool sizes or per-actor resources in "
                              "the [ray] config, or add nodes.")


def _map_stage(ds: Any, stage: type, pool: PoolSpec, cfg: PipelineConfig) -> Any:
    import ray.data

    # Ray bundles blocks until a batch has batch_size items, so model batches keep their size.
    kwargs = {"batch_size": cfg.batch_size, "num_cpus": pool.num_cpus, "batch_format": "numpy"}
    if pool.num_gpus:
        kwargs["num_gpus"] = pool.num_gpus
    if pool.pool == "actors":
        return ds.map_batches(stage, fn_constructor_kwargs={"cfg": cfg},
                              compute=ray.data.ActorPoolStrategy(size=pool.size), **kwargs)
    return ds.map_batches(run_stage_task, fn_kwargs={"stage": stage, "cfg": cfg},
                          compute=ray.data.TaskPoolStrategy(size=pool.size), **kwargs)


def _connect(rc: RayConfig, address: str | None) -> bool:
    """Join or start a cluster; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = address or rc.address
    common = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its per-run INFO lines
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(num_cpus=rc.num_cpus, **common)
    return True


def run_ray(inputs: Iterable[str | Path], out_dir: str | Path, cfg: PipelineConfig | None = None, *,
            address: str | None = None, audio_root: str | Path | None = None,
            progress: bool = True, overwrite: bool = False) -> RunSummary:
    """Caption every clip of `inputs` into `out_dir` on Ray, skipping what is already there."""
    cfg = cfg or PipelineConfig()
    store = Store(out_dir)
    store.claim(caption_settings(cfg), overwrite)
    todo, summary, skip = pending(inputs, audio_root, store, cfg)
    if not todo:
        return summary

    import ray
    import ray.data

    started = _connect(cfg.ray, address)
    try:
        if not cfg.ray.autoscaling:
            check_resources(cfg.ray, ray.cluster_resources())
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # see the module docstring
        ctx.enable_progress_bars = False  # ours counts files and clips
        # A model batch of sources per block: results reach the store (and the progress bar)
        # every few batches, and a kill loses little.
        blocks = math.ceil(len(todo) / cfg.batch_size)
        # Sources travel as one pickled object each (Arrow would need a schema for them).
        ds = ray.data.from_items([{"source": dataclasses.asdict(src)} for src in todo],
                                 override_num_blocks=blocks)
        ds = ds.map_batches(decode_sources, batch_size=1, batch_format="numpy",
                            fn_kwargs={"cfg": cfg, "skip": frozenset(skip)},
                            compute=ray.data.TaskPoolStrategy(size=cfg.ray.decode_tasks),
                            num_cpus=cfg.ray.decode_cpus)
        ds = _map_stage(ds, AskStage, cfg.ray.ask, cfg)
        ds = _map_stage(ds, WriteStage, cfg.ray.write, cfg)

        start = time.perf_counter()
        bar = tqdm(total=len(todo), unit="file", disable=not progress, dynamic_ncols=True,
                   desc="captioning (ray)")
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                pairs = _items(batch)
                rows = [x for k, x in pairs if k == "row"]
                fails = [x for k, x in pairs if k == "failure"]
                commit(store, rows, fails, summary, bar, start)
        finally:
            bar.close()
            summary.seconds = time.perf_counter() - start
    finally:
        if started:
            ray.shutdown()
    return summary
