"""One clip identity, whatever layout names the clip.

The same AudioSet clip is `vfY_TJq7n_U, 130` in AudioCaps' CSV, `YvfY_TJq7n_U.wav` in
WavCaps' copy of it, `vfY_TJq7n_U_130_10` in AudioSetCaps and `vfY_TJq7n_U_130_140` in a
`sonicaps caption` run over an AudioSet segment list. Records keep the name their file
gives them, byte for byte; `identity(record)` says which clip it is: a YouTube id with
the clip's span in the video (when known), plus the names it goes by (its id, its audio
file's name). `same_clip` and `ClipIndex` compare identities: the same name, or the same
YouTube video with overlapping spans, where an unknown span overlaps everything (a
`Y<ytid>.wav` copy could be any part of the video, so it is taken as all of it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sonicaps.formats.records import CaptionRecord

# AudioSet, AudioCaps, VGGSound and AudioSetCaps clips last at most 10 s.
CLIP_S = 10.0
# YouTube ids are 11 characters of [A-Za-z0-9_-]; AudioSet downloads prefix them with "Y"
# (`Y<ytid>.wav`), cut clips append "_<start>" or "_<a>_<b>".
_NAME = re.compile(r"^(?P<y>Y?)(?P<yt>[A-Za-z0-9_-]{11})"
                   r"(?:_(?P<a>\d+(?:\.\d+)?)(?:_(?P<b>\d+(?:\.\d+)?))?)?$")
_AUDIO_EXT = re.compile(r"\.(wav|flac|mp3|ogg|opus|m4a|aac|webm|mp4|mkv)$", re.IGNORECASE)


@dataclass(frozen=True)
class ClipIdentity:
    """Which clip a record is: its names, and its YouTube video and span when it has one."""

    names: frozenset[str]
    youtube_id: str | None = None
    start_s: float | None = None  # in the video; None: anywhere in it
    end_s: float | None = None


def parse_youtube_name(name: str) -> tuple[str, float | None, float | None] | None:
    """(YouTube id, start s, end s) of a clip name in the AudioSet family, or None.

    `Y<ytid>[.wav]` is the whole video as far as we know (None, None); `<ytid>_<start>`
    starts there and lasts CLIP_S. In `<ytid>_<a>_<b>` the last number is AudioSetCaps'
    duration (`_7Xe9vD3Hpg_4_10`: 10 s from 4 s) unless it can only be an end time (above
    both the start and CLIP_S: `Y--0w1YA1Hm4_30.000_40.000`, sonicaps' own `<ytid>_30_40`);
    when it is at most CLIP_S and above the start, both readings are possible and the
    duration reading is also the longer span, which is the safe one for leakage checks.
    Times in milliseconds (`_30000_40000`) are recognised by a span of 1000 or more.
    """
    stem = _AUDIO_EXT.sub("", name)
    m = _NAME.match(stem)
    if not m:
        return None
    yt = m["yt"]  # "YabcdefghiJ" (11 characters) is an id; "Y" + 11 characters a prefixed one
    if m["a"] is None:
        return yt, None, None
    a = float(m["a"])
    if m["b"] is None:
        return yt, a, a + CLIP_S
    b = float(m["b"])
    end = b if b > max(a, CLIP_S) else a + b
    if end - a >= 1000:  # milliseconds
        a, end = a / 1000, end / 1000
    return yt, a, end


def clip_key(youtube_id: str, start_s: float | None) -> str:
    """The id sonicaps gives an AudioCaps row, which has no name: "<YouTube id>_<start>"."""
    return youtube_id if start_s is None else f"{youtube_id}_{start_s:g}"


def identity(rec: CaptionRecord) -> ClipIdentity:
    """The clip a record is, from its fields, else from its names."""
    names = {rec.id}
    # The audio file's name is a name of the clip (Clotho's file_name is WavCaps' `wav`),
    # unless the file is a source that several clips were cut from, or a placeholder
    # without an audio extension (WavCaps' "wav_path").
    if rec.audio and not rec.extra.get("audio_is_source") and _AUDIO_EXT.search(rec.audio):
        names.add(PurePath(rec.audio).name)
    names = frozenset(n for n in names if n)
    if rec.youtube_id and not rec.extra.get("audio_is_source"):
        end = rec.end_s if rec.end_s is not None or rec.start_s is None else rec.start_s + CLIP_S
        return ClipIdentity(names, rec.youtube_id, rec.start_s, end)
    if rec.extra.get("audio_is_source") and rec.audio:
        # A `sonicaps caption` clip: start/end are times in its source file. The file's
        # name says where the file sits in the video when it is a cut clip.
        parsed = parse_youtube_name(PurePath(rec.audio).name)
        if parsed is None:
            return ClipIdentity(names)
        yt, offset, _ = parsed
        if offset is None or rec.start_s is None:
            return ClipIdentity(names, yt)
        end = rec.end_s if rec.end_s is not None else rec.start_s + CLIP_S
        return ClipIdentity(names, yt, offset + rec.start_s, offset + end)
    for name in (rec.id, *(n for n in names if n != rec.id)):
        parsed = parse_youtube_name(name)
        if parsed is not None:
            return ClipIdentity(names, *parsed)
    return ClipIdentity(names)


def name_identity(name: str) -> ClipIdentity:
    """The identity of a bare name (an id list's entry): the name, and its YouTube clip
    when it is one (`Y<ytid>.wav`, `<ytid>_<start>_<duration>`, a bare 11-character id)."""
    parsed = parse_youtube_name(name)
    return ClipIdentity(frozenset({name}), *parsed) if parsed else ClipIdentity(frozenset({name}))


def _overlap(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool:
    if a[0] is None or b[0] is None:
        return True  # an unknown span may be any part of the video
    a_end = a[1] if a[1] is not None else a[0] + CLIP_S
    b_end = b[1] if b[1] is not None else b[0] + CLIP_S
    return a[0] < b_end and b[0] < a_end


def same_clip(a: ClipIdentity, b: ClipIdentity) -> bool:
    """Two identities name one clip: a shared name, or one video with overlapping spans."""
    if a.names & b.names:
        return True
    return bool(a.youtube_id and a.youtube_id == b.youtube_id
                and _overlap((a.start_s, a.end_s), (b.start_s, b.end_s)))


@dataclass
class ClipIndex:
    """Identities to look clips up in: by name, and by YouTube id then span."""

    names: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    spans: dict[str, list[tuple[float | None, float | None, str]]] = field(
        default_factory=lambda: defaultdict(list))

    def add(self, ident: ClipIdentity, key: str) -> None:
        for name in ident.names:
            self.names[name].append(key)
        if ident.youtube_id:
            self.spans[ident.youtube_id].append((ident.start_s, ident.end_s, key))

    def find(self, ident: ClipIdentity) -> list[str]:
        """Keys of the entries that are this clip (names first, then overlapping spans)."""
        found = [key for n in sorted(ident.names) for key in self.names.get(n, ())]
        if ident.youtube_id:
            found += [key for s, e, key in self.spans.get(ident.youtube_id, ())
                      if _overlap((ident.start_s, ident.end_s), (s, e))]
        return list(dict.fromkeys(found))
