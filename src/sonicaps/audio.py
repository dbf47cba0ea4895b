"""Decode any audio file to mono float32 (16 kHz unless asked), streamed in fixed-length segments.

soundfile (libsndfile) is tried first: it is the fastest here for wav/flac/ogg/mp3.
PyAV (bundled ffmpeg) takes everything else (m4a, aac, opus, video containers) and
files libsndfile rejects. Both paths stream, so a 2-hour file never sits in memory.
"""

from __future__ import annotations

import errno
import itertools
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

SAMPLE_RATE = 16_000  # every model in the default backend runs at 16 kHz

# Extensions collected when a folder is scanned. Decoding does not trust them:
# each file is probed, and a failure is reported per file.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".wma", ".aif",
     ".aiff", ".mp4", ".mkv", ".webm", ".mov", ".avi"}
)


class AudioError(RuntimeError):
    """A file that cannot be decoded; the message says why in plain words."""


@dataclass(frozen=True)
class Segment:
    """A decoded piece of a file: `audio` is 16 kHz mono float32 starting at `start_s`."""

    start_s: float
    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.audio) / self.sample_rate


def _check_readable(path: Path) -> None:
    if not path.exists():
        if path.is_symlink():  # exists() follows links: say which link is broken, and how
            try:
                path.resolve(strict=True)
            except RuntimeError:  # Python < 3.13 reports a loop this way
                raise AudioError(f"{path}: symlink loop") from None
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise AudioError(f"{path}: symlink loop") from None
            raise AudioError(f"{path}: broken symlink (its target {os.readlink(path)} does not exist)")
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:  # opening is the true test: os.access answers for the real, not the effective, user
        path.open("rb").close()
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")


def _to_mono(block: np.ndarray, sr: int, rate: int) -> np.ndarray:
    mono = block.mean(axis=1) if block.ndim == 2 else block
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if sr != rate and len(mono):
        mono = soxr.resample(mono, sr, rate, quality="HQ").astype(np.float32, copy=False)
    return mono


# A declared length this much longer than what decodes is a truncated file: mp3 encoder
# delay and padding account for a few hundredths of a second, never this much.
TRUNCATED_S = 0.5
MPEG = ("MP3", "MPEG")  # soundfile's names for an mp3 (libsndfile >= 1.1)


def _wav_declared_frames(path: Path) -> int | None:
    """Frames the data chunk of a RIFF/WAVE header declares, or None where it does not say
    (not a plain RIFF wav, or a streamed one: those write 0 or 0xFFFFFFFF as the size).
    libsndfile trusts the file's real size, so a cut wav reads short without a word."""
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        align = 0
        while len(chunk := fh.read(8)) == 8:
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt " and size >= 16:
                align = struct.unpack("<H", fh.read(16)[12:14])[0]
                fh.seek(size - 16 + (size & 1), 1)
            elif cid == b"data":
                return size // align if align and size not in (0, 0xFFFFFFFF) else None
            else:
                fh.seek(size + (size & 1), 1)
    return None


def _ogg_cut_short(path: Path) -> bool:
    """An Ogg stream that stops without its end-of-stream page, or inside its last page.
    Ogg declares no length up front, so this is how a cut .ogg/.opus is told from a short one."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(4) != b"OggS":
            return False
        fh.seek(max(0, size - 70_000))  # a page is at most 65,307 bytes
        tail = fh.read()
    at = tail.rfind(b"OggS")
    if at < 0 or len(tail) - at < 27:
        return True
    nseg = tail[at + 26]
    end = at + 27 + nseg + sum(tail[at + 27: at + 27 + nseg])
    return end > len(tail) or not tail[at + 5] & 0x04


# libsndfile is read a quarter of a second at a time: a read that meets a corrupt or cut
# frame raises and returns nothing, so this is at most what such an error costs.
_READ_S = 0.25


def _read(f, n: int) -> tuple[np.ndarray, Exception | None]:
    """Up to n frames, and the error that stopped the reading early, if any."""
    parts, have, step = [], 0, max(1, int(_READ_S * f.samplerate))
    while have < n:
        try:
            data = f.read(min(step, n - have), dtype="float32", always_2d=True)
        except Exception as e:  # libsndfile's errors are plain RuntimeErrors
            return _join(parts, f.channels), e
        if len(data) == 0:
            break
        parts.append(data)
        have += len(data)
    return _join(parts, f.channels), None


def _join(parts: list[np.ndarray], channels: int) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, channels), np.float32)


class _FfmpegSamples:
    """An mp3's samples at its own rate and channels, decoded by ffmpeg (PyAV).

    libsndfile (1.2.2) decodes an mp3 as ffmpeg does only in the first read of a file:
    later reads differ (quarter-second reads changed a 44.1-kHz benchmark clip by up to 0.13
    from 0.25 s on; 10-s reads of a 30-s tone, by up to 0.6 from 10 s on). libsndfile still
    gives the length the file's header declares. `read` is `_read`'s contract.
    """

    def __init__(self, path: Path, skip: int, channels: int) -> None:
        self.path, self.skip, self.channels = path, skip, channels
        self.rest = np.zeros((0, channels), np.float32)
        self.decoded = self._decode()

    def _decode(self):
        import av

        with av.open(str(self.path)) as container:
            stream = container.streams.audio[0]
            # only sample format and layout change (planar to interleaved float)
            to_float = av.AudioResampler(format="flt", layout=stream.layout.name, rate=stream.rate)
            for frame in itertools.chain(container.decode(stream), [None]):  # None: flush
                for out in to_float.resample(frame):
                    yield out.to_ndarray().reshape(-1, self.channels)

    def read(self, n: int) -> tuple[np.ndarray, Exception | None]:
        parts, have, error = [self.rest], len(self.rest), None
        while have < n:
            try:
                x = next(self.decoded, None)
            except Exception as e:  # PyAV's many error types: a corrupt or cut frame
                error = e
                break
            if x is None:
                break
            cut = min(self.skip, len(x))  # before the requested start
            x, self.skip = x[cut:], self.skip - cut
            parts.append(x)
            have += len(x)
        joined = _join(parts, self.channels)
        self.rest = joined[n:]
        return joined[:n], error


def _blocks_soundfile(path: Path, start_s: float, end_s: float | None, seg_s: float, rate: int):
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        declared = _wav_declared_frames(path) if f.format == "WAV" else None
        if f.frames == 0 and f.format not in MPEG:
            if declared:
                raise AudioError(f"{path}: truncated: no samples of the {declared / sr:.1f} s "
                                 "its header declares")
            raise AudioError(f"{path}: contains no audio samples")
        first = int(round(start_s * sr))
        if first >= f.frames and f.format not in MPEG:  # (an mp3's length is an estimate)
            raise AudioError(f"{path}: start_s={start_s:g} is past the end of the audio "
                             f"({f.frames / sr:.1f} s)")
        mpeg = _FfmpegSamples(path, first, f.channels) if f.format in MPEG else None
        if first and mpeg is None:
            f.seek(first)
        last = None if end_s is None else int(round(end_s * sr))
        pos = first
        block = int(round(seg_s * sr))
        while True:
            n = block if last is None else min(block, last - pos)
            if n <= 0:
                break
            data, error = mpeg.read(n) if mpeg is not None else _read(f, n)
            if len(data):
                yield pos / sr, _to_mono(data, sr, rate)
                pos += len(data)
            if error is not None:  # a FLAC cut mid-frame: libsndfile "lost sync"
                declared = f.frames if f.frames > pos else None
                of = f" of the {declared / sr:.1f} s its header declares" if declared else ""
                raise AudioError(f"{path}: truncated: the audio stops at {pos / sr:.1f} s{of} (the part "
                                 f"before is kept; {error})") from error
            if len(data) < n:
                break
        # A file cut short (an interrupted download or copy) decodes without error up to the
        # cut. An mp3's Xing/Info header and a wav's data chunk still declare the full
        # length, and an Ogg stream lacks its end page: the loss is reported.
        if f.format in MPEG:
            declared = f.frames
        wanted = None if declared is None else declared if last is None else min(last, declared)
        if wanted is not None and wanted - pos > TRUNCATED_S * sr:
            raise AudioError(f"{path}: truncated: the audio stops at {pos / sr:.1f} s of the "
                             f"{wanted / sr:.1f} s its header declares (the part before is kept)")
        if f.format == "OGG" and (last is None or last >= f.frames) and _ogg_cut_short(path):
            raise AudioError(f"{path}: truncated: the Ogg stream stops at {pos / sr:.1f} s without "
                             "its end-of-stream page (the part before is kept)")


class _until_error:
    """Iterate until the underlying iterator raises; the error is kept in `.error`, so that
    what was decoded before it can still be used (ffmpeg fails at a cut FLAC frame)."""

    def __init__(self, it):
        self.it, self.error = it, None

    def __iter__(self):
        while True:
            try:
                item = next(self.it)
            except StopIteration:
                return
            except Exception as e:  # PyAV's many error types (InvalidDataError, ...)
                self.error = e
                return
            yield item


def _blocks_pyav(path: Path, start_s: float, end_s: float | None, seg_s: float, rate: int):
    import av

    try:
        container = av.open(str(path))
    except Exception as e:  # PyAV raises many error types; all mean "cannot open"
        raise AudioError(f"{path}: not a decodable audio file ({e})") from e
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        if start_s > 0:
            container.seek(int(start_s / stream.time_base), stream=stream)
        want = int(round(seg_s * rate))
        buf: list[np.ndarray] = []
        have = 0
        pos = None  # time of the first buffered sample, in seconds
        stop = None if end_s is None else int(round(end_s * rate))

        def chunks():
            for frame in container.decode(stream):
                t = frame.time if frame.time is not None else None
                for out in resampler.resample(frame):
                    yield t, out.to_ndarray().reshape(-1)
                    t = None
            for out in resampler.resample(None):
                yield None, out.to_ndarray().reshape(-1)

        cursor = None  # sample index (at `rate`) of the next sample from the decoder
        decoded = _until_error(chunks())
        for t, x in decoded:
            if cursor is None:
                cursor = int(round((t or 0.0) * rate))
            # Drop samples before the requested start (seek lands on a keyframe).
            skip = int(round(start_s * rate)) - cursor
            if skip > 0:
                x = x[skip:]
                cursor += skip
            if stop is not None:
                x = x[: max(0, stop - cursor)]
            if len(x) == 0:
                if stop is not None and cursor >= stop:
                    break
                continue
            if pos is None:
                pos = cursor / rate
            buf.append(x)
            have += len(x)
            cursor += len(x)
            while have >= want:
                joined = np.concatenate(buf)
                yield pos, joined[:want].astype(np.float32)
                rest = joined[want:]
                buf, have = ([rest] if len(rest) else []), len(rest)
                pos += want / rate
        if have:
            yield pos, np.concatenate(buf).astype(np.float32)
        if decoded.error is not None:
            if cursor is None:  # nothing decoded: the caller reports an undecodable file
                raise decoded.error
            declared = float(stream.duration * stream.time_base) if stream.duration and stream.time_base \
                else None
            of = f" of the {declared:.1f} s its header declares" if declared else ""
            raise AudioError(f"{path}: truncated or corrupt: the audio stops at {cursor / rate:.1f} s{of} "
                             f"(the part before is kept; {decoded.error})") from decoded.error
        # ffmpeg stops quietly at a cut inside a frame. Where the stream declares its
        # length (FLAC's STREAMINFO, an mp4's track header), a shortfall is reported.
        if stream.duration and stream.time_base and cursor is not None:
            declared = float(stream.duration * stream.time_base)
            wanted = declared if end_s is None else min(end_s, declared)
            if wanted - cursor / rate > TRUNCATED_S:
                raise AudioError(f"{path}: truncated: the audio stops at {cursor / rate:.1f} s of the "
                                 f"{wanted:.1f} s its header declares (the part before is kept)")


def stream_segments(
    path: str | Path,
    segment_s: float = 10.0,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    min_tail_s: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
    check_end: bool = False,
) -> Iterator[Segment]:
    """Yield consecutive `segment_s`-long mono segments of [start_s, end_s) at
    `sample_rate` (16 kHz, the default backend's rate; the AudioSetCaps models take 32 kHz).

    A final piece shorter than `min_tail_s` is dropped, unless it is the only piece
    (a 0.3-s file still yields one 0.3-s segment). Raises AudioError when the file
    cannot be decoded at all; an error after some segments were yielded is raised
    then, so the caller keeps what came before. With `check_end`, audio that ends more
    than TRUNCATED_S before `end_s` is such an error too (a span asked of a list or
    manifest that the file does not hold).
    """
    path = Path(path)
    if segment_s <= 0:
        raise ValueError(f"segment_s must be positive, got {segment_s}")
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ValueError(f"{path}: start_s must be a time >= 0, got {start_s}")
    if end_s is not None and not (math.isfinite(end_s) and end_s > start_s):
        raise ValueError(f"{path}: end_s ({end_s}) must be a time after start_s ({start_s})")
    _check_readable(path)
    try:
        blocks = _blocks_soundfile(path, start_s, end_s, segment_s, sample_rate)
        first = next(blocks, None)
    except AudioError:
        raise
    except Exception:  # libsndfile refuses the format: let ffmpeg try
        blocks = _blocks_pyav(path, start_s, end_s, segment_s, sample_rate)
        try:
            first = next(blocks, None)
        except AudioError:
            raise
        except Exception as e:  # PyAV's many error types: undecodable from the start
            raise AudioError(f"{path}: not a decodable audio file ({e})") from e
    if first is None:
        if start_s > 0:
            raise AudioError(f"{path}: no audio at or after start_s={start_s:g} s (past the end)")
        raise AudioError(f"{path}: contains no audio samples")

    yielded = 0
    decoded_to = start_s
    pending = first
    while pending is not None:
        error = None
        try:
            nxt = next(blocks, None)
        except AudioError as e:
            nxt, error = None, e
        except Exception as e:
            stop = pending[0] + len(pending[1]) / sample_rate
            nxt, error = None, AudioError(f"{path}: decoding failed after {stop:.1f} s ({e})")
            error.__cause__ = e
        t, audio = pending
        decoded_to = t + len(audio) / sample_rate
        if len(audio) and (nxt is not None or yielded == 0 or len(audio) >= min_tail_s * sample_rate):
            yield Segment(round(t, 3), audio, sample_rate)  # what decoded before an error is kept
            yielded += 1
        if error is not None:
            raise error
        pending = nxt
    if yielded == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if check_end and end_s is not None and end_s - decoded_to > TRUNCATED_S:
        raise AudioError(f"{path}: the span asked for ends at {end_s:g} s, past the end of the "
                         f"audio at {decoded_to:.1f} s (the part before is kept)")


def load_audio(path: str | Path, *, start_s: float = 0.0, end_s: float | None = None,
               sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a whole file (or a span of it) to one mono array (16 kHz unless asked)."""
    parts = [s.audio for s in stream_segments(path, 60.0, start_s=start_s, end_s=end_s,
                                              min_tail_s=0.0, sample_rate=sample_rate)]
    return np.concatenate(parts)
