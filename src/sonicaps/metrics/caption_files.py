"""Read caption files for `sonicaps score`: CSV/TSV, JSONL/JSON and Parquet.

Accepted layouts: one row per caption with an id column (AudioCaps CSVs: several rows per
`youtube_id`), one row per clip with `caption_1..caption_N` columns (Clotho), or a list
of captions in a `captions` field. A directory of Parquet shards (sonicaps caption
output) reads as one table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

# Column names taken as the item id, in order of preference. AudioCaps' `audiocap_id` is
# per caption, not per clip, so it is deliberately absent.
ID_COLUMNS = ("id", "file_name", "fname", "filename", "youtube_id", "ytid", "audio_id", "path", "file")
CAPTION_COLUMNS = ("caption", "text", "raw_text")
NUMBERED = re.compile(r"^caption_?(\d+)$")


def _blank(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def _table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if path.is_dir() or suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".csv", ".tsv"):
        # Captions stay strings: an empty cell is "", never NaN.
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{number}: not valid JSON ({e.msg})") from e
                    if not isinstance(rows[-1], dict):
                        raise ValueError(f"{path}:{number}: expected a JSON object per line")
        return pd.DataFrame(rows)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {id: caption or [captions]}
            data = [{"id": k, "captions": v if isinstance(v, list) else [v]} for k, v in data.items()]
        return pd.DataFrame(data)
    raise ValueError(f"{path}: unknown caption file format {suffix!r} (use .csv, .tsv, .jsonl, .json "
                     "or .parquet)")


def read_captions(path: str | Path) -> dict[str, list]:
    """Map each id to its captions, in file order."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such caption file")
    df = _table(path)
    columns = list(df.columns)
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    if id_col is None:
        raise ValueError(f"{path}: no id column; expected one of {', '.join(ID_COLUMNS)}, found {columns}")
    numbered = sorted((int(m.group(1)), c) for c in columns if (m := NUMBERED.match(c)))
    text_col = next((c for c in CAPTION_COLUMNS if c in columns), None)
    out: dict[str, list] = {}
    ids = df[id_col].astype(str).tolist()
    if numbered:
        # Clotho: one row per clip; a blank cell means that clip has fewer captions.
        for row_id, values in zip(ids, df[[c for _, c in numbered]].itertuples(index=False), strict=True):
            out.setdefault(row_id, []).extend(v for v in values if not _blank(v))
    elif "captions" in columns:
        for row_id, values in zip(ids, df["captions"], strict=True):
            if not isinstance(values, list | tuple) and not hasattr(values, "tolist"):
                raise ValueError(f"{path}: id {row_id!r}: `captions` must be a list")
            out.setdefault(row_id, []).extend(list(values))
    elif text_col is not None:
        for row_id, value in zip(ids, df[text_col], strict=True):
            out.setdefault(row_id, []).append(value)
    else:
        raise ValueError(f"{path}: no caption column; expected one of {', '.join(CAPTION_COLUMNS)}, "
                         f"caption_1..caption_N or captions; found {columns}")
    return out


def pair(candidates: dict[str, list], references: dict[str, list], several: bool = False
         ) -> tuple[list[str], list, list]:
    """(ids, candidates, references) for the ids of the candidates file, checked one-to-one.
    With several=True (SPIDEr-max) each id's candidates come as a list."""
    extra = next((i for i, c in candidates.items() if len(c) != 1), None)
    if extra is not None and not several:
        raise ValueError(f"id {extra!r} has {len(candidates[extra])} candidate captions; "
                         "the candidates file needs exactly one per id (several are scored by "
                         "--metrics spider_max)")
    missing = [i for i in candidates if i not in references]
    if missing:
        raise ValueError(f"{len(missing)} candidate ids have no references, e.g. {missing[:3]}")
    unscored = [i for i in references if i not in candidates]
    if unscored:
        raise ValueError(f"{len(unscored)} reference ids have no candidate, e.g. {unscored[:3]}")
    ids = list(candidates)
    return ids, [candidates[i] if several else candidates[i][0] for i in ids], [references[i] for i in ids]
