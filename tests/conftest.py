"""Shared fixtures: fake embedder, tiny French corpus, settings in a tmp dir, no network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.embeddings import HashEmbeddings
from assistant.settings import Settings
from tests.builders import make_docx, make_html, make_pdf

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
# Every test leaves SIGINT as it found it (and the session starts from a terminal's SIGINT).
pytest_plugins = ["tests.sigint_guard", "tests.albert_fake"]


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to loopback servers they start, never to anything else."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        inet = self.family in (socket.AF_INET, socket.AF_INET6)
        if inet and isinstance(host, str) and not (host.startswith("127.") or host in ("::1", "localhost")):
            raise OSError(f"network access blocked in tests: {host}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def fake_embedder() -> HashEmbeddings:
    return HashEmbeddings(256)


PAGES = [
    "Le réseau des pionniers rassemble 350 catalyseurs territoriaux. Un catalyseur territorial a quatre "
    "missions : le dialogue territorial, l'expérimentation collective, l'accompagnement et l'animation d'un lieu.",
    "L'Agenda 2030 a été adopté en septembre 2015 par les 193 États membres de l'ONU. Il fixe 17 objectifs de "
    "développement durable et 169 cibles. L'ODD 17 porte sur les partenariats pour la réalisation des objectifs.",
    "Selon l'étude Jouer collectif en sortie de crise, 81 % des Français attendent que les collectivités, les "
    "entreprises et les associations agissent ensemble pour réduire les fragilités du territoire.",
]


def write_tiny_corpus(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    make_pdf(root / "guide-alliances.pdf", PAGES, title="Guide des alliances",
             headings=["Les catalyseurs territoriaux", "L'Agenda 2030", "Jouer collectif"])
    (root / "mooc.md").write_text(
        "# Le MOOC des alliances\n\n## Présentation\n\nLe MOOC « Les alliances qui changent les territoires » est "
        "proposé gratuitement sur Coursera par l'ESSEC et Le RAMEAU.\n\n## Les trois impacts\n\nUne alliance produit "
        "trois impacts : la performance, l'innovation et la confiance.\n",
        encoding="utf-8",
    )
    make_html(root / "observatoire.html", "L'Observatoire des territoires",
              "<h2>Missions</h2><p>L'Observatoire des territoires publie des indicateurs, des cartes et des "
              "rapports. Il fait partie de l'ANCT depuis le 1er janvier 2020.</p><ul><li>Indicateurs</li>"
              "<li>Cartes</li></ul>")
    make_docx(root / "lettre.docx", "Lettre aux nouveaux élus",
              [("Le collectif", "Le collectif Intérêt général réunit 23 organisations depuis 2014."),
               ("Le mandat", "Le mandat municipal dure 6 ans.")],
              table=[["Membre", "Type"], ["Comité 21", "Association"]])
    (root / "notes-latin1.txt").write_bytes(
        "Les élus découvrent la co-construction territoriale grâce à l'expérience des pionniers.".encode("cp1252")
    )
    return root


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_tiny_corpus(tmp_path / "corpus")


def test_settings(corpus_dir: Path, data_dir: Path, **overrides: object) -> Settings:
    """Settings for the fake embedder: small passages, and refusal floors suited to hashed vectors."""
    base = Settings(
        corpus_dir=corpus_dir,
        data_dir=data_dir,
        embedder="hash:256",
        embed_workers=1,  # in process: starting a pool for every small test costs seconds (tests ask for 2)
        chunk_words=60,
        chunk_overlap_words=10,
        pdf_timeout_s=30,
        relevance_floor=0.05,
        uncertain_floor=0.05,
        ocr=False,  # the OCR models take seconds to start: only tests/test_ocr.py turns it on
    )
    return base.with_overrides(**overrides)


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture
def settings(tmp_path: Path, tiny_corpus: Path) -> Iterator[Settings]:
    yield test_settings(tiny_corpus, tmp_path / "data")


@pytest.fixture(scope="session")
def shipped_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The shipped corpus indexed once per test session with the real default embedder (slow tests only)."""
    from assistant.answer import Assistant
    from ingest.index import run_ingest

    settings = Settings(corpus_dir=ROOT / "corpus", data_dir=tmp_path_factory.mktemp("shipped-index"))
    report = run_ingest(settings, progress=False)
    assert report.exit_code == 0 and report.failed == [], report
    yield Assistant(settings)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``hostile`` every test of the reliability suite's case index (tests/hostile/cases.py)."""
    from tests.hostile.cases import listed

    for item in items:
        if listed(item.nodeid):
            item.add_marker(pytest.mark.hostile)
