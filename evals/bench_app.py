"""Load test of the web app: N concurrent sessions (gradio_client) ask questions on loopback.

    python -m evals.bench_app                       # starts `python app.py` on a free port (data/)
    python -m evals.bench_app --db /tmp/data        # another data folder
    python -m evals.bench_app --url http://127.0.0.1:7860/ --sessions 20 --rounds 3

Each session goes through the chat handler (the same as the browser), asks ``--rounds`` questions
in a row — the second one a follow-up that needs the conversation — and checks that every answer
came back with its source cards. Reports failures and the latency of each answer (median, p95,
max). Exit status 1 when any answer failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = (
    ("Quelles sont les quatre missions d'un catalyseur territorial ?", "Et depuis quand existe le réseau ?"),
    ("Que montre l'étude « Jouer collectif en sortie de crise » ?", "Et qui l'a réalisée ?"),
    ("Combien de cibles compte l'Agenda 2030 ?", "Et l'ODD 17, combien en a-t-il ?"),
    ("Que veut dire le sigle EPCI ?", "Et ANCT ?"),
    ("Où trouver le kit « co-construction territoriale » ?", "Et qui le pilote ?"),
)
ANSWER_MARKERS = ("Sources citées", "Documents les plus proches")


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"l'application s'est arrêtée (code {proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"l'application ne répond pas sur {url} après {timeout:.0f} s")


def _session(url: str, number: int, rounds: int, barrier: threading.Barrier, result: Result) -> None:
    from gradio_client import Client

    try:
        client = Client(url, verbose=False, download_files=False)
    except Exception as exc:
        with result.lock:
            result.failures.append(f"session {number} : connexion impossible ({exc})")
        barrier.abort()
        return
    pair = QUESTIONS[number % len(QUESTIONS)]
    with contextlib.suppress(threading.BrokenBarrierError):  # start together; a broken barrier still runs
        barrier.wait(timeout=120)
    for round_ in range(rounds):
        question = pair[1] if round_ % 2 else pair[0]  # every second question is a follow-up
        started = time.perf_counter()
        try:
            chat, *_ = client.predict(question, "extractive", False, api_name="/respond")
            elapsed = time.perf_counter() - started
            last = "".join(part.get("text", "") for part in chat[-1]["content"])
            ok = any(marker in last for marker in ANSWER_MARKERS) and len(chat) == 2 * (round_ + 1)
            with result.lock:
                result.latencies.append(elapsed)
                if not ok:
                    result.failures.append(f"session {number}, question {round_ + 1} : réponse sans sources")
        except Exception as exc:
            with result.lock:
                result.failures.append(f"session {number}, question {round_ + 1} : {type(exc).__name__}: {exc}")


def run(url: str, sessions: int, rounds: int) -> dict[str, Any]:
    result = Result()
    barrier = threading.Barrier(sessions)
    threads = [threading.Thread(target=_session, args=(url, n, rounds, barrier, result)) for n in range(sessions)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    lat = sorted(result.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, max(0, round(p * len(lat)) - 1))] if lat else float("nan")

    return {
        "sessions": sessions,
        "questions": sessions * rounds,
        "answered": len(lat),
        "failures": result.failures,
        "latency_s": {"median": round(statistics.median(lat), 3) if lat else None, "p95": round(pct(0.95), 3),
                      "max": round(lat[-1], 3) if lat else None, "min": round(lat[0], 3) if lat else None},
        "wall_s": round(wall, 2),
        "answers_per_s": round(len(lat) / wall, 2) if wall else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench_app", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="application déjà lancée (sinon `python app.py` est lancé ici)")
    parser.add_argument("--db", type=Path, help="dossier des données pour l'application lancée ici")
    parser.add_argument("--sessions", type=int, default=20, help="sessions simultanées (défaut : 20)")
    parser.add_argument("--rounds", type=int, default=3, help="questions par session (défaut : 3)")
    parser.add_argument("--startup-timeout", type=float, default=900, help="attente du démarrage, en secondes")
    parser.add_argument("--json", action="store_true", help="bilan en JSON")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.rounds < 1:
        parser.error("--sessions et --rounds doivent valoir au moins 1")

    proc: subprocess.Popen[bytes] | None = None
    url = args.url
    try:
        if url is None:
            port = _free_port()
            command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
            if args.db:
                command += ["--db", str(args.db)]
            env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
            proc = subprocess.Popen(command, cwd=ROOT, env=env)
            url = f"http://127.0.0.1:{port}/"
        _wait_ready(url, proc, args.startup_timeout)
        report = run(url, args.sessions, args.rounds)
    except RuntimeError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        lat = report["latency_s"]
        print(f"{report['sessions']} sessions × {args.rounds} questions : {report['answered']} réponses, "
              f"{len(report['failures'])} échec(s), en {report['wall_s']} s ({report['answers_per_s']} réponses/s)")
        print(f"Latence par réponse (s) : médiane {lat['median']} · p95 {lat['p95']} · max {lat['max']} · "
              f"min {lat['min']}")
        for failure in report["failures"]:
            print(f"  - {failure}")
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
