"""Query expansion with the acronyms of the corpus (``corpus/glossary.yaml``).

The file lists terms::

    terms:
      - acronym: ODD
        expansion: objectifs de développement durable
        aliases: [Objectifs mondiaux]

A question that names a term by any of its forms gets the term's missing
canonical forms (acronym and expansion) appended: « les ODD » gains
« objectifs de développement durable », and « objectif de développement
durable » gains « ODD ». Aliases trigger a term but are not appended (they are
variants, and a long query drifts away from its meaning for dense search).

Matching rules:

- an acronym matches as a whole word: « ESS » is not found in « ESSEC » or
  « caresse », « ODD » not in « oddité »; a number may follow (« ODD17 »), and
  dotted spellings count (« M.E.D.O.C. » ≈ « MEDOC »);
- it matches as written in the glossary or in capitals (« Adasi », « ADASI »);
  in any other case (« odd », « Rse ») only when it has 3 or 4 letters and is
  not a common French word: « face » is not FACE, « impact » is not IMPACT;
- phrases match case- and accent-insensitively, singular or plural, with
  « de / du / des / d' » interchangeable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from assistant.errors import AssistantError
from assistant.text import fold


class GlossaryError(AssistantError, ValueError):
    """The glossary file cannot be used (message in French)."""


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Short French words (folded) that could also be acronyms: only the acronym's own spelling counts.
_FRENCH_WORDS = _word_set(
    """
    air ame ami ans arc art bas bel bio bon bus but cap car cas cle col cou cri cru des don dur eau ecu est ete
    fer fin foi gaz gel ile jeu jus lac les lit loi lot mai mal mer mil mot mur net nez nom non nul oui par pas
    peu pic pin plu pot pro pur qui rai roi rue sac sel sol son sud sur tas tel toi ton tri une val ver vie vin
    vol vos zen acte aide aise avec base bien bois cite clef code cote cure dans date deux donc dont elle etat
    face fait faut fete fois fond fort gare idee jour lien lieu loin lune mais mode mois mots nord note page
    pain pair part pays plan plus pont port pour prix rare role rose sage sans sens site soin sous taux tete
    tour tout type unir vers voie vote zone
    """
)

_WORD = re.compile(r"[^\W_]+")
_ELISION = re.compile(r"\b(?:[cdjlmnst]|qu)['’ʼ]")
_DE = frozenset({"de", "du", "des", "d"})
_ACRONYM = re.compile(r"(?:[A-Z0-9]\.?){2,}")


def _norm_words(text: str) -> list[str]:
    """Words for phrase matching: folded, « d' » → « de », plural -s/-x dropped."""
    out = []
    for w in _WORD.findall(fold(text).replace("’", "'")):
        if w in _DE:
            out.append("de")
        elif len(w) > 3 and w[-1] in "sx":
            out.append(w[:-1])
        else:
            out.append(w)
    return out


def _contains(words: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return n > 0 and any(words[i : i + n] == phrase for i in range(len(words) - n + 1))


def _is_acronym(form: str) -> bool:
    return bool(_ACRONYM.fullmatch(form)) and sum(c.isalpha() for c in form) >= 2


def _acronym_pattern(form: str) -> re.Pattern[str]:
    letters = [c for c in form if c != "."]

    def body(chars: list[str]) -> str:
        return r"\.?".join(re.escape(c) for c in chars) + r"\.?"

    # As written (« Adasi », « M.E.D.O.C. ») or in capitals (« ADASI »); in any case only for a short
    # acronym that is no French word: « odd », « rse » count, « face », « impact », « phare » do not.
    spellings = [body(letters), body([c.upper() for c in letters])]
    plain = "".join(letters).lower()
    if 3 <= len(plain) <= 4 and fold(plain) not in _FRENCH_WORDS:
        spellings.append(f"(?i:{body(letters)})")
    # Not glued to a letter or digit before, nor to a letter after (« ODD17 » is still ODD).
    return re.compile(rf"(?<![^\W_])(?:{'|'.join(spellings)})(?![^\W\d_])")


@dataclass(frozen=True)
class Term:
    acronym: str
    expansion: str
    aliases: tuple[str, ...] = ()

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.acronym, self.expansion, *self.aliases)


class _Matcher:
    """Finds one form of a term in a query."""

    def __init__(self, form: str, *, acronym: bool = False) -> None:
        self.form = form
        is_acronym = _is_acronym(form) or (acronym and " " not in form)
        self.pattern = _acronym_pattern(form) if is_acronym else None
        self.words = _norm_words(form)

    def found_in(self, query: str, query_words: list[str]) -> bool:
        if self.pattern is not None:
            return bool(self.pattern.search(query))
        return _contains(query_words, self.words)


class Glossary:
    """Acronyms and their expansions, used to enrich search queries."""

    def __init__(self, terms: Iterable[Term] = ()) -> None:
        self.terms: tuple[Term, ...] = tuple(terms)
        self._matchers = [[_Matcher(f, acronym=(n == 0)) for n, f in enumerate(t.forms)] for t in self.terms]

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def load(cls, path: Path) -> Glossary:
        """Read a glossary file; a missing file gives an empty glossary."""
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as exc:
            raise GlossaryError(f"Glossaire illisible ({path}) : {exc}") from exc
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise GlossaryError(f"Glossaire invalide ({path}) : YAML mal formé — {exc}") from exc
        return cls.from_data(data, source=str(path))

    @classmethod
    def from_data(cls, data: Any, *, source: str = "glossaire") -> Glossary:
        """Build from the parsed YAML (``{"terms": [...]}``); checks every entry."""
        if data is None:
            return cls()
        if not isinstance(data, dict) or not isinstance(data.get("terms", []), list):
            raise GlossaryError(f"Glossaire invalide ({source}) : une liste « terms: » est attendue.")
        terms = []
        for n, entry in enumerate(data.get("terms") or [], start=1):
            where = f"Glossaire invalide ({source}), entrée n° {n}"
            if not isinstance(entry, dict):
                raise GlossaryError(f"{where} : « acronym » et « expansion » sont attendus.")
            acronym, expansion = entry.get("acronym"), entry.get("expansion")
            for key, value in (("acronym", acronym), ("expansion", expansion)):
                if not isinstance(value, str | int) or not str(value).strip():
                    raise GlossaryError(f"{where} : le champ « {key} » manque ou est vide.")
            aliases = entry.get("aliases") or []
            if not isinstance(aliases, list) or not all(isinstance(a, str | int) for a in aliases):
                raise GlossaryError(f"{where} ({acronym}) : « aliases » doit être une liste de textes.")
            terms.append(
                Term(
                    str(acronym).strip(),
                    str(expansion).strip(),
                    tuple(s for a in aliases if (s := str(a).strip())),
                )
            )
        return cls(terms)

    def expansions(self, query: str) -> list[str]:
        """Canonical forms of the terms named in ``query`` that the query does not contain yet."""
        words = _norm_words(query)
        out: list[str] = []
        for term, matchers in zip(self.terms, self._matchers, strict=True):
            found = [m.found_in(query, words) for m in matchers]
            if not any(found):
                continue
            for form, present in zip((term.acronym, term.expansion), found[:2], strict=True):
                if not present and form not in out:
                    out.append(form)
        return out

    def expand(self, query: str) -> str:
        """``query`` followed by its missing forms (unchanged when there are none)."""
        extra = self.expansions(query)
        return f"{query} {' '.join(extra)}" if extra else query
