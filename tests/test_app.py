"""The app launched on loopback, driven through gradio_client and raw HTTP: answers with citations,
follow-ups, feedback, the document route, traversal/SSRF refusals, login."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client

import app as webapp
from assistant.feedback import FeedbackStore
from assistant.settings import Settings
from ingest.index import run_ingest
from tests.appserver import (
    HOSTILE_MD_QUESTION,
    HOSTILE_QUESTION,
    SECRET,
    active_content,
    app_settings,
    raw_request,
    serve,
    write_app_corpus,
)
from webui.context import AppContext

QUESTION = "Quelles sont les missions d'un catalyseur territorial ?"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    root = tmp_path_factory.mktemp("app")
    settings = app_settings(root, write_app_corpus(root))
    report = run_ingest(settings, progress=False)
    assert [f["path"] for f in report.failed] == ["fuite.md"]  # the symlink that leaves the corpus
    with serve(webapp.build_app(settings)) as url:
        yield url, settings


def _client(url: str, **kw: Any) -> Client:
    return Client(url, verbose=False, download_files=False, **kw)


def _messages_html(chat: list[dict[str, Any]]) -> list[str]:
    return ["".join(part.get("text", "") for part in m["content"]) for m in chat]


def test_ask_api_returns_the_cli_json(live: tuple[str, Settings], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    url, settings = live
    result = _client(url).predict(question=QUESTION, api_name="/ask")
    assert result["abstained"] is False and result["mode"] == "extractive"
    assert result["citations"] and result["citations"][0]["doc_id"] == "guide-alliances"
    assert result["citations"][0]["page"] == 1 and "quatre missions" in result["citations"][0]["quote"]

    # Same JSON as `python -m assistant ask --json` on the same index (timings aside).
    _env(monkeypatch, settings)
    from assistant.cli import main

    assert main(["ask", QUESTION, "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert set(cli) == set(result)
    cli.pop("timings"), result.pop("timings")
    assert cli == result


def test_ask_api_follow_up_and_errors(live: tuple[str, Settings]) -> None:
    url, _ = live
    client = _client(url)
    first = client.predict(question="Que dit l'Agenda 2030 ?", api_name="/ask")
    history = [{"role": "user", "content": "Que dit l'Agenda 2030 ?"},
               {"role": "assistant", "content": first["answer"]}]
    follow = client.predict(question="Et combien de cibles ?", history=history, api_name="/ask")
    assert follow["standalone_question"] != follow["question"] and "Agenda" in follow["standalone_question"]
    assert "169 cibles" in follow["answer"]
    with pytest.raises(Exception, match="Veuillez saisir une question"):
        client.predict(question="   ", api_name="/ask")
    with pytest.raises(Exception, match="trop longue"):
        client.predict(question="x" * 5000, api_name="/ask")
    with pytest.raises(Exception, match="extractive"):
        client.predict(question=QUESTION, mode="poème", api_name="/ask")


def test_chat_answers_with_sources_keeps_history_and_stores_feedback(live: tuple[str, Settings]) -> None:
    url, settings = live
    client = _client(url)
    chat, _, target = client.predict("Que dit l'Agenda 2030 ?", "extractive", False, api_name="/respond")
    first = _messages_html(chat)[-1]
    assert "Mode : extraits des documents" in first and "Sources citées" in first
    assert 'href="/documents/guide-alliances#page=2"' in first and "Ouvrir à la page 2" in first and "<mark>" in first

    # The follow-up is read with the conversation kept by the app (gr.State), not sent by the client.
    chat, _, target = client.predict("Et combien de cibles ?", "extractive", True, api_name="/respond")
    assert len(chat) == 4
    second = _messages_html(chat)[-1]
    assert "Question comprise : « " in second and "Agenda 2030" in second.split("Question comprise", 1)[1][:120]
    assert "169 cibles" in second
    assert "langage simple" in second
    answer_id = target["value"]
    assert [label for label, _ in target["choices"]] == ["1. Que dit l'Agenda 2030 ?", "2. Et combien de cibles ?"]

    thanks, *_ = client.predict(answer_id, "down", ["incomplet", "trop long"], "Il manque les 17 ODD.",
                                api_name="/rate")
    assert thanks == "Merci, votre avis est enregistré."
    store = FeedbackStore(settings.data_dir / "feedback.sqlite")
    [fb] = store.list_feedback(answer_id)
    assert (fb.rating, fb.tags, fb.comment) == ("down", ["incomplet", "trop long"], "Il manque les 17 ODD.")
    record = store.get_answer(answer_id)
    assert record is not None and record.question == "Et combien de cibles ?"
    assert record.standalone_question != record.question and record.plain_language
    assert record.citations and record.cited_passage_ids <= {p["id"] for p in record.passages}
    assert record.settings["answer_mode"] == "extractive" and "llm_api_key" not in record.settings

    # Only the answers of one's own conversation can be rated (Gradio checks the dropdown's choices).
    with pytest.raises(Exception, match="not in the list of choices"):
        client.predict("nexiste-pas", "up", [], "", api_name="/rate")
    other = _client(url)
    with pytest.raises(Exception, match="not in the list of choices"):
        other.predict(answer_id, "up", [], "", api_name="/rate")

    # «Nouvelle conversation»: the next question is no longer read as a follow-up.
    client.predict(api_name="/new_conversation")
    chat, _, _ = client.predict("Et combien de cibles ?", "extractive", False, api_name="/respond")
    assert len(chat) == 2 and "Question comprise" not in _messages_html(chat)[-1]


def test_chat_refusal_and_errors_are_one_french_sentence(live: tuple[str, Settings]) -> None:
    url, _ = live
    client = _client(url)
    chat, _, _ = client.predict("x" * 2000, "extractive", False, api_name="/respond")
    error = _messages_html(chat)[-1]
    assert 'class="reponse erreur"' in error and "trop longue" in error and "Traceback" not in error


def test_llm_mode_hidden_when_not_configured(live: tuple[str, Settings]) -> None:
    url, _ = live
    config = raw_request(url, "GET", "/config")[2].decode()
    assert "Extraits des documents" in config and "vérifiée sur les sources" not in config
    assert "n'est pas configuré sur ce serveur" in config or "n\\u0027est pas configur" in config
    with pytest.raises(Exception, match="not in the list of choices"):  # Gradio checks the radio's choices
        _client(url).predict("Que dit l'Agenda 2030 ?", "llm", False, api_name="/respond")
    result = _client(url).predict(question="Que dit l'Agenda 2030 ?", mode="llm", api_name="/ask")
    assert result["mode"] == "extractive" and "pas configuré sur ce serveur" in result["notice"]


def test_hostile_documents_and_questions_stay_inert(live: tuple[str, Settings]) -> None:
    url, _ = live
    client = _client(url)
    for question in (HOSTILE_QUESTION, HOSTILE_MD_QUESTION, "<img src=x onerror=alert(9)> ![p](http://evil/p.png)"):
        chat, _, _ = client.predict(question, "extractive", False, api_name="/respond")
        for html_ in _messages_html(chat):
            assert active_content(html_) == [], html_
    answer = _messages_html(chat)[-3]  # HOSTILE_MD_QUESTION's answer
    assert "pièges numériques" in answer and "169.254.169.254" in answer  # shown as text only
    hostile = client.predict(question=HOSTILE_QUESTION, api_name="/ask")
    assert hostile["citations"][0]["doc_id"] == "charte-piegee"
    assert "<script>alert(1)</script>" in hostile["answer"]  # the API returns text; escaping is the client's job


def test_documents_are_served_safely(live: tuple[str, Settings]) -> None:
    url, _ = live
    status, headers, body = raw_request(url, "GET", "/documents/guide-alliances")
    assert status == 200 and headers["content-type"] == "application/pdf" and body.startswith(b"%PDF")
    assert headers["x-content-type-options"] == "nosniff" and headers["content-disposition"].startswith("inline")

    status, headers, body = raw_request(url, "GET", "/documents/charte-piegee")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    csp = headers["content-security-policy"]
    assert "sandbox" in csp and "default-src 'none'" in csp
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and active_content(text.split("<body>", 1)[1]) == []
    assert "script-de-page" not in text and "body-onload" not in text

    status, headers, body = raw_request(url, "GET", "/documents/charte-piegee/original")
    assert status == 200 and headers["content-disposition"].startswith("attachment")
    assert headers["content-security-policy"].endswith("sandbox") and headers["content-type"].startswith(
        "application/octet-stream")

    status, headers, body = raw_request(url, "GET", "/")
    assert status == 200 and "img-src 'self' data: blob:" in headers["content-security-policy"]
    assert b"Envoyer la question" in body  # (the login test checks this is absent before login)


REFUSED = [
    "/documents/../app.py", "/documents/../../app.py", "/documents/..%2F..%2Fapp.py", "/documents/..%2fapp.py",
    "/documents/%2e%2e%2f%2e%2e%2fapp.py", "/documents/%252e%252e%252fapp.py", "/documents/..%5c..%5capp.py",
    "/documents/..\\..\\app.py", "/documents//etc/passwd", "/documents/%2Fetc%2Fpasswd", "/documents/.env",
    "/documents/%2eenv", "/documents/app.py", "/documents/data", "/documents/feedback.sqlite",
    "/documents/guide-alliances.pdf", "/documents/corpus/guide-alliances.pdf", "/documents/fuite",
    "/documents/fuite.md", "/documents/guide-alliances/../../app.py", "/documents/guide-alliances/%2e%2e/.env",
    "/documents/http://169.254.169.254/latest/meta-data/", "/documents/http%3A%2F%2F169.254.169.254%2Flatest",
    "/documents/guide-alliances%00.pdf", "/documents", "/documents/",
    "/gradio_api/file=app.py", "/gradio_api/file=.env", "/gradio_api/file=../../app.py", "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=http://169.254.169.254/latest/meta-data/", "/gradio_api/file=http%3A//169.254.169.254/",
    "/gradio_api/proxy=http://169.254.169.254/latest/meta-data/", "/file=/etc/passwd",
    "/proxy=http://169.254.169.254/", "/gradio_api/file/app.py", "/static/../../app.py", "/assets/../../../app.py",
    "/assets/%2e%2e/%2e%2e/app.py", "/svelte/../../app.py", "/app.py", "/.env", "/data/feedback.sqlite",
    "/corpus/.env", "/monitoring", "/monitoring/summary", "/openapi.json", "/docs", "/redoc",
    "/http://169.254.169.254/latest/meta-data/",
]


@pytest.mark.parametrize("path", REFUSED)
def test_traversal_and_ssrf_are_refused(live: tuple[str, Settings], path: str) -> None:
    url, _ = live
    status, _, body = raw_request(url, "GET", path)
    assert status in (403, 404), (path, status, body[:200])
    assert SECRET.encode() not in body and b"import gradio" not in body and b"root:" not in body


def test_refusals_do_not_reveal_whether_a_file_exists(live: tuple[str, Settings]) -> None:
    url, settings = live
    absolute = str(Path(webapp.__file__).resolve())
    pairs = [
        ("/documents/..%2F..%2Fapp.py", "/documents/..%2F..%2Fabsent.py"),
        ("/documents/.env", "/documents/.absent"),
        (f"/gradio_api/file={absolute}", f"/gradio_api/file={absolute}.absent"),
        (f"/gradio_api/file={settings.data_dir}/feedback.sqlite", f"/gradio_api/file={settings.data_dir}/absent"),
    ]
    for existing, missing in pairs:
        a, b = raw_request(url, "GET", existing), raw_request(url, "GET", missing)
        assert (a[0], a[2]) == (b[0], b[2]), existing


def test_uploads_are_refused(live: tuple[str, Settings]) -> None:
    url, _ = live
    body = b"--x\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.html\"\r\n\r\n<script>\r\n--x--\r\n"
    status, _, _ = raw_request(url, "POST", "/gradio_api/upload", {"Content-Type": "multipart/form-data; boundary=x"},
                               body)
    assert status in (403, 404)


def test_sources_tab_data(live: tuple[str, Settings]) -> None:
    url, settings = live
    _client(url).predict(question=QUESTION, api_name="/ask")
    ctx = AppContext.create(settings)  # the Sources tab's handlers read this context
    status = ctx.status_html()
    assert "7 documents" in status and "Embeddings : hash:256" in status and "1 en échec" in status
    table = ctx.documents_html(status="failed")
    assert "fuite.md" in table and "lien symbolique" in table
    assert "Charte des partenariats" in ctx.documents_html("charte") and "Guide" not in ctx.documents_html("charte")
    choices = ctx.filter_choices()
    assert ("HTML", "html") in choices["formats"]
    assert ("Collectif de test", "Collectif de test") in choices["publishers"]
    assert "fuite" not in str(choices["documents"])  # nothing to read for a failed file
    page_html, number = ctx.page_html("guide-alliances", 2)
    assert number == 2 and "page 2 sur 3" in page_html and "Agenda 2030" in page_html
    assert ctx.page_html("guide-alliances", 99)[1] == 3
    assert ctx.page_html("absent", 1)[1] is None
    answer_id = ctx.answer_choices()[0][1]
    trace = ctx.trace_html(answer_id)
    assert "Oui [1]" in trace and "Non" in trace and QUESTION in trace


@pytest.fixture(scope="module")
def live_with_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("app-auth")
    settings = app_settings(root, write_app_corpus(root), auth=(("agent", "mot-de-passe-solide"),))
    run_ingest(settings, progress=False)
    with serve(webapp.build_app(settings)) as url:
        yield url


PROTECTED = [
    ("GET", "/config"), ("GET", "/gradio_api/info"), ("POST", "/gradio_api/queue/join"),
    ("POST", "/gradio_api/call/ask"), ("POST", "/gradio_api/run/ask"), ("GET", "/gradio_api/queue/data"),
    ("GET", "/documents/guide-alliances"), ("GET", "/documents/guide-alliances/original"),
    ("GET", "/documents/charte-piegee"), ("GET", "/documents/absent"), ("GET", "/gradio_api/openapi.json"),
    # Gradio leaves these open; the app's guard closes them (/cancel answered {"success":true} without login).
    ("POST", "/gradio_api/cancel"), ("POST", "/gradio_api/reset"), ("GET", "/gradio_api/heartbeat/abc"),
    ("GET", "/gradio_api/startup-events"), ("GET", "/gradio_api/token"), ("GET", "/gradio_api/user"),
    ("GET", "/gradio_api/app_id"), ("GET", "/gradio_api/call/ask/abc"), ("POST", "/gradio_api/api/ask"),
    ("GET", "/gradio_api/info/"), ("GET", "/config/"), ("GET", "/gradio_api/queue/data?session_hash=x"),
    ("POST", "/gradio_api/queue/join/"), ("GET", "/nimporte-quoi"), ("GET", "/gradio_api/nimporte-quoi"),
]


def test_login_is_enforced_everywhere(live_with_login: str) -> None:
    url = live_with_login
    for method, path in PROTECTED:
        status, _, body = raw_request(url, method, path, {"Content-Type": "application/json"},
                                      b"{}" if method == "POST" else None)
        assert status in (401, 403), (path, status, body[:200])
        assert b"success" not in body
    with pytest.raises(Exception, match="credentials were not provided"):
        _client(url).predict(question=QUESTION, api_name="/ask")
    with pytest.raises(ValueError, match="Could not login"):
        _client(url, auth=("agent", "mauvais")).predict(question=QUESTION, api_name="/ask")
    status, _, body = raw_request(url, "GET", "/")  # the login page, without the app's configuration
    assert status == 200 and b"Envoyer la question" not in body and b"hash:256" not in body

    result = _client(url, auth=("agent", "mot-de-passe-solide")).predict(question=QUESTION, api_name="/ask")
    assert result["citations"]

    status, headers, _ = raw_request(url, "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                                     b"username=agent&password=mot-de-passe-solide")
    assert status == 200
    cookie = "; ".join(c.split(";", 1)[0] for c in headers["set-cookie"].split("\n"))
    status, headers, body = raw_request(url, "GET", "/documents/guide-alliances", {"Cookie": cookie})
    assert status == 200 and body.startswith(b"%PDF")
    status, _, _ = raw_request(url, "GET", "/documents/guide-alliances", {"Cookie": "access-token-x=forged"})
    assert status == 401


def test_login_page_and_its_assets_stay_open(live_with_login: str) -> None:
    status, _, body = raw_request(live_with_login, "GET", "/")
    assets = [ref for ref in body.decode().split('"') if ref.startswith("./assets/")]
    assert status == 200 and assets
    for ref in [*assets[:3], "/theme.css", "/favicon.ico", "/manifest.json"]:
        assert raw_request(live_with_login, "GET", "/" + ref.removeprefix("./").lstrip("/"))[0] == 200, ref


def test_login_locks_out_after_failed_attempts(tmp_path: Path) -> None:
    # Its own app (no index needed): the lockout is per client address and every test client is 127.0.0.1.
    settings = app_settings(tmp_path, write_app_corpus(tmp_path), auth=(("agent", "mot-de-passe-solide"),),
                            login_max_failures=3, login_lockout_s=600)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serve(webapp.build_app(settings)) as url:
        statuses = [raw_request(url, "POST", "/login", form, b"username=agent&password=faux")[0] for _ in range(3)]
        assert statuses == [400, 400, 400]
        status, headers, body = raw_request(url, "POST", "/login", form,
                                            b"username=agent&password=mot-de-passe-solide")
        assert status == 429 and 590 <= int(headers["retry-after"]) <= 600  # locked: even the right password
        assert json.loads(body)["detail"].startswith("Trop de tentatives de connexion échouées : réessayez dans ")
        with pytest.raises(ValueError, match="Could not login"):
            _client(url, auth=("agent", "mot-de-passe-solide"))


def test_questions_per_client_are_limited(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, write_app_corpus(tmp_path), ask_rate_per_minute=2)
    with serve(webapp.build_app(settings)) as url:
        client = _client(url)
        for _ in range(2):  # no index: each is answered by an error, and still counted
            with pytest.raises(Exception, match="Aucun index"):
                client.predict(question=QUESTION, api_name="/ask")
        with pytest.raises(Exception, match=r"Trop de demandes : réessayez dans \d+ s\."):
            client.predict(question=QUESTION, api_name="/ask")
        # The chat shares the limit: the question is not answered, the conversation is left as it was.
        chat, *_ = client.predict("Que dit l'Agenda 2030 ?", "extractive", False, api_name="/respond")
        assert chat == []


def test_ask_api_reads_a_bounded_history(live: tuple[str, Settings]) -> None:
    url, settings = live
    pasted = ("Le catalyseur territorial accompagne les collectivités et les associations. " * 2700)[:200_000]
    history = [{"role": "user", "content": pasted}, {"role": "assistant", "content": pasted}] * 30
    result = _client(url).predict(question="et pour les associations ?", history=history, api_name="/ask")
    assert len(result["standalone_question"]) <= settings.max_question_chars + settings.max_history_chars + 100


def test_nothing_written_outside_the_data_folder(live: tuple[str, Settings]) -> None:
    _, settings = live
    db = settings.data_dir / "feedback.sqlite"
    assert db.exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] > 0


class EchoChatModel:
    """A stand-in chat model: one sentence from the Agenda 2030 passage, cited, then an invented figure."""

    def stream(self, messages: list[Any]) -> Iterator[Any]:
        from langchain_core.messages import AIMessageChunk

        prompt = str(messages[-1].content)
        blocks = prompt.split('<passage n="')[1:]
        n = next((b.split('"', 1)[0] for b in blocks if "193 États" in b), "1")
        text = (f"L'Agenda 2030 a été adopté en septembre 2015 par les 193 États membres de l'ONU [{n}]. "
                f"Il prévoit une aide de 5 000 euros par commune [{n}].")
        for word in text.split(" "):
            yield AIMessageChunk(content=word + " ")


def test_llm_mode_is_offered_and_shown_when_configured(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, write_app_corpus(tmp_path))
    run_ingest(settings, progress=False)
    assistant = webapp.Assistant(settings, chat_model=EchoChatModel())
    with serve(webapp.build_app(settings, assistant)) as url:
        client = _client(url)
        chat, *_ = client.predict("Quand l'Agenda 2030 a-t-il été adopté ?", "llm", False, api_name="/respond")
        answer = _messages_html(chat)[-1]
        assert "Mode : réponse rédigée par le modèle de langage" in answer
        assert "193 États membres" in answer and "5 000 euros" not in answer  # the verifier dropped it
        assert "Sources citées" in answer and "#page=2" in answer
        result = client.predict(question="Quand l'Agenda 2030 a-t-il été adopté ?", mode="llm", api_name="/ask")
        assert result["mode"] == "llm" and result["dropped_sentences"]
        config = json.loads(raw_request(url, "GET", "/config")[2])
        assert "Réponse rédigée par le modèle de langage, vérifiée sur les sources" in json.dumps(
            config, ensure_ascii=False)


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for key in [k for k in os.environ if k.startswith("ASSISTANT_")]:
        monkeypatch.delenv(key)
    for key, value in {"corpus_dir": settings.corpus_dir, "data_dir": settings.data_dir, "embedder": "hash:256",
                       "relevance_floor": "0.05", "uncertain_floor": "0.05",
                       "chunk_words": "60", "chunk_overlap_words": "10"}.items():
        monkeypatch.setenv(f"ASSISTANT_{key.upper()}", str(value))


def test_main_indexes_first_when_there_is_no_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    from assistant import store

    settings = app_settings(tmp_path, write_app_corpus(tmp_path))
    _env(monkeypatch, settings)
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    other_db = tmp_path / "autre"
    assert store.current_generation(other_db) is None
    assert webapp.main(["--db", str(other_db), "--port", "0", "--host", "127.0.0.1"]) == 0
    assert store.current_generation(other_db) is not None
    assert served["host"] == "127.0.0.1" and served["port"] == 0
    err = capsys.readouterr().err
    assert "indexation du corpus avant le démarrage" in err and "Fichier non indexé : fuite.md" in err


def test_main_errors_are_one_french_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    settings = app_settings(tmp_path, tmp_path / "pas-de-corpus")
    _env(monkeypatch, settings)
    assert webapp.main(["--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("Erreur : Le dossier du corpus n'existe pas") and "Traceback" not in err

    settings = app_settings(tmp_path, write_app_corpus(tmp_path))
    _env(monkeypatch, settings)
    run_ingest(settings, progress=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert webapp.main(["--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Erreur : impossible d'écouter sur 127.0.0.1:") and "Traceback" not in err


def test_limits_and_privacy_settings_without_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Gradio keeps the queue's size to itself: what the app asks of Blocks.queue is what is checked.
    queued: list[tuple[gr.Blocks, dict[str, Any]]] = []
    queue = gr.Blocks.queue

    def recording_queue(self: gr.Blocks, *args: Any, **kwargs: Any) -> gr.Blocks:
        queued.append((self, kwargs))
        return queue(self, *args, **kwargs)

    monkeypatch.setattr(gr.Blocks, "queue", recording_queue)
    settings = app_settings(tmp_path, write_app_corpus(tmp_path), max_queue=7, concurrency_limit=3)
    app = webapp.build_app(settings)
    [(blocks, options)] = [(b, kw) for b, kw in queued if kw]  # gr.Blocks() first queues with the defaults
    assert options == {"max_size": 7, "default_concurrency_limit": 3, "api_open": False}
    assert blocks.enable_monitoring is False
    fns = {fn.api_name: fn for fn in blocks.fns.values() if fn.api_name}
    assert fns["ask"].concurrency_limit == 3 and fns["respond"].concurrency_limit == 3
    assert fns["ask"].concurrency_id == fns["respond"].concurrency_id  # one pool for the chat and the API
    with serve(app) as url:
        chat, *_ = _client(url).predict("Que dit l'Agenda 2030 ?", "extractive", False, api_name="/respond")
        assert "Aucun index n'est disponible" in _messages_html(chat)[-1]
        assert raw_request(url, "GET", "/documents/guide-alliances")[0] == 404
        config = json.loads(raw_request(url, "GET", "/config")[2])
        assert config["analytics_enabled"] is False and config["max_file_size"] == 1
        assert "python -m ingest" in json.dumps(config, ensure_ascii=False)


def test_a_full_queue_is_refused_in_french(tmp_path: Path) -> None:
    """Gradio answers a full queue with 503 and its browser client then shows a fixed English sentence;
    the app turns it into a 429 whose French ``detail`` the client shows as written."""
    import threading

    from assistant.answer import Assistant
    from webui.security import QUEUE_FULL

    started, release = threading.Event(), threading.Event()

    class Blocking(Assistant):
        def answer(self, *args: Any, **kwargs: Any) -> Any:
            started.set()
            release.wait(timeout=120)
            return super().answer(*args, **kwargs)

    settings = app_settings(tmp_path, write_app_corpus(tmp_path), max_queue=1, concurrency_limit=1)
    with serve(webapp.build_app(settings, Blocking(settings))) as url:
        status, _, body = raw_request(url, "GET", "/config")
        config = json.loads(body)
        fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "ask")

        def join(session: str) -> tuple[int, dict[str, str], bytes]:
            payload = {"data": [QUESTION, [], "", False], "fn_index": fn_index, "session_hash": session,
                       "event_data": None, "trigger_id": None}
            return raw_request(url, "POST", "/gradio_api/queue/join",
                               {"Content-Type": "application/json"}, json.dumps(payload).encode())

        try:
            assert join("premier")[0] == 200
            assert started.wait(timeout=120)  # the first question is being answered: the queue is empty
            assert join("deuxieme")[0] == 200  # waits in the queue, which is now full
            status, headers, body = join("troisieme")
            assert status == 429, body
            assert json.loads(body) == {"detail": QUEUE_FULL}
            assert "Queue" not in body.decode() and headers.get("retry-after") == "5"
        finally:
            release.set()
