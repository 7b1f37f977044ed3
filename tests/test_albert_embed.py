"""The Albert API's embeddings and reranking against the fake Albert API on loopback (tests/albert_fake.py):
vectors in batches, 429 retried with backoff, a persistent failure as one French error (ingestion stops with
the served index untouched; a question gets the message at the UI boundary), the embedder's name and
dimension stored with the index, reranking and its fallback to the local order."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from assistant import shared_state, store
from assistant.albert import AlbertAccess, AlbertConfigError, AlbertEmbeddings, AlbertReranker
from assistant.answer import Assistant
from assistant.embeddings import EmbedderError, EmbedderServiceError, build_embedder, embedder_from_settings
from assistant.errors import AssistantError
from assistant.rerank import build_reranker
from assistant.retrieve import Retriever
from assistant.settings import Settings, SettingsError
from ingest.cli import EXIT_VECTOR_SERVER, exit_code
from ingest.index import IngestConfigError, run_ingest
from tests.albert_fake import EMBED_DIM, KEY, FakeAlbert
from webui.context import user_error

MODEL = "BAAI/bge-m3"
QUESTION = "Combien de cibles compte l'Agenda 2030 ?"


@pytest.fixture
def albert(fake_albert: tuple[str, FakeAlbert], settings: Settings) -> Iterator[tuple[Settings, FakeAlbert]]:
    """Settings embedding with the fake Albert (no LLM configured: the embeddings have their own key)."""
    url, fake = fake_albert
    fake.reset()
    yield settings.with_overrides(embedder=f"albert:{MODEL}", albert_base_url=url, albert_api_key=KEY,
                                  albert_timeout_s=5.0, albert_retries=2), fake
    fake.release.set()  # a "slow" request still held by the fake ends now


def _embedder(settings: Settings) -> AlbertEmbeddings:
    built = build_embedder(settings.embedder, albert=AlbertAccess.from_settings(settings))
    assert isinstance(built, AlbertEmbeddings)
    return built


# -- embeddings ---------------------------------------------------------------------------------


def test_vectors_are_the_services_in_the_order_of_the_texts(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    embedder = _embedder(settings)
    assert (embedder.name, embedder.dim) == (f"albert:{MODEL}", EMBED_DIM)
    assert fake.embed_requests == []  # a known model's dimension needs no request
    texts = ["Le mandat municipal dure 6 ans.", "L'ODD 17 porte sur les partenariats."]
    vectors = embedder.embed_passages(texts)
    # The fake lists its vectors in reverse: the client goes by their index.
    np.testing.assert_allclose(vectors, fake.vectors.embed_passages(texts), atol=1e-6)
    assert fake.embed_requests == [{"model": MODEL, "input": texts, "encoding_format": "float"}]
    assert fake.authorizations == [f"Bearer {KEY}"]
    # LangChain's Embeddings interface, as Chroma calls it.
    query = embedder.embed_query(QUESTION)
    assert len(query) == EMBED_DIM and abs(float(np.linalg.norm(query)) - 1.0) < 1e-5
    assert np.allclose(embedder.embed_documents(texts), vectors)


def test_many_texts_go_in_batches_of_64(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    texts = [f"Passage numéro {i} sur les alliances du territoire {i * 7}." for i in range(150)] + ["", "  "]
    vectors = _embedder(settings).embed_passages(texts)
    assert [len(r["input"]) for r in fake.embed_requests] == [64, 64, 24]
    assert vectors.shape == (152, EMBED_DIM)
    np.testing.assert_allclose(vectors[:150], fake.vectors.embed_passages(texts[:150]), atol=1e-6)
    assert all(t for r in fake.embed_requests for t in r["input"])  # the API refuses an empty string


def test_a_busy_service_is_retried_with_backoff_then_answers(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    fake.embed_mode = "busy:2"  # two refusals for load (429), then vectors
    vectors = _embedder(settings).embed_passages(["Le mandat municipal dure 6 ans."])
    assert vectors.shape == (1, EMBED_DIM)
    assert len(fake.embed_requests) == 3


@pytest.mark.parametrize(("mode", "reason"), [("busy", "saturée (trop de requêtes, HTTP 429"),
                                              ("down", "en panne ou surchargée (HTTP 503")])
def test_a_persistent_failure_is_one_french_error_after_the_retries(
        albert: tuple[Settings, FakeAlbert], mode: str, reason: str) -> None:
    settings, fake = albert
    fake.embed_mode = mode
    with pytest.raises(EmbedderServiceError) as caught:
        _embedder(settings).embed_passages(["Le mandat municipal dure 6 ans."])
    message = str(caught.value)
    assert message.startswith("Calcul des vecteurs impossible : l'API Albert est ") and reason in message
    assert "après 2 nouvelles tentatives" in message and "Réessayez dans quelques minutes" in message
    assert len(fake.embed_requests) == 1 + settings.albert_retries


def test_a_slow_service_times_out_into_the_french_error(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    fake.embed_mode = "slow"
    fast = settings.with_overrides(albert_timeout_s=0.3, albert_retries=1)
    with pytest.raises(EmbedderServiceError, match=r"n'a pas répondu en 0\.3 s \(après 1 nouvelle tentative\)"):
        _embedder(fast).embed_query(QUESTION)
    assert len(fake.embed_requests) == 2


def test_a_refused_key_or_a_wrong_dimension_is_not_retried(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    with pytest.raises(EmbedderError, match="refusé la clé") as caught:
        _embedder(settings.with_overrides(albert_api_key="mauvaise-cle")).embed_query(QUESTION)
    assert not isinstance(caught.value, EmbedderServiceError) and len(fake.embed_requests) == 1
    fake.embed_mode = "wrong_dim"
    with pytest.raises(EmbedderError, match=r"512 dimensions .* 1024 attendues"):
        _embedder(settings).embed_query(QUESTION)


def test_an_unknown_model_is_asked_its_dimension_once(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    embedder = _embedder(settings.with_overrides(embedder="albert:modele-maison"))
    assert (embedder.name, embedder.dim) == ("albert:modele-maison", EMBED_DIM)
    assert [r["model"] for r in fake.embed_requests] == ["modele-maison"]


# -- the index: name and dimension stored, a switch needs a re-index -----------------------------


def test_ingestion_stores_the_albert_name_and_dimension_and_answers_use_the_same_embedder(
        albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    settings = settings.with_overrides(embed_workers=4)  # a remote embedder runs in the job's own process
    assert settings.embed_worker_count == 1
    report = run_ingest(settings, progress=False)
    assert report.exit_code == 0 and report.indexed
    generation = shared_state.current_generation(settings)
    assert generation is not None
    catalog = store.read_catalog(generation)
    assert (catalog.embedder, catalog.dim) == (f"albert:{MODEL}", EMBED_DIM)
    assistant = Assistant(settings)
    vectors = store.open_vectorstore(settings, generation, assistant.embedder)
    assert {k: vectors.collection.metadata[k] for k in ("embedder", "dim")} == {"embedder": f"albert:{MODEL}",
                                                                               "dim": EMBED_DIM}
    seen = len(fake.embed_requests)
    answer = assistant.answer(QUESTION)
    assert answer.citations and not answer.abstained and "169 cibles" in answer.text
    assert assistant.retriever.embedder is assistant.embedder  # the search and the quotes: one embedder
    asked = [t for r in fake.embed_requests[seen:] for t in r["input"]]
    # The quotable units were embedded at ingestion, by the same embedder (same name, same cache): at
    # question time only the question itself goes to the service.
    assert asked == [QUESTION], asked


def test_switching_embedders_without_a_rebuild_fails_clearly(albert: tuple[Settings, FakeAlbert],
                                                             fake_embedder) -> None:  # type: ignore[no-untyped-def]
    settings, _ = albert
    local = settings.with_overrides(embedder="hash:256")
    run_ingest(local, embedder=fake_embedder, progress=False)
    with pytest.raises(AssistantError) as caught:
        Assistant(settings).answer(QUESTION)
    message = user_error(caught.value)
    assert "construit avec le modèle d'embeddings « hash:256 » (256 dimensions)" in message
    assert f"« albert:{MODEL} » (1024 dimensions)" in message and "python -m ingest --rebuild" in message
    with pytest.raises(IngestConfigError, match="--rebuild"):
        run_ingest(settings, progress=False)
    assert run_ingest(settings, rebuild=True, progress=False).exit_code == 0
    assert Assistant(settings).answer(QUESTION).citations
    with pytest.raises(AssistantError, match=f"« albert:{MODEL} »"):  # and back, the same refusal
        Assistant(local, embedder=fake_embedder).answer(QUESTION)


def test_a_failing_service_stops_the_ingestion_and_leaves_the_served_index(
        albert: tuple[Settings, FakeAlbert]) -> None:
    settings, fake = albert
    run_ingest(settings, progress=False)
    served = shared_state.current_generation(settings)
    assert served is not None
    folders = sorted(p.name for p in store.generations_dir(settings.data_dir).iterdir())
    (settings.corpus_dir / "nouveau.md").write_text(
        "# Nouvelle fiche\n\nLa fiche nouvelle décrit les conventions de partenariat entre communes.\n",
        encoding="utf-8")
    fake.embed_mode = "busy"
    with pytest.raises(EmbedderServiceError, match="saturée") as caught:
        run_ingest(settings, progress=False)
    assert exit_code(caught.value) == EXIT_VECTOR_SERVER  # a passing fault: a supervisor may retry
    current = shared_state.current_generation(settings)
    assert current is not None and current.name == served.name
    assert sorted(p.name for p in store.generations_dir(settings.data_dir).iterdir()) == folders
    # At question time the same failure is one French sentence at the UI boundary, never a traceback.
    with pytest.raises(EmbedderServiceError) as asked:
        Assistant(settings).answer(QUESTION)
    assert user_error(asked.value).startswith("Calcul des vecteurs impossible : l'API Albert est saturée")
    fake.embed_mode = "ok"
    report = run_ingest(settings, progress=False)
    assert report.exit_code == 0 and report.indexed == ["nouveau.md"]


# -- reranking -----------------------------------------------------------------------------------


@pytest.fixture
def rerank(albert: tuple[Settings, FakeAlbert], fake_embedder) -> tuple[Settings, Settings, FakeAlbert]:  # type: ignore[no-untyped-def]
    """(settings without reranker, the same with Albert's reranker), on an index of the hash embedder."""
    settings, fake = albert
    plain = settings.with_overrides(embedder="hash:256")
    run_ingest(plain, embedder=fake_embedder, progress=False)
    return plain, plain.with_overrides(reranker="albert:reranker-test"), fake


def test_albert_reranks_the_passages(rerank: tuple[Settings, Settings, FakeAlbert],
                                     fake_embedder) -> None:  # type: ignore[no-untyped-def]
    plain, reranked, fake = rerank
    local = Retriever(plain, fake_embedder).search(QUESTION, k=3)
    result = Retriever(reranked, fake_embedder).search(QUESTION, k=3)
    sent = fake.rerank_requests[-1]
    assert {k: sent[k] for k in ("model", "query", "top_n")} == {"model": "reranker-test", "query": QUESTION,
                                                                "top_n": 3}
    assert sent["documents"][:3] == [p.text for p in local.passages]  # the local order, sent as it is
    # The fake ranks the last document first: the passages come back in the service's order.
    assert [p.text for p in result.passages] == sent["documents"][::-1][:3]
    assert result.notice == "" and "rerank" in result.timings


@pytest.mark.parametrize("mode", ["busy", "slow"])
def test_a_failing_reranker_keeps_the_local_order_with_a_notice(
        rerank: tuple[Settings, Settings, FakeAlbert], fake_embedder, mode: str,  # type: ignore[no-untyped-def]
        caplog: pytest.LogCaptureFixture) -> None:
    plain, reranked, fake = rerank
    fake.rerank_mode = mode
    reranked = reranked.with_overrides(albert_timeout_s=0.3, albert_retries=1)
    local = Retriever(plain, fake_embedder).search(QUESTION, k=3)
    with caplog.at_level(logging.WARNING, logger="assistant.retrieve"):
        result = Retriever(reranked, fake_embedder).search(QUESTION, k=3)
    assert [p.id for p in result.passages] == [p.id for p in local.passages]
    assert result.notice.startswith("Le reclassement des passages par l'API Albert n'a pas abouti : l'API Albert ")
    assert result.notice.endswith("Les passages sont présentés dans l'ordre de la recherche locale.")
    assert ("saturée (trop de requêtes, HTTP 429" if mode == "busy" else "n'a pas répondu en 0.3 s") in result.notice
    assert len(fake.rerank_requests) == 2  # one retry after a pause, then the fallback
    assert any("Reclassement indisponible" in r.getMessage() for r in caplog.records)
    # The user sees it beside the answer, which is still given.
    answer = Assistant(reranked, embedder=fake_embedder).answer(QUESTION)
    assert answer.citations and "Le reclassement des passages" in answer.notice


def test_the_reranker_needs_a_model_and_a_key(albert: tuple[Settings, FakeAlbert]) -> None:
    settings, _ = albert
    with pytest.raises(SettingsError, match="indiquez le modèle de reclassement"):
        build_reranker(settings.with_overrides(reranker="albert"))
    with pytest.raises(AlbertConfigError, match="ASSISTANT_ALBERT_API_KEY"):
        build_reranker(settings.with_overrides(reranker="albert:r", albert_api_key=""))
    assert isinstance(build_reranker(settings.with_overrides(reranker="albert:r")), AlbertReranker)
    assert build_reranker(settings) is None


# -- where the address and key come from; nothing called before use -----------------------------


def test_address_and_key_never_borrow_another_backends_key() -> None:
    chat = Settings(llm_backend="albert", llm_base_url="http://127.0.0.1:9/v1", llm_api_key="cle-chat")
    assert AlbertAccess.from_settings(chat) == AlbertAccess("http://127.0.0.1:9/v1", "cle-chat", 20.0, 3)
    own = chat.with_overrides(albert_base_url="http://127.0.0.1:8/v1/", albert_api_key="cle-albert")
    assert (AlbertAccess.from_settings(own).base_url, AlbertAccess.from_settings(own).api_key) == (
        "http://127.0.0.1:8/v1", "cle-albert")
    # A Mistral (or any other) key is never sent to Albert: the embedder refuses to start without its own.
    mistral = Settings(llm_backend="mistral", llm_api_key="cle-mistral", embedder="albert")
    assert AlbertAccess.from_settings(mistral).api_key == ""
    with pytest.raises(AlbertConfigError, match="La clé de l'API Albert manque"):
        embedder_from_settings(mistral)
    secret = Settings(albert_api_key="cle-secrete")
    assert "cle-secrete" not in repr(secret) and "albert_api_key" not in secret.public_dict()


def test_configured_albert_calls_nobody_until_used(settings: Settings, connections: list[Any]) -> None:
    calls = connections
    configured = settings.with_overrides(embedder="albert", reranker="albert:r", albert_api_key=KEY,
                                         albert_base_url="http://127.0.0.1:9/v1")
    embedder = embedder_from_settings(configured)
    assert (embedder.name, embedder.dim) == (f"albert:{MODEL}", EMBED_DIM)
    assert build_reranker(configured) is not None
    assert calls == []
