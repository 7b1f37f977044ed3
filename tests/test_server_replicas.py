"""Two app replicas (real processes) on one PostgreSQL and one `chroma run`, driven by 100 concurrent
gradio_client clients, with a new corpus edition published mid-run and one replica killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from assistant import shared_state
from assistant.embeddings import HashEmbeddings
from assistant.settings import Settings
from ingest.index import run_ingest
from tests.conftest import ROOT, test_settings, write_tiny_corpus
from tests.servers import chroma_server, create_database, free_port, postgres_server, wait_for_port

pytest.importorskip("psycopg", reason="psycopg (extra « server ») n'est pas installé")
from gradio_client import Client

# Heavy (three servers, two app processes, a few hundred answers): outside the fast suite.
pytestmark = [pytest.mark.server, pytest.mark.slow]

QUESTIONS = (
    "Quelles sont les missions d'un catalyseur territorial ?",
    "Que dit l'Agenda 2030 ?",
    "Combien de temps dure le mandat municipal ?",
    "Que publie l'Observatoire des territoires ?",
    "Quels impacts produit une alliance ?",
    "Combien de projets finance le fonds des alliances locales ?",  # only the second edition answers it
)
NEW_EDITION = ("# Le fonds des alliances locales\n\nLe fonds des alliances locales finance 42 projets coopératifs "
               "chaque année dans les communes rurales.\n")


def replica_env(settings: Settings, port: int, data_dir: Path, base_env: dict[str, str]) -> dict[str, str]:
    env = dict(base_env)
    env.update({
        "ASSISTANT_DEPLOYMENT": "server", "ASSISTANT_DATABASE_URL": settings.database_url,
        "ASSISTANT_CHROMA_MODE": "http", "ASSISTANT_CHROMA_PORT": str(settings.chroma_port),
        "ASSISTANT_COLLECTION": settings.collection, "ASSISTANT_EMBEDDER": settings.embedder,
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir), "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_CHUNK_WORDS": str(settings.chunk_words),
        "ASSISTANT_CHUNK_OVERLAP_WORDS": str(settings.chunk_overlap_words),
        "ASSISTANT_RELEVANCE_FLOOR": str(settings.relevance_floor),
        "ASSISTANT_UNCERTAIN_FLOOR": str(settings.uncertain_floor),
        "ASSISTANT_PORT": str(port), "ASSISTANT_ASK_RATE_PER_MINUTE": "0",
        # Every client waits in the queue rather than being turned away.
        "ASSISTANT_MAX_QUEUE": "256", "ASSISTANT_CONCURRENCY_LIMIT": "4",
        "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False",
    })
    return env


@contextmanager
def replica(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        wait_for_port(port, proc, f"L'instance {port}", timeout_s=240)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def client_for(url: str) -> Client:
    # gradio_client's 20 s default is shorter than a queue of 100 clients on two shared cores.
    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": 300})


def ask(url: str, question: str) -> dict[str, Any]:
    client = client_for(url)
    return dict(client.predict(question=question, api_name="/ask"))


def test_two_replicas_share_state_through_a_new_edition_and_a_kill(
        tmp_path: Path, fake_embedder: HashEmbeddings) -> None:
    subprocess_env = dict(os.environ)  # PATH and the like; the replicas' settings are added to it
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        chroma_port = stack.enter_context(chroma_server(tmp_path / "chroma"))
        corpus = write_tiny_corpus(tmp_path / "corpus")
        settings = test_settings(corpus, tmp_path / "ingest-host", deployment="server", chroma_mode="http",
                                 chroma_port=chroma_port, database_url=create_database(pg, "replicas"),
                                 collection="c" + uuid.uuid4().hex[:8])
        first = run_ingest(settings, embedder=fake_embedder, progress=False)
        assert first.exit_code == 0

        ports = [free_port(), free_port()]
        procs = [stack.enter_context(replica(replica_env(settings, port, tmp_path / f"replica-{i}", subprocess_env),
                                             port, tmp_path / f"replica-{i}.log"))
                 for i, port in enumerate(ports)]
        urls = [f"http://127.0.0.1:{port}" for port in ports]

        # -- 100 concurrent clients over both replicas, a new edition published while they ask ----------
        done = threading.Semaphore(0)
        published = threading.Event()
        results: list[dict[str, Any]] = []
        failures: list[str] = []
        lock = threading.Lock()

        def client(i: int) -> None:
            url = urls[i % 2]
            for turn in range(3):
                if turn == 2:
                    published.wait(300)  # the last question of each client comes after the publication
                try:
                    result = ask(url, QUESTIONS[(i + turn) % len(QUESTIONS)])
                    with lock:
                        results.append(result)
                except Exception as exc:
                    with lock:
                        failures.append(f"{url}: {exc!r}")
                done.release()

        with ThreadPoolExecutor(max_workers=100) as pool:
            futures = [pool.submit(client, i) for i in range(100)]
            for _ in range(50):  # mid-run: once 50 answers are out
                assert done.acquire(timeout=300)
            (corpus / "fonds.md").write_text(NEW_EDITION, encoding="utf-8")
            second = run_ingest(settings, embedder=fake_embedder, progress=False)
            published.set()
            for f in futures:
                f.result(timeout=600)
        assert failures == []
        assert len(results) == 300
        generations = {r["generation"] for r in results}
        assert generations == {first.generation, second.generation}
        _assert_citations_exist(settings, results)
        new_fact = [r for r in results if r["question"] == QUESTIONS[-1] and r["generation"] == second.generation]
        assert new_fact and all("42 projets" in r["answer"] for r in new_fact)
        assert all("42 projets" not in r["answer"] for r in results if r["generation"] == first.generation)

        # -- feedback given on replica 0 is seen from replica 1 -------------------------------------------
        chat_client = client_for(urls[0])
        _, _, target = chat_client.predict(QUESTIONS[0], "extractive", False, api_name="/respond")
        answer_id = target["value"]
        thanks, *_ = chat_client.predict(answer_id, "up", ["clair"], "Réponse utile.", api_name="/rate")
        assert thanks == "Merci, votre avis est enregistré."
        other = shared_state.feedback_store(settings.with_overrides(data_dir=tmp_path / "replica-1"))
        [fb] = other.list_feedback(answer_id)
        assert (fb.rating, fb.tags, fb.comment) == ("up", ["clair"], "Réponse utile.")
        logged_ports = {a.settings["port"] for a in other.list_answers(limit=1000)}
        assert logged_ports == set(ports)  # both replicas answered and logged into the one database

        # -- kill -9 replica 1 mid-run: replica 0 keeps answering -----------------------------------------
        after_kill: list[dict[str, Any]] = []
        killed = threading.Event()
        lost_on_killed: list[str] = []

        def balanced(i: int) -> None:
            # What a load balancer does: a request the dead replica drops goes to the live one.
            url = urls[i % 2]
            question = QUESTIONS[i % len(QUESTIONS)]
            try:
                result = ask(url, question)
            except Exception as exc:
                assert url == urls[1] and killed.is_set(), exc
                with lock:
                    lost_on_killed.append(repr(exc))
                result = ask(urls[0], question)
            if killed.is_set():
                with lock:
                    after_kill.append(result)

        with ThreadPoolExecutor(max_workers=40) as pool:
            futures = [pool.submit(balanced, i) for i in range(40)]
            _kill_when(procs[1], lambda: sum(f.done() for f in futures) >= 10, killed)
            futures += [pool.submit(balanced, i) for i in range(40, 60)]
            for f in futures:
                f.result(timeout=600)
        assert procs[1].wait(10) == -signal.SIGKILL
        assert procs[0].poll() is None
        assert after_kill and all(r["generation"] == second.generation for r in after_kill)
        assert ask(urls[0], QUESTIONS[-1])["answer"].count("42 projets") >= 1


def _kill_when(proc: subprocess.Popen[bytes], condition: Callable[[], bool], killed: threading.Event) -> None:
    import time

    while not condition():
        time.sleep(0.05)
    killed.set()
    proc.send_signal(signal.SIGKILL)


def _assert_citations_exist(settings: Settings, results: list[dict[str, Any]]) -> None:
    """Every cited passage is in the generation that answered (its own Chroma collection)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from assistant.store import collection_name

    client = chromadb.HttpClient(host="127.0.0.1", port=settings.chroma_port,
                                 settings=ChromaSettings(anonymized_telemetry=False))
    by_generation: dict[str, set[str]] = {}
    for r in results:
        by_generation.setdefault(r["generation"], set()).update(c["passage_id"] for c in r["citations"])
    for generation, ids in by_generation.items():
        assert ids
        got = client.get_collection(collection_name(settings, generation)).get(ids=sorted(ids), include=[])
        assert set(got["ids"]) == ids, generation
