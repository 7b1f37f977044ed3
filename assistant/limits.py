"""Bounds on what one request may cost: the question's length, the history window, the embedder's input.

One question is answered under locks shared by every user (the embedder runs one text at a time), so its
cost must not grow with what a client sends: a question longer than ``max_question_chars`` is refused, only
the last turns of a conversation are read (each message cut), and the embedder never receives more than it
usefully reads (see :mod:`assistant.embeddings`).
"""

from __future__ import annotations

import unicodedata

from assistant.errors import AssistantError


class QuestionError(AssistantError, ValueError):
    """The question cannot be asked as it is (message in French, shown to the user)."""


def validate_question(question: str | None, max_chars: int) -> str:
    """The question as it will be answered; :class:`QuestionError` when it is empty, has no word, or is
    longer than ``max_chars``."""
    # NUL and other control characters reach nothing useful (the index has none) and may break a log
    # line or a terminal; tabs and line breaks are only spacing.
    question = "".join(" " if ch in "\t\n\r" else ch for ch in (question or "")
                       if ch in "\t\n\r" or unicodedata.category(ch) != "Cc").strip()
    if not question:
        raise QuestionError("Veuillez saisir une question.")
    if not any(ch.isalpha() for ch in question):
        # Emoji or punctuation alone share no word with the corpus: any passage quoted would be unrelated.
        raise QuestionError("Votre question ne contient aucun mot : pouvez-vous la formuler avec des mots ?")
    if len(question) > max_chars:
        raise QuestionError(
            f"Votre question est trop longue ({len(question)} caractères ; "
            f"{max_chars} au maximum). Pouvez-vous la raccourcir ?"
        )
    return question


def clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, at a space when one is near the end; unchanged if short.

    A single word longer than the bound (a pasted hash, a run of letters) is cut in the middle.
    """
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return head[:space] if space >= max_chars * 0.8 else head
