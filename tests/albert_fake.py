"""A fake Albert API for tests, served on loopback by ``tests.appserver.serve``: OpenAI-compatible chat
completions (streamed or not), ``/v1/embeddings`` and ``/v1/rerank``, with the errors a busy public service
gives (429, 503, answers slower than the client waits).

(No tests here; test_albert*.py use it.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from assistant.embeddings import HashEmbeddings
from assistant.llm import ALBERT_MODEL

REPLY = "L'Agenda 2030 fixe 17 objectifs de développement durable et 169 cibles [1]."
KEY = "cle-albert-de-test"
EMBED_DIM = 1024


def reversed_order(query: str, documents: list[str]) -> list[float]:
    """The fake reranker's default scores: the last document first (an order no search gives by chance)."""
    return [float(i) for i in range(len(documents))]


@dataclass
class FakeAlbert:
    # Chat: "ok", "busy" (429 every time), "slow" (answers after the client's timeout).
    mode: str = "ok"
    # Embeddings and rerank: "ok", "busy" (429), "down" (503), "slow", "wrong_dim" (embeddings only), or
    # "busy:N" (429 for the next N requests, then "ok").
    embed_mode: str = "ok"
    rerank_mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    embed_requests: list[dict[str, Any]] = field(default_factory=list)
    rerank_requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    # Vectors with meaning enough for retrieval tests: words hashed into 1024 dimensions.
    vectors: HashEmbeddings = field(default_factory=lambda: HashEmbeddings(EMBED_DIM))
    scores: Callable[[str, list[str]], list[float]] = reversed_order

    def reset(self) -> None:
        self.mode = self.embed_mode = self.rerank_mode = "ok"
        for log in (self.requests, self.authorizations, self.embed_requests, self.rerank_requests):
            log.clear()
        self.release.clear()
        self.scores = reversed_order


async def _refusal(fake: FakeAlbert, authorization: str, kind: str) -> Response | None:
    """What the service answers instead of the result: 401 for a wrong key, else the failure mode's error."""
    if authorization != f"Bearer {KEY}":
        return JSONResponse({"detail": "Invalid authentication"}, status_code=401)
    return await _fault(fake, kind)


async def _fault(fake: FakeAlbert, kind: str) -> Response | None:
    """The error response of a failure mode (None: answer normally); "busy:N" counts down."""
    mode = getattr(fake, kind)
    if mode.startswith("busy:"):
        left = int(mode.split(":")[1])
        setattr(fake, kind, f"busy:{left - 1}" if left > 1 else "ok")
        mode = "busy"
    if mode == "busy":
        # retry-after-ms keeps the client's backoff short in tests (the client honours it).
        return JSONResponse({"detail": "Rate limit exceeded"}, status_code=429, headers={"retry-after-ms": "20"})
    if mode == "down":
        return JSONResponse({"detail": "Service unavailable"}, status_code=503, headers={"retry-after-ms": "20"})
    if mode == "slow":
        for _ in range(100):  # until the client gave up (then the test releases it)
            if fake.release.is_set():
                break
            await asyncio.sleep(0.05)
    return None


def albert_app(fake: FakeAlbert) -> FastAPI:
    api = FastAPI()

    @api.get("/v1/models")
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": ALBERT_MODEL, "object": "model", "owned_by": "albert"}]}

    @api.post("/v1/embeddings")
    async def embeddings(request: Request, authorization: str = Header(default="")) -> Response:
        body = await request.json()
        fake.embed_requests.append(body)
        fake.authorizations.append(authorization)
        if (error := await _refusal(fake, authorization, "embed_mode")) is not None:
            return error
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if any(not isinstance(t, str) or not t for t in inputs):
            return JSONResponse({"detail": "input must be non-empty strings"}, status_code=422)
        vectors = fake.vectors.embed_passages(inputs)
        if fake.embed_mode == "wrong_dim":
            vectors = vectors[:, :512]
        data = [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                for i, v in enumerate(vectors)]
        data.reverse()  # the index, not the order of the list, says which text a vector is for
        return JSONResponse({"object": "list", "data": data, "model": body["model"],
                             "usage": {"prompt_tokens": 0, "total_tokens": 0}})

    @api.post("/v1/rerank")
    async def rerank(request: Request, authorization: str = Header(default="")) -> Response:
        body = await request.json()
        fake.rerank_requests.append(body)
        if (error := await _refusal(fake, authorization, "rerank_mode")) is not None:
            return error
        scores = fake.scores(body["query"], body["documents"])
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.get("top_n") or len(scores)]
        return JSONResponse({"id": "r1", "model": body["model"],
                             "results": [{"index": i, "relevance_score": scores[i]} for i in ranked]})

    @api.post("/v1/chat/completions")
    async def chat(request: Request, authorization: str = Header(default="")) -> Response:
        body = await request.json()
        fake.requests.append(body)
        fake.authorizations.append(authorization)
        if (error := await _refusal(fake, authorization, "mode")) is not None:
            return error
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
    """A fake Albert API on loopback for one test module: its base URL (``…/v1``) and its recorded state."""
    from tests.appserver import serve  # imported here: tests.appserver imports the conftest that loads this plugin

    fake = FakeAlbert()
    with serve(albert_app(fake)) as url:
        yield url + "/v1", fake


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket of this process connects to during the test (loopback included)."""
    calls: list[Any] = []
    real_connect = socket.socket.connect

    def watched(self: socket.socket, address: Any) -> Any:
        calls.append(address)
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", watched)
    return calls
