"""The Albert preset against a fake Albert API on loopback (OpenAI-compatible chat completions, streamed),
its refusals for load (429) and its slowness; and no network call at all when no backend is configured.
Albert's embeddings and reranking: tests/test_albert_embed.py."""

from __future__ import annotations

from typing import Any

import pytest

from assistant import llm
from assistant.answer import Assistant
from assistant.llm import ALBERT_MODEL, LLMError, build_chat_model
from assistant.settings import Settings
from ingest.index import run_ingest
from tests.albert_fake import KEY, FakeAlbert


@pytest.fixture
def albert(fake_albert: tuple[str, FakeAlbert], settings: Settings,
           fake_embedder) -> tuple[Settings, FakeAlbert]:  # type: ignore[no-untyped-def]
    url, fake = fake_albert
    fake.reset()
    run_ingest(settings, embedder=fake_embedder, progress=False)
    return settings.with_overrides(answer_mode="llm", llm_backend="albert", llm_base_url=url, llm_api_key=KEY,
                                   llm_timeout_s=2.0), fake


def test_albert_preset_answers_with_its_model_alias_and_key(albert: tuple[Settings, FakeAlbert],
                                                            fake_embedder) -> None:  # type: ignore[no-untyped-def]
    settings, fake = albert
    answer = Assistant(settings, embedder=fake_embedder).answer("Combien de cibles compte l'Agenda 2030 ?")
    assert answer.mode == "llm" and "169 cibles [1]" in answer.text and answer.notice == ""
    assert fake.requests and all(r["model"] == ALBERT_MODEL for r in fake.requests)
    assert fake.requests[-1]["stream"] is True and fake.authorizations[-1] == f"Bearer {KEY}"
    llm.check_connection(settings)  # GET /models on the configured address


def test_a_busy_albert_is_retried_then_the_extracts_come_with_a_french_notice(
        albert: tuple[Settings, FakeAlbert], fake_embedder) -> None:  # type: ignore[no-untyped-def]
    settings, fake = albert
    fake.mode = "busy"
    answer = Assistant(settings, embedder=fake_embedder).answer("Combien de cibles compte l'Agenda 2030 ?")
    assert "saturé" in answer.notice and "extraits" in answer.notice
    assert answer.text == answer.extracts and answer.citations
    assert len(fake.requests) == 1 + llm._ALBERT_RETRIES  # one call, then the client's retries with backoff


def test_a_slow_albert_times_out_into_the_extracts(albert: tuple[Settings, FakeAlbert],
                                                   fake_embedder) -> None:  # type: ignore[no-untyped-def]
    settings, fake = albert
    fake.mode = "slow"
    fast = settings.with_overrides(llm_timeout_s=0.3)
    try:
        answer = Assistant(fast, embedder=fake_embedder).answer("Combien de cibles compte l'Agenda 2030 ?")
    finally:
        fake.release.set()
    assert "saturé ou trop lent" in answer.notice and answer.text == answer.extracts


def test_albert_needs_a_key_and_defaults_to_its_public_address() -> None:
    with pytest.raises(LLMError, match="clé de l'API Albert"):
        build_chat_model(Settings(llm_backend="albert"))
    model: Any = build_chat_model(Settings(llm_backend="albert", llm_api_key="k"))  # building calls nobody
    assert str(model.openai_api_base) == llm.ALBERT_BASE_URL and model.model_name == ALBERT_MODEL
    assert Settings(llm_backend="albert", llm_api_key="k").llm_configured


def test_nothing_reaches_the_network_unless_configured(settings: Settings,
                                                      connections: list[Any]) -> None:
    """Not a single connection, loopback included, from ingestion to both answer modes, when no Albert (nor any
    other service) is configured: the embedder, the reranker and the chat model all come from the factories."""
    calls = connections
    assert not settings.remote_embedder and not settings.reranker and not settings.llm_configured
    assert not Settings().remote_embedder and Settings().reranker == "" and not Settings().llm_configured
    run_ingest(settings, progress=False)  # the embedder built by the ingestion job itself
    assistant = Assistant(settings)  # and by the assistant: embedder_from_settings, build_reranker
    for mode in ("extractive", "llm"):
        answer = assistant.answer("Combien de cibles compte l'Agenda 2030 ?", mode=mode)
        assert answer.citations
    assert assistant.retriever.search("Agenda 2030", k=3).passages
    assert calls == []
