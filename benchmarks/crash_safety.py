"""Crash safety in figures: kill sonicaps at random moments, restart it, count what was lost.

    .venv/bin/python benchmarks/crash_safety.py [--clips 300] [--kills 24] [--ray-kills 6]
        [--index-kills 10] [--review-kills 8] [--seed 0] [--keep DIR]

The collection is real recordings (SceneCaps' recorded sources, fetched once from the
Debian and npm registries): `--clips` 10-s clips in wav/flac/ogg/mp3 (44.1 kHz stereo),
three long files the pipeline cuts into 10-s segments, and five bad files. It is first
captioned without interruption (the reference). Then:

- `sonicaps caption` is killed with SIGKILL `--kills` times and restarted each time,
  until a run ends by itself. Most kills come at a random moment (model loading included);
  some at chosen points, by a wrapper that SIGKILLs the process from inside: on entering
  the first batch's commit, between a shard's write and its rename, just after the rename
  (before the records that finish its sources), in the middle of a failure record (a torn
  line), and in the last batch. Then one SIGINT and one SIGTERM. After every kill the
  output directory is read as a user would (every visible shard must open). At the end:
  clips expected (the reference's), present, duplicates, lost, corrupt shards, whether
  the failure records equal the reference's, and captions equal to the reference's.
- the same with `--engine ray` (`--ray-kills`), and the Ray processes left behind.
- `sonicaps index` (the search index) over the reference output, killed `--index-kills`
  times (random moments, between a batch's rows and its vectors, and between the vector
  file's write and its rename): rows and vectors equal the uninterrupted build's.
- `sonicaps review` over a large pipeline output, killed `--review-kills` times while it
  indexes the shards into its database and a client posts reviews: every review the
  server acknowledged is there afterwards, the catalog holds every row once, and
  SQLite's integrity check passes.

Exits non-zero if anything was lost, duplicated, corrupt or inconsistent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import soundfile as sf

from sonicaps.audio import SAMPLE_RATE
from sonicaps.faithfulness import make_clips, recorded
from sonicaps.scenes.catalog import sources
from sonicaps.scenes.fetch import fetch
from sonicaps.scenes.prepare import load_prepared

BATCH = 16
INDEX_BATCH = 32  # smaller than the default 256, so a kill lands between many batches

# Runs the CLI, and SIGKILLs it from inside at the point CRASH_AT names ("point:n": the
# n-th time the point is reached). Patching from outside the package keeps test hooks out
# of the product.
WRAPPER = r'''
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even from nohup/&
spec = os.environ.get("CRASH_AT", "")
point, _, n = spec.partition(":")
n = int(n or 1)
seen = [0]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def hit():
    seen[0] += 1
    if seen[0] >= n:
        die()
if os.environ.get("INDEX_BATCH"):
    import sonicaps.retrieval.index as ix
    ix.BATCH = int(os.environ["INDEX_BATCH"])
if point in ("commit", "last-batch", "before-rename", "after-rename", "torn-failure"):
    from sonicaps.pipeline import store as st
    if point in ("commit", "last-batch"):
        orig = st.Store.commit
        def commit(self, rows, fails):
            if point == "commit" or len(rows) < int(os.environ["BATCH"]):
                hit()
            orig(self, rows, fails)
        st.Store.commit = commit
    elif point == "torn-failure":
        def append(self, failures):
            if failures:
                data = "".join(__import__("json").dumps(r) + "\n" for r in failures).encode()
                with open(self.failures_path, "ab") as f:
                    f.write(data[: len(data) // 2])
                die()
        st.Store._append_failures = append
    else:
        real = os.replace
        def replace(a, b, *args, **kw):
            if point == "before-rename" and str(b).endswith(".parquet"):
                hit()
            real(a, b, *args, **kw)
            if point == "after-rename" and str(b).endswith(".parquet"):
                hit()
        os.replace = replace
elif point in ("index-rows", "index-vectors"):
    import sonicaps.retrieval.index as ix
    if point == "index-rows":  # rows committed, vectors not yet added
        orig = ix.VectorIndex.append
        def append(self, vectors):
            hit()
            orig(self, vectors)
        ix.VectorIndex.append = append
    else:  # the new vector file written under its temporary name, not renamed
        import faiss
        real = faiss.write_index
        def write_index(index, path):
            real(index, path)
            hit()
        faiss.write_index = write_index
from sonicaps.cli import main
sys.exit(main(sys.argv[1:]))
'''


def cli(args: list[str], *, log: Path, crash_at: str = "", kill_after: float | None = None,
        sig: int = signal.SIGKILL, env: dict | None = None) -> tuple[int, bool, float]:
    """Run sonicaps (through the wrapper); (return code, killed by us, seconds from the
    signal to the exit, or the run's seconds when no signal was sent)."""
    full_env = {**os.environ, "CRASH_AT": crash_at, "BATCH": str(BATCH), **(env or {})}
    t0 = time.perf_counter()
    with open(log, "ab") as out:
        p = subprocess.Popen([sys.executable, "-c", WRAPPER, *args], stdout=out, stderr=out,
                             env=full_env, start_new_session=True)
        killed = False
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(sig)
            killed, t0 = True, time.perf_counter()
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                return -999, killed, time.perf_counter() - t0  # did not stop within 60 s
    return p.returncode, killed or p.returncode == -signal.SIGKILL, time.perf_counter() - t0


# --- the collection -------------------------------------------------------------------

def build_collection(root: Path, n_clips: int, seed: int) -> Path:
    pool = recorded(sources())
    fetch(pool, progress=False)
    coll = root / "collection"
    make_clips(pool, coll / "clips", n_clips, 0, seed=seed, prefix="c")
    (coll / "clips.truth.jsonl").unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    long_dir = coll / "long"
    long_dir.mkdir()
    for k, (minutes, ext) in enumerate([(1.0, "flac"), (1.5, "ogg"), (2.05, "mp3")]):
        parts, total = [], 0
        while total < minutes * 60 * SAMPLE_RATE:
            x = load_prepared(pool[int(rng.integers(len(pool)))])[: 8 * SAMPLE_RATE]
            parts += [x, np.zeros(SAMPLE_RATE // 2, np.float32)]
            total += len(x) + SAMPLE_RATE // 2
        x = np.concatenate(parts)[: int(minutes * 60 * SAMPLE_RATE)] * 0.5
        sf.write(long_dir / f"long{k}.{ext}", x, SAMPLE_RATE)
    bad = coll / "bad"
    bad.mkdir()
    (bad / "empty.wav").write_bytes(b"")
    (bad / "text.wav").write_text("this is not audio\n")
    (bad / "random.flac").write_bytes(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    good = sorted((coll / "clips").glob("*.flac"))[0].read_bytes()
    (bad / "truncated.flac").write_bytes(good[: 200])
    nan = np.full(SAMPLE_RATE * 3, np.nan, np.float32)
    sf.write(bad / "nan.wav", nan, SAMPLE_RATE, subtype="FLOAT")
    return coll


# --- reading an output directory as a user would --------------------------------------

def read_output(out: Path) -> dict:
    rows, corrupt = [], 0
    for shard in sorted(out.glob("part-*.parquet")):
        try:
            t = pq.read_table(shard, columns=["id", "source", "caption"])
        except Exception:
            corrupt += 1
            continue
        rows += t.to_pylist()
    fails, torn = [], 0
    path = out / "_failures.jsonl"
    if path.exists():
        for line in path.read_bytes().splitlines(keepends=True):
            try:
                fails.append(json.loads(line))
            except ValueError:
                torn += 1
    return {"rows": rows, "fails": fails, "corrupt": corrupt, "torn": torn}


def records(state: dict) -> Counter:
    """One key per record: a clip's id, or a whole file that failed before any clip."""
    keys = Counter(r["id"] for r in state["rows"])
    keys.update(f["id"] or f"file:{f['source']}" for f in state["fails"])
    return keys


def failure_set(state: dict) -> set[tuple]:
    return {(f["source"], f["id"], f["stage"], str(f.get("error", ""))[:80]) for f in state["fails"]}


def compare(ref: dict, got: dict) -> dict:
    want, have = records(ref), records(got)
    caps_ref = {r["id"]: r["caption"] for r in ref["rows"]}
    same = sum(caps_ref.get(r["id"]) == r["caption"] for r in got["rows"])
    return {"expected": len(want), "present": len(set(have) & set(want)),
            "duplicates": sum(c - 1 for c in have.values()),
            "lost": len(set(want) - set(have)), "unexpected": len(set(have) - set(want)),
            "corrupt": got["corrupt"],
            "failures_consistent": failure_set(ref) == failure_set(got),
            "captions_equal": f"{same}/{len(got['rows'])}"}


# --- campaigns --------------------------------------------------------------------------

def caption_campaign(coll: Path, out: Path, ref_state: dict, ref_seconds: float, kills: int,
                     rng: random.Random, engine: str, log: Path) -> dict:
    shutil_rmtree(out)
    args = ["caption", str(coll), "-o", str(out), "--quiet", "--batch-size", str(BATCH)]
    if engine == "ray":
        args += ["--engine", "ray"]
    # Chosen points first (while there is work left for each), then random moments over
    # the whole run, model loading included.
    planned = [("commit:1", None), ("torn-failure:1", None), ("before-rename:2", None),
               ("after-rename:3", None), ("last-batch:1", None)] if engine == "local" else []
    done_kills, per_kill = Counter(), []
    span = ref_seconds  # how long a run from empty takes, model loading included
    runs = 0
    total = len(records(ref_state))
    while sum(done_kills.values()) < kills or planned:
        left = total - len(set(records(read_output(out))))
        if planned:
            crash_at, delay = planned.pop(0)
        elif left > BATCH:
            crash_at, delay = "", rng.uniform(1.0, span * 0.9)
        else:  # little left: finish, then start again from empty
            crash_at, delay = "", None
        code, killed, secs = cli(args, log=log, crash_at=crash_at, kill_after=delay)
        runs += 1
        if killed:
            done_kills[crash_at.split(":")[0] or "random"] += 1
        elif code != 0:
            raise SystemExit(f"sonicaps caption failed with {code}; see {log}")
        after = read_output(out)
        dup = sum(c - 1 for c in records(after).values())
        label = crash_at or (f"random {delay:.1f}s" if delay is not None else "left to finish")
        per_kill.append((label, killed, len(set(records(after))),
                         after["corrupt"], dup, after["torn"]))
        if not killed:
            if left == total:  # it started empty: a whole run's length
                span = secs
            shutil_rmtree(out)  # finished: start over to spend the remaining kills
    code, _, _ = cli(args, log=log)  # the last restart, left to finish
    if code != 0:
        raise SystemExit(f"sonicaps caption failed with {code}; see {log}")
    result = {"runs": runs + 1, "kills": dict(done_kills), "per_kill": per_kill,
              # read as a user would after every kill: shards that fail to open, ids twice
              "clips_left_at_the_last_batch_kill": [total - k[2] for k in per_kill
                                                    if k[0].startswith("last-batch")],
              "corrupt_after_kills": sum(k[3] for k in per_kill),
              "duplicates_after_kills": sum(k[4] for k in per_kill),
              **compare(ref_state, read_output(out))}
    if engine == "local":  # a user's Ctrl-C and a service manager's stop, then finish
        out = out.with_name(out.name + "-signals")
        args[args.index("-o") + 1] = str(out)
        shutil_rmtree(out)
        signals = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            name, delay = signal.Signals(sig).name, rng.uniform(0.3, 0.6) * span
            for _ in range(4):  # until the signal lands while the run is going
                code, killed, secs = cli(args, log=log, kill_after=delay, sig=sig)
                if killed or code == -999:
                    signals[name] = f"exit {code} {secs:.1f} s after the signal"
                    break
                shutil_rmtree(out)  # the run finished first: again, sooner
                delay /= 2
            else:
                signals[name] = "not sent: every run finished first"
        code, _, _ = cli(args, log=log)
        if code != 0:
            raise SystemExit(f"sonicaps caption failed with {code}; see {log}")
        after = compare(ref_state, read_output(out))
        result["signals"] = signals
        result["after_signals"] = (f"{after['present']}/{after['expected']} present, "
                                   f"{after['duplicates']} duplicates, {after['lost']} lost, "
                                   f"{after['corrupt']} corrupt, failures consistent: "
                                   f"{after['failures_consistent']}")
        result["signals_ok"] = not (after["duplicates"] or after["lost"] or after["corrupt"]
                                    or after["unexpected"] or not after["failures_consistent"])
    return result


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def ray_leftovers() -> int:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return sum(("raylet" in line or "gcs_server" in line or "ray::" in line) for line in out.splitlines())


def index_state(idx: Path) -> dict:
    import faiss

    con = sqlite3.connect(idx / "items.sqlite")
    rows = con.execute("SELECT k, path, start_s FROM items ORDER BY k").fetchall()
    con.close()
    index = faiss.read_index(str(idx / "vectors.faiss"))
    vecs = np.stack([index.reconstruct(k) for k in range(index.ntotal)]) if index.ntotal else None
    return {"rows": rows, "ntotal": index.ntotal, "vectors": vecs}


def index_campaign(data: Path, root: Path, kills: int, rng: random.Random, log: Path) -> dict:
    env = {"INDEX_BATCH": str(INDEX_BATCH)}
    ref_dir, idx = root / "index-ref", root / "index"
    shutil_rmtree(ref_dir)
    shutil_rmtree(idx)
    t0 = time.perf_counter()
    code, _, _ = cli(["index", str(data), "-o", str(ref_dir), "--quiet"], log=log, env=env)
    ref_s = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"sonicaps index failed; see {log}")
    args = ["index", str(data), "-o", str(idx), "--quiet"]
    planned = ["index-vectors:2", "index-rows:2", "index-rows:1"]
    done = Counter()
    while True:
        crash_at = planned.pop(0) if planned else ""
        delay = None if crash_at else rng.uniform(1.0, ref_s * 0.9)
        if sum(done.values()) >= kills:
            crash_at, delay = "", None
        code, killed, _ = cli(args, log=log, crash_at=crash_at, kill_after=delay, env=env)
        if killed:
            done[crash_at.split(":")[0] or "random"] += 1
            continue
        if code != 0:
            raise SystemExit(f"sonicaps index failed with {code}; see {log}")
        if sum(done.values()) >= kills:
            break
        shutil_rmtree(idx)
    ref, got = index_state(ref_dir), index_state(idx)
    keys = Counter((p, s) for _, p, s in got["rows"])
    ref_keys = {(p, s): k for k, p, s in ref["rows"]}
    diffs = [float(np.abs(got["vectors"][k] - ref["vectors"][ref_keys[(p, s)]]).max())
             for k, p, s in got["rows"] if (p, s) in ref_keys]
    stale = [p.name for p in idx.iterdir() if p.name.startswith(".")]
    return {"kills": dict(done), "expected": len(ref["rows"]), "rows": len(got["rows"]),
            "vectors": got["ntotal"], "duplicates": sum(c - 1 for c in keys.values()),
            "lost": len(set(ref_keys) - set(keys)), "max_vector_diff": max(diffs, default=0.0),
            "stale_files": len(stale)}


def many_shards(src: Path, out: Path, copies: int) -> int:
    """A large pipeline output (the same rows under new ids, one shard per 50 rows),
    written by the pipeline's own store."""
    from sonicaps.pipeline.store import Store

    rows = pq.read_table(src).to_pylist()
    store = Store(out)
    n = 0
    for c in range(copies):
        batch = [{**r, "id": f"{r['id']}#{c}"} for r in rows]
        for k in range(0, len(batch), 50):
            store.commit(batch[k:k + 50], [])
        n += len(batch)
    return n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def review_campaign(data: Path, root: Path, kills: int, rng: random.Random, log: Path) -> dict:
    shutil_rmtree(root / "review-data")
    total = many_shards(data, root / "review-data", 60)
    db_dir = root / "review-db"
    shutil_rmtree(db_dir)
    acked: dict[int, str] = {}  # review id -> item, as the server acknowledged them
    errors = Counter()
    done = 0
    while True:
        port = free_port()
        p = subprocess.Popen([sys.executable, "-c", WRAPPER, "review", str(root / "review-data"),
                              "--review-db", str(db_dir), "--port", str(port), "--reviewer", "bench"],
                             stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        stop = threading.Event()

        def post_reviews(base: str = base, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                pos = rng.randint(1, total)
                body = json.dumps({"action": rng.choice(["accept", "reject"]), "reason": "crash test",
                                   "expected": None}).encode()
                try:
                    latest = json.load(urllib.request.urlopen(f"{base}/api/items/{pos}", timeout=5))
                    body = json.dumps({**json.loads(body), "expected": (latest.get("review") or {}).get("id")}
                                      ).encode()
                    req = urllib.request.Request(f"{base}/api/items/{pos}/review", body,
                                                 {"Content-Type": "application/json"})
                    rec = json.load(urllib.request.urlopen(req, timeout=5))
                    acked[rec["id"]] = rec["item"]
                except Exception as e:  # not up yet, killed, item not indexed yet
                    errors[type(e).__name__] += 1
                    time.sleep(0.05)

        client = threading.Thread(target=post_reviews, daemon=True)
        client.start()
        if done < kills:
            time.sleep(rng.uniform(2.0, 8.0))
            p.send_signal(signal.SIGKILL)
            p.wait()
            done += 1
            stop.set()
            client.join()
            continue
        # The last run: let it index everything, then stop it the way a user does.
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                info = json.load(urllib.request.urlopen(f"{base}/api/info", timeout=5))
                if info.get("items") == total and not info.get("indexing"):
                    break
            except Exception:
                pass
            time.sleep(0.5)
        stop.set()
        client.join()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=60)
        break
    con = sqlite3.connect(db_dir / "review.sqlite")
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    items = con.execute("SELECT COUNT(*), COUNT(DISTINCT clip) FROM items").fetchone()
    stored = dict(con.execute("SELECT id, item FROM reviews").fetchall())
    con.close()
    lost = sum(stored.get(k) != v for k, v in acked.items())
    return {"kills": done, "rows": total, "items": items[0], "distinct": items[1],
            "reviews_acknowledged": len(acked), "reviews_lost": lost, "integrity": integrity}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=300)
    ap.add_argument("--kills", type=int, default=24)
    ap.add_argument("--ray-kills", type=int, default=6)
    ap.add_argument("--index-kills", type=int, default=10)
    ap.add_argument("--review-kills", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="work in this folder and keep it")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="crash-"))
    root.mkdir(parents=True, exist_ok=True)
    log = root / "runs.log"
    coll = root / "collection" if (root / "collection").is_dir() else \
        build_collection(root, args.clips, args.seed)
    files = sum(1 for p in coll.rglob("*") if p.is_file())

    ref = root / "reference"
    shutil_rmtree(ref)
    t0 = time.perf_counter()
    code, _, _ = cli(["caption", str(coll), "-o", str(ref), "--quiet", "--batch-size", str(BATCH)],
                     log=log)
    ref_seconds = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"the reference run failed; see {log}")
    ref_state = read_output(ref)
    print(f"collection: {files} files, {len(records(ref_state))} records "
          f"({len(ref_state['rows'])} clips captioned, {len(ref_state['fails'])} failures) "
          f"in {ref_seconds:.0f} s uninterrupted")
    broken = []

    def report(name: str, res: dict) -> None:
        print(f"\n## {name}")
        for key, value in res.items():
            if key != "per_kill":
                print(f"{key:<22} {value}")
        bad = (res.get("lost") or res.get("ray_processes_left") or res.get("signals_ok") is False
               or res.get("corrupt_after_kills") or res.get("duplicates_after_kills")
               or any("not sent" in v or "-999" in v for v in res.get("signals", {}).values())
               or res.get("duplicates") or res.get("corrupt") or res.get("unexpected")
               or res.get("failures_consistent") is False or res.get("reviews_lost")
               or res.get("integrity", "ok") != "ok" or res.get("max_vector_diff", 0) > 1e-5)
        if bad:
            broken.append(name)

    if args.kills:
        res = caption_campaign(coll, root / "killed", ref_state, ref_seconds, args.kills, rng, "local", log)
        for point, _, present, corrupt, dup, torn in res["per_kill"]:
            if corrupt or dup:
                print(f"after {point}: {present} present, {corrupt} corrupt, {dup} duplicates, {torn} torn")
        report(f"sonicaps caption, SIGKILL x{sum(res['kills'].values())}, then SIGINT and SIGTERM", res)
    if args.ray_kills:
        before = ray_leftovers()
        res = caption_campaign(coll, root / "killed-ray", ref_state, ref_seconds * 2, args.ray_kills,
                               rng, "ray", log)
        # A killed driver's cluster is not stopped by anyone: its agents notice the dead
        # raylet and exit on their own, after a minute or two.
        t0 = time.time()
        while ray_leftovers() > before and time.time() - t0 < 300:
            time.sleep(2)
        res["ray_processes_left"] = ray_leftovers() - before
        res["ray_processes_gone_after_s"] = round(time.time() - t0)
        report(f"sonicaps caption --engine ray, SIGKILL x{sum(res['kills'].values())}", res)
    if args.index_kills:
        report(f"sonicaps index, SIGKILL x{args.index_kills}",
               index_campaign(ref, root, args.index_kills, rng, log))
    if args.review_kills:
        report(f"sonicaps review, SIGKILL x{args.review_kills} while indexing and reviewing",
               review_campaign(ref, root, args.review_kills, rng, log))
    print(f"\n{'BROKEN: ' + ', '.join(broken) if broken else 'nothing lost, duplicated or corrupt'}"
          f" (work folder {root})")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
