"""A trained captioning model as the pipeline's write stage (`[write] backend = "captioner"`).

The model captions each clip's audio directly, an alternative to writing from the
three answers; pair it with `[ask] backend = "none"` to skip the questions entirely,
or keep an asker to store its answers beside the model's caption.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from sonicaps.captioning.data import Clip as ModelClip
from sonicaps.captioning.features import compute
from sonicaps.captioning.train import load
from sonicaps.clip import Answers, Clip


class CaptionerWriter:
    """Captions from a run directory of `sonicaps train`. A retry (attempt > 0) decodes
    with a wider beam, so the check stage gets a different caption to judge."""

    def __init__(self, run: str, beam: int | None = None) -> None:
        self.run = load(run)
        if beam is not None:
            self.run = replace(self.run, cfg=replace(self.run.cfg, beam=beam))
        digest = hashlib.sha256((Path(run) / "model.safetensors").read_bytes()).hexdigest()[:12]
        self.model_id = f"captioner({self.run.cfg.model}, {self.run.cfg.features}, {digest})"

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        run, cfg = self.run, self.run.cfg
        if attempt:
            run = replace(run, cfg=replace(cfg, beam=max(cfg.beam, 1) + 2 * attempt))
        prepared = []
        for clip in clips:
            feats = run.norms["feats"](compute(cfg.features, clip.audio))
            mid = run.norms["mid"](compute(cfg.mid_features, clip.audio)) if "mid" in run.norms else None
            prepared.append(ModelClip(clip.id, (), feats, mid))
        return run.caption(prepared)


NOT_ASKED = "Not asked: this pipeline captions the audio with a trained model."


class SkipAsker:
    """Asks nothing, for pipelines whose writer captions from the audio alone; the answer
    columns say so rather than stay empty."""

    model_id = "none"

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        return [Answers((NOT_ASKED,) * 3, {"asked": False}) for _ in clips]
