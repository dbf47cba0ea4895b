"""A torch Dataset over any caption dataset sonicaps reads, for training."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sonicaps.audio import load_audio
from sonicaps.formats.readers import detect, read_records
from sonicaps.formats.records import AudioFinder, CaptionRecord
from sonicaps.formats.writers import SHARD_RECORDS


class CaptionDataset(torch.utils.data.Dataset):
    """Items {"id", "audio" (float32 16 kHz mono tensor), "captions"}.

    The records (text only) are read once; audio decodes per item from its file, found by
    the record's path or, for formats without paths (AudioCaps, SceneCaps CSVs), as
    `<audio_root>/<id or YouTube id>.*` (default audio_root: the dataset's `audio/`
    folder, else its folder); hf and webdataset audio comes from the embedded bytes.
    """

    def __init__(self, path: str | Path, fmt: str | None = None,
                 audio_root: str | Path | None = None) -> None:
        self.path = Path(path)
        self.fmt = fmt or detect(self.path)
        self.records: list[CaptionRecord] = list(read_records(self.path, self.fmt))
        base = self.path if self.path.is_dir() else self.path.parent
        root = Path(audio_root) if audio_root else (base / "audio" if (base / "audio").is_dir() else base)
        self.root = root
        self._finder = AudioFinder(root)
        self._hf: Any = None
        if self.fmt == "hf":
            import datasets

            hf = datasets.load_from_disk(str(self.path))
            self._hf = hf.cast_column("audio", datasets.Audio(decode=False))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        return {"id": rec.id, "audio": torch.from_numpy(self.audio(index)), "captions": list(rec.captions)}

    def audio(self, index: int) -> np.ndarray:
        rec = self.records[index]
        span = rec.extra.get("audio_is_source")  # a pipeline clip: a span of its source file
        embedded = self._embedded(index)
        if embedded is not None:
            data, is_clip, name = embedded
            with tempfile.NamedTemporaryFile(suffix=Path(name or rec.audio or "a.wav").suffix or ".wav") as f:
                f.write(data)
                f.flush()
                if span and not is_clip:  # written with whole files: cut the span here
                    return load_audio(f.name, start_s=rec.start_s or 0.0, end_s=rec.end_s)
                return load_audio(f.name)
        path = self._find(rec)
        if span:
            return load_audio(path, start_s=rec.start_s or 0.0, end_s=rec.end_s)
        return load_audio(path)

    def _embedded(self, index: int) -> tuple[bytes, bool, str | None] | None:
        """The embedded audio's bytes, whether they are the clip itself (hf and webdataset
        written by sonicaps store each clip's span unless told to keep files), its name."""
        if self._hf is not None:
            row = self._hf[index]
            audio = row["audio"]
            if not audio or not audio.get("bytes"):
                return None
            return audio["bytes"], bool(row.get("audio_is_clip")), audio.get("path")
        if self.fmt == "webdataset":
            import json
            import tarfile

            shard = index // SHARD_RECORDS
            with tarfile.open(self.path / f"shard-{shard:06d}.tar") as tar:
                meta, data, name = {}, None, None
                for member in tar:
                    if member.name == f"{index:09d}.json":
                        meta = json.loads(tar.extractfile(member).read())
                    elif member.name.startswith(f"{index:09d}."):
                        data, name = tar.extractfile(member).read(), member.name
                return (data, bool(meta.get("audio_is_clip")), name) if data is not None else None
        return None

    def _find(self, rec: CaptionRecord) -> Path:
        path = self._finder.find(rec)
        if path is None and rec.audio and (self.path.parent / rec.audio).is_file():
            path = self.path.parent / rec.audio  # relative to the dataset file
        if path is None:
            raise FileNotFoundError(f"no audio for {rec.id!r} (looked for {rec.audio or rec.id} "
                                    f"in {self.root})")
        return path
