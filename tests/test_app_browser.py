"""End to end in a real headless Chromium (Debian's ``chromium`` driven by Playwright): ask, watch the
answer stream, open a source at its page, and check that nothing from a document or a question runs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from assistant.answer import Assistant
from assistant.feedback import FeedbackStore
from assistant.schema import Answer
from assistant.settings import Settings
from tests.appserver import HOSTILE_MD_QUESTION, HOSTILE_QUESTION, chromium, desktop_context, served_app

pytestmark = pytest.mark.browser

QUESTION = "Quelles sont les missions d'un catalyseur territorial ?"


class SlowStreamingAssistant(Assistant):
    """The real assistant, its text handed out a few words at a time, so the stream can be watched."""

    def stream(self, question: str, history: Sequence[Any] = (), **kwargs: Any) -> Iterator[str | Answer]:
        for item in super().stream(question, history, **kwargs):
            if isinstance(item, Answer):
                yield item
                continue
            words = item.split(" ")
            for i in range(0, len(words), 3):
                time.sleep(0.12)
                yield " ".join(words[i:i + 3]) + " "


@pytest.fixture(scope="module")
def browser_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    with served_app(tmp_path_factory, "browser", SlowStreamingAssistant) as served:
        yield served


def _ask(page: Any, question: str, answers_before: int) -> None:
    page.fill("#question textarea", question)
    page.click("#envoyer")
    page.wait_for_function(
        "n => document.querySelectorAll('#conversation .reponse:not(.en-cours)').length > n", arg=answers_before,
        timeout=30_000)


def test_chat_in_a_real_browser(browser_app: tuple[str, Settings]) -> None:
    url, settings = browser_app
    dialogs: list[str] = []
    csp_errors: list[str] = []
    with chromium() as browser:
        context = desktop_context(browser)

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.dismiss()

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                csp_errors.append(message.text)

        def watch(page: Any) -> None:
            page.on("dialog", on_dialog)
            page.on("console", on_console)

        context.on("page", watch)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        assert page.evaluate("document.documentElement.lang") == "fr"
        assert page.get_by_label("Votre question").count() == 1  # labelled fields

        # 1. The answer streams: partial text is shown before the final answer and its sources.
        page.fill("#question textarea", QUESTION)
        page.click("#envoyer")
        page.wait_for_selector("#conversation .reponse.en-cours .texte", timeout=30_000)
        partial = page.inner_text("#conversation .reponse.en-cours .texte")
        page.wait_for_selector("#conversation .sources", timeout=30_000)
        final = page.inner_text("#conversation .reponse .texte")
        assert partial.strip() and len(partial) < len(final)
        assert "quatre missions" in final
        card = page.locator("#conversation li.carte").first
        assert "Guide des alliances" in card.inner_text() and "Page 1" in card.inner_text()
        # Every quote taken from the card's passage is highlighted; one of them holds the answer.
        assert any("quatre missions" in m for m in card.locator("mark").all_inner_texts())
        assert "Mode : extraits des documents" in page.inner_text("#conversation .reponse .mode")

        # 2. «Ouvrir à la page» opens the document through the app's route, at the cited page.
        with page.expect_popup() as popup_info:
            page.get_by_role("link", name=re.compile("Ouvrir à la page 1")).first.click()
        popup = popup_info.value
        assert popup.url.endswith("/documents/guide-alliances#page=1")
        response = context.request.get(popup.url.split("#")[0])
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        popup.close()

        # 3. Documents with <script>, <img onerror>, javascript: links and remote images; a hostile question.
        count = page.locator("#conversation .reponse:not(.en-cours)").count()
        for question in (HOSTILE_QUESTION, HOSTILE_MD_QUESTION,
                         "<img src=x onerror=alert('question')> <svg onload=alert(1)> ![p](http://10.0.0.1/p.png)"):
            _ask(page, question, count)
            count += 1
        text = page.inner_text("#conversation")
        assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(2)>" in text  # shown as text
        # The only images: previews of cited PDF pages, from the app's own route.
        for selector in ("#conversation .message-content img:not(p.apercu img[src^='/documents/'])",
                         "#conversation .message-content script",
                         "#conversation [onerror]", "#conversation [onload]", "#conversation a[href^='javascript']",
                         "#conversation .message-content iframe"):
            assert page.locator(selector).count() == 0, selector

        # The hostile HTML document, opened from its card, is escaped text in a sandbox.
        with page.expect_popup() as popup_info:
            page.get_by_role("link", name=re.compile("Ouvrir le document")).filter(
                has_text="Charte des partenariats").first.click()
        view = popup_info.value
        view.wait_for_load_state()
        assert "<script>alert(1)</script>" in view.inner_text("main")
        assert view.locator("main script, main img, [onerror], [onload]").count() == 0
        view.close()

        # 4. Follow-up, feedback, new conversation.
        _ask(page, "Que dit l'Agenda 2030 ?", count)
        _ask(page, "Et combien de cibles ?", count + 1)
        last = page.locator("#conversation .reponse:not(.en-cours)").last
        assert "Question comprise" in last.inner_text() and "169 cibles" in last.inner_text()
        page.locator("#conversation button[aria-label=\"J'aime\"]").last.click()
        page.wait_for_function(
            "() => document.querySelector('#avis-statut')?.innerText.includes('est enregistré')", timeout=15_000)
        store = FeedbackStore(settings.data_dir / "feedback.sqlite")
        latest = store.list_answers(limit=1)[0]
        assert latest.question == "Et combien de cibles ?"
        assert [f.rating for f in store.list_feedback(latest.id)] == ["up"]
        page.get_by_label("incomplet").check()
        page.fill("#avis-commentaire textarea", "Il manque la date.")
        page.click("#avis-envoyer")
        page.wait_for_function(
            "() => document.querySelector('#avis-statut')?.innerText.includes('Merci, votre avis')", timeout=15_000)
        assert store.list_feedback(latest.id)[-1].tags == ["incomplet"]
        page.click("#nouvelle")
        page.wait_for_function("() => !document.querySelector('#conversation .reponse')", timeout=15_000)

        # 5. The Sources tab lists the documents and the failed symlink, with its reason.
        page.get_by_role("tab", name="Sources").click()
        page.wait_for_selector("table.catalogue", timeout=15_000)
        table = page.inner_text("table.catalogue")
        assert "Guide des alliances" in table and "Échec : lien symbolique" in table
        status = page.inner_text("#statut")
        assert "7 documents" in status and "hash:256" in status

        assert dialogs == [], dialogs
        assert csp_errors == [], csp_errors
