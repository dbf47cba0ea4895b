"""The `openai` backends against a server that misbehaves: nothing lost, nothing wrong stored,
retries and run time bounded.

    .venv/bin/python benchmarks/backend_faults.py [--clips 80] [--clips-per-kind 16] [--seed 0]

A fault-injecting OpenAI-compatible server (`sonicaps.fault_server`, standard library, with
a stand-in model whose answers name each clip's tone frequency) runs on 127.0.0.1, and
`sonicaps caption DIR -o OUT --config CFG --quiet` (a subprocess, as a user runs it)
captions a folder of 1-s tones (WAV and FLAC, one frequency per file) with ask and write
both `openai` pointed at it. Runs: "none" (no fault: the reference and the start-up time),
"mixed" (every fault kind, drawn with a seed, for 30 % of the requests, over --clips
files), "dead" (every request hangs: a server that accepts connections and never
answers), then each kind alone for 50 % of the requests over --clips-per-kind files.
Batches hold twice as many clips as requests in flight, as in configs/vllm.yaml.

Per run, it checks and prints:
- every clip ends captioned (a Parquet row) or recorded in OUT/_failures.jsonl with a
  reason; lost (neither) and duplicated (twice, or both) must be 0;
- every stored caption and answer is the stand-in model's for that clip (exact text): a
  5000-character reply, an HTML page or another clip's text stored is "wrong", must be 0;
- requests per clip counted at the server, max and mean; the max must be within the
  configured bound (3 questions + max_attempts writes) x (max_retries + 1) x
  (answer_retries + 1);
- the longest any request was held (at the server: until answered, or until the client
  closed the connection) must be within 2 x timeout_s + 0.5 s (the client checks its
  deadline as bytes arrive, so it may end one read after it);
- wall time, within the "none" run's time plus, per batch and wave of `concurrency`
  clips, the worst clip: every request held that long, then the longest backoff;
- `sonicaps caption` exits 0.
Exits 1 if any promise is broken.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from sonicaps.fault_server import FAULTS, MUSIC_ANSWER, SPEECH_ANSWER, FaultServer, tone_answer, tone_caption

SR = 16_000
# The client settings of the campaign: small, so that a run stays short.
CLIENT = {"timeout_s": 1.0, "max_retries": 2, "answer_retries": 1, "concurrency": 8}
PIPELINE = {"batch_size": 16, "max_attempts": 2}
REQUEST_BOUND_S = 2 * CLIENT["timeout_s"] + 0.5
QUESTION_TURNS = 3
# The longest wait between two attempts: the client's backoff (0.5 s doubling, at most 8 s)
# or the server's Retry-After (1 s here), whichever is longer.
MAX_WAIT_S = max(1.0, min(8.0, 0.5 * 2 ** (CLIENT["max_retries"] - 1)))


def tone_hz(k: int) -> int:
    return 200 + 20 * k


def make_inputs(folder: Path, n: int) -> dict[str, int]:
    """n one-second tones, WAV and FLAC in turn; returns file name -> frequency."""
    folder.mkdir(parents=True)
    out = {}
    t = np.arange(SR) / SR
    for k in range(n):
        name = f"tone_{k:03d}.{'wav' if k % 2 == 0 else 'flac'}"
        sf.write(folder / name, (0.3 * np.sin(2 * np.pi * tone_hz(k) * t)).astype(np.float32), SR)
        out[name] = tone_hz(k)
    return out


def write_config(path: Path, url: str) -> None:
    backend = {"backend": "openai", "base_url": url, "model": "stand-in", **CLIENT}
    path.write_text(yaml.safe_dump({"ask": backend, "write": backend, "check": {"backend": "textsim"},
                                    "pipeline": PIPELINE}))


def requests_bound() -> int:
    """Requests one clip may cost: every turn, each attempt retried to the limit."""
    turns = QUESTION_TURNS + PIPELINE["max_attempts"]
    return turns * (CLIENT["max_retries"] + 1) * (CLIENT["answer_retries"] + 1)


def time_bound(clips: int, base_s: float) -> float:
    """Wall time a run may take: the fault-free run, plus per batch and wave of
    `concurrency` clips the worst clip, every request of which is held REQUEST_BOUND_S and
    followed by the longest backoff."""
    batches = math.ceil(clips / PIPELINE["batch_size"])
    waves = batches * math.ceil(PIPELINE["batch_size"] / CLIENT["concurrency"])
    return base_s + waves * requests_bound() * (REQUEST_BOUND_S + MAX_WAIT_S)


@dataclass
class Result:
    kind: str
    clips: int
    requests: int = 0
    faults: int = 0
    captioned: int = 0
    recorded: int = 0
    reasons: Counter = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    wrong: list[str] = field(default_factory=list)
    max_requests: int = 0
    mean_requests: float = 0.0
    stray_requests: int = 0
    longest_request_s: float = 0.0
    wall_s: float = 0.0
    bound_s: float = 0.0
    exit_code: int = 0
    stderr: str = ""

    def broken(self) -> list[str]:
        out = []
        if self.exit_code != 0:
            out.append(f"sonicaps caption exited {self.exit_code}: {self.stderr[-800:]}")
        if self.lost or self.duplicated:
            out.append(f"{self.lost} lost, {self.duplicated} duplicated")
        if self.wrong:
            out.append(f"{len(self.wrong)} wrong stored texts, e.g. {self.wrong[0][:200]!r}")
        if self.max_requests > requests_bound():
            out.append(f"a clip cost {self.max_requests} requests > bound {requests_bound()}")
        if self.longest_request_s > REQUEST_BOUND_S:
            out.append(f"a request was held {self.longest_request_s:.1f} s > {REQUEST_BOUND_S:.1f} s")
        if self.stray_requests:
            out.append(f"{self.stray_requests} requests named no clip")
        if self.bound_s and self.wall_s > self.bound_s:
            out.append(f"wall time {self.wall_s:.1f} s > bound {self.bound_s:.1f} s")
        return out


def campaign_run(kind: str, kinds: tuple[str, ...], rate: float, files: dict[str, int], inputs: Path,
                 work: Path, seed: int, base_s: float) -> Result:
    """One `sonicaps caption` run against a fresh fault server, checked."""
    out, cfg = work / f"out-{kind}", work / f"{kind}.yaml"
    res = Result(kind, len(files))
    with FaultServer(kinds, rate, seed=seed, timeout_s=CLIENT["timeout_s"]) as server:
        write_config(cfg, server.url)
        cmd = [sys.executable, "-m", "sonicaps.cli", "caption", str(inputs), "-o", str(out),
               "--config", str(cfg), "--quiet"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        res.wall_s = time.perf_counter() - t0
        per_clip, injected = server.requests_per_clip(), server.faults_injected()
        res.longest_request_s = server.longest_request_s()
    res.exit_code, res.stderr = done.returncode, done.stderr
    res.requests, res.faults = sum(per_clip.values()), sum(injected.values())
    res.stray_requests = per_clip.pop("?", 0)
    counts = list(per_clip.values()) or [0]
    res.max_requests, res.mean_requests = max(counts), float(np.mean(counts))
    res.bound_s = time_bound(len(files), base_s) if base_s else 0.0

    import pandas as pd

    from sonicaps.pipeline.store import Store

    rows = pd.read_parquet(out) if any(out.glob("*.parquet")) else pd.DataFrame(columns=["id", "source"])
    fails = Store(out).read_failures() if out.exists() else []
    seen: Counter = Counter()
    for _, row in rows.iterrows():
        seen[Path(row["source"]).name] += 1
        hz = files.get(Path(row["source"]).name)
        expected = (tone_caption(hz), tone_answer(hz), SPEECH_ANSWER, MUSIC_ANSWER) if hz else ()
        got = (row["caption"], row["answer_1"], row["answer_2"], row["answer_3"])
        if got != expected:
            diff = [g for g, e in zip(got, expected, strict=False) if g != e] or list(got)
            res.wrong.append(f"{row['id']}: " + " | ".join(diff))
    for f in fails:
        seen[Path(f["source"]).name] += 1
        res.reasons[f"{f['stage']}: {f['error']}: {f['message'][:90]}"] += 1
    res.captioned, res.recorded = len(rows), len(fails)
    res.lost = sum(1 for name in files if seen[name] == 0)
    res.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    return res


def print_table(results: list[Result]) -> None:
    head = (f"{'fault':<16} {'clips':>5} {'requests':>8} {'faults':>6} {'captioned':>9} {'recorded':>8} "
            f"{'lost':>4} {'dup':>3} {'wrong':>5} {'max req':>7} {'mean req':>8} {'req s':>5} {'wall s':>7} "
            f"{'bound s':>7}")
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r.kind:<16} {r.clips:>5} {r.requests:>8} {r.faults:>6} {r.captioned:>9} {r.recorded:>8} "
              f"{r.lost:>4} {r.duplicated:>3} {len(r.wrong):>5} {r.max_requests:>7} {r.mean_requests:>8.1f} "
              f"{r.longest_request_s:>5.1f} {r.wall_s:>7.1f} {r.bound_s or float('nan'):>7.1f}")
    print(f"\nrequests per clip must be <= {requests_bound()} = ({QUESTION_TURNS} questions + "
          f"{PIPELINE['max_attempts']} writes) x ({CLIENT['max_retries']} retries + 1) x "
          f"({CLIENT['answer_retries']} answer retries + 1); 'req s', the longest a request was held, "
          f"<= {REQUEST_BOUND_S:.1f} s")
    print("reasons recorded in _failures.jsonl:")
    for r in results:
        for reason, n in r.reasons.most_common():
            print(f"  {r.kind:<16} {n:>3} x {reason}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=80, help="files in the mixed run")
    ap.add_argument("--clips-per-kind", type=int, default=16, help="files in each one-fault run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=sorted(FAULTS), help="one-fault runs to do (default all)")
    args = ap.parse_args()
    print(f"client: {CLIENT}; pipeline: {PIPELINE}")
    results: list[Result] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sonicaps-faults-") as tmp:
        work = Path(tmp)
        mixed_files = make_inputs(work / "in-mixed", args.clips)
        kind_files = make_inputs(work / "in-kind", args.clips_per_kind)
        base = campaign_run("none", (), 0.0, kind_files, work / "in-kind", work, args.seed, 0.0)
        results.append(base)
        mixed = campaign_run("mixed", tuple(FAULTS), 0.3, mixed_files, work / "in-mixed", work, args.seed,
                             base.wall_s)
        results.append(mixed)
        results.append(campaign_run("dead", ("hang",), 1.0, kind_files, work / "in-kind", work, args.seed,
                                    base.wall_s))
        print_table(results)
        for kind in args.only or FAULTS:
            results.append(campaign_run(kind, (kind,), 0.5, kind_files, work / "in-kind", work, args.seed,
                                        base.wall_s))
            print(f"  done {kind}: {results[-1].wall_s:.1f} s", flush=True)
    print()
    print_table(results)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    broken = [(r.kind, b) for r in results for b in r.broken()]
    if base.captioned != len(kind_files):
        broken.append(("none", f"the fault-free run captioned {base.captioned} of {len(kind_files)}"))
    for kind, why in broken:
        print(f"BROKEN {kind}: {why}")
    print("all promises kept" if not broken else f"{len(broken)} promise(s) broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
