"""sonicaps: generate, curate, train and score audio captions.

    import sonicaps
    for rec in sonicaps.caption("recordings/"):        # see sonicaps.api
        print(rec["id"], rec["caption"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "PipelineConfig", "caption", "__version__"]


def __getattr__(name: str) -> Any:
    # Loaded on first use, so that `import sonicaps.metrics` does not import the pipeline.
    if name in ("caption", "Pipeline"):
        from sonicaps import api

        return getattr(api, name)
    if name == "PipelineConfig":
        from sonicaps.pipeline.config import PipelineConfig

        return PipelineConfig
    raise AttributeError(f"module 'sonicaps' has no attribute {name!r}")
