"""Server deployment benchmark, run by hand: answers/s and latency percentiles with 1 and then 2 app replicas.

    # A server deployment already set up (ASSISTANT_DEPLOYMENT=server, database, Chroma server, an index
    # published with `python -m ingest`), the per-client limit off (every client here is 127.0.0.1):
    ASSISTANT_ASK_RATE_PER_MINUTE=0 ASSISTANT_MAX_QUEUE=256 python -m evals.bench_server --clients 20

Both replicas are started here (`python app.py --port … --db <own cache>`, the rest of the settings from the
environment); the same questions go through gradio_client's ``/ask`` first to one replica, then spread over
both, side by side in one run. Figures: answers/s, median and p95 of each answer's wall time.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from assistant.settings import Settings
from evals.bench import QUESTIONS

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(port: int, cache: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--db", str(cache)], cwd=ROOT,
                                stdout=out, stderr=out)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"L'instance sur le port {port} s'est arrêtée : voir {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"L'instance sur le port {port} n'a pas démarré : voir {log}")


def _run(urls: list[str], clients: int, n: int) -> dict[str, Any]:
    from gradio_client import Client

    pool_clients = [Client(urls[i % len(urls)], verbose=False, download_files=False,
                           httpx_kwargs={"timeout": 600}) for i in range(clients)]
    for c in pool_clients[: len(urls)]:
        c.predict(question=QUESTIONS[0], api_name="/ask")  # warm every replica

    def one(i: int) -> float:
        started = time.perf_counter()
        pool_clients[i % clients].predict(question=QUESTIONS[i % len(QUESTIONS)], api_name="/ask")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        times = list(pool.map(one, range(n)))
    elapsed = time.perf_counter() - started
    return {"replicas": len(urls), "clients": clients, "answers": n,
            "answers_per_s": round(n / elapsed, 2),
            "answer_ms_p50": round(1000 * statistics.median(times), 1),
            "answer_ms_p95": round(1000 * float(np.percentile(np.asarray(times), 95)), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_server",
                                     description="Débit et latence avec 1 puis 2 instances (à lancer à la main).")
    parser.add_argument("--clients", type=int, default=20, help="clients simultanés")
    parser.add_argument("--answers", type=int, default=200, help="réponses par mesure")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.server_deployment:
        raise SystemExit("Ce banc d'essai demande un déploiement serveur (ASSISTANT_DEPLOYMENT=server).")
    if settings.ask_rate_per_minute != 0 or settings.max_queue < args.clients:
        raise SystemExit("Réglez ASSISTANT_ASK_RATE_PER_MINUTE=0 et ASSISTANT_MAX_QUEUE ≥ au nombre de clients : "
                         "tous les clients du banc d'essai ont la même adresse.")
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        root = Path(tmp)
        ports = [_free_port(), _free_port()]
        procs = [_start(port, root / f"cache-{i}", root / f"replica-{i}.log") for i, port in enumerate(ports)]
        try:
            urls = [f"http://127.0.0.1:{p}" for p in ports]
            results = [_run(urls[:1], args.clients, args.answers), _run(urls, args.clients, args.answers)]
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(30)
    one, two = results
    report = {"cpus": _cpus(), "one_replica": one, "two_replicas": two,
              "throughput_ratio_2_over_1": round(two["answers_per_s"] / one["answers_per_s"], 2)}
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
