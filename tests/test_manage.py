"""« Gérer les documents »: roles (403 for non-managers on every route, nothing in the Gradio API or page),
uploads checked like the ingestion job, changes queued and indexed one at a time, the audit trail."""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

import app as webapp
from assistant import store
from assistant.audit import AuditLog
from assistant.settings import Settings, SettingsError
from ingest.index import run_ingest
from tests.appserver import app_settings, raw_request, serve, write_app_corpus
from tests.builders import make_pdf
from webui.context import AppContext
from webui.manage import DISABLED, FORBIDDEN, NO_CSRF

MANAGERS = (("gestion", "mot-de-passe-gestion"), ("gestion2", "mot-de-passe-gestion2"))
AGENT = ("agent", "mot-de-passe-agent")
NEW_DOC_QUESTION = "Combien de ruches compte le rucher intercommunal de Montval ?"
NEW_PAGES = [
    "Le rucher intercommunal de Montval est présenté dans ce guide des abeilles territoriales.",
    "Le rucher intercommunal de Montval compte 48 ruches installées sur les toits des écoles.",
]


def _login(url: str, user: str, password: str) -> str:
    status, headers, _ = raw_request(url, "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                                     f"username={user}&password={password}".encode())
    assert status == 200, status
    return "; ".join(c.split(";", 1)[0] for c in headers["set-cookie"].split("\n"))


def _call(url: str, cookie: str, method: str, path: str, body: bytes | None = None, *, csrf: bool = True,
          content_type: str = "application/octet-stream") -> tuple[int, Any]:
    headers = {"Cookie": cookie, "Content-Type": content_type}
    if csrf:
        headers["X-Requested-With"] = "gerer"
    status, _, raw = raw_request(url, method, path, headers, body)
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def _wait_jobs(url: str, cookie: str, timeout: float = 300) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        status, data = _call(url, cookie, "GET", "/gerer/etat")
        assert status == 200
        if not any(j["state"] in ("en attente", "en cours") for j in data["jobs"]):
            return list(data["jobs"])
        assert time.monotonic() < deadline, data["jobs"]
        time.sleep(0.2)


def _snapshot(settings: Settings) -> tuple[Any, ...]:
    corpus = settings.corpus_dir
    files = sorted((p.relative_to(corpus).as_posix(), p.stat().st_size) for p in corpus.rglob("*")
                   if p.is_file() and not p.is_symlink())
    manifest = (corpus / "sources.yaml").read_bytes() if (corpus / "sources.yaml").exists() else b""
    generation = store.current_generation(settings.data_dir)
    return files, manifest, generation.name if generation else None


def _new_pdf(tmp: Path, name: str = "abeilles.pdf", pages: list[str] | None = None, title: str = "") -> bytes:
    return make_pdf(tmp / name, pages or NEW_PAGES, title=title or "Guide des abeilles territoriales",
                    headings=["Le rucher", "Les ruches"]).read_bytes()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, Path]]:
    root = tmp_path_factory.mktemp("manage")
    settings = app_settings(root, write_app_corpus(root), auth=(*MANAGERS, AGENT),
                            managers=tuple(u for u, _ in MANAGERS))
    run_ingest(settings, progress=False)
    with serve(webapp.build_app(settings)) as url:
        yield url, settings, root


# -- settings ----------------------------------------------------------------------------------------


def test_managers_setting_is_parsed_and_checked_against_the_logins() -> None:
    settings = Settings.from_env({"ASSISTANT_AUTH": "a:x,b:y", "ASSISTANT_MANAGERS": " a , a,"})
    assert settings.managers == ("a",) and settings.is_manager("a") and not settings.is_manager("b")
    with pytest.raises(SettingsError, match="« c » n'est pas un utilisateur"):
        Settings.from_env({"ASSISTANT_AUTH": "a:x", "ASSISTANT_MANAGERS": "c"})
    no_login = Settings.from_env({"ASSISTANT_MANAGERS": "a"})
    assert not no_login.management_enabled and not no_login.is_manager("a")


# -- roles -------------------------------------------------------------------------------------------

ROUTES = [("GET", "/gerer"), ("GET", "/gerer/etat"), ("GET", "/gerer/gerer.js"), ("GET", "/gerer/journal"),
          ("POST", "/gerer/documents?nom=a.md"), ("POST", "/gerer/documents/mooc/edition?nom=a.md"),
          ("POST", "/gerer/documents/mooc/description"), ("POST", "/gerer/documents/mooc/retrait")]


def test_every_management_route_refuses_a_non_manager(live: tuple[str, Settings, Path]) -> None:
    url, settings, _ = live
    before = _snapshot(settings)
    agent = _login(url, *AGENT)
    for method, path in ROUTES:
        status, body = _call(url, agent, method, path, b"# Titre\n\nTexte." if method == "POST" else None)
        assert status == 403, (path, status)
        assert FORBIDDEN in (body["detail"] if isinstance(body, dict) else body), path
        # Without a session: the login guard answers first.
        assert raw_request(url, method, path)[0] == 401, path
    assert _snapshot(settings) == before


def test_gradio_api_and_page_hold_no_trace_of_management(live: tuple[str, Settings, Path]) -> None:
    url, _, _ = live
    agent = _login(url, *AGENT)
    status, config = _call(url, agent, "GET", "/config")
    assert status == 200
    text = json.dumps(config, ensure_ascii=False)
    assert "gerer" not in text and "Gérer les documents" not in text
    client = Client(url, auth=AGENT, verbose=False, download_files=False)
    endpoints = json.dumps(client.view_api(print_info=False, return_format="dict"))
    assert "gerer" not in endpoints and "manage" not in endpoints
    for name in ("/manage", "/gerer", "/upload", "/show_manage_link"):
        with pytest.raises(Exception):  # noqa: B017  (gradio_client raises ValueError or AppError)
            client.predict(api_name=name)


def test_changes_need_the_page_header(live: tuple[str, Settings, Path]) -> None:
    url, settings, _ = live
    before = _snapshot(settings)
    manager = _login(url, *MANAGERS[0])
    status, body = _call(url, manager, "POST", "/gerer/documents/mooc/retrait", csrf=False)
    assert status == 403 and body["detail"] == NO_CSRF
    assert _snapshot(settings) == before


def test_management_is_off_without_login(tmp_path: Path) -> None:
    settings = app_settings(tmp_path, write_app_corpus(tmp_path), managers=("gestion",))
    with serve(webapp.build_app(settings)) as url:
        for method, path in ROUTES:
            status, _, body = raw_request(url, method, path, {"X-Requested-With": "gerer"},
                                          b"x" if method == "POST" else None)
            assert status == 403 and DISABLED in html.unescape(body.decode()), path
        _, _, config = raw_request(url, "GET", "/config")
        assert "ASSISTANT_MANAGERS" in config.decode()  # the Sources tab says how to turn it on


# -- hostile uploads ---------------------------------------------------------------------------------


def _body_of(size: int) -> Iterator[bytes]:
    chunk = b"%PDF-1.4\n" + b"0" * (1 << 20)
    sent = 0
    while sent < size:
        yield chunk
        sent += len(chunk)


def test_hostile_uploads_are_refused_in_french_and_change_nothing(live: tuple[str, Settings, Path]) -> None:
    url, settings, root = live
    before = _snapshot(settings)
    manager = _login(url, *MANAGERS[0])
    cases: list[tuple[str, bytes, str]] = [
        ("../../app.py", b"print('pwned')\n", "Format non pris en charge (.py)"),
        ("rapport.pdf", b"<!doctype html><html><body>Pas un PDF</body></html>",
         "n'est pas un PDF (son contenu est du HTML)"),
        ("vide.md", b"", "fichier vide"),
        ("lettre.docx", b"PK\x03\x04 pas vraiment un docx", "Fichier refusé"),
        ("page.html", b"<html><head><script>alert(1)</script></head><body></body></html>", "aucun texte exploitable"),
        ("sans-extension", b"# Titre", "sans extension"),
    ]
    for name, body, reason in cases:
        status, data = _call(url, manager, "POST", f"/gerer/documents?nom={name}", body)
        assert status == 400, (name, status, data)
        assert reason in data["detail"], (name, data)
    # A 200 MB body is cut at the size limit while it streams, whatever Content-Length says.
    import httpx

    with httpx.Client(base_url=url, timeout=120) as client:
        response = client.post("/gerer/documents?nom=gros.pdf", content=_body_of(200 << 20),
                               headers={"Cookie": manager, "X-Requested-With": "gerer"})
        assert response.status_code == 413 and "trop volumineux" in response.json()["detail"]
    # A declared 200 MB body is refused before any byte of it is read.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"POST /gerer/documents?nom=gros.pdf HTTP/1.1\r\nHost: {host}\r\nCookie: {manager}\r\n"
                     f"X-Requested-With: gerer\r\nContent-Length: {200 << 20}\r\n\r\n".encode())
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")
    assert _snapshot(settings) == before
    assert not any((settings.corpus_dir / "_televersements").iterdir())
    assert not (root / "app.py").exists()


def test_an_upload_that_fails_in_the_ingestion_changes_nothing(live: tuple[str, Settings, Path]) -> None:
    """It passes the upload's checks (it loads), then the ingestion's splitter refuses it: taken back."""
    url, settings, _ = live
    before = _snapshot(settings)
    manager = _login(url, *MANAGERS[0])
    glued = "# Guide collé\n\nUn texte court. " + "x" * 5000 + "\n"
    status, data = _call(url, manager, "POST", "/gerer/documents?nom=colle.md", glued.encode())
    assert status == 202, data
    job = _wait_jobs(url, manager)[0]
    assert job["state"] == "échec" and "texte sans espaces" in job["summary"], job
    assert "Rien n'a été modifié" in job["summary"]
    assert _snapshot(settings) == before
    failed = AuditLog(settings.feedback_path).entries(limit=1)[0]
    assert (failed.action, failed.outcome, failed.detail["corpus_restored"]) == ("add", "failed", True)


# -- add, ask, describe, replace, remove -------------------------------------------------------------


def _ask(url: str, question: str) -> dict[str, Any]:
    client = Client(url, auth=AGENT, verbose=False, download_files=False)
    return dict(client.predict(question=question, api_name="/ask"))


def test_manager_adds_replaces_and_removes_a_document(live: tuple[str, Settings, Path],
                                                     tmp_path: Path) -> None:
    url, settings, root = live
    manager = _login(url, *MANAGERS[0])
    # A client path in the name: only its extension is used; the server picks the stored name.
    status, data = _call(url, manager, "POST",
                         "/gerer/documents?nom=..%2F..%2Fabeilles.pdf&editeur=Ville%20de%20Montval", _new_pdf(tmp_path))
    assert status == 202, data
    jobs = _wait_jobs(url, manager)
    assert jobs[0]["state"] == "terminé", jobs[0]
    assert "Document ajouté : « Guide des abeilles territoriales »" in jobs[0]["summary"]
    doc_id = jobs[0]["result_doc_id"]
    stored = settings.corpus_dir / "guide-des-abeilles-territoriales.pdf"
    assert stored.is_file() and not (root / "abeilles.pdf").exists()
    answer = _ask(url, NEW_DOC_QUESTION)
    assert answer["citations"][0]["doc_id"] == doc_id and answer["citations"][0]["page"] == 2
    assert "48 ruches" in answer["citations"][0]["quote"]

    status, data = _call(url, manager, "POST", f"/gerer/documents/{doc_id}/description",
                         json.dumps({"titre": "Guide des ruchers", "editeur": "Montval", "lien": "https://montval.fr",
                                     "date": "mars 2026"}).encode(), content_type="application/json")
    assert status == 202
    assert _wait_jobs(url, manager)[0]["state"] == "terminé"
    assert _ask(url, NEW_DOC_QUESTION)["citations"][0]["title"] == "Guide des ruchers"
    manifest = (settings.corpus_dir / "sources.yaml").read_text(encoding="utf-8")
    assert "Guide des ruchers" in manifest and "https://montval.fr" in manifest

    old_hash = store.read_catalog(store.current_generation(settings.data_dir)).documents[stored.name].file_hash
    pages = [NEW_PAGES[0], "Une page ajoutée.", NEW_PAGES[1].replace("48 ruches", "60 ruches")]
    status, data = _call(url, manager, "POST", f"/gerer/documents/{doc_id}/edition?nom=v2.pdf&date=juin%202026",
                         _new_pdf(tmp_path, "v2.pdf", pages))
    assert status == 202
    jobs = _wait_jobs(url, manager)
    assert jobs[0]["state"] == "terminé" and "Nouvelle édition" in jobs[0]["summary"]
    answer = _ask(url, NEW_DOC_QUESTION)
    assert answer["citations"][0]["doc_id"] == doc_id and answer["citations"][0]["page"] == 3
    assert "60 ruches" in answer["citations"][0]["quote"]
    entry = store.read_catalog(store.current_generation(settings.data_dir)).documents[stored.name]
    assert entry.file_hash != old_hash and entry.edition == "juin 2026"
    # The answer quoted from the first edition says so in the Sources tab's trace.
    ctx = AppContext.create(settings)
    first = next(r for r in ctx.feedback.list_answers() if r.citations and "48 ruches" in r.citations[0]["quote"])
    assert first.citations[0]["file_hash"] == old_hash
    trace = html.unescape(ctx.trace_html(first.id))
    assert "« Guide des ruchers » : citée d'après l'édition de mars 2026, remplacée le " in trace

    status, data = _call(url, manager, "POST", f"/gerer/documents/{doc_id}/retrait")
    assert status == 202
    assert _wait_jobs(url, manager)[0]["state"] == "terminé"
    assert not stored.exists()
    answer = _ask(url, NEW_DOC_QUESTION)
    assert all(c["doc_id"] != doc_id for c in answer["citations"])

    audit = AuditLog(settings.feedback_path).entries()
    done = [(e.action, e.user) for e in reversed(audit) if e.outcome == "done" and e.doc_id == doc_id]
    assert done == [("add", "gestion"), ("describe", "gestion"), ("replace", "gestion"), ("remove", "gestion")]
    replaced = next(e for e in audit if e.action == "replace" and e.outcome == "done")
    assert replaced.detail["old_hash"] == old_hash
    status, _, csv_body = raw_request(url, "GET", "/gerer/journal?format=csv", {"Cookie": manager})
    assert status == 200 and csv_body.decode().splitlines()[0] == "id,at,user,action,doc_id,file,outcome,detail"
    assert csv_body.decode().count(doc_id) >= 8  # requested and done, four actions


def test_two_managers_uploading_at_once_lose_nothing(live: tuple[str, Settings, Path], tmp_path: Path) -> None:
    url, settings, _ = live
    cookies = [_login(url, *MANAGERS[0]), _login(url, *MANAGERS[1])]
    bodies = [f"# Fiche {name}\n\nLa fiche {name} décrit le jardin partagé numéro {n}.\n".encode()
              for n, name in enumerate(("Alpha", "Bêta", "Gamma", "Delta"), start=1)]
    results: list[int] = []

    def upload(i: int) -> None:
        status, _ = _call(url, cookies[i % 2], "POST", f"/gerer/documents?nom=fiche.md&titre=Fiche%20{i}",
                          bodies[i])
        results.append(status)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [202] * 4
    jobs = _wait_jobs(url, cookies[0])
    assert [j["state"] for j in jobs[:4]] == ["terminé"] * 4
    catalog = store.read_catalog(store.current_generation(settings.data_dir))
    titles = {e.title for e in catalog.documents.values()}
    assert {f"Fiche {i}" for i in range(4)} <= titles
    assert len({e.source_path for e in catalog.documents.values() if e.title.startswith("Fiche ")}) == 4


def test_a_past_answer_says_its_edition_was_replaced_or_removed() -> None:
    from assistant.catalog import Catalog, CatalogEntry
    from webui.editions import edition_notes

    cited = [{"doc_id": "guide", "title": "Guide", "edition": "12/03/2026", "file_hash": "a" * 64},
             {"doc_id": "kit", "title": "Kit", "edition": "mai 2020", "file_hash": "b" * 64},
             {"doc_id": "fiche", "title": "Fiche", "edition": "", "file_hash": "c" * 64},
             {"doc_id": "ancien", "title": "Ancien", "edition": "", "file_hash": ""}]
    catalog = Catalog(documents={
        "guide.pdf": CatalogEntry(doc_id="guide", source_path="guide.pdf", file_hash="d" * 64,
                                  indexed_at="2026-11-30T02:00:00+00:00"),
        "kit.pdf": CatalogEntry(doc_id="kit", source_path="kit.pdf", file_hash="b" * 64),
        "ancien.md": CatalogEntry(doc_id="ancien", source_path="ancien.md", file_hash="e" * 64),
    })
    notes = edition_notes(cited, "2026-10-01T08:00:00+00:00", catalog,
                          {"guide": [("2026-11-29T10:15:00+00:00", "a" * 64)]})
    assert notes == [
        "« Guide » : citée d'après l'édition du 12/03/2026, remplacée le 29/11/2026 10 h 15 (UTC).",
        "« Fiche » : citée d'après l'édition du 01/10/2026 08 h 00 (UTC), document retiré depuis.",
    ]


def test_an_upload_while_ten_users_ask_loses_no_answer(live: tuple[str, Settings, Path]) -> None:
    url, settings, _ = live
    manager = _login(url, *MANAGERS[0])
    before = {e.doc_id for e in store.read_catalog(store.current_generation(settings.data_dir)).documents.values()}
    body = "# Le verger partagé\n\nLe verger partagé de Montval compte 30 pommiers plantés par les écoliers.\n"
    errors: list[str] = []
    answers: list[dict[str, Any]] = []

    def ask() -> None:
        client = Client(url, auth=AGENT, verbose=False, download_files=False)
        for question in ("Quelles sont les missions d'un catalyseur territorial ?",
                         "Combien de pommiers compte le verger partagé de Montval ?"):
            try:
                answers.append(dict(client.predict(question=question, api_name="/ask")))
            except Exception as exc:  # every failure is reported below
                errors.append(str(exc))

    users = [threading.Thread(target=ask) for _ in range(10)]
    for user in users:
        user.start()
    status, _ = _call(url, manager, "POST", "/gerer/documents?nom=verger.md", body.encode())
    for user in users:
        user.join()
    assert status == 202 and errors == [] and len(answers) == 20
    assert _wait_jobs(url, manager)[0]["state"] == "terminé"
    after = {e.doc_id for e in store.read_catalog(store.current_generation(settings.data_dir)).documents.values()}
    assert after - before == {"le-verger-partage"}
    for answer in answers:  # every passage comes from a document of the old or the new generation
        assert {p["doc_id"] for p in answer["passages"]} <= after | before
    assert _ask(url, "Combien de pommiers compte le verger partagé de Montval ?")["citations"][0]["doc_id"] \
        == "le-verger-partage"


def test_audit_trail_export_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    log = AuditLog(tmp_path / "feedback.sqlite")
    log.record("gestion", "add", "", outcome="requested", detail={"client_name": "=HYPERLINK(1)"})
    log.record("gestion", "add", "guide", "guide.pdf", outcome="done")
    out = tmp_path / "journal.jsonl"
    assert main(["audit", "export", "--format", "jsonl", "--out", str(out), "--db", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["user"], r["action"], r["doc_id"], r["outcome"]) for r in rows] == [
        ("gestion", "add", "", "requested"), ("gestion", "add", "guide", "done")]
    assert main(["audit", "export", "--db", str(tmp_path)]) == 0
    printed = capsys.readouterr()
    assert "2 ligne(s) du journal exportée(s)." in printed.err
    assert printed.out.splitlines()[0] == "id,at,user,action,doc_id,file,outcome,detail"
    log.record("=2+2", "remove", "guide", "guide.pdf", outcome="done")  # a spreadsheet formula stays text
    assert main(["audit", "export", "--db", str(tmp_path)]) == 0
    assert ",'=2+2,remove,guide," in capsys.readouterr().out
