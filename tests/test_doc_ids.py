"""Document ids: derived ids never collide, manifest ids are kept, and a citation opens its own file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import store
from assistant.retrieve import Filters, Retriever
from assistant.settings import Settings
from evals.sets import realdocs
from ingest.ids import DocIdError, assign_doc_ids, slug
from ingest.index import IngestConfigError, run_ingest
from ingest.manifest import ManifestError, parse_manifest
from tests.conftest import test_settings
from webui.documents import DocumentLibrary


def test_slug_lower_case_spaces_and_transliterated_accents() -> None:
    assert slug("Projet commun.md") == "projet-commun"
    assert slug("été.md") == "ete"
    assert slug("t.md") == "t"
    assert slug("Œuvre_Cœur Noël.pdf") == "oeuvre-coeur-noel"
    assert slug("dossier/Sous Dossier/Fiche n°3.docx") == "dossier-sous-dossier-fiche-n3"
    assert slug("???.md") == "document"


def test_real_doc_and_shipped_ids_do_not_change() -> None:
    expected = {"AMORCE.pdf": "amorce", "CEREMA.pdf": "cerema", "FNCCR.pdf": "fnccr",
                "FCU_guide_exploitants.pdf": "fcu-guide-exploitants",
                "guide_raccordement_des_coproprietes.pdf": "guide-raccordement-des-coproprietes",
                "se_raccorder_reseau_chaleur.pdf": "se-raccorder-reseau-chaleur"}
    assert {name: realdocs.doc_id(name) for name in expected} == expected
    assert assign_doc_ids(expected, {}) == expected


def test_colliding_ids_get_a_path_hash_whatever_the_listing_order() -> None:
    rels = ["Projet commun.md", "projet-commun.md", "été.md", "t.md", "ete.md", "seul.md"]
    ids = assign_doc_ids(rels, {})
    assert ids == assign_doc_ids(list(reversed(rels)), {})
    assert len(set(ids.values())) == len(rels)
    assert ids["seul.md"] == "seul" and ids["t.md"] == "t"  # only colliding files get a suffix
    assert ids["Projet commun.md"].startswith("projet-commun-") and ids["projet-commun.md"].startswith("projet-commun-")
    assert ids["été.md"].startswith("ete-") and ids["ete.md"].startswith("ete-")
    # A suffix is a function of the path alone: the same pair in another corpus gets the same ids.
    assert assign_doc_ids(["Projet commun.md", "projet-commun.md"], {})["Projet commun.md"] == ids["Projet commun.md"]


def test_manifest_id_equal_to_a_derived_id_is_refused_naming_both_files() -> None:
    with pytest.raises(DocIdError) as info:
        assign_doc_ids(["guide.md", "Ifgp.md"], {"guide.md": "ifgp"})
    assert "guide.md" in str(info.value) and "Ifgp.md" in str(info.value)
    assert assign_doc_ids(["guide.md", "autre.md"], {"guide.md": "ifgp"}) == {"guide.md": "ifgp", "autre.md": "autre"}


def test_two_manifest_entries_with_one_id_are_refused_naming_both_files() -> None:
    def doc(file: str) -> dict[str, object]:
        return {"id": "fiche", "file": file, "title": "Fiche", "publisher": "Projet", "url": "", "edition": "",
                "licence": "CC BY 4.0", "themes": [], "covers": []}

    with pytest.raises(ManifestError) as info:
        parse_manifest({"documents": [doc("a.md"), doc("b.md")]})
    assert "« fiche »" in str(info.value) and "« a.md »" in str(info.value) and "« b.md »" in str(info.value)


def _write(corpus: Path, name: str, text: str) -> None:
    (corpus / name).write_text(f"# {name}\n\n{text}\n", encoding="utf-8")


@pytest.fixture
def clashing(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _write(corpus, "Projet commun.md", "Le projet commun des majuscules compte 41 communes partenaires.")
    _write(corpus, "projet-commun.md", "Le projet commun des minuscules réunit 17 associations locales.")
    _write(corpus, "été.md", "Le festival d'été accueille 900 bénévoles chaque année.")
    _write(corpus, "t.md", "Le document t décrit 12 tramways municipaux.")
    return test_settings(corpus, tmp_path / "data")


def test_a_collision_pair_is_indexed_end_to_end_and_each_citation_opens_its_file(
    clashing: Settings, fake_embedder  # type: ignore[no-untyped-def]
) -> None:
    report = run_ingest(clashing, embedder=fake_embedder, progress=False)
    assert report.failed == [] and len(report.indexed) == 4
    retriever = Retriever(clashing, embedder=fake_embedder)
    documents = retriever.catalog().documents
    ids = {rel: entry.doc_id for rel, entry in documents.items()}
    assert len(set(ids.values())) == 4 and ids["été.md"] == "ete" and ids["t.md"] == "t"
    library = DocumentLibrary(clashing, retriever.catalog)
    for rel, marker in (("Projet commun.md", "41 communes"), ("projet-commun.md", "17 associations"),
                        ("été.md", "900 bénévoles"), ("t.md", "12 tramways")):
        passages = retriever.search(marker, filters=Filters(doc_ids=(ids[rel],))).passages
        assert passages and all(p.source_path == rel for p in passages)
        assert any(marker in p.text for p in passages)
        served = library.find(passages[0].doc_id)
        assert served is not None and served.path == (clashing.corpus_dir / rel).resolve()
        assert marker in served.path.read_text(encoding="utf-8")

    # Stable across runs: nothing changes, nothing is re-indexed, the same ids come back.
    again = run_ingest(clashing, embedder=fake_embedder, progress=False)
    assert again.indexed == [] and len(again.unchanged) == 4
    assert {rel: e.doc_id for rel, e in Retriever(clashing, embedder=fake_embedder).catalog().documents.items()} == ids


def test_a_file_that_starts_colliding_is_reindexed_under_its_new_id(clashing: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    run_ingest(clashing, embedder=fake_embedder, progress=False)
    _write(clashing.corpus_dir, "T.md", "Un autre document T parle de 8 téléphériques.")
    report = run_ingest(clashing, embedder=fake_embedder, progress=False)
    assert sorted(report.indexed) == ["T.md", "t.md"]
    gen = store.current_generation(clashing.data_dir)
    assert gen is not None
    catalog = store.read_catalog(gen)
    ids = [entry.doc_id for entry in catalog.documents.values()]
    assert len(set(ids)) == len(ids) == 5 and "t" not in ids
    passage_docs = json.loads(gen.passage_docs_path.read_text(encoding="utf-8"))
    assert set(passage_docs) == set(ids)  # no passage left under the old id


def test_ingest_refuses_a_manifest_id_taken_by_another_file(clashing: Settings, fake_embedder) -> None:  # type: ignore[no-untyped-def]
    (clashing.corpus_dir / "sources.yaml").write_text(json.dumps({"documents": [
        {"id": "t", "file": "été.md", "title": "Été", "publisher": "Projet", "url": "", "edition": "",
         "licence": "CC BY 4.0", "themes": [], "covers": []}]}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(IngestConfigError) as info:
        run_ingest(clashing, embedder=fake_embedder, progress=False)
    assert "« été.md »" in str(info.value) and "« t.md »" in str(info.value)
