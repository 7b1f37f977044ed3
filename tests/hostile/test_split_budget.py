"""Splitting is part of a file's time budget (``ASSISTANT_PDF_TIMEOUT_S``, reading included): a file whose
splitting runs past it is refused with a French reason and nothing of it is indexed."""

from __future__ import annotations

import time
from typing import Any

import pytest
from langchain_core.documents import Document

from assistant import store
from assistant.settings import Settings
from ingest import index as index_module
from ingest import split as split_module
from ingest.index import run_ingest
from ingest.split import SplitTimeoutError, split_pages

pytestmark = pytest.mark.hostile


def test_splitting_past_the_deadline_is_refused() -> None:
    pages = [Document(page_content="Une phrase ordinaire de la page. " * 50, metadata={"page": 1})]
    assert split_pages(pages, {"doc_id": "d"}, deadline=time.monotonic() + 60, budget_s=60)
    with pytest.raises(SplitTimeoutError, match="délai par fichier dépassé \\(60 s"):
        split_pages(pages, {"doc_id": "d"}, deadline=time.monotonic() - 1, budget_s=60)


def test_a_file_whose_splitting_runs_out_of_time_fails_alone(settings: Settings, fake_embedder: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (settings.corpus_dir / "lent.md").write_text("# Lent\n\n" + "Un texte ordinaire à découper. " * 300,
                                                 encoding="utf-8")
    real = split_module.split_pages
    budgets: dict[str, float] = {}

    def timed_split(pages: list[Document], meta: dict[str, Any], **kwargs: Any) -> list[Document]:
        budgets[meta["source_path"]] = kwargs["deadline"] - time.monotonic()
        if meta["source_path"] != "lent.md":
            return real(pages, meta, **kwargs)
        with monkeypatch.context() as m:  # splitting this file « takes » an hour
            m.setattr(split_module, "_clock", lambda: time.monotonic() + 3600)
            return real(pages, meta, **kwargs)

    monkeypatch.setattr(index_module, "split_pages", timed_split)
    report = run_ingest(settings, embedder=fake_embedder, progress=False)
    assert [(f["path"], f["reason"].split(" :")[0]) for f in report.failed] == [("lent.md", "découpage interrompu")]
    assert "lent.md" not in report.indexed and len(report.indexed) == len(budgets) - 1
    # Every file gets the per-file budget, counted from the start of its reading.
    assert all(0 < left <= settings.pdf_timeout_s for left in budgets.values()), budgets
    generation = store.current_generation(settings.data_dir)
    assert generation is not None
    vectors = store.open_vectorstore(settings, generation, fake_embedder)
    assert "lent.md" not in {doc.metadata["source_path"] for _, doc, _ in store.iter_records(vectors.collection)}

