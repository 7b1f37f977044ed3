"""Passages → quotable units: the spans an extractive answer may quote verbatim.

A unit is ``passage.text[start:end]``: one sentence, one line of a designed
brochure, or a few joined pieces that only make sense together. Designed PDF
brochures state most facts in lines without a final full stop (bullets,
label–value pairs, table rows), so a line is a unit when it *states* something
(a verb or a figure, and enough words), not only when it ends like a sentence.

Never quoted: Markdown headings, letter-spaced headings (« L ’ A BO NNE »),
bare page numbers, lines of a few words with neither verb nor figure, text
addressed to an assistant, a brochure's credits (« conception graphique … »),
a piece that starts inside a sentence (the first piece of a passage cut out of
the middle of a paragraph) and one that stops inside it (« … un DPE (Diagnostic
de », where a page or a column broke the sentence).

Joined: a sentence that leans on the previous one (« Il… », « Cette… ») with it,
when the previous one is a whole sentence; a sentence announcing a list with
« : » with its items; a figure alone on its line with the label line next to it
(«10 000» under «visiteurs uniques par mois»).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from assistant.schema import Passage
from assistant.sentences import sentence_spans
from assistant.verify import is_instruction

# Openings that refer back to the sentence before: quote them together.
_DEPENDENT = re.compile(
    r"^(il|elle|ils|elles|ce|cet|cette|ces|cela|ceci|celui|celle|ceux|celles|son|sa|ses|leur|leurs|"
    r"en effet|ainsi|de plus|par ailleurs|toutefois|cependant|mais|donc|pour cela|à ce titre|"
    r"en outre|enfin|aussi)\b",
    re.IGNORECASE,
)
_BULLETS = ("•", "-", "–", "*", "·", "▪", "●", "◦", "")
_ENDS_SENTENCE = re.compile(r"[.!?…;»)\]]\s*$")
_ENDS_TERMINAL = re.compile(r"[.!?…]\s*[»)\]\"”]*\s*$")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_FIGURE = re.compile(r"\d")
_LETTER = re.compile(r"[^\W\d_]")
# Frequent French verb forms; a line with one of them states something even without a full stop.
_VERBS = re.compile(
    r"\b(?:est|sont|était|étaient|sera|seront|a|ont|avait|avaient|aura|auront|peut|peuvent|pourra|pourront|"
    r"doit|doivent|devra|devront|fait|font|permet|permettent|permettra|reste|restent|existe|existent|"
    r"représente|représentent|correspond|correspondent|comprend|comprennent|compte|comptent|désigne|"
    r"désignent|signifie|consiste|concerne|concernent|s'applique|s’applique|dispose|disposent|propose|"
    r"proposent|offre|offrent|assure|assurent|prend|prennent|reçoit|reçoivent|finance|financent|"
    r"met|mettent|vise|visent|réunit|réunissent|accompagne|accompagnent|permettant|sont|c'est|c’est|"
    r"il y a|n'est|n’est|ne sont|être|avoir)\b",
    re.IGNORECASE,
)
# Typical finite-verb and participle endings, as a fallback to the list above.
# « -ment » words are nouns and adverbs (« raccordement », « directement »), not verbs.
_VERB_ENDING = re.compile(r"\b[^\W\d_]{3,}(?:(?<!m)ent|ons|ez|ait|aient|era|eront|ira|iront|é|ée|és|ées|is|ise|it)\b")
# Pronominal and negated verbs: « se trouve », « s'applique », « ne couvre pas ».
_VERB_FRAME = re.compile(r"\b(?:se|s['’])\s*[^\W\d_]{3,}|\bn(?:e|['’])\s*[^\W\d_]+\s+(?:pas|plus|jamais)\b",
                         re.IGNORECASE)
# A French sentence never ends on an article, a preposition or a conjunction: a piece that does was cut
# by a page or column break, and quoting it would put words in the document's mouth.
_DANGLING = frozenset(
    "de du des d la le les l un une et ou à au aux en par pour sur avec dans que qu qui dont son sa ses leur leurs "
    "ce cet cette ces entre vers chez sans sous selon dès afin lors notre nos votre vos mais car donc".split()
)
# A brochure's colophon: who designed, wrote, printed or photographed it — never an answer to an official.
_COLOPHON = re.compile(
    r"\b(?:conception graphique|réalisation graphique|création graphique|mise en page|crédits? photos?|"
    r"dépôt légal|directeur de (?:la )?publication|directrice de (?:la )?publication|imprimé (?:par|sur|en)|"
    r"impression\s*:|maquette\s*:|isbn|issn)\b",
    re.IGNORECASE,
)
_LABEL_MAX_WORDS = 12
_TABLE_ROWS_MIN = 3
_TABLE_ROWS_MAX = 16
_MIN_STATEMENT_WORDS = 4
_MIN_SENTENCE_WORDS = 5
_LIST_ITEMS_MAX = 8


@dataclass(frozen=True)
class Unit:
    """A quotable span of one passage: ``passages[passage_index].text[start:end]``."""

    passage_index: int
    start: int
    end: int
    text: str


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


# « 4.2.1 Distance au réseau », « 5- MEMENTO », « II. Les acteurs »: a numbered heading.
_NUMBERED_HEADING = re.compile(r"^(?:\d+(?:\.\d+)+\.?|\d+\s*[-.)]|[IVX]+\s*[-.)])\s*[^\W\d_]")
_CONTACT_ONLY = re.compile(r"^(?:contact|courriel|e-mail|email|mail|tél\.?|téléphone|site)?\s*:?\s*"
                           r"(?:\S+@\S+|https?://\S+|www\.\S+)\s*$", re.IGNORECASE)


def is_heading_like(text: str) -> bool:
    """Markdown headings, letter-spaced or numbered headings, bare numbers and other lines that never answer."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return True
    if stripped.endswith("?"):
        return True  # a question the document asks (a heading, a FAQ entry) is never an answer
    if _CONTACT_ONLY.match(stripped):
        return True  # an address alone says nothing; the sentence around it does
    if _NUMBERED_HEADING.match(stripped) and not _ENDS_TERMINAL.search(stripped) and len(_words(stripped)) <= 12:
        return True
    if not _LETTER.search(stripped):
        return True  # « 12 », « 3/4 », « — »: a page number or a lone figure
    tokens = stripped.split()
    if len(tokens) >= 4 and sum(len(t.strip("’'")) == 1 for t in tokens) / len(tokens) >= 0.5:
        return True  # « L ’ A BO NNE MENT »: letter-spaced display type
    letters = [c for c in stripped if c.isalpha()]
    return len(letters) >= 8 and all(c.isupper() for c in letters)  # « ARTICLE 8 - CONDITIONS … »


def states_something(text: str) -> bool:
    """A sentence, or a line that says something: a verb or a figure, and enough words."""
    if is_heading_like(text):
        return False
    words = _words(text)
    if _ENDS_TERMINAL.search(text) and len(words) >= _MIN_SENTENCE_WORDS:
        return True
    if _FIGURE.search(text) and len(words) >= 2 and any(len(w) >= 4 and w.islower() for w in words):
        return True  # « 10 infographies », « 31 % de chaleur renouvelable », not « Réf. AMORCE RCE 32 »
    if len(words) >= _MIN_STATEMENT_WORDS and (
        _VERBS.search(text) or _VERB_ENDING.search(text) or _VERB_FRAME.search(text)
    ):
        return True
    return len(words) >= 8 and bool(_ENDS_SENTENCE.search(text) or text.rstrip().endswith(","))


def ends_inside_sentence(text: str) -> bool:
    """« … la réalisation d’un DPE (Diagnostic de »: the piece stops on a word no sentence ends with."""
    stripped = text.rstrip()
    if not stripped or _ENDS_SENTENCE.search(stripped) or stripped.endswith(":"):
        return False
    words = _words(stripped)
    if not words or not stripped[-1].isalpha():
        return False
    return re.split(r"['’]", words[-1].lower())[-1] in _DANGLING  # « d’un » ends on « un »


# « Les informations suivantes ne sont pas précisées dans les sources… », « la date n'est pas indiquée »:
# the document says what it does not know.
_ABSENCE = re.compile(
    r"\b(?:ne|n['’])\s*(?:sont|est|figurent?|apparaissent|apparaît)\s+pas\s+(?:encore\s+)?"
    r"(?:précisée?s?|indiquée?s?|connue?s?|détaillée?s?|communiquée?s?|disponibles?|mentionnée?s?|"
    r"dans\s+(?:les|nos)\s+sources)|\bnon\s+(?:précisée?s?|communiquée?s?|connue?s?)\b",
    re.IGNORECASE,
)


def states_absence(text: str) -> bool:
    """The unit is about what the sources do not give: an answer only when nothing says it positively.

    Only its first clause counts: « lancée un 12 juillet … ; l'année n'est pas précisée » answers « quand ? ».
    """
    first_clause = re.split(r"[;:.!?]", text, maxsplit=1)[0]
    return bool(_ABSENCE.search(first_clause))


def is_colophon(text: str) -> bool:
    return bool(_COLOPHON.search(text))


def _is_bare_value(text: str) -> bool:
    """« 10 000 », « 120 », « 2,69 », « 31 % », « 5 jours »: a figure waiting for its label."""
    return bool(_FIGURE.search(text)) and len(_words(text)) <= 2 and len(text) <= 24


def _is_label(text: str) -> bool:
    return (
        not _FIGURE.search(text)
        and 1 <= len(_words(text)) <= _LABEL_MAX_WORDS
        and not _ENDS_TERMINAL.search(text)
        and not text.lstrip().startswith("#")
        and not is_heading_like(text)
    )


def _is_title(piece: str, passage: Passage) -> bool:
    """The document's own title (a cover line) says nothing the source card does not already say."""
    title = " ".join(passage.title.lower().split())
    return bool(title) and " ".join(piece.lower().split()).strip(" .") in (title, title.strip(" ."))


def _starts_inside_sentence(passage: Passage, start: int) -> bool:
    """True for the first piece of a passage that the splitter cut out of the middle of a sentence."""
    if passage.text[:start].strip():
        return False
    return not passage.starts_clean


def passage_units(passage: Passage, passage_index: int = 0) -> list[Unit]:
    """The quotable units of one passage, in reading order (they may overlap)."""
    text = passage.text
    spans = _join_bullet_continuations(text, [(s, e) for s, e in sentence_spans(text) if text[s:e].strip()])
    spans = _join_dangling_lines(text, spans)
    pieces = [text[s:e] for s, e in spans]
    units: list[Unit] = []

    def add(start: int, end: int) -> None:
        if not ends_inside_sentence(text[start:end]):  # joined pieces too: a list cut by a page break
            units.append(Unit(passage_index, start, end, text[start:end].strip()))

    tables = _table_blocks(pieces)
    for i, (start, end) in enumerate(spans):
        piece = pieces[i]
        if i in tables:
            first, last = tables[i]
            add(spans[first][0], spans[last][1])
        if i == 0 and _starts_inside_sentence(passage, start):
            continue
        if is_instruction(piece):
            continue  # text addressed to an assistant inside a document is data, never an answer
        # A figure alone on its line belongs to the label line before or after it.
        if _is_bare_value(piece):
            if i > 0 and _is_label(pieces[i - 1]) and "\n" in text[spans[i - 1][1]:start + 1]:
                add(spans[i - 1][0], end)
            if i + 1 < len(spans) and _is_label(pieces[i + 1]):
                add(start, spans[i + 1][1])
            continue
        if piece.rstrip().endswith(":") and not is_heading_like(piece):
            # The list or definition that follows belongs to the answer: take every item of it.
            nxt, last = i + 1, end
            while nxt < len(spans) and nxt - i <= _LIST_ITEMS_MAX:
                item = pieces[nxt].lstrip()
                if nxt > i + 1 and not item.startswith(_BULLETS[:-1]):
                    break
                last = spans[nxt][1]
                nxt += 1
            if last > end:
                add(start, last)
            continue
        if not states_something(piece) or _is_title(piece, passage) or is_colophon(piece):
            continue
        if _DEPENDENT.match(piece.lstrip("«» \"-–•")) and i > 0:
            previous = pieces[i - 1]
            if states_something(previous) and not _starts_inside_sentence_at(passage, spans, i - 1):
                add(spans[i - 1][0], end)
                continue
        add(start, end)
    return units


# « 10 infographies », « 6 vidéos témoignages », « 350 catalyseurs »: a figure then what it counts.
_COUNT_ROW = re.compile(r"^\s*[•\-–*·▪●]?\s*\d[\d\u00a0\u202f ,.]*\s*(?:%|€|k€|M€)?\s+[^\W\d_]")
_COUNT_ROW_MAX_WORDS = 8


def _is_table_row(piece: str) -> bool:
    """A row of a table or chart (« Elec ind | 2,69 ») or of an infographic's list of counts (« 10 infographies »)."""
    if " | " in piece:
        return bool(_FIGURE.search(piece)) and bool(_LETTER.search(piece))
    return (bool(_COUNT_ROW.match(piece)) and "\n" not in piece.strip()
            and len(_words(piece)) <= _COUNT_ROW_MAX_WORDS and not _ENDS_TERMINAL.search(piece))


def _table_blocks(pieces: Sequence[str]) -> dict[int, tuple[int, int]]:
    """A chart or a table (« RC bois | 0,45 », « Elec ind | 2,69 », …): its rows with the caption above them.

    One row alone hardly says what it measures (« Elec ind | 2,69 »), so the whole block, caption first,
    is one unit (at most ``_TABLE_ROWS_MAX`` rows); the rows stay units of their own as before.
    Keyed by the index of the block's first piece.
    """
    blocks: dict[int, tuple[int, int]] = {}
    i = 0
    while i < len(pieces):
        if not _is_table_row(pieces[i]):
            i += 1
            continue
        j = i
        while j + 1 < len(pieces) and j + 1 - i < _TABLE_ROWS_MAX and _is_table_row(pieces[j + 1]):
            j += 1
        if j - i + 1 >= _TABLE_ROWS_MIN:
            caption = i - 1 if i > 0 and _is_label(pieces[i - 1]) else i
            blocks[caption] = (caption, j)
        i = j + 1
    return blocks


def _join_dangling_lines(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """« … est la puissance calorifique maximale que le » / « Service est tenu de … »: one sentence.

    A line that stops on a word no sentence ends with goes on in the next piece, even when that one
    starts with a capital (a defined term, a name), so neither line is quoted alone. Three lines at most.
    """
    out: list[tuple[int, int]] = []
    for start, end in spans:
        if out and ends_inside_sentence(text[out[-1][0]:out[-1][1]]) and out[-1][1] <= start \
                and text[out[-1][0]:end].count("\n") <= 3:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def _join_bullet_continuations(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """A bullet item wrapped onto lines that start with a capital («… au titre de France» / «Relance, par…»).

    The lines that follow an unfinished bullet item, up to the next bullet, heading or sentence end,
    belong to it (three lines at most).
    """
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        start, end = spans[i]
        piece = text[start:end]
        if piece.lstrip().startswith(_BULLETS[:-1]) and not _ENDS_TERMINAL.search(piece):
            j = i + 1
            while j < len(spans) and j - i <= 3:
                nxt = text[spans[j][0]:spans[j][1]]
                if nxt.lstrip().startswith((*_BULLETS[:-1], "#")) or is_heading_like(nxt):
                    break
                end = spans[j][1]
                j += 1
                if _ENDS_TERMINAL.search(nxt):
                    break
            out.append((start, end))
            i = j
            continue
        out.append((start, end))
        i += 1
    return out


def _starts_inside_sentence_at(passage: Passage, spans: Sequence[tuple[int, int]], index: int) -> bool:
    return index == 0 and _starts_inside_sentence(passage, spans[0][0])


_OPENING_WORDS = 6


def opening(text: str) -> str:
    """The first words of a unit, folded: what a boilerplate sentence repeats from document to document."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    return " ".join(words[:_OPENING_WORDS]) if len(words) >= _OPENING_WORDS else ""


def boilerplate_openings(passages: Iterable[Passage], min_docs: int = 3) -> list[str]:
    """Openings of units found in at least ``min_docs`` documents («Cette fiche ressource est un résumé…»).

    Computed over the whole corpus at ingestion: such a sentence is about the document, never an answer.
    """
    docs: dict[str, set[str]] = {}
    for passage in passages:
        for unit in passage_units(passage):
            key = opening(unit.text)
            if key:
                docs.setdefault(key, set()).add(passage.doc_id)
    return sorted(key for key, ids in docs.items() if len(ids) >= min_docs)


def quotable_units(passages: Sequence[Passage]) -> list[Unit]:
    """Every quotable unit of every passage, in passage order then reading order."""
    units: list[Unit] = []
    for pi, passage in enumerate(passages):
        units.extend(passage_units(passage, pi))
    return units
