"""Accent folding, the one definition every matcher shares (search, glossary, quotes, verification).

Matching is exact on the folded forms, so two spellings of the same operation would let one side of a
comparison drift from the other; the modules with a variant wrap these functions and say why.
"""

from __future__ import annotations

import unicodedata


def strip_accents(text: str) -> str:
    """Accents removed, case kept: « Élu » → « Elu » (compatibility forms are decomposed too: « ﬁ » → « fi »)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Lower case without accents: « Développement » → « developpement »."""
    return strip_accents(text.lower())
