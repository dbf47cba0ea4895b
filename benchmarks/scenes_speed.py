"""How fast SceneCaps builds once its sources are cached, and that a rebuild is identical.

    .venv/bin/python benchmarks/scenes_speed.py [--n 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from sonicaps.scenes.fetch import fetch
from sonicaps.scenes.make import make


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    fetch(progress=False)  # sources cached before timing, as in the claim
    with tempfile.TemporaryDirectory() as tmp:
        times, digests = [], []
        for k in range(2):
            out = Path(tmp) / f"build{k}"
            t0 = time.perf_counter()
            make(out, args.n, seed=args.seed, progress=False)
            times.append(time.perf_counter() - t0)
            digests.append(digest(out))
    best = min(times)
    print(f"{args.n} scenes in {best:.1f} s: {args.n / best:.1f} scenes/s "
          f"(runs: {', '.join(f'{t:.1f} s' for t in times)}; one process)")
    print(f"second build byte-identical to the first: {digests[0] == digests[1]}")


if __name__ == "__main__":
    main()
