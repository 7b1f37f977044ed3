"""Accessibility and phones in a real headless Chromium: axe-core (bundled by axe-playwright-python, offline)
finds no serious or critical violation on the chat, an answer with its sources, the Sources tab and a
document view; at 390 px the title and the question box are on the first screen and the answer's first
line is in view once it arrives; Gradio's strings are French for an English browser; the whole flow works
from the keyboard alone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from assistant.settings import Settings
from tests.appserver import chromium, desktop_context, require_chromium, served_app

pytestmark = pytest.mark.browser

QUESTION = "Quelles sont les missions d'un catalyseur territorial ?"


@pytest.fixture(scope="module")
def a11y_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    require_chromium()
    pytest.importorskip("axe_playwright_python", reason="le paquet Python axe-playwright-python n'est pas installé")
    with served_app(tmp_path_factory, "a11y") as served:
        yield served


def serious(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    result = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in result.response["violations"] if v["impact"] in ("serious", "critical")]


def _ask(page: Any, question: str) -> None:
    page.fill("#question textarea", question)
    page.click("#envoyer")
    page.wait_for_selector("#conversation .reponse:not(.en-cours) .sources", timeout=60_000)


def test_axe_finds_no_serious_violation_on_the_four_views(a11y_app: tuple[str, Settings]) -> None:
    url, _ = a11y_app
    with chromium() as browser:
        page = desktop_context(browser).new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        # The page's load events (status line, Sources) dim the blocks they update while pending: axe run
        # then sees a faded status line (a contrast failure that depends on timing), so wait until they end.
        page.wait_for_function("!document.querySelector('.pending')", timeout=30_000)
        assert serious(page) == [], "chat"
        _ask(page, QUESTION)
        page.wait_for_timeout(500)  # the repairs of Gradio's labels run after each change of the chat
        assert serious(page) == [], "answer"
        labels = page.evaluate(
            "Array.from(document.querySelectorAll('[aria-label]'), e => e.getAttribute('aria-label'))")
        assert not [label for label in labels if "<" in label]
        page.get_by_role("tab", name="Sources").click()
        page.wait_for_selector("table.catalogue", timeout=15_000)
        assert serious(page) == [], "sources"
        # The document view forbids every script (CSP sandbox): axe is injected with the CSP bypassed.
        page = browser.new_context(locale="fr-FR", bypass_csp=True).new_page()
        page.goto(url + "/documents/mooc?q=gratuitement+sur+Coursera#citation")
        assert page.locator("mark#citation").inner_text() == "gratuitement sur Coursera"
        assert serious(page) == [], "document view"
        page.goto(url + "/accessibilite")
        assert "Déclaration d'accessibilité" in page.inner_text("h1")
        assert serious(page) == [], "accessibility statement"


def test_phone_first_screen_and_answer_in_view_in_an_english_browser(a11y_app: tuple[str, Settings]) -> None:
    url, _ = a11y_app
    with chromium() as browser:
        context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True,
                                      has_touch=True)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.evaluate("window.scrollY") == 0
        for selector in ("h1", "#question textarea"):
            box = page.locator(selector).bounding_box()
            assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844, (selector, box)
        _ask(page, QUESTION)
        page.wait_for_timeout(800)
        first = page.locator("#conversation .reponse:not(.en-cours) .texte p").last.bounding_box()
        assert first and 0 <= first["y"] < 844 - 20, first
        # Screen readers hear the complete answer once, from a polite live region.
        live = page.locator("#annonce-reponse")
        assert live.get_attribute("aria-live") == "polite"
        assert live.inner_text().startswith("Réponse reçue : ") and "missions" in live.inner_text()
        streaming_regions = page.evaluate(
            "Array.from(document.querySelectorAll('#conversation [aria-live]:not([aria-live=\"off\"])'),"
            " e => e.outerHTML.slice(0, 300))")
        assert streaming_regions == []
        # Gradio's own buttons speak French to an English browser; no link to the English API page.
        labels = page.locator("#conversation button[aria-label]").evaluate_all(
            "els => els.map(e => e.getAttribute('aria-label'))")
        assert "J'aime" in labels and "Like" not in labels, labels
        assert page.get_by_text("Utiliser via API").count() == 0 and page.get_by_text("Use via API").count() == 0


def _tab_to(page: Any, matches: str, limit: int = 150) -> None:
    """Press Tab until the focused element matches the JS predicate ``matches`` (given ``el``)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!el && ({matches}); }})()"):
            return
    raise AssertionError(f"never reached by Tab: {matches}")


def _focus_visible(page: Any) -> bool:
    """The focused element shows a focus ring (an outline or a box shadow)."""
    return bool(page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none'; }"""))


def test_keyboard_only_flow(a11y_app: tuple[str, Settings]) -> None:
    url, _ = a11y_app
    with chromium() as browser:
        page = desktop_context(browser).new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        # Ask: Tab to the question box, type, Tab to « Envoyer la question », Enter.
        _tab_to(page, "el.closest('#question') && el.tagName === 'TEXTAREA'")
        assert _focus_visible(page)
        page.keyboard.type(QUESTION)
        _tab_to(page, "el.id === 'envoyer'")
        assert _focus_visible(page)
        page.keyboard.press("Enter")
        page.wait_for_selector("#conversation .reponse:not(.en-cours) .sources", timeout=60_000)
        # Reach the answer's first source and open it.
        _tab_to(page, "el.tagName === 'A' && !!el.closest('#conversation li.carte')")
        assert _focus_visible(page)
        with page.expect_popup() as popup_info:
            page.keyboard.press("Enter")
        popup = popup_info.value
        assert "/documents/" in popup.url
        popup.close()
        page.bring_to_front()
        # Give feedback with the chat's « J'aime » button.
        _tab_to(page, "el.getAttribute('aria-label') === \"J'aime\"")
        assert _focus_visible(page)
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('#avis-statut')?.innerText.includes('est enregistré')", timeout=15_000)
        # Start a new conversation.
        _tab_to(page, "el.id === 'nouvelle'")
        assert _focus_visible(page)
        page.keyboard.press("Enter")
        page.wait_for_function("() => !document.querySelector('#conversation .reponse')", timeout=15_000)
