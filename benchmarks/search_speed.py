"""Search latency over a large index, through the same code path `sonicaps search` uses.

    .venv/bin/python benchmarks/search_speed.py [--vectors 1000000] [--dim 256] [--queries 1000]

Fills an index (faiss HNSW + SQLite rows) with random unit vectors in batches, as an
incremental build would, then times single queries (vector search + row lookup) and
measures, on a sample of queries, how often the stored vector each query was made from
comes back first (the realistic case: a query close to one clip), and the overlap with an
exact search's top 10 (a hard case on uniform random vectors, whose other neighbours are
all nearly equidistant). Then, end to end as `sonicaps search --index I` answers a stream
of text queries with the shipped retrieval model loaded once (sonicaps.retrieval.index.Searcher):
the first query (loading the models) and every query after it (text encoder, vector search,
row lookup), after one warm-up query.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sonicaps.retrieval.data import Item
from sonicaps.retrieval.index import EF_SEARCH, Searcher, VectorIndex
from sonicaps.retrieval.scorer import PACKAGED

QUERIES = ["a dog barks", "a woman speaking German", "rain falls on a roof", "a car passes by",
           "birds chirp in the distance", "a man speaks while music plays", "a door slams twice",
           "water runs from a tap", "an engine idles", "people cheer and clap"]

BATCH = 250_000


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vectors", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--text-queries", type=int, default=200, help="end-to-end text queries timed")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        idx = VectorIndex(Path(tmp) / "index", dim=args.dim, model_run=str(PACKAGED))
        data = np.empty((args.vectors, args.dim), dtype=np.float32)
        t0 = time.perf_counter()
        for start in range(0, args.vectors, BATCH):
            n = min(BATCH, args.vectors - start)
            vecs = unit(rng, n, args.dim)
            data[start:start + n] = vecs
            items = [Item(f"c{k}", Path(f"/audio/c{k}.wav"), ("a caption",), "train")
                     for k in range(start, start + n)]
            idx.add(items, vecs)
        build = time.perf_counter() - t0
        # queries near stored vectors, as real queries land near real clips
        targets = rng.integers(0, args.vectors, args.queries)
        queries = data[targets] + 0.3 * unit(rng, args.queries, args.dim)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        sample = queries[:100]
        exact = np.argsort(-(sample @ data.T), axis=1)[:, :10]
        rows = []
        for ef in sorted({128, 256, 512, EF_SEARCH}):  # candidates per query: recall vs latency
            idx.index.hnsw.efSearch = ef
            idx.search(queries[0], 10)  # warm-up
            times = []
            for q in queries:
                t = time.perf_counter()
                hits = idx.search(q, 10)
                times.append(time.perf_counter() - t)
            assert len(hits) == 10
            results = [[int(h.id[1:]) for h in idx.search(q, 10)] for q in sample]
            first = np.mean([r[0] == t for r, t in zip(results, targets[:100], strict=True)])
            overlap = np.mean([len(set(r) & set(e)) / 10 for r, e in zip(results, exact, strict=True)])
            rows.append((ef, np.array(times) * 1000, first, overlap))
        idx.index.hnsw.efSearch = EF_SEARCH
        del idx
        t0 = time.perf_counter()
        searcher = Searcher(Path(tmp) / "index")
        searcher(text=QUERIES[0], k=10)
        first_query = time.perf_counter() - t0
        searcher(text="warm-up", k=10)
        e2e = []
        for n in range(args.text_queries):
            t = time.perf_counter()
            searcher(text=f"{QUERIES[n % len(QUERIES)]} ({n})", k=10)
            e2e.append(time.perf_counter() - t)
        e2e_ms = np.array(e2e) * 1000
    print(f"{args.vectors} vectors x {args.dim} dims: built in {build:.0f} s "
          f"(batches of {BATCH}, each committed)")
    print("efSearch  mean ms  median ms  p99 ms  query's own clip first  overlap with exact top 10")
    for ef, ms, first, overlap in rows:
        mark = " (default)" if ef == EF_SEARCH else ""
        print(f"{ef:>8} {ms.mean():>8.2f} {np.median(ms):>10.2f} {np.percentile(ms, 99):>7.2f} "
              f"{first:>23.3f} {overlap:>26.3f}{mark}")
    print(f"({args.queries} timed queries with row lookup; 100 for recall; uniform random vectors "
          "are a worst case for the top-10 overlap)")
    print(f"end to end, text queries with the shipped model loaded once (Searcher, as `sonicaps search "
          f"--index I` reads queries from standard input), efSearch {EF_SEARCH}:")
    print(f"  first query, loading the models: {first_query:.1f} s")
    print(f"  each query after warm-up ({args.text_queries}): mean {e2e_ms.mean():.1f} ms, median "
          f"{np.median(e2e_ms):.1f} ms, p99 {np.percentile(e2e_ms, 99):.1f} ms")


if __name__ == "__main__":
    main()
