"""One captioned clip, whatever format it came from."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# AudioSet clips are YouTube ids (11 characters from [A-Za-z0-9_-]); AudioSetCaps and
# WavCaps prefix them with "Y" and may append "_<start>_<end>" (seconds or milliseconds).
_AUDIOSET_ID = re.compile(r"^Y?(?P<yt>[A-Za-z0-9_-]{11})"
                          r"(?:_(?P<start>\d+(?:\.\d+)?)(?:_(?P<end>\d+(?:\.\d+)?))?)?(?:\.\w{2,4})?$")


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


def split_audioset_id(raw: str) -> tuple[str, float | None, float | None] | None:
    """(YouTube id, start s, end s) of an AudioSet-style id, or None if it is not one.

    "Y--0w1YA1Hm4_30.000_40.000" -> ("--0w1YA1Hm4", 30.0, 40.0); "Yabcdefghijk" ->
    ("abcdefghijk", None, None). Times above 1000 with an end - start of 10000 are taken as
    milliseconds (some releases write 30000_40000)."""
    m = _AUDIOSET_ID.match(raw.strip())
    if not m:
        return None
    start = float(m["start"]) if m["start"] else None
    end = float(m["end"]) if m["end"] else None
    if start is not None and end is not None and end - start >= 1000:
        start, end = start / 1000, end / 1000
    return m["yt"], start, end


def clip_key(youtube_id: str, start_s: float | None) -> str:
    """The id sonicaps gives an AudioSet clip: "<YouTube id>_<start in seconds>", the start
    written as short as it goes ("_30", "_30.5": two clips of a video never share an id)."""
    return youtube_id if start_s is None else f"{youtube_id}_{start_s:g}"


class AudioFinder:
    """Finds a record's audio file: its own path (absolute, or under `root`), else a file
    under `root` named after its id or YouTube id (`<id>.*`, `[Y]<YouTube id>.*`), as
    AudioCaps downloads and SceneCaps' audio/ folder are laid out. The folder is listed
    once, on first use."""

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
        for stem in (rec.id, rec.youtube_id, f"Y{rec.youtube_id}" if rec.youtube_id else None):
            if stem and stem in self._by_stem:
                return self._by_stem[stem]
        return None
