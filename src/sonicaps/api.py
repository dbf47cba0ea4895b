"""The Python entry points for the main job, thin over sonicaps.pipeline:

    >>> import sonicaps
    >>> for rec in sonicaps.caption("recordings/"):          # doctest: +SKIP
    ...     print(rec["id"], rec["caption"])
    >>> pipe = sonicaps.Pipeline.from_config("configs/llamacpp.toml")   # doctest: +SKIP
    >>> records = list(pipe.caption(["a.wav", "b.flac"], output="out/"))  # doctest: +SKIP

`caption` loads the backends for one call; a `Pipeline` loads them once and captions many
times. Records are the Parquet output's rows as dicts, plus `failed`: a clip or file that
failed is a record with `failed = True` and the failure's `stage`, `error` and `message`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sonicaps.pipeline.config import PipelineConfig, from_dict, load_config
from sonicaps.pipeline.inputs import iter_sources
from sonicaps.pipeline.runner import iter_run
from sonicaps.pipeline.stages import Backends
from sonicaps.pipeline.store import Store, printable

Inputs = str | Path | Iterable[str | Path]
Config = str | Path | dict[str, Any] | PipelineConfig | None


def load(config: Config = None, **overrides: Any) -> PipelineConfig:
    """A PipelineConfig from a file path, a dict of the file's sections, a PipelineConfig or
    None (the built-in backends); `overrides` replace [pipeline] settings (batch_size=8)."""
    if config is None:
        cfg = PipelineConfig()
    elif isinstance(config, PipelineConfig):
        cfg = config
    elif isinstance(config, dict):
        cfg = from_dict(config)
    elif isinstance(config, str | Path):
        cfg = load_config(config)
    else:
        raise TypeError(f"config must be a path, a dict or a PipelineConfig, not {type(config).__name__}")
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def _as_list(inputs: Inputs) -> list[str | Path]:
    return [inputs] if isinstance(inputs, str | Path) else list(inputs)


def _failed(rec: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in rec.items() if k != "last_in_source"}, "failed": True}


class Pipeline:
    """The three stages with their models loaded, ready to caption any number of inputs."""

    def __init__(self, config: PipelineConfig | None = None, backends: Backends | None = None) -> None:
        self.config = config or PipelineConfig()
        self.backends = backends or Backends.from_config(self.config)

    @classmethod
    def from_config(cls, config: Config = None, **overrides: Any) -> Pipeline:
        """Load the backends a config file (or dict, or PipelineConfig) names; see `load`."""
        return cls(load(config, **overrides))

    def caption(self, inputs: Inputs, output: str | Path | None = None, *,
                audio_root: str | Path | None = None, overwrite: bool = False,
                progress: bool = False) -> Iterator[dict[str, Any]]:
        """Caption audio files, folders or manifests, yielding one record per clip as its
        batch finishes. With `output`, exactly `sonicaps caption INPUTS -o OUTPUT`: shards are
        written, finished clips are skipped (their stored records are yielded after the new
        ones), and an output made with other settings is refused unless `overwrite`."""
        inputs = _as_list(inputs)
        seen: set[str] = set()
        for rows, fails in iter_run(inputs, output, self.config, audio_root=audio_root,
                                    backends=self.backends, progress=progress, overwrite=overwrite):
            for row in rows:
                seen.add(row["id"])
                yield {**row, "failed": False}
            yield from (_failed(f) for f in fails)
        if output is not None:
            yield from _earlier(inputs, output, audio_root, seen)


def _earlier(inputs: list[str | Path], output: str | Path, audio_root: str | Path | None,
             seen: set[str]) -> Iterator[dict[str, Any]]:
    """The records an earlier run stored for these inputs' files."""
    import pyarrow.parquet as pq

    store = Store(output)
    sources = {printable(src.path) for src in iter_sources(inputs, audio_root)}
    for shard in store.shards():
        for row in pq.read_table(shard, filesystem=store.fs).to_pylist():
            if row["source"] in sources and row["id"] not in seen:
                yield {**row, "failed": False}


def caption(inputs: Inputs, config: Config = None, output: str | Path | None = None, *,
            audio_root: str | Path | None = None, overwrite: bool = False, progress: bool = False,
            **overrides: Any) -> Iterator[dict[str, Any]]:
    """Caption audio files, folders or manifests with the backends `config` names (default:
    the built-in CPU backends), yielding one record per clip; with `output`, also write the
    Parquet shards there, as `sonicaps caption` does. See `Pipeline.caption`."""
    pipe = Pipeline.from_config(config, **overrides)
    yield from pipe.caption(inputs, output, audio_root=audio_root, overwrite=overwrite, progress=progress)
