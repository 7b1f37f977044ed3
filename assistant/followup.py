"""Follow-up questions → standalone questions, without a language model.

«où trouver ce kit ?» after «que contient le kit co-construction territoriale ?»
becomes «où trouver ce kit ? (kit co-construction territoriale)»: the previous
question's key terms are carried so retrieval knows what «ce kit» is. With an
LLM configured, :func:`assistant.llm.rewrite_question` is used instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

Message = Mapping[str, str]

_FOLLOW_UP_START = re.compile(
    r"^\s*(et|mais|aussi|alors|donc|ou|puis|pour|dans ce cas|et si|et pour|et dans|et en|et quand|et comment|"
    r"et où|et qui|et combien)\b",
    re.IGNORECASE,
)
_DEICTIC = re.compile(
    r"\b(ce|cet|cette|ces|ça|cela|celui-ci|celle-ci|ceux-ci|le même|la même|les mêmes|en|y|il|elle|ils|elles|"
    r"leur|leurs|son|sa|ses)\b",
    re.IGNORECASE,
)
_STOP = set(
    [
        "le",
        "la",
        "les",
        "un",
        "une",
        "des",
        "de",
        "du",
        "d",
        "l",
        "au",
        "aux",
        "et",
        "ou",
        "en",
        "à",
        "a",
        "dans",
        "pour",
        "par",
        "sur",
        "avec",
        "sans",
        "que",
        "qui",
        "quoi",
        "quel",
        "quelle",
        "quels",
        "quelles",
        "comment",
        "combien",
        "où",
        "quand",
        "pourquoi",
        "est",
        "sont",
        "c",
        "ce",
        "cet",
        "cette",
        "ces",
        "il",
        "elle",
        "ils",
        "elles",
        "on",
        "nous",
        "vous",
        "je",
        "j",
        "me",
        "mon",
        "ma",
        "mes",
        "notre",
        "nos",
        "votre",
        "vos",
        "leur",
        "leurs",
        "son",
        "sa",
        "ses",
        "se",
        "s",
        "y",
        "ne",
        "pas",
        "plus",
        "moins",
        "très",
        "tout",
        "tous",
        "toute",
        "toutes",
        "faire",
        "fait",
        "peut",
        "peuvent",
        "doit",
        "dois",
        "quoi",
        "qu",
        "c'est",
        "existe-t-il",
        "existe",
        "t-il-t",
        "est-ce",
        "estce",
        "a-t-il",
        "a-t-elle",
        "y-a-t-il",
    ]
)
_WORD = re.compile(r"[\wÀ-ÿ'-]+")


def user_questions(history: Sequence[Message]) -> list[str]:
    return [m["content"] for m in history if m.get("role") == "user" and m.get("content", "").strip()]


_PRONOUN_START = re.compile(r"^\s*(il|elle|ils|elles|ce|cet|cette|ces|ça|cela|celui-ci|celle-ci)\b", re.IGNORECASE)


def looks_like_follow_up(question: str) -> bool:
    words = _WORD.findall(question)
    return bool(_FOLLOW_UP_START.match(question) or _PRONOUN_START.match(question)) or (
        len(words) <= 8 and bool(_DEICTIC.search(question))
    )


def key_terms(text: str, limit: int = 8) -> list[str]:
    terms: list[str] = []
    for word in _WORD.findall(text):
        w = word.strip("'-")
        if "'" in w:
            w = w.split("'", 1)[1]
        if len(w) < 3 or w.lower() in _STOP or w.lower() in (t.lower() for t in terms):
            continue
        terms.append(w)
    return terms[:limit]


def rewrite_without_llm(question: str, history: Sequence[Message]) -> str:
    """Carry the previous question's key terms when the new one depends on it."""
    previous = user_questions(history)
    if not previous or not looks_like_follow_up(question):
        return question
    carried = [t for t in key_terms(previous[-1]) if t.lower() not in question.lower()]
    if not carried:
        return question
    return f"{question.strip()} ({' '.join(carried)})"
