"""The default answer: 1–4 sentences quoted verbatim from the passages, each cited.

It cannot invent: every word after the lead line is a substring of a passage.
Sentences are ranked by the embedder (cosine to the question) and by lexical
overlap with the question (same French analyzer as BM25), with a small prior
for the passage's retrieval rank. A sentence that leans on the previous one
(«Il…», «Cette…», «Ainsi…») is quoted together with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.embeddings import NamedEmbeddings
from assistant.lexical import analyze
from assistant.schema import Citation, Passage
from assistant.sentences import sentence_spans
from assistant.verify import is_instruction

REFUSAL = "Je n'ai pas trouvé de réponse à cette question dans les ressources disponibles."

# Openings that refer back to the sentence before: quote them together.
_DEPENDENT = re.compile(
    r"^(il|elle|ils|elles|ce|cet|cette|ces|cela|ceci|celui|celle|ceux|celles|son|sa|ses|leur|leurs|"
    r"en effet|ainsi|de plus|par ailleurs|toutefois|cependant|mais|donc|pour cela|à ce titre|"
    r"en outre|enfin|aussi)\b",
    re.IGNORECASE,
)
_MIN_WORDS = 5
_BULLETS = ("•", "-", "–", "*", "·")
_ENDS_SENTENCE = re.compile(r"[.!?…:;»)\]]\s*$")


@dataclass(frozen=True)
class Unit:
    """A quotable span of one passage: one sentence, or a sentence with its antecedent."""

    passage_index: int
    start: int
    end: int
    text: str


def quotable_units(passages: Sequence[Passage]) -> list[Unit]:
    units: list[Unit] = []
    for pi, passage in enumerate(passages):
        spans = [(s, e) for s, e in sentence_spans(passage.text) if passage.text[s:e].strip()]
        for si, (start, end) in enumerate(spans):
            text = passage.text[start:end]
            # A heading line or a fragment is not an answer on its own.
            if len(text.split()) < _MIN_WORDS and not text.rstrip().endswith(":"):
                continue
            if is_instruction(text):
                continue  # text addressed to an assistant inside a document is data, never an answer
            if not _ENDS_SENTENCE.search(text):
                continue  # a heading, a table cell or a sentence cut at the passage's edge
            if _DEPENDENT.match(text.lstrip("«» \"-–•")) and si > 0:
                start = spans[si - 1][0]
            if text.rstrip().endswith(":"):
                # The list or definition that follows belongs to the answer: take every item of it.
                nxt = si + 1
                while nxt < len(spans) and nxt - si <= 6:
                    item = passage.text[spans[nxt][0]:spans[nxt][1]].lstrip()
                    if nxt > si + 1 and not item.startswith(_BULLETS):
                        break
                    end = spans[nxt][1]
                    nxt += 1
            units.append(Unit(pi, start, end, passage.text[start:end].strip()))
    return units


def _overlap(question_terms: set[str], text: str) -> float:
    if not question_terms:
        return 0.0
    return len(question_terms & set(analyze(text))) / len(question_terms)


def select_quotes(
    question: str,
    passages: Sequence[Passage],
    embedder: NamedEmbeddings,
    *,
    max_quotes: int = 3,
    query_vector: Sequence[float] | None = None,
) -> list[Unit]:
    """The best 1–``max_quotes`` units, in reading order of their rank."""
    units = quotable_units(passages)
    if not units:
        return []
    qv = np.asarray(query_vector if query_vector is not None else embedder.embed_query(question), dtype=np.float32)
    vectors = embedder.embed_passages([u.text for u in units])  # cached after ingestion warmed them
    dense = vectors @ qv
    terms = set(analyze(question))
    scores = []
    for i, unit in enumerate(units):
        prior = 1.0 / (1 + unit.passage_index)  # the retriever's ranking still counts a little
        scores.append(float(dense[i]) + 0.35 * _overlap(terms, unit.text) + 0.04 * prior)
    order = sorted(range(len(units)), key=lambda i: -scores[i])
    best = scores[order[0]]
    chosen: list[Unit] = []
    for i in order:
        unit = units[i]
        if len(chosen) >= max_quotes or scores[i] < best - 0.06:
            break
        if any(c.passage_index == unit.passage_index and c.start < unit.end and unit.start < c.end for c in chosen):
            continue  # overlaps a quote already taken
        if any(unit.text in c.text or c.text in unit.text for c in chosen):
            continue  # the same sentence from an overlapping chunk
        chosen.append(unit)
    return chosen


def build_extractive(
    question: str,
    passages: Sequence[Passage],
    embedder: NamedEmbeddings,
    *,
    max_quotes: int = 3,
    plain_language: bool = False,
    query_vector: Sequence[float] | None = None,
) -> tuple[str, list[Citation]]:
    """The answer text (lead line + quotes with [n]) and its citations."""
    units = select_quotes(question, passages, embedder, max_quotes=max_quotes, query_vector=query_vector)
    if not units:
        return refusal(passages), []
    numbers: dict[int, int] = {}
    citations: list[Citation] = []
    lines = []
    for unit in units:
        passage = passages[unit.passage_index]
        n = numbers.setdefault(unit.passage_index, len(numbers) + 1)
        citations.append(Citation(n=n, passage=passage, quote=unit.text))
        # Line breaks inside a quote come from the page layout; the words stay exactly as written.
        lines.append(f"- « {' '.join(unit.text.split())} » [{n}]")
    return lead_line(citations, plain_language) + "\n\n" + "\n".join(lines), citations


def lead_line(citations: Sequence[Citation], plain_language: bool = False) -> str:
    docs = {c.passage.doc_id for c in citations}
    first = citations[0].passage
    if len(docs) == 1:
        where = f"« {first.title} », page {first.printed_page}" if first.format == "pdf" else f"« {first.title} »"
        return f"Voici ce que dit {where} :" if plain_language else f"D'après {where} :"
    return "Voici ce que disent les ressources :" if plain_language else "D'après les ressources consultées :"


def refusal(closest: Sequence[Passage], limit: int = 3) -> str:
    """The refusal sentence, followed by the closest documents so the official knows where to look."""
    seen: dict[str, Passage] = {}
    for p in closest:
        seen.setdefault(p.doc_id, p)
    if not seen:
        return REFUSAL
    lines = [REFUSAL, "", "Les documents les plus proches de votre question :"]
    for p in list(seen.values())[:limit]:
        publisher = f" ({p.publisher})" if p.publisher else ""
        page = f", page {p.printed_page}" if p.format == "pdf" else ""
        lines.append(f"- « {p.title} »{publisher}{page}")
    return "\n".join(lines)
