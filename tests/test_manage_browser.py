"""« Gérer les documents » in a real headless Chromium: a manager adds a PDF and watches its indexing, the
chat cites it at the right page, a new edition replaces it, its removal takes it out of the answers; an
agent who is not a manager sees none of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.settings import Settings
from tests.appserver import chromium, desktop_context, raw_request, served_app
from tests.builders import make_pdf
from webui.manage import FORBIDDEN

pytestmark = pytest.mark.browser

MANAGER = ("gestion", "mot-de-passe-gestion")
AGENT = ("agent", "mot-de-passe-agent")
QUESTION = "Combien de ruches compte le rucher intercommunal de Montval ?"
PAGES = ["Le rucher intercommunal de Montval est présenté dans ce guide des abeilles territoriales.",
         "Le rucher intercommunal de Montval compte 48 ruches installées sur les toits des écoles."]


@pytest.fixture(scope="module")
def manage_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    with served_app(tmp_path_factory, "manage-browser", auth=(MANAGER, AGENT), managers=(MANAGER[0],)) as served:
        yield served


def _session(browser: Any, url: str, user: tuple[str, str]) -> Any:
    status, headers, _ = raw_request(url, "POST", "/login", {"Content-Type": "application/x-www-form-urlencoded"},
                                     f"username={user[0]}&password={user[1]}".encode())
    assert status == 200
    context = desktop_context(browser)
    host = url.removeprefix("http://").split(":")[0]
    for cookie in headers["set-cookie"].split("\n"):
        name, _, value = cookie.split(";", 1)[0].partition("=")
        context.add_cookies([{"name": name, "value": value, "domain": host, "path": "/"}])
    return context


def _ask(page: Any, url: str) -> str:
    page.goto(url)
    page.wait_for_selector("#question textarea", timeout=30_000)
    page.fill("#question textarea", QUESTION)
    page.click("#envoyer")
    page.wait_for_selector("#conversation .reponse:not(.en-cours)", timeout=60_000)
    return str(page.inner_text("#conversation .reponse"))


def _choose(page: Any, title: str) -> None:
    option = page.locator("#doc-choisi option", has_text=title)
    option.wait_for(state="attached", timeout=30_000)
    page.select_option("#doc-choisi", value=option.get_attribute("value"))


def _wait_summary(page: Any, text: str) -> str:
    page.wait_for_function("t => document.querySelector('#travaux').innerText.includes(t)", arg=text,
                           timeout=120_000)
    return str(page.inner_text("#travaux li"))


def test_manager_keeps_the_corpus_current_in_a_browser(manage_app: tuple[str, Settings], tmp_path: Path) -> None:
    url, _ = manage_app
    first = make_pdf(tmp_path / "Guide abeilles (v1).pdf", PAGES, title="Guide des abeilles territoriales",
                     headings=["Le rucher", "Les ruches"])
    second = make_pdf(tmp_path / "guide-v2.pdf", [PAGES[0], "Page ajoutée à la deuxième édition.",
                                                  PAGES[1].replace("48 ruches", "60 ruches")],
                      title="Guide des abeilles territoriales", headings=["Le rucher", "Nouveautés", "Les ruches"])
    with chromium("--lang=fr") as browser:
        context = _session(browser, url, MANAGER)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(url)
        page.get_by_role("link", name="Gérer les documents").click()
        page.wait_for_selector("#ajout-fichier")
        assert page.url.endswith("/gerer")

        # Add: the job shows in the list while it runs, then its French summary.
        page.set_input_files("#ajout-fichier", str(first))
        page.fill("#ajout-editeur", "Ville de Montval")
        page.fill("#ajout-date", "mars 2026")
        page.click("#ajout-envoyer")
        page.wait_for_selector("#travaux li", timeout=30_000)
        seen = page.inner_text("#travaux li")
        assert re.search("ajout de « Guide des abeilles territoriales » — (en attente|en cours|terminé)", seen)
        summary = _wait_summary(page, "Document ajouté")
        assert "Index en service" in summary
        assert "Guide des abeilles territoriales" in page.inner_text("#documents")
        page.screenshot(path=str(tmp_path / "gerer-documents.png"), full_page=True)

        answer = _ask(page, url)
        card = page.locator("#conversation li.carte").first.inner_text()
        assert "48 ruches" in answer and "Guide des abeilles territoriales" in card and "Page 2" in card
        assert "Édition : mars 2026" in card

        # Replace by a new edition: the card shows it, and the page that now holds the fact.
        page.goto(url + "/gerer")
        _choose(page, "Guide des abeilles")
        page.set_input_files("#edition-fichier", str(second))
        page.fill("#edition-date", "juin 2026")
        page.click("#edition-envoyer")
        _wait_summary(page, "Nouvelle édition en service")
        _ask(page, url)
        card = page.locator("#conversation li.carte").first.inner_text()
        assert "60 ruches" in card and "Page 3" in card and "Édition : juin 2026" in card

        # Remove: no longer cited.
        page.goto(url + "/gerer")
        _choose(page, "Guide des abeilles")
        page.click("#retrait-envoyer")
        _wait_summary(page, "Document retiré")
        _ask(page, url)
        assert "Guide des abeilles" not in page.inner_text("#conversation")
        context.close()

        # An agent: no link, no area, every route refused.
        context = _session(browser, url, AGENT)
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#question textarea", timeout=30_000)
        page.wait_for_timeout(500)  # the load events have run
        assert "Gérer" not in page.inner_text("body")
        response = page.goto(url + "/gerer")
        assert response is not None and response.status == 403 and FORBIDDEN in page.inner_text("body")
        assert context.request.get(url + "/gerer/etat").status == 403
        context.close()
