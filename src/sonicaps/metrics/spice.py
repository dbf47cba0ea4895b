"""SPICE through the official SPICE 1.0 jar, when the user has its Stanford CoreNLP jars.

SPICE parses captions into scene graphs with Stanford CoreNLP 3.6.0, which is Java only
and is not in any package registry, so there is no Python port: sonicaps runs the jar
that ships in the pycocoevalcap wheel, with its parse cache kept under the sonicaps
cache so repeated evaluations are fast. `sonicaps fetch-spice` downloads the two
CoreNLP jars for users with a network.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from sonicaps.sources import cache_dir
from sonicaps.weights import package_dir

CORENLP_URL = "http://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")


class SpiceUnavailable(RuntimeError):
    """SPICE cannot run here; the message says what is missing and how to get it."""


def spice_dir() -> Path:
    root = package_dir("pycocoevalcap")
    if root is None:
        raise SpiceUnavailable("SPICE needs the pycocoevalcap package: pip install pycocoevalcap==1.2")
    return root / "spice"


def check_available() -> Path:
    """The SPICE jar path, or SpiceUnavailable naming the missing piece and the fix."""
    jar = spice_dir() / "spice-1.0.jar"
    if shutil.which("java") is None:
        raise SpiceUnavailable("SPICE needs a Java runtime (8 or newer) on PATH, "
                               "e.g. `apt install default-jre-headless`")
    missing = [name for name in CORENLP_JARS if not (jar.parent / "lib" / name).exists()]
    if missing:
        raise SpiceUnavailable(
            f"SPICE needs Stanford CoreNLP 3.6.0 ({', '.join(missing)} missing in {jar.parent / 'lib'}). "
            "With a network, run `sonicaps fetch-spice` (downloads ~400 MB from "
            f"{CORENLP_URL}), or copy the two jars there."
        )
    return jar


def fetch_corenlp() -> Path:
    """Download CoreNLP 3.6.0 and put its two jars where the SPICE jar looks for them."""
    lib = spice_dir() / "lib"
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "corenlp.zip"
        urllib.request.urlretrieve(CORENLP_URL, archive)
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if Path(name).name in CORENLP_JARS:
                    target = lib / Path(name).name
                    with zf.open(name) as src, open(target.with_suffix(".part"), "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    target.with_suffix(".part").rename(target)
    check_available()
    return lib


def spice(candidates: list[str], references: list[list[str]]) -> tuple[float, np.ndarray]:
    """Corpus SPICE (mean of item F-scores, as pycocoevalcap) and per-item F-scores."""
    jar = check_available()
    parse_cache = cache_dir() / "spice"
    parse_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "input.json", Path(tmp) / "output.json"
        src.write_text(json.dumps([{"image_id": i, "test": c, "refs": r}
                                   for i, (c, r) in enumerate(zip(candidates, references, strict=True))]))
        cmd = ["java", "-jar", "-Xmx8G", str(jar), str(src), "-cache", str(parse_cache),
               "-out", str(out), "-subset", "-silent"]
        proc = subprocess.run(cmd, cwd=jar.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"SPICE jar failed ({proc.returncode}): {proc.stderr[-2000:]}")
        results = json.loads(out.read_text())
    by_id = {r["image_id"]: r["scores"]["All"]["f"] for r in results}
    scores = np.array([float(by_id[i]) if by_id.get(i) is not None else np.nan
                       for i in range(len(candidates))])
    return float(np.mean(scores)), scores
