"""What the app's handlers share: the settings, the loaded assistant, the feedback store, the document
library — and the Sources tab's data as HTML. Gradio-free; ``app.py`` turns it into components."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from assistant import shared_state, store
from assistant.answer import Assistant
from assistant.audit import AuditLog
from assistant.catalog import Catalog
from assistant.errors import AssistantError
from assistant.feedback import FeedbackStore
from assistant.settings import AnswerMode, Settings
from ingest.jobs import JobQueue
from webui import catalog as cat
from webui import render
from webui.documents import DocumentLibrary
from webui.editions import Replacement, edition_notes, render_edition_notes, replacements

log = logging.getLogger("assistant.app")

GENERIC_ERROR = "Une erreur inattendue est survenue : veuillez réessayer dans un instant."


def user_error(exc: Exception) -> str:
    """One French sentence for the user; the details go to the server log only."""
    if isinstance(exc, AssistantError):  # every error raised on purpose carries a French sentence
        return str(exc)
    log.exception("unexpected error in the app")
    return GENERIC_ERROR


def answer_mode(value: str | None, default: AnswerMode) -> AnswerMode:
    return "llm" if value == "llm" else "extractive" if value == "extractive" else default


def _short(text: str, limit: int = 90) -> str:
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass
class AppContext:
    settings: Settings
    assistant: Assistant
    feedback: FeedbackStore
    library: DocumentLibrary
    audit: AuditLog
    jobs: JobQueue

    @classmethod
    def create(cls, settings: Settings, assistant: Assistant | None = None,
               feedback: FeedbackStore | None = None) -> AppContext:
        assistant = assistant or Assistant(settings)
        # The route's allow-list is the catalog of the generation the assistant is answering from.
        library = DocumentLibrary(settings, assistant.retriever.catalog)
        feedback = feedback or shared_state.feedback_store(settings)
        # The audit trail is kept with the feedback (PostgreSQL in a server deployment); corpus changes reuse
        # the answers' embedder.
        audit = shared_state.audit_log(settings)
        jobs = JobQueue(settings, lambda: assistant.embedder, audit)
        return cls(settings, assistant, feedback, library, audit, jobs)

    def stored_settings(self, mode: str, plain: bool) -> dict[str, Any]:
        return self.settings.public_dict() | {"answer_mode": mode, "plain_language": plain}

    # -- Sources tab ---------------------------------------------------------------------------

    def document_rows(self) -> list[cat.DocumentRow]:
        generation = shared_state.current_generation(self.settings)
        catalog = store.read_catalog(generation) if generation else Catalog()
        return cat.document_rows(catalog, shared_state.read_last_run(self.settings), self.edition_replacements())

    def edition_replacements(self) -> dict[tuple[str, str], Replacement]:
        """Which edition each file in service replaced (the audit trail's completed replacements)."""
        try:
            return replacements(self.audit.entries(limit=100_000))
        except Exception:  # the list still shows without them
            log.exception("edition replacements not read")
            return {}

    def status_html(self) -> str:
        try:
            generation = shared_state.current_generation(self.settings)
            label = cat.llm_label(self.settings, self.assistant.llm_available)
            catalog = store.read_catalog(generation) if generation else None
            summary = cat.status_summary(self.settings, catalog, generation.name if generation else None, label)
            return render.render_status(summary)
        except Exception as exc:
            return render.render_error(user_error(exc))

    def documents_html(self, query: str = "", publisher: str = "", fmt: str = "", status: str = "") -> str:
        try:
            rows = cat.filter_rows(self.document_rows(), query, publisher, fmt, status)
            return render.render_documents_table([r.as_dict() for r in rows])
        except Exception as exc:
            return render.render_error(user_error(exc))

    def filter_choices(self) -> dict[str, list[tuple[str, str]]]:
        """Choices of the Sources tab's dropdowns: publishers, formats, readable documents."""
        try:
            rows = self.document_rows()
        except Exception:
            rows = []
        return {
            "publishers": [("Tous", "")] + [(p, p) for p in sorted({r.publisher for r in rows if r.publisher})],
            "formats": [("Tous", "")] + [(f.upper(), f) for f in sorted({r.format for r in rows if r.format})],
            "documents": [(f"{r.title} ({r.format.upper()})", r.doc_id) for r in rows if r.doc_id and r.passages],
        }

    def answer_choices(self, limit: int = 200) -> list[tuple[str, str]]:
        return [(f"{render.format_date(r.created_at)} — {_short(r.question)}", r.id)
                for r in self.feedback.list_answers(limit)]

    def page_html(self, doc_id: str | None, page: float | None) -> tuple[str, int | None]:
        """The passages of one page of a document, and the page number actually shown."""
        if not doc_id:
            return render.render_page_passages("", 1, 1, []), None
        try:
            retriever = self.assistant.retriever
            entry = retriever.document(doc_id)
            if entry is None:
                return render.render_error("Ce document n'est plus dans l'index."), None
            pages = max(entry.pages, 1)
            number = min(max(int(page or 1), 1), pages)
            passages = retriever.page_passages(doc_id, number)
            return render.render_page_passages(entry.title or doc_id, number, pages, passages), number
        except Exception as exc:
            return render.render_error(user_error(exc)), None

    def trace_html(self, answer_id: str | None) -> str:
        if not answer_id:
            return '<p class="vide">Choisissez une réponse.</p>'
        record = self.feedback.get_answer(answer_id)
        if record is None:
            return render.render_error("Cette réponse est introuvable.")
        return edition_notes_html(self, record) + render.render_answer_trace(record)


def edition_notes_html(ctx: AppContext, record: Any) -> str:
    """For a past answer: the cited editions replaced or removed since (nothing when all are current)."""
    try:
        generation = shared_state.current_generation(ctx.settings)
        catalog = store.read_catalog(generation) if generation else Catalog()
        notes = edition_notes(record.citations, record.created_at, catalog, ctx.audit.replacements())
    except Exception:
        log.exception("edition notes not shown")
        return ""
    return render_edition_notes(notes)


def turn_choices(session: dict[str, Any]) -> list[tuple[str, str]]:
    """The conversation's answers that can be rated: (label, answer id)."""
    return [(f"{i}. {_short(turn['question'])}", turn["answer_id"])
            for i, turn in enumerate(session["turns"], start=1) if turn and turn.get("answer_id")]
