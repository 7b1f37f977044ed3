"""Sentence-by-sentence verification of a generated answer against its passages.

Small chat models write fluent French with invented figures and confident
citations (« fixé à 1 000 euros [1] »). Nothing they write reaches the user
unless it passes every rule below, checked sentence by sentence:

1. it cites at least one source (``[n]``); headings, greetings and « voici la
   réponse : » have no citation and are dropped too — the simplest safe rule;
2. every ``[n]`` is one of the numbered passages (1-based, in the order given);
3. it is not itself an instruction (« ignore les instructions… »), and it does
   not echo words that the passages only contain inside an instruction aimed at
   an assistant (the canary rule, see :func:`is_instruction`);
4. every figure (amount, percentage, date, year, ordinal, number in words) is in
   the cited passages, with its unit: « 1 000 euros » is not backed by
   « 1 000 habitants » (page numbers and titles of the cited passages count);
5. every quotation in « … » is verbatim in a cited passage (spaces, apostrophes
   and dashes normalised; « […] » / « … » may mark a cut; the first letter's case
   and the final punctuation may differ);
6. at least half of its content words (stemmed) are in the cited passages, and a
   cited passage that shares nothing with the sentence loses its marker.

Passage sentences that look like instructions are never evidence: a figure or a
quote found only there does not count.

A sentence that says the passages do not answer (« Je n'ai pas trouvé… ») is
dropped like any uncited sentence but sets ``Verified.abstained`` so the caller
can show its own refusal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from assistant.citations import (
    Figure,
    cited_numbers,
    figures_in,
    normalise_for_match,
    quotes_in,
    rewrite_citations,
    strip_citations,
)
from assistant.lexical import analyze
from assistant.schema import Citation, DroppedSentence, Passage
from assistant.sentences import sentence_spans, split_sentences
from assistant.text import fold

__all__ = [
    "MIN_SUPPORT",
    "Verified",
    "is_abstention",
    "is_instruction",
    "verify_answer",
    "verify_sentence",
]

# Share of a sentence's content words that must be found in the cited passages.
MIN_SUPPORT = 0.5

REASON_NO_CITATION = "aucune source citée"
REASON_UNKNOWN_SOURCE = "source {refs} inexistante"
REASON_INSTRUCTION = "reprend une consigne trouvée dans un document, pas une information"
REASON_FIGURE = "chiffre absent de la source : {figures}"
REASON_QUOTE = "citation modifiée : « {quote} »"
REASON_UNSUPPORTED = "contenu absent de la source citée"
REASON_EMPTY = "aucune information vérifiable"
REASON_ABSTENTION = "le modèle indique ne pas avoir trouvé la réponse dans les sources"


@dataclass(frozen=True, kw_only=True)
class Verified:
    """What survives verification: the kept text, its citations and the dropped sentences."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    dropped: list[DroppedSentence] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    abstained: bool = False


# -- instructions hidden in documents ---------------------------------------------------------

def _fold(text: str) -> str:
    # Spaces, apostrophes and dashes unified first: the instruction patterns are written with the plain ones.
    return fold(normalise_for_match(text))


# Where an imperative can stand: start of text or clause, after a quote, or after « et », « puis »…
_CLAUSE = r"(?:^|[.:;,!?«\"(\[]\s*|\b(?:et|puis|alors|maintenant|desormais|ensuite|donc)\s+)"
_INSTRUCTION_PATTERNS = [
    # « Ignore les instructions précédentes », « ne tenez pas compte des consignes ».
    _CLAUSE + r"(?:ignore[rsz]?|oublie[rsz]?|ne\s+(?:tiens|tenez)\s+(?:plus\s+)?(?:pas\s+)?compte|"
    r"fais\s+abstraction|faites\s+abstraction|disregard|forget)\b[^.!?]{0,80}"
    r"\b(?:instructions?|consignes?|regles?|directives?|indications?|messages?|ce\s+qui\s+precede|prompt|"
    r"previous|above|everything)",
    # Words that only make sense to a chat model.
    r"\b(?:instructions?|consignes?)\s+(?:precedentes?|ci-dessus|anterieures?|initiales?|du\s+systeme|systeme)\b",
    r"\b(?:system\s+prompt|prompt\s+(?:systeme|system)|invite\s+systeme|previous\s+instructions|"
    r"ignore\s+(?:all|any)\s+(?:previous|prior))\b",
    # Addressed to an assistant.
    r"\b(?:si\s+)?tu\s+es\s+(?:un\s+|une\s+|le\s+|la\s+|l')?"
    r"(?:assistant|ia|intelligence\s+artificielle|modele|chatbot|agent\s+conversationnel|llm|robot)\b",
    # (« en tant qu'assistant social » is a job: only unambiguous words with « vous ».)
    r"\b(?:(?:si\s+)?vous\s+etes|en\s+tant\s+qu['\s]?)\s*(?:un\s+|une\s+)?"
    r"(?:ia|intelligence\s+artificielle|modele\s+de\s+langage|chatbot|agent\s+conversationnel|llm)\b",
    r"(?:^|[.:;!?]\s*)(?:cher\s+|chere\s+)?(?:assistant|ia|llm|chatbot|gpt|modele\s+de\s+langage|robot)\s*[:,]",
    # Second-person singular imperatives a guide for elected officials does not use.
    _CLAUSE + r"(?:reponds|ecris|dis|affiche|imprime|reecris|recopie|revele|obeis)(?:-moi)?\b",
    r"\btu\s+(?:dois|devras|vas)\s+(?:repondre|ignorer|ecrire|dire|afficher|toujours|uniquement|imperativement)\b",
    r"\b(?:repondez|ecrivez|affichez)\s+(?:uniquement|seulement|exactement|simplement)\b",
]
_INSTRUCTION = re.compile("|".join(f"(?:{p})" for p in _INSTRUCTION_PATTERNS))
# The vocabulary of the instructions themselves: not what an echo check should look for.
_INSTRUCTION_VOCABULARY = frozenset(
    analyze(
        "ignore ignorer ignorez oublie oublier oubliez instruction instructions consigne consignes précédentes "
        "précédent réponds répondre répondez écris écrire dis dire affiche afficher tiens tenez compte "
        "système prompt assistant uniquement seulement toujours désormais maintenant message messages "
        "règle règles directive directives"
    )
)
# Words a summary adds around the facts (« selon le guide, … »): not evidence either way.
_FRAME_WORDS = frozenset(
    analyze(
        "selon guide document documents passage passages source sources extrait texte ressource ressources "
        "indique indiquent précise précisent explique expliquent mentionne mentionnent souligne rappelle "
        "affirme note notamment ainsi également aussi donc page"
    )
)
_ABSTENTION = re.compile(
    r"\b(?:je\s+n['e]\s*ai\s+pas\s+trouve|je\s+ne\s+trouve\s+pas|aucune\s+information|"
    r"(?:les\s+)?(?:passages?|documents?|sources?|extraits?|ressources?)\s+(?:fournis\s+|disponibles\s+)?"
    r"ne\s+(?:contiennent|contient|mentionnent|mentionne|precisent|precise|disent|dit|permettent)\s+pas)"
)


def is_instruction(sentence: str) -> bool:
    """True for a sentence that addresses a chat model (« ignore les instructions… », « réponds X »)."""
    return bool(_INSTRUCTION.search(_fold(sentence)))


def is_abstention(sentence: str) -> bool:
    """True for « Je n'ai pas trouvé… », « les passages ne précisent pas… »."""
    return bool(_ABSTENTION.search(_fold(sentence)))


# -- passages, analysed once ------------------------------------------------------------------

@dataclass(frozen=True)
class _Unit:
    text: str  # verbatim, stripped
    match: str  # normalise_for_match(text)
    terms: frozenset[str]
    figure_keys: frozenset[str]


@dataclass(frozen=True)
class _Evidence:
    units: tuple[_Unit, ...]  # sentences that are not instructions
    terms: frozenset[str]  # of the evidence sentences and the title
    figure_keys: frozenset[str]  # keys and bare values, incl. title and page
    match_texts: tuple[str, ...]  # normalised evidence text and title, for quotes
    instruction_terms: frozenset[str]  # terms of the instruction sentences


def _figure_keys(figures: Iterable[Figure]) -> frozenset[str]:
    keys: set[str] = set()
    for f in figures:
        keys |= f.keys | f.bare
    return frozenset(keys)


@lru_cache(maxsize=512)
def _evidence(text: str, title: str, section: str, pages: tuple[str, ...]) -> _Evidence:
    units: list[_Unit] = []
    instruction_terms: set[str] = set()
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        if is_instruction(sentence):
            instruction_terms.update(analyze(sentence))
            continue
        units.append(
            _Unit(sentence, normalise_for_match(sentence), frozenset(analyze(sentence)),
                  _figure_keys(figures_in(sentence)))
        )
    header = f"{title}\n{section}"
    terms = set(analyze(header))
    keys = set(_figure_keys(figures_in(header))) | {p for p in pages if p}
    for unit in units:
        terms |= unit.terms
        keys |= unit.figure_keys
    evidence_text = normalise_for_match(" ".join(u.text for u in units))
    return _Evidence(tuple(units), frozenset(terms), frozenset(keys),
                     (evidence_text, normalise_for_match(title)), frozenset(instruction_terms))


def _passage_evidence(p: Passage) -> _Evidence:
    return _evidence(p.text, p.title, p.section, (str(p.page), p.page_label))


# -- the rules --------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-–—•*▪●◦]|\d{1,2}[.)])\s+")
_ELLIPSIS = re.compile(r"\s*(?:\[\s*(?:…|\.\.\.)\s*\]|\(\s*(?:…|\.\.\.)\s*\)|…|\.\.\.)\s*")


def _quote_found(quote: str, haystacks: Sequence[str]) -> bool:
    """Verbatim (after normalisation) in one haystack; « […] » splits it into pieces found in order."""
    pieces = [p.strip(" ,;:.!?") for p in _ELLIPSIS.split(normalise_for_match(quote))]
    pieces = [p for p in pieces if p]
    if not pieces:
        return True
    for hay in haystacks:
        pos = 0
        for i, piece in enumerate(pieces):
            found = hay.find(piece, pos)
            if found == -1 and i == 0 and piece[:1].isalpha():
                # « il fixe… » quoting « Il fixe… »: only the first letter's case may change.
                swapped = piece[0].swapcase() + piece[1:]
                found = hay.find(swapped, pos)
                piece = swapped
            if found == -1:
                break
            pos = found + len(piece)
        else:
            return True
    return False


def _best_unit(evidence: _Evidence, terms: set[str], keys: set[str], quotes: Sequence[str]) -> str:
    def score(unit: _Unit) -> tuple[int, int, int]:
        quoted = sum(1 for q in quotes if _quote_found(q, [unit.match]))
        return quoted, len(keys & unit.figure_keys), len(terms & unit.terms)

    if not evidence.units:
        return ""
    return max(evidence.units, key=score).text


def verify_sentence(
    sentence: str, passages: Sequence[Passage]
) -> tuple[str, list[Citation], DroppedSentence | None]:
    """One sentence → (kept text or "", its citations, the drop record or None)."""
    sentence = sentence.strip()

    def drop(reason: str) -> tuple[str, list[Citation], DroppedSentence]:
        return "", [], DroppedSentence(text=sentence, reason=reason)

    numbers = cited_numbers(sentence)
    if not numbers:
        return drop(REASON_ABSTENTION if is_abstention(sentence) else REASON_NO_CITATION)
    unknown = [n for n in numbers if not 1 <= n <= len(passages)]
    if unknown:
        return drop(REASON_UNKNOWN_SOURCE.format(refs=", ".join(f"[{n}]" for n in unknown)))

    body = _BULLET.sub("", strip_citations(sentence))
    if is_instruction(body):
        return drop(REASON_INSTRUCTION)
    terms = set(analyze(body))

    # Words that every passage holds only inside an instruction are an echo of it.
    all_evidence = [_passage_evidence(p) for p in passages]
    instruction_only: set[str] = set()
    for ev in all_evidence:
        instruction_only |= ev.instruction_terms
    for ev in all_evidence:
        instruction_only -= ev.terms
    if terms & (instruction_only - _INSTRUCTION_VOCABULARY):
        return drop(REASON_INSTRUCTION)

    cited = {n: all_evidence[n - 1] for n in numbers}
    allowed_keys: set[str] = set().union(*(ev.figure_keys for ev in cited.values()))
    missing = [f.text for f in figures_in(body) if not f.keys & allowed_keys]
    if missing:
        return drop(REASON_FIGURE.format(figures=", ".join(dict.fromkeys(missing))))

    quotes = quotes_in(body)
    haystacks = [h for ev in cited.values() for h in ev.match_texts if h]
    for quote in quotes:
        if not _quote_found(quote, haystacks):
            return drop(REASON_QUOTE.format(quote=quote))

    content = terms - _FRAME_WORDS
    if not content:
        return drop(REASON_EMPTY)
    sentence_keys = {k for f in figures_in(body) for k in f.keys}
    supporting = [
        n for n, ev in cited.items()
        if content & ev.terms
        or sentence_keys & ev.figure_keys
        or any(_quote_found(q, [h for h in ev.match_texts if h]) for q in quotes)
    ]
    if not supporting:
        return drop(REASON_UNSUPPORTED)
    known: set[str] = set().union(*(cited[n].terms for n in supporting))
    if len(content & known) / len(content) < MIN_SUPPORT:
        return drop(REASON_UNSUPPORTED)

    citations = [
        Citation(n=n, passage=passages[n - 1], quote=_best_unit(cited[n], content, sentence_keys, quotes))
        for n in supporting
    ]
    return rewrite_citations(sentence, supporting), citations, None


def verify_answer(text: str, passages: Sequence[Passage]) -> Verified:
    """Split ``text`` into sentences and keep only those that pass every rule (see the module doc)."""
    kept: list[str] = []
    citations: list[Citation] = []
    seen: set[tuple[int, str]] = set()
    dropped: list[DroppedSentence] = []
    abstained = False
    for sentence in split_sentences(text):
        kept_text, sentence_citations, record = verify_sentence(sentence, passages)
        if record is not None:
            dropped.append(record)
            abstained = abstained or record.reason == REASON_ABSTENTION
            continue
        kept.append(kept_text)
        for c in sentence_citations:
            if (c.n, c.quote) not in seen:
                seen.add((c.n, c.quote))
                citations.append(c)
    return Verified(text=_join(kept), citations=citations, dropped=dropped, kept=kept, abstained=abstained and not kept)


def _join(sentences: Sequence[str]) -> str:
    out = ""
    for i, s in enumerate(sentences):
        if i:
            bullet = _BULLET.match(s) or _BULLET.match(sentences[i - 1])
            out += "\n" if bullet else " "
        out += s
    return out
