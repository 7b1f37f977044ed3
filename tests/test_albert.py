"""The Albert preset against a fake Albert API on loopback (OpenAI-compatible chat completions, streamed),
its refusals for load (429) and its slowness; and no network call at all when no backend is configured."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from assistant import llm
from assistant.answer import Assistant
from assistant.llm import ALBERT_MODEL, LLMError, build_chat_model
from assistant.settings import Settings
from ingest.index import run_ingest
from tests.appserver import serve

REPLY = "L'Agenda 2030 fixe 17 objectifs de développement durable et 169 cibles [1]."
KEY = "cle-albert-de-test"


@dataclass
class FakeAlbert:
    mode: str = "ok"  # "ok", "busy" (429 every time), "slow" (answers after the client's timeout)
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


def albert_app(fake: FakeAlbert) -> FastAPI:
    api = FastAPI()

    @api.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": ALBERT_MODEL, "object": "model", "owned_by": "albert"}]}

    @api.post("/v1/chat/completions")
    async def chat(request: Request, authorization: str = Header(default="")) -> Response:
        body = await request.json()
        fake.requests.append(body)
        fake.authorizations.append(authorization)
        if authorization != f"Bearer {KEY}":
            return JSONResponse({"detail": "Invalid authentication"}, status_code=401)
        if fake.mode == "busy":
            # The client honours retry-after-ms: its backoff stays short in the test.
            return JSONResponse({"detail": "Rate limit exceeded"}, status_code=429, headers={"retry-after-ms": "20"})
        if fake.mode == "slow":
            import asyncio

            for _ in range(100):  # until the client gave up (then the test releases it)
                if fake.release.is_set():
                    break
                await asyncio.sleep(0.05)
        if not body.get("stream"):
            return JSONResponse({"id": "c1", "object": "chat.completion", "created": int(time.time()),
                                 "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": REPLY}}]})

        def events() -> Iterator[str]:
            for i, word in enumerate(REPLY.split(" ")):
                piece = word if i == 0 else " " + word
                chunk = {"id": "c1", "object": "chat.completion.chunk", "created": int(time.time()),
                         "model": body["model"], "choices": [{"index": 0, "delta": {"content": piece},
                                                              "finish_reason": None}]}
                yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return api


@pytest.fixture(scope="module")
def fake_albert() -> Iterator[tuple[str, FakeAlbert]]:
    fake = FakeAlbert()
    with serve(albert_app(fake)) as url:
        yield url + "/v1", fake


@pytest.fixture
def albert(fake_albert: tuple[str, FakeAlbert], settings: Settings,
           fake_embedder) -> tuple[Settings, FakeAlbert]:  # type: ignore[no-untyped-def]
    url, fake = fake_albert
    fake.mode, fake.requests[:], fake.authorizations[:] = "ok", [], []
    fake.release.clear()
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


def test_nothing_reaches_the_network_unless_configured(settings: Settings, fake_embedder,  # type: ignore[no-untyped-def]
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    run_ingest(settings, embedder=fake_embedder, progress=False)
    calls: list[Any] = []
    real_connect = socket.socket.connect

    def watched(self: socket.socket, address: Any) -> Any:
        calls.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", watched)
    for mode in ("extractive", "llm"):
        answer = Assistant(settings.with_overrides(answer_mode=mode), embedder=fake_embedder).answer(
            "Combien de cibles compte l'Agenda 2030 ?")
        assert answer.citations
    assert calls == []
