"""Screenshots of the running app for the documentation (headless Chromium through Playwright).

    python app.py &                       # the shipped corpus, the real embedder
    python -m webui.screenshots --url http://127.0.0.1:7860/ --out docs/screenshots

Writes ``chat.png`` (a question, its answer and its source cards with the cited PDF page's preview),
``chat-390.png`` (the same on a 390 px wide phone, the first screen once the answer has arrived) and
``sources.png`` (the Sources tab: the documents, one page of passages, the passages retrieved and cited).
Needs Debian's ``chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--hide-scrollbars"]
QUESTION = "Où trouver le kit « co-construction territoriale » ?"


def take(url: str, out: Path, question: str = QUESTION, document: str = "co-construction") -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 1700},
                                       device_scale_factor=1).new_page()
            page.goto(url)
            page.wait_for_selector("#question textarea", timeout=60_000)
            page.fill("#question textarea", question)
            page.click("#envoyer")
            page.wait_for_selector("#conversation .sources", timeout=120_000)
            # Only the previews in view: those of folded source cards are lazy and never load.
            page.wait_for_function("() => [...document.querySelectorAll('#conversation p.apercu img')]"
                                   ".filter(img => img.checkVisibility()).every(img => img.complete)",
                                   timeout=60_000)
            # Show the question and the start of the answer.
            page.wait_for_timeout(1000)
            page.evaluate("""() => { for (const el of document.querySelectorAll('#conversation, #conversation *')) {
                if (el.scrollHeight > el.clientHeight + 4) { el.scrollTop = 0; } } }""")
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)
            chat = out / "chat.png"
            page.screenshot(path=str(chat), full_page=True)
            written.append(chat)

            phone = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844},
                                        device_scale_factor=1, is_mobile=True, has_touch=True).new_page()
            phone.goto(url)
            phone.wait_for_selector("#question textarea", timeout=60_000)
            phone.fill("#question textarea", question)
            phone.click("#envoyer")
            phone.wait_for_selector("#conversation .sources", timeout=120_000)
            phone.wait_for_timeout(1500)
            small = out / "chat-390.png"
            phone.screenshot(path=str(small))
            written.append(small)

            page.get_by_role("tab", name="Sources").click()
            page.wait_for_selector("table.catalogue", timeout=60_000)
            page.click("#document-choisi input")
            page.get_by_role("option").filter(has_text=document).first.click()
            page.wait_for_selector("ol.passages", timeout=60_000)
            page.click("#reponse-passee input")  # focusing the list reloads the past answers
            page.wait_for_timeout(1000)
            page.get_by_role("option").first.click()
            page.wait_for_selector("table.trace", timeout=60_000)
            page.mouse.move(0, 0)
            page.wait_for_timeout(500)
            sources = out / "sources.png"
            page.screenshot(path=str(sources), full_page=True)
            written.append(sources)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webui.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:7860/", help="adresse de l'application lancée")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="dossier des captures")
    parser.add_argument("--question", default=QUESTION, help="question posée pour la capture du chat")
    args = parser.parse_args(argv)
    for path in take(args.url, args.out, args.question):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
