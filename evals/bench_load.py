"""Load-and-fault benchmark of the web app's ``/ask`` (``python -m evals.bench load``), run by hand.

Starts ``python app.py`` on a free loopback port (or uses ``--url``) and drives it with ``gradio_client``:

1. unloaded: ``--clients`` clients ask ordinary questions one after the other (p95 of their answers);
2. hostile: the same, while one more client sends maximal requests in a loop (the longest allowed question
   and ``--hog-messages`` history messages of ``--hog-chars`` characters each); target: p95 ≤ 2× unloaded;
3. 20 clients × 5 questions at once: every answer must come back (0 failures);
4. a burst of 60 clients at once: each gets an answer or the French « Trop de demandes : réessayez dans N s. ».

The app runs with ``ASSISTANT_ASK_RATE_PER_MINUTE=0``: every client here is 127.0.0.1, and the per-client limit
would otherwise refuse them as one client (that limit has its own tests). Phases 1 and 2 alternate in
``--rounds`` rounds, so that a change of the machine's load hits both sides alike.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.settings import Settings
from evals.bench_app import ROOT, _free_port, _wait_ready

QUESTIONS = (
    "Quelles sont les quatre missions d'un catalyseur territorial ?",
    "Que montre l'étude « Jouer collectif en sortie de crise » ?",
    "Combien de cibles compte l'Agenda 2030 ?",
    "Que veut dire le sigle EPCI ?",
    "Où trouver le kit « co-construction territoriale » ?",
    "Comment associer les entreprises de ma commune à un projet ODD ?",
)
TOO_MANY = re.compile(r"Trop de demandes : réessayez dans \d+ s\.")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # the French « trop de demandes » sentence
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def p95(self) -> float:
        return percentile(self.latencies, 95)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False)


def _ask(client: Any, question: str, history: list[dict[str, str]] | None, tally: Tally, label: str) -> None:
    started = time.perf_counter()
    try:
        result = client.predict(question=question, history=history or [], api_name="/ask")
        elapsed = time.perf_counter() - started
        with tally.lock:
            if isinstance(result, dict) and "answer" in result:
                tally.latencies.append(elapsed)
            else:
                tally.failures.append(f"{label} : réponse inattendue {str(result)[:120]!r}")
    except Exception as exc:  # a refusal: gradio_client raises, with the server's sentence in the text or body
        text = str(exc)
        response = getattr(exc, "response", None)  # httpx.HTTPStatusError on /queue/join: the JSON detail
        if response is not None:
            with contextlib.suppress(Exception):
                text += " " + str(response.json().get("detail", ""))
        with tally.lock:
            if TOO_MANY.search(text):
                tally.refused.append(TOO_MANY.search(text).group(0))  # type: ignore[union-attr]
            else:
                tally.failures.append(f"{label} : {type(exc).__name__}: {text[:200]}")


def maximal_request(settings: Settings, messages: int, chars: int) -> tuple[str, list[dict[str, str]]]:
    """The longest question the server accepts, and a history of ``messages`` messages of ``chars`` characters."""
    words = "partenariat territorial entre collectivités entreprises et associations pour les ODD "
    question = (words * (settings.max_question_chars // len(words) + 1))[: settings.max_question_chars - 1] + "?"
    long_word = "x" * chars  # one word without spaces: the worst case for the analyzers before the limits
    history = [{"role": "user" if n % 2 == 0 else "assistant", "content": long_word} for n in range(messages)]
    return question, history


def _sequential(url: str, number: int, count: int, tally: Tally) -> None:
    client = _client(url)
    for n in range(count):
        _ask(client, QUESTIONS[(number + n) % len(QUESTIONS)], None, tally, f"client {number}, question {n + 1}")


def _threads(target: Any, args: list[tuple[Any, ...]]) -> None:
    threads = [threading.Thread(target=target, args=a) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def phase_pair(url: str, settings: Settings, clients: int, questions: int, hog_messages: int,
               hog_chars: int) -> tuple[Tally, Tally, Tally]:
    """One unloaded run, then the same run beside a client sending maximal requests in a loop."""
    unloaded = Tally()
    _threads(_sequential, [(url, n, questions, unloaded) for n in range(clients)])
    loaded, hog = Tally(), Tally()
    stop = threading.Event()
    question, history = maximal_request(settings, hog_messages, hog_chars)

    def hog_loop() -> None:
        client = _client(url)
        while not stop.is_set():
            _ask(client, question, history, hog, "client hostile")

    hog_thread = threading.Thread(target=hog_loop)
    hog_thread.start()
    time.sleep(1.0)  # the hog is in the queue before the others start
    _threads(_sequential, [(url, n, questions, loaded) for n in range(clients)])
    stop.set()
    hog_thread.join()
    return unloaded, loaded, hog


def phase_many(url: str, clients: int, questions: int) -> Tally:
    tally = Tally()
    _threads(_sequential, [(url, n, questions, tally) for n in range(clients)])
    return tally


def phase_burst(url: str, clients: int) -> Tally:
    tally = Tally()
    ready = [_client(url) for _ in range(clients)]  # connected first: the burst is the questions alone
    barrier = threading.Barrier(clients)

    def one(number: int) -> None:
        barrier.wait(timeout=120)
        _ask(ready[number], QUESTIONS[number % len(QUESTIONS)], None, tally, f"client {number}")

    _threads(one, [(n,) for n in range(clients)])
    return tally


def _seconds(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "median": None, "p95": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3)}


def run(url: str, settings: Settings, *, rounds: int, clients: int, questions: int, hog_messages: int,
        hog_chars: int, burst: int) -> dict[str, Any]:
    unloaded, loaded, hog = Tally(), Tally(), Tally()
    per_round = []
    warm = Tally()
    _sequential(url, 0, len(QUESTIONS), warm)  # the first answers load what is loaded lazily: not measured
    if warm.failures:
        raise RuntimeError(f"l'application ne répond pas aux questions : {warm.failures[0]}")
    for _ in range(rounds):
        u, lo, h = phase_pair(url, settings, clients, questions, hog_messages, hog_chars)
        per_round.append({"unloaded_p95": round(u.p95(), 3), "loaded_p95": round(lo.p95(), 3),
                          "ratio": round(lo.p95() / u.p95(), 2) if u.latencies and lo.latencies else None})
        for total, part in ((unloaded, u), (loaded, lo), (hog, h)):
            total.latencies += part.latencies
            total.failures += part.failures
            total.refused += part.refused
    many = phase_many(url, 20, 5)
    burst_tally = phase_burst(url, burst)
    ratio = loaded.p95() / unloaded.p95() if unloaded.latencies and loaded.latencies else float("nan")
    return {
        "hostile": {
            "clients": clients, "questions_each": questions, "rounds": rounds,
            "maximal_request": {"question_chars": settings.max_question_chars, "history_messages": hog_messages,
                                "history_chars_each": hog_chars},
            "unloaded_s": _seconds(unloaded.latencies), "loaded_s": _seconds(loaded.latencies),
            "hog_s": _seconds(hog.latencies), "p95_ratio": round(ratio, 2), "target_met": ratio <= 2.0,
            "per_round": per_round,
            "failures": unloaded.failures + loaded.failures + hog.failures,
        },
        "clients_20x5": {"answered": len(many.latencies), "failures": many.failures, "refused": len(many.refused),
                         "latency_s": _seconds(many.latencies)},
        "burst": {"clients": burst, "answered": len(burst_tally.latencies),
                  "refused_in_french": len(burst_tally.refused),
                  "refusal_messages": sorted(set(burst_tally.refused)), "other": burst_tally.failures,
                  "latency_s": _seconds(burst_tally.latencies)},
    }


def start_app(settings: Settings, db: Path | None, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``python app.py`` on a free port; with no ``db``, a temporary data folder seeded with the vector cache."""
    if db is None:
        db = Path(tempfile.mkdtemp(prefix="bench-load-"))
        cache = settings.data_dir / "cache" / "embeddings.sqlite"
        if cache.is_file():  # the first indexing then embeds nothing it has embedded before
            (db / "cache").mkdir()
            shutil.copyfile(cache, db / "cache" / "embeddings.sqlite")
    port = _free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return proc, f"http://127.0.0.1:{port}/", db


def main(args: Any, settings: Settings) -> dict[str, Any]:
    """``python -m evals.bench load``: the figures as one JSON object (``args`` from ``evals.bench``)."""
    import os

    # A child's environment (not a setting read here): the app under test reads it through Settings.
    env = os.environ | {"ASSISTANT_ASK_RATE_PER_MINUTE": "0",
                        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc: subprocess.Popen[bytes] | None = None
    made_db: Path | None = None
    url = args.url
    try:
        if url is None:
            proc, url, db = start_app(settings, args.db, env)
            made_db = db if args.db is None else None
        _wait_ready(url, proc, args.startup_timeout)
        return run(url, settings, rounds=args.rounds, clients=args.clients, questions=args.questions_each,
                   hog_messages=args.hog_messages, hog_chars=args.hog_chars, burst=args.burst)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if made_db is not None:
            shutil.rmtree(made_db, ignore_errors=True)


def app_rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        return next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS"))


def phase_sessions(url: str, pid: int, count: int, points: int = 5) -> list[tuple[int, int]]:
    """The app's RSS (MB) as ``count`` new sessions (a new browser tab or API client each) ask one question."""
    client = _client(url)
    curve = [(0, app_rss_mb(pid))]
    for n in range(1, count + 1):
        client.session_hash = f"bench-session-{n:06d}"  # what a new client would get: a session of its own
        client.predict(question=QUESTIONS[n % len(QUESTIONS)], api_name="/ask")
        if n % max(1, count // points) == 0:
            curve.append((n, app_rss_mb(pid)))
    return curve


def main_sessions(args: Any, settings: Settings) -> dict[str, Any]:
    """``python -m evals.bench sessions``: app memory over ``--new-sessions`` sessions, at two session capacities."""
    import os

    report: dict[str, Any] = {"new_sessions": args.new_sessions, "rss_mb": {}}
    for capacity in (str(settings.max_sessions), str(args.compare_sessions)):
        env = os.environ | {"ASSISTANT_ASK_RATE_PER_MINUTE": "0", "ASSISTANT_MAX_SESSIONS": capacity,
                            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc, url, db = start_app(settings, None, env)
        try:
            _wait_ready(url, proc, args.startup_timeout)
            report["rss_mb"][f"ASSISTANT_MAX_SESSIONS={capacity}"] = phase_sessions(url, proc.pid, args.new_sessions)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(db, ignore_errors=True)
    return report
