"""``python app.py`` — the assistant's web app (chat for officials, « Sources » for staff).

Serves on 127.0.0.1:7860 by default (``ASSISTANT_HOST``/``ASSISTANT_PORT``/``ASSISTANT_DATA_DIR``, or
``--host``/``--port``/``--db``, declared in ``cli.py`` for ``alliances serve`` too). When there is no index
yet, the corpus is indexed first.

This is the only module that imports Gradio. It wires the pieces of ``webui/`` (HTML rendering,
Sources tab data, the document route, the security middleware) and ``assistant`` (answers,
feedback) into one FastAPI app: our routes and middleware first, Gradio mounted at ``/``.
"""

# ruff: noqa: E402  (the start-up line below comes before the slow imports, on purpose)
from __future__ import annotations

import sys
import time

_STARTED = time.monotonic()
if __name__ == "__main__":
    # Gradio, Chroma and LangChain take several seconds to import (more on a cold disk): say so first.
    print("Démarrage de l'assistant : chargement des bibliothèques (quelques secondes)…", file=sys.stderr, flush=True)

import argparse
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI, Request

from assistant import shared_state, store
from assistant.answer import Assistant
from assistant.errors import AssistantError
from assistant.feedback import NEGATIVE_TAGS, POSITIVE_TAGS, FeedbackStore, apply_retention
from assistant.schema import Answer
from assistant.settings import Settings
from ingest.corpus_edit import sweep_staging
from webui import render
from webui.accessibility import accessibility_router
from webui.context import GENERIC_ERROR, AppContext, answer_mode, turn_choices, user_error
from webui.documents import document_router
from webui.limits import LoginGuard, RateLimiter, too_many_requests
from webui.locale import FrenchLocaleMiddleware
from webui.manage import manage_router, management_notice, manager_link
from webui.preview import PreviewService, preview_router
from webui.security import SecurityMiddleware

log = logging.getLogger("assistant.app")

TITLE = "Assistant des alliances territoriales"
EXAMPLES = (  # each answered from the shipped corpus (checked with the real embedder)
    "Quelles sont les quatre missions d'un catalyseur territorial ?",
    "Que montre l'étude « Jouer collectif en sortie de crise » ?",
    "Combien de cibles compte l'Agenda 2030 ?",
    "Comment associer les entreprises de ma commune à un projet ODD ?",
    "Où trouver le kit « co-construction territoriale » ?",
    "Que veut dire le sigle EPCI ?",
)
MODE_CHOICES = [("Extraits des documents (sans IA générative)", "extractive"),
                ("Réponse rédigée par le modèle de langage, vérifiée sur les sources", "llm")]
# Words, not 👍/👎: a machine without an emoji font shows those as empty boxes.
RATING_CHOICES = [("Réponse utile", "up"), ("Réponse insatisfaisante", "down")]
MAX_HISTORY_MESSAGES = 20
# Accessibility repairs of Gradio's own markup, kept up to date as the chat changes: a message bubble's
# aria-label holds its HTML (screen readers would read the tags), the examples' list holds buttons
# (axe: aria-required-children), the chat log is a live region labelled in English.
A11Y_SCRIPT = """
(() => {
  const repair = () => {
    for (const el of document.querySelectorAll('#conversation [aria-label*="<"]')) {
      const user = (el.getAttribute('aria-label') || '').startsWith('user');
      const who = user ? 'Votre question' : "Réponse de l'assistant";
      el.setAttribute('aria-label', who);
    }
    // The chat log would read every streamed chunk: the complete answer goes to #annonce-reponse instead.
    for (const el of document.querySelectorAll('#conversation [role="log"]:not([aria-live="off"])')) {
      el.setAttribute('aria-live', 'off'); el.setAttribute('aria-label', "Conversation avec l'assistant");
    }
    for (const el of document.querySelectorAll('#conversation .examples[role="list"]')) {
      el.setAttribute('role', 'group'); el.setAttribute('aria-label', 'Exemples de questions');
    }
  };
  new MutationObserver(repair).observe(document.documentElement,
    {subtree: true, childList: true, attributes: true, attributeFilter: ['aria-label', 'role', 'aria-live']});
  repair();
})();
"""
HEAD = (f'<script>document.documentElement.lang = "fr";{A11Y_SCRIPT}</script>'
        '<meta name="referrer" content="no-referrer">')
# After an answer arrives, its first line is brought into view (not the end of its last source card).
# Screen readers hear the answer once, when it is complete: its text goes to a polite live region.
SHOW_ANSWER_START = """() => { const answers = document.querySelectorAll('#conversation .reponse:not(.en-cours)');
  const last = answers[answers.length - 1]; if (!last) { return; }
  last.scrollIntoView({block: 'start'});
  let live = document.getElementById('annonce-reponse');
  if (!live) { live = document.createElement('div'); live.id = 'annonce-reponse'; live.className = 'sr-only';
    live.setAttribute('aria-live', 'polite'); document.body.appendChild(live); }
  const text = last.querySelector('.texte') || last;
  live.textContent = 'Réponse reçue : ' + text.innerText; }"""


def _shown_error(exc: Exception, where: str) -> str:
    """The French sentence of ``user_error`` (the app's one error boundary), plus one console line.

    An error that is the user's (a question too long, an unknown answer…) is logged in one line, without
    traceback; ``user_error`` itself logs the traceback of an unexpected one, and that one only.
    """
    message = user_error(exc)
    if message != GENERIC_ERROR:
        log.info("Erreur affichée (%s) : %s", where, message)
    return message


def _api_error(message: str) -> gr.Error:
    """A ``gr.Error`` for the API caller: one console line, not Gradio's traceback of our own raise."""
    log.info("Erreur affichée (API) : %s", message)
    return gr.Error(message, print_exception=False)


def _new_session() -> dict[str, Any]:
    # messages: what the chatbot shows; history: plain text turns for follow-ups; turns: answer id per turn.
    return {"messages": [], "history": [], "turns": []}


# -- chat -----------------------------------------------------------------------------------------


def _client(request: gr.Request | None) -> str:
    """The key of the per-client limits: the client's address as the server sees it."""
    client = getattr(request, "client", None)
    return str(getattr(client, "host", "") or "inconnu")


def make_respond(ctx: AppContext, limiter: RateLimiter) -> Any:
    def respond(message: str, session: dict[str, Any], mode: str, plain: bool,
                request: gr.Request) -> Iterator[tuple[Any, ...]]:
        question = (message or "").strip()
        if not question:
            log.info("Erreur affichée (conversation) : question vide")
            gr.Warning("Veuillez saisir une question.")
            yield session["messages"], gr.update(), session, gr.update()
            return
        if (wait := limiter.acquire(_client(request))) > 0:
            notice = too_many_requests(wait)
            log.info("Erreur affichée (conversation) : %s", notice)
            gr.Warning(notice)
            yield session["messages"], gr.update(), session, gr.update()
            return
        chosen = answer_mode(mode, ctx.settings.answer_mode)
        messages = session["messages"] + [
            {"role": "user", "content": render.render_user(question)},
            {"role": "assistant", "content": render.render_pending()},
        ]
        yield messages, "", session, gr.update()
        text = ""
        final: Answer | None = None
        try:
            for item in ctx.assistant.stream(question, session["history"][-MAX_HISTORY_MESSAGES:], mode=chosen,
                                             plain_language=plain):
                if isinstance(item, Answer):
                    final = item
                    continue
                text += item
                messages[-1] = {"role": "assistant", "content": render.render_pending(text)}
                yield messages, gr.update(), session, gr.update()
            if final is None:
                raise RuntimeError("the assistant returned no answer")
            answer_id = ctx.feedback.log_answer(final, ctx.stored_settings(chosen, plain), plain_language=plain)
        except Exception as exc:
            messages[-1] = {"role": "assistant", "content": render.render_error(_shown_error(exc, "conversation"))}
            session = session | {"messages": messages, "turns": [*session["turns"], None]}
            yield messages, gr.update(), session, gr.update()
            return
        messages[-1] = {"role": "assistant",
                        "content": render.render_answer(final, plain_language=plain,
                                                        previews=ctx.settings.preview_cache_mb > 0)}
        session = {
            "messages": messages,
            "history": [*session["history"], {"role": "user", "content": question},
                        {"role": "assistant", "content": final.text}],
            "turns": [*session["turns"], {"answer_id": answer_id, "question": question}],
        }
        yield messages, gr.update(), session, gr.update(choices=turn_choices(session), value=answer_id)

    return respond


def make_like(ctx: AppContext) -> Any:
    def on_like(session: dict[str, Any], data: gr.LikeData) -> tuple[Any, Any, str]:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turns = session["turns"]
        turn = turns[index // 2] if 0 <= index // 2 < len(turns) else None
        if not turn or data.liked not in (True, False):
            return gr.update(), gr.update(), "Cette réponse ne peut pas recevoir d'avis."
        rating = "up" if data.liked else "down"
        try:
            ctx.feedback.add_feedback(turn["answer_id"], rating)
        except Exception as exc:
            return gr.update(), gr.update(), _shown_error(exc, "avis")
        return (gr.update(value=turn["answer_id"]), gr.update(value=rating),
                f"Merci : votre avis « {'utile' if rating == 'up' else 'insatisfaisante'} » est enregistré. "
                "Vous pouvez le préciser ci-dessous (étiquettes, commentaire).")

    return on_like


def make_submit_feedback(ctx: AppContext) -> Any:
    def submit(answer_id: str | None, rating: str | None, tags: list[str], comment: str) -> tuple[Any, ...]:
        if not answer_id:
            return "Choisissez d'abord la réponse concernée.", gr.update(), gr.update(), gr.update()
        try:
            ctx.feedback.add_feedback(answer_id, rating, tags or [], comment or "")
        except Exception as exc:
            return _shown_error(exc, "avis"), gr.update(), gr.update(), gr.update()
        return "Merci, votre avis est enregistré.", gr.update(value=None), gr.update(value=[]), gr.update(value="")

    return submit


# -- Sources tab ------------------------------------------------------------------------------------


def refresh_sources(ctx: AppContext, query: str, publisher: str | None, fmt: str | None,
                    status: str | None) -> tuple[Any, ...]:
    choices = ctx.filter_choices()
    return (
        ctx.status_html(),
        gr.update(choices=choices["publishers"]),
        gr.update(choices=choices["formats"]),
        ctx.documents_html(query or "", publisher or "", fmt or "", status or ""),
        gr.update(choices=choices["documents"]),
        gr.update(choices=ctx.answer_choices()),
    )


def show_page(ctx: AppContext, doc_id: str | None, page: float | None) -> tuple[str, Any]:
    html_, number = ctx.page_html(doc_id, page)
    return html_, gr.update() if number is None else number


# -- API ------------------------------------------------------------------------------------------


def make_ask(ctx: AppContext, limiter: RateLimiter) -> Any:
    def ask(question: str, history: list[dict[str, str]] | None = None, mode: str = "",
            plain_language: bool = False, request: gr.Request | None = None) -> dict[str, Any]:
        """Réponse sourcée à une question : le même JSON que `python -m assistant ask --json`.

        history : tours précédents [{"role": "user"|"assistant", "content": "…"}] ; mode : "extractive",
        "llm" ou "" (réglage du serveur) ; plain_language : langage simple.
        """
        if (wait := limiter.acquire(_client(request))) > 0:
            raise _api_error(too_many_requests(wait))
        if mode not in ("", "extractive", "llm"):
            raise _api_error("Le mode doit valoir « extractive » ou « llm ».")
        clean_history = []
        for message in (history or [])[-MAX_HISTORY_MESSAGES:]:
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant") \
                    or not isinstance(message.get("content"), str):
                raise _api_error("L'historique doit être une liste de messages {\"role\", \"content\"}.")
            clean_history.append({"role": message["role"], "content": message["content"]})
        chosen = answer_mode(mode, ctx.settings.answer_mode)
        try:
            answer = ctx.assistant.answer(question, clean_history, mode=chosen, plain_language=plain_language)
            ctx.feedback.log_answer(answer, ctx.stored_settings(chosen, plain_language), channel="api",
                                    plain_language=plain_language)
        except Exception as exc:
            raise gr.Error(_shown_error(exc, "API"), print_exception=False) from None
        return answer.to_json()

    return ask


# -- layout ---------------------------------------------------------------------------------------


def _theme() -> gr.themes.Base:
    blue = gr.themes.Color(c50="#f5f5fe", c100="#ececfe", c200="#e3e3fd", c300="#cacafb", c400="#8585f6",
                           c500="#6a6af4", c600="#000091", c700="#00007a", c800="#000066", c900="#00004f",
                           c950="#000033", name="bleu-france")
    return gr.themes.Base(
        primary_hue=blue, secondary_hue=blue, neutral_hue="gray", radius_size="sm",
        font=["Arial", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"],
    ).set(
        button_primary_background_fill="#000091", button_primary_background_fill_hover="#1212ff",
        button_primary_text_color="#ffffff", button_secondary_text_color="#000091",
        button_secondary_border_color="#000091", link_text_color="#000091", body_text_color="#161616",
        block_label_text_color="#161616", block_info_text_color="#3a3a3a", body_text_color_subdued="#3a3a3a",
        checkbox_background_color_selected="#000091", color_accent="#000091",
        input_placeholder_color="#666666",  # 5.7:1 on white (RGAA 3.2)
    )


def _header(logout: bool = False) -> str:
    # With ProConnect, the way out goes through the provider (its session ends too).
    leave = '<p class="deconnexion"><a href="/deconnexion">Se déconnecter</a></p>' if logout else ""
    return (
        f'<header class="entete"><h1>{render.esc(TITLE)}</h1>'
        '<p class="intro">Posez vos questions en français sur les alliances en territoire '
        '(partenariats entre collectivités, '
        "entreprises et associations, ODD et Agenda 2030, co-construction territoriale). Chaque réponse cite le "
        "document et la page.</p>"
        '<p class="avertissement">Les réponses reprennent des extraits des guides : vérifiez toujours la source '
        "avant de décider. Ne saisissez pas de données personnelles.</p>"
        '<p class="accessibilite"><a href="/accessibilite" target="_blank">Accessibilité : partiellement conforme'
        f'<span class="sr-only"> (nouvel onglet)</span></a></p>{leave}</header>'
    )


def build_blocks(ctx: AppContext, limiter: RateLimiter | None = None, *,
                 manager_of: Callable[[Mapping[str, str]], str | None] | None = None) -> gr.Blocks:
    """``limiter``: questions per client, shared by the chat and ``/ask`` (default: from the settings)."""
    s = ctx.settings
    limiter = limiter or RateLimiter(s.ask_rate_per_minute)
    respond = make_respond(ctx, limiter)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        session = gr.State(_new_session())
        gr.HTML(_header(logout=ctx.settings.proconnect_enabled))
        # Filled on load for a manager only: the page config holds no trace of the management area.
        manage_link = gr.HTML("", elem_id="gestion-lien")
        status = gr.HTML(ctx.status_html(), elem_id="statut")
        with gr.Tabs():
            with gr.Tab("Poser une question", id="chat"), gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    gr.HTML('<h2 class="sr-only">Conversation</h2>')
                    chatbot = gr.Chatbot(
                        label="Conversation avec l'assistant", height="62vh", layout="panel",
                        sanitize_html=True, allow_tags=False, latex_delimiters=[], buttons=[],
                        feedback_options=("Like", "Dislike"), group_consecutive_messages=False,
                        examples=[{"text": q} for q in EXAMPLES],
                        placeholder="Choisissez un exemple ou posez votre question ci-dessous.",
                        elem_id="conversation", autoscroll=False,
                    )
                    question = gr.Textbox(
                        label="Votre question", lines=2, max_lines=6, max_length=s.max_question_chars,
                        placeholder="Par exemple : comment associer les associations à un projet de territoire ?",
                        # No autofocus: on a phone it scrolled the page down past the title on load.
                        elem_id="question",
                    )
                    with gr.Row():
                        send = gr.Button("Envoyer la question", variant="primary", elem_id="envoyer")
                        reset = gr.Button("Nouvelle conversation", variant="secondary", elem_id="nouvelle")
                with gr.Column(scale=1, min_width=260):
                    gr.HTML('<h2 class="sr-only">Réglages et avis</h2>')
                    llm_choices = MODE_CHOICES if ctx.assistant.llm_available else MODE_CHOICES[:1]
                    mode = gr.Radio(
                        llm_choices, value=s.answer_mode if ctx.assistant.llm_available else "extractive",
                        label="Mode de réponse",
                        info=None if ctx.assistant.llm_available
                        else "Le mode rédigé (modèle de langage) n'est pas configuré sur ce serveur.",
                        elem_id="mode",
                    )
                    plain = gr.Checkbox(value=s.plain_language, label="Langage simple",
                                        info="Formulations plus directes.", elem_id="langage-simple")
                    with gr.Group():
                        gr.HTML('<h2 class="titre-avis" style="font-size:1.05rem;margin:.5rem">'
                                "Donner mon avis sur une réponse</h2>")
                        target = gr.Dropdown(choices=[], value=None, label="Réponse concernée",
                                             elem_id="avis-reponse")
                        rating = gr.Radio(RATING_CHOICES, value=None, label="Votre avis", elem_id="avis-note")
                        tags = gr.CheckboxGroup(list(POSITIVE_TAGS + NEGATIVE_TAGS), label="Précisions",
                                                elem_id="avis-etiquettes")
                        comment = gr.Textbox(label="Commentaire (facultatif)", lines=2, max_length=2000,
                                             elem_id="avis-commentaire")
                        give = gr.Button("Envoyer mon avis", elem_id="avis-envoyer")
                        thanks = gr.Markdown("", elem_id="avis-statut")
            with gr.Tab("Sources", id="sources"):
                gr.HTML('<h2>Documents de l\'index</h2>' + management_notice(s))
                with gr.Row():
                    query = gr.Textbox(label="Rechercher un document", placeholder="Titre, éditeur, identifiant…",
                                       scale=2, elem_id="recherche-document")
                    publisher = gr.Dropdown(choices=[("Tous", "")], value="", label="Éditeur", scale=1)
                    fmt = gr.Dropdown(choices=[("Tous", "")], value="", label="Format", scale=1)
                    state = gr.Dropdown(choices=[("Tous", ""), ("Indexé", "indexed"), ("Inchangé", "unchanged"),
                                                 ("Échec", "failed")], value="", label="État", scale=1)
                refresh = gr.Button("Actualiser", variant="secondary")
                documents = gr.HTML(ctx.documents_html(), elem_id="catalogue")
                gr.HTML("<h2>Lire un document page par page</h2>")
                with gr.Row():
                    doc = gr.Dropdown(choices=[], value=None, label="Document", scale=3, elem_id="document-choisi")
                    page = gr.Number(value=1, minimum=1, precision=0, label="Page", scale=1, elem_id="document-page")
                with gr.Row():
                    previous = gr.Button("Page précédente", variant="secondary")
                    following = gr.Button("Page suivante", variant="secondary")
                passages = gr.HTML("", elem_id="passages-page")
                gr.HTML("<h2>Réponses passées : passages retrouvés et cités</h2>")
                past = gr.Dropdown(choices=[], value=None, label="Réponse", elem_id="reponse-passee")
                trace = gr.HTML("", elem_id="trace-reponse")

        # The chat and the API share one pool of workers (settings.concurrency_limit).
        # "undocumented": callable by gradio_client (the tests drive the real chat with it), not in the API page.
        chat_args: dict[str, Any] = {"concurrency_id": "answer", "concurrency_limit": s.concurrency_limit}
        outputs = [chatbot, question, session, target]
        inputs = [question, session, mode, plain]
        question.submit(respond, inputs, outputs, api_name="respond", api_visibility="undocumented",
                        **chat_args).then(None, js=SHOW_ANSWER_START, api_visibility="private")
        send.click(respond, inputs, outputs, api_visibility="private", **chat_args).then(
            None, js=SHOW_ANSWER_START, api_visibility="private")

        def pick_example(data: gr.SelectData) -> str:
            return str((data.value or {}).get("text", ""))

        chatbot.example_select(pick_example, None, question, api_visibility="private").then(
            respond, inputs, outputs, api_visibility="private", **chat_args).then(
            None, js=SHOW_ANSWER_START, api_visibility="private")

        def clear() -> tuple[Any, ...]:
            return [], "", _new_session(), gr.update(choices=[], value=None), "", None, [], ""

        reset.click(clear, None, [chatbot, question, session, target, thanks, rating, tags, comment],
                    api_name="new_conversation", api_visibility="undocumented")
        chatbot.clear(clear, None, [chatbot, question, session, target, thanks, rating, tags, comment],
                      api_visibility="private")
        chatbot.like(make_like(ctx), [session], [target, rating, thanks], api_visibility="private")
        give.click(make_submit_feedback(ctx), [target, rating, tags, comment], [thanks, rating, tags, comment],
                   api_name="rate", api_visibility="undocumented")

        filters = [query, publisher, fmt, state]
        refresh_outputs = [status, publisher, fmt, documents, doc, past]
        private: dict[str, Any] = {"api_visibility": "private"}
        blocks.load(partial(refresh_sources, ctx), filters, refresh_outputs, **private)

        def show_manage_link(request: gr.Request) -> str:
            cookies = getattr(request, "cookies", None) or {}
            return manager_link(manager_of(cookies) if manager_of is not None else None)

        blocks.load(show_manage_link, None, manage_link, **private)
        refresh.click(partial(refresh_sources, ctx), filters, refresh_outputs, **private)

        def table(query: str, publisher: str | None, fmt: str | None, status: str | None) -> str:
            return ctx.documents_html(query or "", publisher or "", fmt or "", status or "")

        for control in (publisher, fmt, state):
            control.change(table, filters, documents, **private)
        query.change(table, filters, documents, trigger_mode="always_last", **private)
        doc.change(lambda d: show_page(ctx, d, 1), [doc], [passages, page], **private)
        page.submit(partial(show_page, ctx), [doc, page], [passages, page], **private)
        previous.click(lambda d, p: show_page(ctx, d, (p or 1) - 1), [doc, page], [passages, page], **private)
        following.click(lambda d, p: show_page(ctx, d, (p or 1) + 1), [doc, page], [passages, page], **private)
        past.focus(lambda: gr.update(choices=ctx.answer_choices()), None, past, **private)
        past.change(ctx.trace_html, [past], [trace], **private)

        gr.api(make_ask(ctx, limiter), api_name="ask", concurrency_id="answer", concurrency_limit=s.concurrency_limit)
    return blocks


# -- app ------------------------------------------------------------------------------------------


def _gradio_app(app: FastAPI) -> Any:
    for route in app.routes:
        sub = getattr(route, "app", None)
        if sub is not None and hasattr(sub, "tokens") and hasattr(sub, "cookie_id"):
            return sub
    raise RuntimeError("Gradio app not mounted")


def build_app(settings: Settings, assistant: Assistant | None = None, *,
              feedback: FeedbackStore | None = None) -> FastAPI:
    """The whole web app (FastAPI, Gradio mounted at ``/``), ready for uvicorn."""
    ctx = AppContext.create(settings, assistant, feedback)
    if settings.management_enabled:
        try:  # uploads a killed process left behind (old enough that no live replica still owns them)
            sweep_staging(settings)
        except OSError as exc:
            log.warning("Dossier des téléversements non nettoyé (%s) : %s", settings.corpus_dir, exc)
    mounted: dict[str, Any] = {}

    def password_user(cookies: Mapping[str, str]) -> str | None:
        gradio_app = mounted["app"]
        token = (cookies.get(f"access-token-{gradio_app.cookie_id}")
                 or cookies.get(f"access-token-unsecure-{gradio_app.cookie_id}"))
        user = gradio_app.tokens.get(token) if token else None
        return str(user) if user else None

    def logged_in(cookies: Mapping[str, str]) -> bool:
        return password_user(cookies) is not None

    provider = None
    if settings.proconnect_enabled:
        # Only then: authlib and joserfc come with the « proconnect » extra.
        from webui.proconnect import ProConnect, ProConnectGate, proconnect_router

        provider = ProConnect(settings)

    def manager_of(cookies: Mapping[str, str]) -> str | None:
        """Who manages the documents behind these cookies: a ProConnect manager or a listed password login."""
        if not settings.management_enabled:
            return None
        if provider is not None:
            agent = provider.session_user(cookies)
            return agent.email if agent is not None and agent.manager else None
        user = password_user(cookies)
        return user if settings.is_manager(user) else None

    blocks = build_blocks(ctx, manager_of=manager_of)
    blocks.queue(max_size=settings.max_queue, default_concurrency_limit=settings.concurrency_limit, api_open=False)
    # Gradio keeps a copy of the page's configuration per session, 10,000 sessions by default: about 120 KB
    # each, so memory grew with every new client for 10,000 clients (measured: python -m evals.bench sessions).
    blocks.state_session_capacity = settings.max_sessions

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def authorize(request: Request) -> bool:
        if provider is not None:
            return provider.session_user(request.cookies) is not None
        return not settings.auth or logged_in(request.cookies)

    if provider is not None:
        app.include_router(proconnect_router(provider))

    # The previews' routes first: the document router answers 404 to any other /documents/… path.
    app.include_router(preview_router(ctx.library, authorize, PreviewService(settings)))
    app.include_router(document_router(ctx.library, authorize))
    app.include_router(accessibility_router())
    app.include_router(manage_router(settings, ctx.jobs, ctx.audit, lambda request: manager_of(request.cookies)))
    app = gr.mount_gradio_app(
        app, blocks, path="/",
        auth=list(settings.auth) or None,
        auth_message="Connectez-vous avec l'identifiant fourni par votre administrateur.",
        server_name=settings.host, server_port=settings.port,
        # No footer link: « Utiliser via API » opened Gradio's English API page; /ask is documented in the README.
        footer_links=[], run_history=False, show_error=False, enable_monitoring=False,
        max_file_size="1b", ssr_mode=False, mcp_server=False, pwa=False,
        theme=_theme(), css_paths=[Path(__file__).resolve().parent / "webui" / "app.css"], head=HEAD,
    )
    mounted["app"] = _gradio_app(app)
    if provider is not None:
        # Inside the security guard (added after, so outside): blocked routes stay blocked for everybody.
        app.add_middleware(ProConnectGate, logged_in=provider.has_session)
    # With a login, every route but the login page is closed to a client without a session (Gradio leaves
    # /gradio_api/cancel, /reset, /heartbeat… open), and failed logins lock the client out for a while.
    app.add_middleware(SecurityMiddleware, logged_in=logged_in if settings.auth else None,
                       login_guard=LoginGuard(settings.login_max_failures, settings.login_lockout_s))
    app.add_middleware(FrenchLocaleMiddleware)  # Gradio's own strings in French, whatever the browser's language
    return app


RETENTION_EVERY_S = 24 * 3600


def start_retention(settings: Settings, feedback: FeedbackStore) -> threading.Thread | None:
    """With ``ASSISTANT_RETENTION_DAYS``, purge the answer log now and then once a day (export first)."""
    if settings.retention_days <= 0:
        return None
    # In a server deployment every replica runs this too: the database serializes the purges (one exports
    # and deletes, the others then find nothing left).

    def loop() -> None:
        while True:
            try:
                apply_retention(feedback, settings.retention_days, settings.retention_archive_dir)
            except AssistantError as exc:  # e.g. the export could not be written: nothing was deleted
                log.warning("%s", exc)
            except Exception:
                log.exception("Purge du journal des réponses impossible")
            time.sleep(RETENTION_EVERY_S)

    thread = threading.Thread(target=loop, name="retention", daemon=True)
    thread.start()
    return thread


def _check_port_free(host: str, port: int) -> None:
    """Fail early, in French, rather than with uvicorn's English error after loading the models."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise OSError(f"impossible d'écouter sur {host}:{port} (port déjà utilisé ou adresse invalide) ; "
                          "choisissez-en un autre avec --port.") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from cli import SERVE_DESCRIPTION, configure_serve

    parser = argparse.ArgumentParser(prog="python app.py", description=SERVE_DESCRIPTION)
    configure_serve(parser)
    return parser.parse_args(argv)


# Libraries that log at INFO or DEBUG (bm25s even sets DEBUG on itself when imported): WARNING and up only.
QUIET_LOGGERS = ("bm25s", "chromadb", "gradio", "gradio_client", "httpx", "httpcore", "urllib3", "uvicorn",
                 "fastapi", "asyncio", "multipart", "python_multipart", "langchain", "langchain_core",
                 "langchain_openai", "openai", "sentence_transformers", "transformers", "huggingface_hub",
                 "matplotlib", "PIL", "posthog", "opentelemetry")


class _ConsoleFilter(logging.Filter):
    """Our own INFO lines (``assistant.*``) and everybody's warnings; no library chatter, whatever its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.split(".")[0] == "assistant"


def _configure_logging() -> None:
    """The server console: called by ``main`` only, never when a module is imported (tests, other tools)."""
    console = logging.StreamHandler()  # stderr, like the start-up lines
    console.addFilter(_ConsoleFilter())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=[console])  # does nothing when the root logger has handlers already
    logging.getLogger("assistant").setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _start_failed(exc: Exception, settings: Settings | None) -> int:
    """Print the one French sentence of a start-up failure; its exit status is the ingestion job's.

    2 usage or configuration (a setting, a busy port, no index could be built), 3 data folder not writable or
    disk full, 4 Chroma server unreachable (or the Albert embedding service busy or down): a supervisor can restart
    on 3 and 4 once the machine is fixed.
    """
    from ingest.cli import EXIT_USAGE, exit_code

    fault: Exception = exc
    if not isinstance(exc, AssistantError) and settings is not None:
        fault = store.storage_fault(exc, settings) or exc
    print(f"Erreur : {fault}", file=sys.stderr)
    return exit_code(fault) if isinstance(fault, AssistantError) else EXIT_USAGE


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    """« 0,04 s », « 3,4 s », « 12 s », « 1 min 42 s »."""
    if seconds < 10:
        return f"{seconds:.{2 if seconds < 1 else 1}f} s".replace(".", ",")
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def main(argv: list[str] | None = None) -> int:
    # `python app.py`: "ready in" is counted from the first line, imports included.
    return serve(parse_args(argv), started=_STARTED if __name__ == "__main__" else None)


def serve(args: argparse.Namespace, *, started: float | None = None) -> int:
    """Index the corpus if there is no index yet, then serve until Ctrl+C (``python app.py``, ``alliances serve``).

    ``started``: when the process started (``time.monotonic()``), for the « Prêt en … » line; None: no such line.
    """
    import uvicorn

    from assistant.embeddings import embedder_from_settings
    from assistant.settings import SettingsError

    _configure_logging()
    loaded: Settings | None = None  # to tell a storage fault from a bug once the settings are known
    try:
        settings = loaded = Settings.from_env().with_overrides(
            host=args.host, port=args.port, data_dir=args.db.resolve() if args.db else None)
        settings.validate()
        _check_port_free(settings.host, settings.port)  # before minutes of indexing, not after
        _say(f"Chargement du modèle d'embeddings ({settings.embedder})…")
        loading = time.monotonic()
        embedder = embedder_from_settings(settings)  # one model for the first indexing and the answers
        _say(f"Modèle d'embeddings prêt en {_duration(time.monotonic() - loading)}.")
        shared_state.prepare(settings)  # a server deployment: database reachable and migrated, or one French line
        if shared_state.current_generation(settings) is None and settings.server_deployment:
            # Replicas never index: one ingestion job publishes for all of them.
            raise SettingsError("Aucun index n'est publié dans la base de données : lancez l'indexation "
                                "(python -m ingest) avec les mêmes réglages, puis démarrez l'application.")
        if shared_state.current_generation(settings) is None:
            from ingest.index import IngestConfigError, run_ingest

            _say("Aucun index n'existe encore : indexation du corpus avant le démarrage. Cette première "
                 "indexation prend quelques minutes ; sa progression s'affiche ci-dessous.")
            try:
                # Several worker processes embed faster than the serving model alone (ASSISTANT_EMBED_WORKERS).
                report = run_ingest(settings, embedder=embedder if settings.embed_worker_count <= 1 else None)
            except IngestConfigError as exc:
                raise SettingsError(str(exc)) from None
            for failure in report.failed:
                print(f"Fichier non indexé : {failure['path']} ({failure['reason']})", file=sys.stderr)
            if shared_state.current_generation(settings) is None:
                raise SettingsError("L'indexation n'a produit aucun index : vérifiez le dossier du corpus.")
            _say(f"Index prêt en {_duration(report.seconds)} : {len(report.indexed)} fichiers, "
                 f"{report.passages} passages.")
        assistant = Assistant(settings, embedder=embedder)
        assistant.retriever.load()  # load the index now, not on the first question
        feedback = shared_state.feedback_store(settings)  # PostgreSQL in a server deployment
        app = build_app(settings, assistant, feedback=feedback)
    except (AssistantError, OSError) as exc:  # the one boundary at start-up: one French line
        return _start_failed(exc, loaded)
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.auth:
        print("Attention : l'application écoute sur le réseau sans authentification (réglage ASSISTANT_AUTH).",
              file=sys.stderr)
    if started is not None:
        _say(f"Prêt en {_duration(time.monotonic() - started)}.")
    print(f"{TITLE} : http://{settings.host}:{settings.port}/  (Ctrl+C pour arrêter)", file=sys.stderr)
    start_retention(settings, feedback)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
