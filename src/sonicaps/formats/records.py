"""One captioned clip, whatever format it came from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sonicaps.formats.identity import identity


@dataclass
class CaptionRecord:
    """A clip with its captions. `id` is unique within a dataset; `audio` is a file path
    (absolute, or relative to the dataset) or None; everything else is optional."""

    id: str
    captions: list[str]
    audio: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    youtube_id: str | None = None
    labels: list[str] | None = None
    split: str | None = None
    qa: dict[str, str] | None = None  # question_1..3, answer_1..3 (AudioSetCaps)
    caption_ids: list[str] | None = None  # per caption (AudioCaps' audiocap_id)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AudioFinder:
    """Finds a record's audio file: its own path (absolute, or under `root`), else a file
    under `root` named after its id or YouTube id (`<id>.*`, `[Y]<YouTube id>.*`, whatever
    layout named the clip), as AudioCaps downloads and SceneCaps' audio/ folder are laid
    out. The folder is listed once, on first use."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._by_stem: dict[str, Path] | None = None

    def find(self, rec: CaptionRecord) -> Path | None:
        if rec.audio:
            path = Path(rec.audio)
            for candidate in (path, self.root / path if self.root else None):
                if candidate is not None and candidate.is_file():
                    return candidate
        if self.root is None:
            return None
        if self._by_stem is None:
            self._by_stem = {}
            for f in sorted(self.root.rglob("*")):
                if f.is_file():
                    self._by_stem.setdefault(f.stem, f)
        yt = identity(rec).youtube_id
        stems = (rec.id, Path(rec.id).stem, Path(rec.audio).stem if rec.audio else None,
                 rec.youtube_id, yt, f"Y{yt}" if yt else None)
        for stem in stems:
            if stem and stem in self._by_stem:
                return self._by_stem[stem]
        return None
