"""« Gérer les documents »: the managers' page and its HTTP routes, under ``/gerer``.

Every route asks first who is logged in: a user who is not in ``ASSISTANT_MANAGERS`` gets 403 before
anything is read (not even the upload's body); without a login configured the whole area is off and
each route answers 403 with the French line that says how to turn it on. Changes are also refused
without the ``X-Requested-With: gerer`` header, which a form or a page of another site cannot send
(cross-site request forgery). Management lives only here: the Gradio app exposes no management
function, so the Gradio API has nothing a non-manager could call.

A change is checked at once (upload: format, size while it streams, content read as the ingestion
job reads it; description: fields), then queued (:class:`ingest.jobs.JobQueue`); the page polls
``/gerer/etat`` for the queue's progress and summaries.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from assistant import shared_state, store
from assistant.audit import ACTION_LABELS, AuditAction, AuditError, AuditLog
from assistant.settings import Settings
from ingest import corpus_edit
from ingest.corpus_edit import Change, CorpusEditError, Description, StagedFile, Upload
from ingest.jobs import JobQueue
from webui.render import esc

DISABLED = ("La gestion des documents est désactivée : pour l'activer, définissez une connexion "
            "(ASSISTANT_AUTH=utilisateur:motdepasse) et la liste des gestionnaires (ASSISTANT_MANAGERS=utilisateur).")
FORBIDDEN = "Accès réservé aux gestionnaires des documents."
NO_CSRF = "Requête refusée : elle doit venir de la page « Gérer les documents »."
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "gerer"
OUTCOME_LABELS = {"requested": "demandé", "done": "fait", "failed": "échec"}
_STATIC = Path(__file__).resolve().parent
_HEADERS = {"Cache-Control": "no-store"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=_HEADERS)


def manager_link(manager: str | None) -> str:
    """The header link to the area: for a manager only (nobody else gets any trace of it)."""
    if not manager:
        return ""
    return '<p class="lien-gestion"><a href="/gerer">Gérer les documents</a></p>'


def management_notice(settings: Settings) -> str:
    """The Sources tab's line when management is off because no login is configured."""
    return "" if settings.auth else f'<p class="info-gestion">{esc(DISABLED)}</p>'


def document_list(settings: Settings) -> list[dict[str, Any]]:
    generation = shared_state.current_generation(settings)
    if generation is None:
        return []
    catalog = store.read_catalog(generation)
    rows = [{"doc_id": e.doc_id, "title": e.title, "publisher": e.publisher, "url": e.url, "edition": e.edition,
             "file": rel, "format": e.format, "pages": e.pages, "passages": e.passages,
             "indexed_at": e.indexed_at, "file_hash": e.file_hash[:12]}
            for rel, e in catalog.documents.items()]
    return sorted(rows, key=lambda r: str(r["title"]).lower())


def manage_router(settings: Settings, jobs: JobQueue, audit: AuditLog,
                  current_manager: Callable[[Request], str | None]) -> APIRouter:
    """The « Gérer les documents » routes; ``current_manager`` names the request's manager, or None for anyone else
    (a password login listed in ASSISTANT_MANAGERS, or a ProConnect session on the managers' allow-lists)."""
    router = APIRouter(prefix="/gerer")

    def manager(request: Request, *, change: bool = False) -> str | JSONResponse:
        if not settings.management_enabled:
            return _error(403, DISABLED)
        user = current_manager(request)
        if user is None:
            return _error(403, FORBIDDEN)
        if change and request.headers.get(CSRF_HEADER, "").lower() != CSRF_VALUE:
            return _error(403, NO_CSRF)
        return user

    async def receive(request: Request) -> StagedFile | JSONResponse:
        """The request body as a checked upload in the staging folder, or the French refusal."""
        limit = settings.max_file_mb * 1024 * 1024
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return _error(413, f"Fichier trop volumineux (limite {settings.max_file_mb:.0f} Mo) : "
                               "rien n'a été modifié.")
        try:
            upload = Upload(settings, request.query_params.get("nom", ""))
        except CorpusEditError as exc:
            return _error(400, str(exc))
        try:
            async for chunk in request.stream():
                upload.write(chunk)
            if upload.size == 0:
                upload.abort()
                return _error(400, "Fichier refusé : fichier vide (0 octet). Rien n'a été modifié.")
            return await run_in_threadpool(upload.finish)
        except CorpusEditError as exc:
            return _error(413 if "volumineux" in str(exc) else 400, str(exc))
        except BaseException:
            upload.abort()
            raise

    def queued(job: Any) -> JSONResponse:
        return JSONResponse({"job": job.to_json(), "message": f"Demande enregistrée : {job.label}. "
                             "Elle sera traitée dès que les précédentes seront terminées."},
                            status_code=202, headers=_HEADERS)

    async def upload_job(request: Request, user: str, action: AuditAction, doc_id: str,
                         label: Callable[[StagedFile], str], apply: Callable[[StagedFile], Change]) -> Response:
        """Receive and check the request's file, then queue ``apply`` on it (the staged file is deleted if the
        job never runs): the shared path of an upload and of a new edition."""
        staged = await receive(request)
        if isinstance(staged, JSONResponse):
            return staged
        job = jobs.submit(user, action, doc_id, label(staged), lambda: apply(staged),
                          cancel=lambda: corpus_edit.discard(staged),
                          detail={"client_name": staged.client_name[:200], "size": staged.size,
                                  "sha256": staged.sha256})
        return queued(job)

    @router.get("", response_class=HTMLResponse)
    def page(request: Request) -> Response:
        user = manager(request)
        if isinstance(user, JSONResponse):
            status = user.status_code
            message = DISABLED if not settings.management_enabled else FORBIDDEN
            return HTMLResponse(_page_shell(f"<p>{esc(message)}</p>"), status_code=status, headers=_HEADERS)
        return HTMLResponse(_page_shell(_page_body(settings, user)), headers=_HEADERS)

    @router.get("/gerer.js")
    def script(request: Request) -> Response:
        user = manager(request)
        if isinstance(user, JSONResponse):
            return user
        return Response((_STATIC / "manage.js").read_text(encoding="utf-8"), media_type="text/javascript",
                        headers=_HEADERS)

    @router.get("/etat")
    def state(request: Request) -> Response:
        user = manager(request)
        if isinstance(user, JSONResponse):
            return user
        recent = [{"at": e.at, "user": e.user, "action": ACTION_LABELS.get(e.action, e.action), "doc_id": e.doc_id,
                   "file": e.file, "outcome": OUTCOME_LABELS.get(e.outcome, e.outcome)}
                  for e in audit.entries(limit=20)]
        return JSONResponse({"documents": document_list(settings), "jobs": jobs.jobs(), "audit": recent},
                            headers=_HEADERS)

    @router.post("/documents")
    async def add(request: Request) -> Response:
        user = manager(request, change=True)
        if isinstance(user, JSONResponse):
            return user
        q = request.query_params
        described = Description(q.get("titre", ""), q.get("editeur", ""), q.get("lien", ""), q.get("date", ""))
        try:
            described = described.checked(need_title=False)
        except CorpusEditError as exc:
            return _error(400, str(exc))
        return await upload_job(
            request, user, "add", "",
            lambda staged: f"ajout de « {(described.title or staged.title or staged.client_name)[:120]} »",
            lambda staged: corpus_edit.add_document(settings, staged, described))

    @router.post("/documents/{doc_id}/edition")
    async def new_edition(doc_id: str, request: Request) -> Response:
        user = manager(request, change=True)
        if isinstance(user, JSONResponse):
            return user
        if not corpus_edit.known_document(settings, doc_id):
            return _error(404, "Document introuvable.")
        edition = request.query_params.get("date", "")
        try:
            Description(title="-", edition=edition).checked(need_title=False)
        except CorpusEditError as exc:
            return _error(400, str(exc))
        return await upload_job(request, user, "replace", doc_id, lambda _: f"nouvelle édition de « {doc_id} »",
                                lambda staged: corpus_edit.replace_document(settings, doc_id, staged, edition))

    @router.post("/documents/{doc_id}/description")
    async def describe(doc_id: str, request: Request) -> Response:
        user = manager(request, change=True)
        if isinstance(user, JSONResponse):
            return user
        if not corpus_edit.known_document(settings, doc_id):
            return _error(404, "Document introuvable.")
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError
            described = Description(*(str(body.get(k) or "") for k in ("titre", "editeur", "lien", "date")))
            described = described.checked(need_title=True)
        except CorpusEditError as exc:
            return _error(400, str(exc))
        except ValueError:
            return _error(400, "Description illisible : envoyez titre, editeur, lien et date.")
        job = jobs.submit(user, "describe", doc_id, f"description de « {doc_id} »",
                          lambda: corpus_edit.describe_document(settings, doc_id, described),
                          detail={"title": described.title, "publisher": described.publisher,
                                  "url": described.url, "edition": described.edition})
        return queued(job)

    @router.post("/documents/{doc_id}/retrait")
    def remove(doc_id: str, request: Request) -> Response:
        user = manager(request, change=True)
        if isinstance(user, JSONResponse):
            return user
        if not corpus_edit.known_document(settings, doc_id):
            return _error(404, "Document introuvable.")
        job = jobs.submit(user, "remove", doc_id, f"retrait de « {doc_id} »",
                          lambda: corpus_edit.remove_document(settings, doc_id))
        return queued(job)

    @router.get("/journal")
    def journal(request: Request) -> Response:
        user = manager(request)
        if isinstance(user, JSONResponse):
            return user
        fmt = request.query_params.get("format", "csv")
        out = io.StringIO()
        try:
            audit.export(out, fmt)
        except AuditError as exc:
            return _error(400, str(exc))
        media = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return Response(out.getvalue(), media_type=f"{media}; charset=utf-8",
                        headers=_HEADERS | {"Content-Disposition": f'attachment; filename="journal-documents.{fmt}"',
                                            "Content-Security-Policy": "default-src 'none'; sandbox"})

    return router


def _page_shell(body: str) -> str:
    return (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Gérer les documents — Assistant des alliances territoriales</title>"
        f"<style>{(_STATIC / 'manage.css').read_text(encoding='utf-8')}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _page_body(settings: Settings, user: str) -> str:
    accepted = ".pdf,.html,.htm,.md,.markdown,.docx,.txt"
    return f"""
<p class="retour"><a href="/">← Retour à l'assistant</a></p>
<h1>Gérer les documents</h1>
<p>Connecté en tant que <strong>{esc(user)}</strong> (gestionnaire). Chaque modification relance l'indexation en
arrière-plan ; l'index en service change d'un coup à la fin. Formats : PDF, HTML, Markdown, Word (DOCX), texte ;
{settings.max_file_mb:.0f} Mo au plus.</p>
<section aria-labelledby="t-ajout"><h2 id="t-ajout">Ajouter un document</h2>
<form id="form-ajout">
<label class="fichier">Fichier <input type="file" id="ajout-fichier" accept="{accepted}" required>
<span class="bouton-fichier" aria-hidden="true">Choisir un fichier…</span>
<span class="nom-fichier" data-pour="ajout-fichier">aucun fichier choisi</span></label>
<label>Titre <input type="text" id="ajout-titre" maxlength="300" placeholder="repris du fichier si vide"></label>
<label>Éditeur <input type="text" id="ajout-editeur" maxlength="300"></label>
<label>Lien de la publication d'origine <input type="url" id="ajout-lien" maxlength="300" placeholder="https://…"></label>
<label>Date de l'édition <input type="text" id="ajout-date" maxlength="300"
placeholder="par exemple : mars 2026"></label>
<button type="submit" id="ajout-envoyer">Ajouter le document</button>
</form></section>
<section aria-labelledby="t-doc"><h2 id="t-doc">Modifier, remplacer ou retirer un document</h2>
<label>Document <select id="doc-choisi"></select></label>
<form id="form-description"><fieldset><legend>Description</legend>
<label>Titre <input type="text" id="desc-titre" maxlength="300" required></label>
<label>Éditeur <input type="text" id="desc-editeur" maxlength="300"></label>
<label>Lien <input type="url" id="desc-lien" maxlength="300"></label>
<label>Date de l'édition <input type="text" id="desc-date" maxlength="300"></label>
<button type="submit" id="desc-envoyer">Enregistrer la description</button></fieldset></form>
<form id="form-edition"><fieldset><legend>Nouvelle édition</legend>
<label class="fichier">Fichier de la nouvelle édition <input type="file" id="edition-fichier" accept="{accepted}"
required><span class="bouton-fichier" aria-hidden="true">Choisir un fichier…</span>
<span class="nom-fichier" data-pour="edition-fichier">aucun fichier choisi</span></label>
<label>Date de la nouvelle édition <input type="text" id="edition-date" maxlength="300"></label>
<button type="submit" id="edition-envoyer">Remplacer par la nouvelle édition</button></fieldset></form>
<form id="form-retrait"><fieldset><legend>Retrait</legend>
<button type="submit" id="retrait-envoyer" class="danger">Retirer ce document de l'index</button></fieldset></form>
</section>
<p id="message" role="status" aria-live="polite"></p>
<section aria-labelledby="t-travaux"><h2 id="t-travaux">Indexations en cours et terminées</h2>
<ol id="travaux"></ol></section>
<section aria-labelledby="t-docs"><h2 id="t-docs">Documents en service</h2>
<table><thead><tr><th scope="col">Titre</th><th scope="col">Éditeur</th><th scope="col">Édition</th>
<th scope="col">Fichier</th><th scope="col">Pages</th><th scope="col">Passages</th><th scope="col">Indexé le</th>
</tr></thead><tbody id="documents"></tbody></table></section>
<section aria-labelledby="t-journal"><h2 id="t-journal">Journal des modifications</h2>
<p>Exporter : <a href="/gerer/journal?format=csv" download>CSV</a> · <a href="/gerer/journal?format=jsonl"
download>JSONL</a></p><ul id="journal"></ul></section>
<script src="/gerer/gerer.js"></script>"""

