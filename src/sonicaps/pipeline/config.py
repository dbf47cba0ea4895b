"""Pipeline settings: which backend runs each stage, and how clips are cut and batched.

A config file (TOML or YAML) holds the same fields:

    [ask]
    backend = "builtin"
    [check]
    backend = "retrieval"
    [pipeline]
    batch_size = 16
    [ray]                 # only read by `--engine ray`
    num_cpus = 8
    [ray.ask]             # the ask stage's pool
    size = 1
    num_gpus = 0.5
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class BackendSpec:
    backend: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PoolSpec:
    """Where a stage runs on Ray. "actors": a fixed pool of `size` actors, each loading the
    models once (in-process models, e.g. on a GPU). "tasks": at most `size` concurrent tasks
    (stages that call model servers, so many CPU workers share a few GPU servers)."""

    pool: str = "actors"
    size: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.pool not in ("actors", "tasks"):
            raise ValueError(f"ray pool must be 'actors' or 'tasks', not {self.pool!r}")
        if self.size < 1 or self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"invalid ray pool: {self}")


@dataclass(frozen=True)
class RayConfig:
    """The Ray engine: the cluster to join and a pool per stage (write and check share one,
    since the check decides whether to rewrite)."""

    address: str | None = None  # None: start a local cluster; "auto" or "ray://host:port": join one
    # Logical CPUs of a local cluster. More than the cores, so that the decode tasks and the
    # driver's reads are not starved by actors holding a CPU each.
    num_cpus: int = 8
    # An autoscaling cluster grows when pools wait; otherwise pools larger than the cluster
    # are refused up front (Ray would wait for them forever).
    autoscaling: bool = False
    decode_tasks: int = 2  # concurrent decode tasks (each decodes one source at a time)
    decode_cpus: float = 1.0
    ask: PoolSpec = PoolSpec()
    write: PoolSpec = PoolSpec()


@dataclass(frozen=True)
class PipelineConfig:
    ask: BackendSpec = BackendSpec("builtin")
    write: BackendSpec = BackendSpec("builtin")
    check: BackendSpec = BackendSpec("retrieval")
    segment_s: float = 10.0  # clip length; long files are cut into pieces of this length
    min_tail_s: float = 1.0  # a shorter last piece of a long file is dropped
    batch_size: int = 16  # clips per model call
    max_attempts: int = 2  # write/check rounds before keeping the best caption
    # Acceptance threshold for clips without given labels; None: the check backend's own
    # calibrated value (its accept_threshold attribute).
    accept_threshold: float | None = None
    decode_workers: int = 2  # threads decoding files ahead of the models
    ray: RayConfig = RayConfig()

    def __post_init__(self) -> None:
        checks = {
            "segment_s": self.segment_s > 0,
            "min_tail_s": self.min_tail_s >= 0,
            "batch_size": self.batch_size >= 1,
            "max_attempts": self.max_attempts >= 1,
            "decode_workers": self.decode_workers >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid pipeline setting(s): {', '.join(bad)}")


_STAGES = ("ask", "write", "check")


def caption_settings(cfg: PipelineConfig) -> dict[str, Any]:
    """The settings that decide which captions a run writes (backends, their options, how
    clips are cut, how many attempts): what an output folder records, so that a re-run
    with other settings is not mixed into it. Batching, threads and Ray are left out."""
    import json

    data = {stage: {"backend": spec.backend, **spec.options}
            for stage, spec in ((s, getattr(cfg, s)) for s in _STAGES)}
    data.update(segment_s=cfg.segment_s, min_tail_s=cfg.min_tail_s, max_attempts=cfg.max_attempts,
                accept_threshold=cfg.accept_threshold)
    return json.loads(json.dumps(data, default=str))  # as it reads back from the JSON file


def _ray_config(data: dict[str, Any]) -> RayConfig:
    data = dict(data)
    pools = {name: PoolSpec(**data.pop(name)) for name in ("ask", "write") if name in data}
    unknown = set(data) - {f.name for f in dataclasses.fields(RayConfig)}
    if unknown:
        raise ValueError(f"unknown [ray] setting(s): {sorted(unknown)}")
    return RayConfig(**data, **pools)


def from_dict(data: dict[str, Any]) -> PipelineConfig:
    unknown = set(data) - {*_STAGES, "pipeline", "ray"}
    if unknown:
        raise ValueError(f"unknown config section(s): {sorted(unknown)}")
    kwargs: dict[str, Any] = {}
    for stage in _STAGES:
        if stage in data:
            sec = dict(data[stage])
            if "backend" not in sec:
                raise ValueError(f"config section [{stage}] needs a 'backend' name")
            kwargs[stage] = BackendSpec(sec.pop("backend"), sec.pop("options", {}) | sec)
    pipe = dict(data.get("pipeline", {}))
    names = {f.name for f in dataclasses.fields(PipelineConfig)} - {*_STAGES, "ray"}
    unknown = set(pipe) - names
    if unknown:
        raise ValueError(f"unknown [pipeline] setting(s): {sorted(unknown)}")
    if "ray" in data:
        kwargs["ray"] = _ray_config(data["ray"])
    return PipelineConfig(**kwargs, **pipe)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a .toml or .yaml file as a dict."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    raise ValueError(f"{path}: config must be .toml, .yaml or .yml")


def load_config(path: str | Path) -> PipelineConfig:
    return from_dict(read_config_file(path))
