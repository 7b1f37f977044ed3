"""Memory over many answers (``python -m evals.bench memory [--answers 10000]``), run by hand.

Indexes the shipped corpus in a temporary data folder (with the configured embedder; ``ASSISTANT_EMBEDDER=hash:384``
for a fast run), then answers ``--answers`` questions in this process as the app does — each one logged in the
answer log — and records the resident memory (RSS) every ``--every`` answers. Questions are the golden set's,
each with a word of its own appended, so that caches keyed by question or by term meet new keys all along, as
with real users. The report gives the RSS curve and the growth over each half of the run: memory that levels off
grows in the first half (warm-up) and not in the second.
"""

from __future__ import annotations

import gc
import json
import shutil
import string
import tempfile
import time
from pathlib import Path
from typing import Any

from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    """The resident memory of this process now (Linux ``/proc``), in MB."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def unique_word(n: int) -> str:
    """A letters-only word of its own for each ``n`` (« qbac »…): a new term for the lexical analyzer."""
    letters = string.ascii_lowercase
    word = ""
    n += 26 * 26
    while n:
        n, r = divmod(n, 26)
        word += letters[r]
    return word


def golden_questions() -> list[str]:
    path = ROOT / "evals" / "sets" / "golden.jsonl"
    return [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(settings: Settings, answers: int, every: int) -> dict[str, Any]:
    from assistant.answer import Assistant
    from assistant.embeddings import embedder_from_settings
    from assistant.feedback import FeedbackStore
    from ingest.index import run_ingest

    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    try:
        cache = settings.data_dir / "cache" / "embeddings.sqlite"
        if cache.is_file():  # the index is built from the vectors already computed
            (tmp / "cache").mkdir()
            shutil.copyfile(cache, tmp / "cache" / "embeddings.sqlite")
        s = settings.with_overrides(data_dir=tmp, feedback_file=tmp / "feedback.sqlite")
        embedder = embedder_from_settings(s)
        run_ingest(s, embedder=embedder, progress=False)
        assistant = Assistant(s, embedder=embedder)
        feedback = FeedbackStore(s.feedback_path)
        questions = golden_questions()
        public = s.public_dict()
        curve: list[dict[str, float]] = []
        gc.collect()
        started = time.perf_counter()
        curve.append({"answers": 0, "rss_mb": round(rss_mb(), 1)})
        for n in range(1, answers + 1):
            question = f"{questions[n % len(questions)].rstrip(' ?')} {unique_word(n)} ?"
            history = [{"role": "user", "content": questions[(n + 1) % len(questions)]},
                       {"role": "assistant", "content": "Réponse précédente."}] if n % 3 == 0 else []
            answer = assistant.answer(question, history)
            feedback.log_answer(answer, public, channel="api")
            if n % every == 0 or n == answers:
                gc.collect()
                curve.append({"answers": n, "rss_mb": round(rss_mb(), 1)})
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    middle = curve[len(curve) // 2]
    return {
        "embedder": settings.embedder,
        "answers": answers,
        "seconds": round(seconds, 1),
        "rss_mb": curve,
        "growth_first_half_mb": round(middle["rss_mb"] - curve[0]["rss_mb"], 1),
        "growth_second_half_mb": round(curve[-1]["rss_mb"] - middle["rss_mb"], 1),
        "second_half_kb_per_answer": round(1000 * (curve[-1]["rss_mb"] - middle["rss_mb"])
                                           / max(1, curve[-1]["answers"] - middle["answers"]), 2),
    }


def main(args: Any, settings: Settings) -> dict[str, Any]:
    return run(settings, args.answers, args.every)
