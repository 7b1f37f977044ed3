"""French BM25: the analyzer and the saved index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.lexical import LexicalIndex, LexicalIndexError, analyze

PASSAGES = {
    "odd": "Les objectifs de développement durable (ODD) fixent 17 objectifs pour 2030.",
    "partenariats": "Les partenariats entre collectivités et entreprises se multiplient dans les territoires.",
    "ess": "L'économie sociale et solidaire emploie 2,4 millions de salariés en France.",
    "coconstruction": "La co-construction territoriale associe les élus, les associations et les habitants.",
    "catalyseurs": "Le réseau compte 350 catalyseurs territoriaux formés depuis 2015.",
}


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(list(PASSAGES), list(PASSAGES.values()))


# --- analyzer ---------------------------------------------------------------


def test_accents_and_case_do_not_matter() -> None:
    assert analyze("Collectivités ÉLUES développement") == analyze("collectivites elues developpement")


def test_plural_and_singular_meet() -> None:
    assert analyze("partenariats") == analyze("partenariat")
    assert analyze("les élus") == analyze("un élu")
    assert analyze("territoriales") == analyze("territorial")


def test_elisions_are_dropped() -> None:
    assert analyze("l'alliance d'entreprises qu'ils jusqu'au") == analyze("alliance entreprises")
    assert analyze("l’économie") == analyze("économie")  # typographic apostrophe


def test_stop_words_and_question_words_are_dropped() -> None:
    assert analyze("Quel est le rôle des élus dans la commune ?") == analyze("rôle élus commune")
    assert analyze("Combien y a-t-il de catalyseurs ?") == analyze("catalyseurs")
    assert analyze("Qu'est-ce que c'est ?") == []


def test_numbers_are_kept_whole() -> None:
    assert analyze("l'Agenda 2030 et l'ODD 17") == [*analyze("Agenda"), "2030", *analyze("ODD"), "17"]
    assert "1000" in analyze("1 000 élus")  # space as thousands separator
    assert "1000" in analyze("1\u202f000 élus")  # narrow no-break space
    assert "4.5" in analyze("4,5 partenariats")
    assert analyze("en 2015 350 catalyseurs")[:2] == ["2015", "350"]


def test_hyphenated_words_give_parts_and_glued_word() -> None:
    terms = analyze("co-construction")
    assert analyze("construction")[0] in terms
    assert set(analyze("coconstruction")) <= set(terms)


# --- index ------------------------------------------------------------------


def test_search_ranks_the_relevant_passage_first(index: LexicalIndex) -> None:
    assert index.search("Quels partenariats avec les entreprises ?", 3)[0][0] == "partenariats"
    assert index.search("combien de catalyseurs territoriaux", 3)[0][0] == "catalyseurs"
    assert index.search("coconstruction", 3)[0][0] == "coconstruction"
    assert index.search("objectifs 2030", 3)[0][0] == "odd"


def test_results_are_best_first_with_positive_scores(index: LexicalIndex) -> None:
    results = index.search("territoires territoriaux collectivités", 10)
    scores = [s for _, s in results]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    assert {i for i, _ in results} == {"partenariats", "coconstruction", "catalyseurs"}


def test_k_limits_the_results(index: LexicalIndex) -> None:
    assert len(index.search("territoires territoriaux collectivités", 2)) == 2
    assert index.search("territoires", 0) == []


def test_allowed_restricts_to_given_ids(index: LexicalIndex) -> None:
    query = "territoires territoriaux collectivités"
    results = index.search(query, 10, allowed={"catalyseurs", "odd", "unknown-id"})
    assert [i for i, _ in results] == ["catalyseurs"]
    assert index.search(query, 10, allowed=set()) == []
    # The scores of allowed passages are the unfiltered ones.
    unfiltered = dict(index.search(query, 10))
    assert results[0][1] == pytest.approx(unfiltered["catalyseurs"])


def test_empty_stop_word_only_and_unknown_queries(index: LexicalIndex) -> None:
    assert index.search("", 5) == []
    assert index.search("   ?! ", 5) == []
    assert index.search("le la les de des qui que quoi", 5) == []
    assert index.search("zygomatique", 5) == []


def test_unknown_share_counts_topic_words_only(index: LexicalIndex) -> None:
    # « je voudrais », « des gens » are how people ask; « zygomatique » is a topic the corpus lacks.
    assert index.unknown_share("je voudrais parler avec des gens des catalyseurs territoriaux") == 0.0
    assert index.unknown_share("les catalyseurs zygomatiques") == pytest.approx(0.5)
    # A verb in « -ent » is known when its stem is: « associent » ↔ « associe ».
    assert index.unknown_share("les élus associent les habitants") == 0.0
    # « assos » is a short form of a word the passages spell out; « ça » is how people talk.
    assert index.unknown_share("les assos, ça compte des catalyseurs ?") == 0.0


def test_save_load_round_trip(index: LexicalIndex, tmp_path: Path) -> None:
    folder = tmp_path / "bm25"
    index.save(folder)
    loaded = LexicalIndex.load(folder)
    assert loaded.ids == index.ids
    for query in ("partenariats entreprises", "ODD 2030", "élus habitants"):
        assert loaded.search(query, 5) == index.search(query, 5)


def test_save_into_existing_folder_overwrites(tmp_path: Path) -> None:
    LexicalIndex.build(["a"], ["ancien texte"]).save(tmp_path)
    LexicalIndex.build(["b", "c"], ["nouveau texte", "autre chose"]).save(tmp_path)
    loaded = LexicalIndex.load(tmp_path)
    assert loaded.ids == ["b", "c"]
    assert loaded.search("nouveau", 5)[0][0] == "b"


def test_empty_index(tmp_path: Path) -> None:
    empty = LexicalIndex.build([], [])
    assert empty.search("partenariats", 5) == []
    empty.save(tmp_path)
    assert LexicalIndex.load(tmp_path).search("partenariats", 5) == []


def test_passage_without_terms_is_indexed(tmp_path: Path) -> None:
    built = LexicalIndex.build(["vide", "plein"], ["… — !", "alliance territoriale"])
    assert built.search("alliance", 5) == [("plein", pytest.approx(built.search("alliance", 5)[0][1]))]
    built.save(tmp_path)
    assert LexicalIndex.load(tmp_path).ids == ["vide", "plein"]


def test_load_errors_are_french(tmp_path: Path) -> None:
    with pytest.raises(LexicalIndexError, match="introuvable"):
        LexicalIndex.load(tmp_path / "absent")
    LexicalIndex.build(["a"], ["texte"]).save(tmp_path)
    meta = tmp_path / "lexical.json"
    meta.write_text(json.dumps({"analyzer_version": -1, "ids": ["a"]}), encoding="utf-8")
    with pytest.raises(LexicalIndexError, match="autre version"):
        LexicalIndex.load(tmp_path)


def test_build_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        LexicalIndex.build(["a", "b"], ["un seul texte"])
    with pytest.raises(ValueError):
        LexicalIndex.build(["a", "a"], ["un", "deux"])
