"""The evaluation runner: questions → the app's own ``Assistant.answer`` → metrics → results.

Every question goes through the same library call as the web app and the CLI.
A configuration is the base settings plus overrides (``search_mode=bm25`` …);
configurations that change what is indexed (chunk size, embedder, corpus) get
their own temporary index, built with the shared embedding cache so that only
new passages are embedded.

Each set is scored against its own index: golden against the shipped corpus,
real-docs against the shipped corpus plus its PDFs (copied together into a
temporary folder). Every summary is given for the whole set, for each half
(``splits.tune``, ``splits.heldout``) and for the ``hard_layout`` questions.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.schema import Answer, Passage
from assistant.settings import PROJECT_ROOT, Settings, SettingsError
from evals import metrics
from evals.sets import (
    OUT_OF_CORPUS,
    QUESTION_TYPES,
    SPLITS,
    EvalQuestion,
    LoadedSet,
    SetUnavailable,
    load_named_set,
)

# Settings that change what goes into the index: a configuration that overrides
# one of them cannot reuse the base index.
INDEX_KEYS = frozenset({"corpus_dir", "embedder", "chunk_words", "chunk_overlap_words", "collection",
                        "passage_vectors"})
STAGES = ("rewrite", "retrieve", "answer", "total")
KS = (1, 5, 10)
_HEADING_MARK = re.compile(r"^#{1,6}\s+", re.MULTILINE)


class EvalError(AssistantError, RuntimeError):
    """The evaluation cannot run (message in French)."""


# --------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class Config:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_own_index(self) -> bool:
        return bool(INDEX_KEYS & set(self.overrides)) and "data_dir" not in self.overrides


def coerce_override(base: Settings, key: str, raw: Any) -> Any:
    """Turn a textual override into the type of the setting it replaces."""
    if not hasattr(base, key) or key.startswith("_"):
        raise EvalError(f"Réglage inconnu dans --compare : « {key} ».")
    if key in {"auth", "llm_api_key"}:
        raise EvalError(f"Le réglage « {key} » ne se passe pas par --compare (secret).")
    current = getattr(base, key)
    if current is None:
        # An optional setting left unset (``float | None``…): its annotation says what it holds.
        annotation = str(next(f.type for f in fields(base) if f.name == key))
        for kind, sample in (("bool", False), ("int", 0), ("float", 0.0), ("Path", Path())):
            if kind in annotation.replace("None", "").replace("|", " ").split():
                current = sample
                break
    if not isinstance(raw, str):
        return Path(raw) if isinstance(current, Path) else raw
    text = raw.strip()
    try:
        if isinstance(current, bool):
            if text.lower() not in {"1", "0", "true", "false", "oui", "non", "yes", "no", "on", "off"}:
                raise ValueError(text)
            return text.lower() in {"1", "true", "oui", "yes", "on"}
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except ValueError:
        raise EvalError(f"--compare : « {key}={text} » n'est pas une valeur valide.") from None
    if isinstance(current, Path) or key in {"corpus_dir", "data_dir", "glossary_file"}:
        return Path(text).expanduser().resolve()
    return text


def parse_config(spec: str, base: Settings) -> Config:
    """``key=value[,key=value]`` or a TOML file (optional ``name``, then settings as keys)."""
    path = Path(spec)
    raw: dict[str, Any]
    if spec.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise EvalError(f"Fichier de configuration introuvable : {spec}")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise EvalError(f"{spec} : TOML invalide ({exc}).") from None
        name = str(raw.pop("name", path.stem))
    else:
        raw = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise EvalError(
                    f"--compare attend des paires clé=valeur séparées par des virgules (reçu : « {spec} »)."
                )
            raw[key.strip()] = value
        name = spec
    overrides = {key: coerce_override(base, key, value) for key, value in raw.items()}
    try:
        base.with_overrides(**overrides).validate()
    except (SettingsError, TypeError) as exc:
        raise EvalError(f"Configuration « {name} » invalide : {exc}") from None
    return Config(name=name, overrides=overrides)


# --------------------------------------------------------------------------- index handling


def _merge_cache(src: Path, dst: Path) -> None:
    """Copy the embedding cache back so the next run starts warm (atomic replace)."""
    if not src.is_file():
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    shutil.copy2(src, tmp)
    tmp.replace(dst)


@contextmanager
def prepared_index(settings: Settings, *, fresh: bool, cache_dir: Path, log: Callable[[str], None]) -> Iterator[
    tuple[Settings, dict[str, Any]]
]:
    """Settings that point at a usable index: the existing one, or a temporary one built now."""
    if not fresh:
        yield settings, {"fresh": False, "data_dir": str(settings.data_dir)}
        return
    from ingest.index import run_ingest

    cache_file = cache_dir / "embeddings.sqlite"
    with tempfile.TemporaryDirectory(prefix="eval-index-") as tmp:
        data_dir = Path(tmp)
        if cache_file.is_file():
            (data_dir / "cache").mkdir()
            shutil.copy2(cache_file, data_dir / "cache" / "embeddings.sqlite")
        scoped = settings.with_overrides(data_dir=data_dir)
        log(f"Indexation temporaire du corpus {settings.corpus_dir} (embedder {settings.embedder})…")
        start = time.perf_counter()
        report = run_ingest(scoped, rebuild=True, progress=False)
        took = time.perf_counter() - start
        _merge_cache(data_dir / "cache" / "embeddings.sqlite", cache_file)
        yield scoped, {"fresh": True, "ingest_s": round(took, 2), "ingest_report": _jsonable(report)}


@contextmanager
def set_corpus(settings: Settings, extra_files: Sequence[Path], *, log: Callable[[str], None]) -> Iterator[Settings]:
    """Settings whose corpus is the configured one plus ``extra_files``, in a temporary copy.

    Ingestion refuses symlinks, so the files are copied (``_*`` and ``.*`` entries are left out, as
    ingestion skips them); the copy lives as long as the evaluation of the set, so that cited pages
    can be read back from it. Without extra files, the configured corpus is used as it is.
    """
    if not extra_files:
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="eval-corpus-") as tmp:
        corpus = Path(tmp) / "corpus"
        shutil.copytree(settings.corpus_dir, corpus, symlinks=True, ignore=shutil.ignore_patterns("_*", ".*"))
        for path in extra_files:
            target = corpus / path.name
            if target.exists():
                raise EvalError(f"« {path.name} » existe déjà dans le corpus {settings.corpus_dir} : jeu inutilisable.")
            shutil.copy2(path, target)
        log(f"Corpus temporaire : {settings.corpus_dir} + {len(extra_files)} fichier(s) de {extra_files[0].parent}.")
        yield settings.with_overrides(corpus_dir=corpus)


def _jsonable(value: Any) -> Any:
    """Best-effort JSON view of an ingestion report (dataclass, dict or anything else)."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        try:
            return json.loads(json.dumps(asdict(value), default=str))
        except TypeError:
            return str(value)
    try:
        return json.loads(json.dumps(value, default=str))
    except TypeError:
        return str(value)


# --------------------------------------------------------------------------- page texts


class PageTexts:
    """Text of each (source file, page) as the loader reads it, to check quotes against the source."""

    def __init__(self, corpus_dir: Path) -> None:
        self.corpus_dir = corpus_dir
        self._pages: dict[str, dict[int, str]] = {}

    def get(self, source_path: str, page: int) -> str | None:
        if source_path not in self._pages:
            self._pages[source_path] = self._load(source_path)
        return self._pages[source_path].get(page)

    def _load(self, source_path: str) -> dict[int, str]:
        from assistant.schema import PAGE
        from ingest.load import LoadError, load_file

        path = self.corpus_dir / source_path
        try:
            loaded = load_file(path, self.corpus_dir)
        except (LoadError, OSError):
            return {}
        return {int(p.metadata.get(PAGE, 1)): _HEADING_MARK.sub("", p.page_content) for p in loaded.pages}


# --------------------------------------------------------------------------- one question


def score_answer(
    q: EvalQuestion,
    ans: Answer,
    pages: PageTexts | None,
    wall_s: float,
    ranking: Sequence[Passage] | None = None,
) -> dict[str, Any]:
    """Every metric of one answered question, plus what the report shows of it.

    ``ranking`` is the retriever's deeper list for the same standalone question
    (the answer only keeps its first k passages); retrieval metrics use it when given.
    """
    ranked = list(ranking) if ranking is not None else ans.passages
    ranked_docs = [p.doc_id for p in ranked]
    ranked_pages = [(p.doc_id, p.page) for p in ranked]
    record: dict[str, Any] = q.to_json()
    record.update(
        answer=ans.text,
        abstained=ans.abstained,
        standalone_question=ans.standalone_question,
        mode=ans.mode,
        notice=ans.notice,
        passages=[
            {"doc_id": p.doc_id, "page": p.page, "score": round(p.score, 4), "section": p.section}
            for p in ranked[: max(KS)]
        ],
        answer_passages=len(ans.passages),
        timings={k: round(float(v), 4) for k, v in ans.timings.items()},
        wall_s=round(wall_s, 4),
        dropped_sentences=[{"text": d.text, "reason": d.reason} for d in ans.dropped_sentences],
        # What the refusal rules looked at (python -m evals.calibrate replays them on the tuning half).
        signals={k: round(float(v), 4) for k, v in ans.signals.items()},
        short_answer=ans.short_answer,
    )
    if not q.out_of_corpus:
        record["retrieval_doc"] = metrics.retrieval_scores(ranked_docs, set(q.expected_docs), KS)
        record["retrieval_page"] = metrics.retrieval_scores(ranked_pages, set(q.expected_pages), KS)
        # An abstention on an answerable question finds no fact, whatever its text says.
        answer_text = "" if ans.abstained else ans.text
        record["found_facts"] = metrics.found_facts(answer_text, q.facts)
        record["fact_recall"] = metrics.fact_recall(answer_text, q.facts)
        record["fact_on_expected_page"] = metrics.fact_on_expected_page(
            record["found_facts"],
            [((c.passage.doc_id, c.passage.page), c.quote) for c in ([] if ans.abstained else ans.citations)],
            q.expected_pages,
        )

    claims = metrics.claims_by_marker(ans.text)
    citations = []
    for c in ans.citations:
        page_text = pages.get(c.passage.source_path, c.passage.page) if pages else None
        valid = metrics.quote_is_verbatim(c.quote, page_text) if page_text is not None else False
        if not valid:
            # The passage is the source page as indexed (headings may differ from the loader's page).
            valid = metrics.quote_is_verbatim(c.quote, c.passage.text)
        claim = claims.get(c.n, c.quote)
        supports = None
        if not q.out_of_corpus and q.facts:
            # The quote is the source the citation gives; the passage backs it when the quote is short.
            check = metrics.CitationCheck(claim=claim, source=c.quote + "\n" + c.passage.text)
            supports = metrics.citation_supports(check, q.facts)
        citations.append(
            {
                "n": c.n,
                "doc_id": c.passage.doc_id,
                "page": c.passage.page,
                "page_label": c.passage.page_label,
                "quote": c.quote,
                "valid": valid,
                "supports_fact": supports,
                "expected_page": (c.passage.doc_id, c.passage.page) in set(q.expected_pages),
            }
        )
    record["citations"] = citations
    record["failures"] = failure_reasons(record)
    return record


def failure_reasons(record: dict[str, Any]) -> list[str]:
    """Why a question counts as failed (French, shown in the report); empty when it passed."""
    reasons = []
    if record.get("error"):
        return [f"erreur : {record['error']}"]
    if record["type"] == OUT_OF_CORPUS:
        if not record["abstained"]:
            reasons.append("a répondu au lieu de refuser (hors corpus)")
        return reasons
    if record["abstained"]:
        reasons.append("a refusé de répondre alors que le corpus contient la réponse")
    elif (record.get("fact_recall") or 0.0) < 1.0:
        missing = [f for f in record["facts"] if f not in record.get("found_facts", [])]
        reasons.append("faits absents de la réponse : " + " ; ".join(missing))
    if record["retrieval_doc"]["hit@5"] == 0.0:
        reasons.append("aucun document attendu parmi les 5 premiers passages")
    invalid = [c["n"] for c in record.get("citations", []) if not c["valid"]]
    if invalid:
        reasons.append("citation(s) non littérale(s) : " + ", ".join(f"[{n}]" for n in invalid))
    return reasons


def error_record(q: EvalQuestion, exc: BaseException, wall_s: float) -> dict[str, Any]:
    record = q.to_json()
    record.update(
        answer="", abstained=False, standalone_question="", mode="", notice="", passages=[], citations=[],
        timings={}, wall_s=round(wall_s, 4), dropped_sentences=[], error=f"{type(exc).__name__}: {exc}",
    )
    if not q.out_of_corpus:
        record["retrieval_doc"] = metrics.retrieval_scores([], set(q.expected_docs), KS)
        record["retrieval_page"] = metrics.retrieval_scores([], set(q.expected_pages), KS)
        record["found_facts"] = []
        record["fact_recall"] = 0.0
        record["fact_on_expected_page"] = None
    record["failures"] = failure_reasons(record)
    return record


# --------------------------------------------------------------------------- aggregation


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Aggregate metrics over records (macro means over questions; citations pooled)."""
    answerable = [r for r in records if r["type"] != OUT_OF_CORPUS]
    out_of_corpus = [r for r in records if r["type"] == OUT_OF_CORPUS]
    summary: dict[str, Any] = {
        "questions": len(records),
        "answerable": len(answerable),
        "out_of_corpus": len(out_of_corpus),
        "failed": sum(1 for r in records if r["failures"]),
        "errors": sum(1 for r in records if r.get("error")),
    }
    for level in ("doc", "page"):
        key = f"retrieval_{level}"
        names = [f"hit@{k}" for k in KS] + ["mrr@10", "ndcg@10"]
        summary[key] = {n: _r(metrics.mean(r[key][n] for r in answerable)) for n in names}
    summary["fact_recall"] = _r(metrics.mean(r.get("fact_recall") for r in answerable))
    summary["all_facts_rate"] = _r(metrics.mean(float(r.get("fact_recall") == 1.0) for r in answerable))
    summary["false_refusal_rate"] = _r(metrics.mean(float(r["abstained"]) for r in answerable))
    on_page = [bool(r["fact_on_expected_page"]) for r in answerable if r.get("fact_on_expected_page") is not None]
    summary["fact_on_expected_page"] = _r(metrics.mean(float(v) for v in on_page))
    summary["answers_with_fact"] = len(on_page)
    pooled = [c for r in answerable for c in r["citations"] if c["supports_fact"] is not None]
    summary["citation_precision"] = _r(metrics.mean(float(c["supports_fact"]) for c in pooled))
    summary["citations_checked"] = len(pooled)
    # Questions behind the pooled citation figures: one question moves all of its citations at once.
    summary["answers_with_checked_citations"] = sum(
        1 for r in answerable if any(c["supports_fact"] is not None for c in r["citations"])
    )
    summary["answers_with_citations"] = sum(1 for r in records if r["citations"])
    every_citation = [c for r in records for c in r["citations"]]
    summary["citation_validity"] = _r(metrics.mean(float(c["valid"]) for c in every_citation))
    summary["citations"] = len(every_citation)
    summary["citations_per_answer"] = _r(
        metrics.mean(float(len(r["citations"])) for r in answerable if not r["abstained"])
    )
    abst = metrics.abstention_scores(
        [r["type"] == OUT_OF_CORPUS for r in records], [bool(r["abstained"]) for r in records]
    )
    summary["abstention"] = {k: _r(v) for k, v in abst.items()}
    refusals = metrics.refusal_counts(
        [r["type"] == OUT_OF_CORPUS for r in records], [bool(r["abstained"]) for r in records]
    )
    summary["refusals"] = refusals | {"total": refusals["out_of_corpus_refused"] + refusals["answerable_refused"]}
    # A non-empty notice means the generated answer was replaced by the extracts (or the LLM was unavailable).
    summary["llm_fallback_rate"] = _r(
        metrics.mean(float(bool(r["notice"])) for r in records if r["mode"] == "llm" or r["notice"])
    )
    dropped = [len(r["dropped_sentences"]) for r in records]
    summary["dropped_sentences"] = {"total": sum(dropped), "per_answer": _r(metrics.mean(map(float, dropped)))}
    latency: dict[str, dict[str, float | None]] = {}
    for stage in STAGES:
        values = [float(r["timings"][stage]) for r in records if stage in r["timings"]]
        if stage == "total" and not values:
            values = [float(r["wall_s"]) for r in records]
        latency[stage] = {
            "p50": _r(metrics.percentile(values, 50)),
            "p95": _r(metrics.percentile(values, 95)),
            "max": _r(max(values) if values else None),
        }
    summary["latency_s"] = latency
    return summary


def summarise_set(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`summarise`, plus the same summary for each half (``splits``) and for ``hard_layout`` questions.

    A half without questions is left out, and so is ``hard_layout`` when no question has a hard layout.
    """
    summary = summarise(records)
    summary["splits"] = {
        half: summarise(chosen) for half in SPLITS if (chosen := [r for r in records if r.get("split") == half])
    }
    hard = [r for r in records if r.get("hard_layout")]
    if hard:
        summary["hard_layout"] = summarise(hard)
    return summary


def _group_row(chosen: Sequence[dict[str, Any]]) -> dict[str, Any]:
    s = summarise(chosen)
    answerable = s["answerable"] > 0
    return {
        "questions": len(chosen),
        "failed": s["failed"],
        "doc_hit@5": s["retrieval_doc"]["hit@5"] if answerable else None,
        "page_hit@5": s["retrieval_page"]["hit@5"] if answerable else None,
        "doc_mrr@10": s["retrieval_doc"]["mrr@10"] if answerable else None,
        "fact_recall": s["fact_recall"],
        "all_facts_rate": s["all_facts_rate"],
        "fact_on_expected_page": s["fact_on_expected_page"],
        "citation_precision": s["citation_precision"],
        "citation_validity": s["citation_validity"],
        "abstention_rate": _r(metrics.mean(float(r["abstained"]) for r in chosen)),
    }


def summarise_by(records: Sequence[dict[str, Any]], key: str, order: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """One row of figures per value of ``record[key]``: values of ``order`` first, then the others as met."""
    values = [v for v in order if any(r.get(key) == v for r in records)]
    values += [v for v in dict.fromkeys(str(r.get(key) or "") for r in records) if v and v not in values]
    return {v: _group_row([r for r in records if r.get(key) == v]) for v in values}


def summarise_by_type(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return summarise_by(records, "type", QUESTION_TYPES)


def summarise_by_category(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The set's own question types (real-docs: « chiffre », « qui »…); empty for sets without categories."""
    from evals.sets.realdocs import CATEGORIES

    return summarise_by(records, "category", CATEGORIES)


def flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """``{"retrieval_doc": {"hit@5": 0.9}}`` → ``{"retrieval_doc.hit@5": 0.9}`` (numbers only)."""
    flat: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


# --------------------------------------------------------------------------- the run


@dataclass
class RunOptions:
    sets: list[str] = field(default_factory=lambda: ["golden"])
    db: Path | None = None
    corpus: Path | None = None
    mode: str | None = None
    out: Path = PROJECT_ROOT / "evals" / "out"
    compare: list[str] = field(default_factory=list)
    fresh: bool = False
    limit: int | None = None
    piaf_sample: int | None = None
    progress: bool = True
    report: bool = True


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def evaluate_config(
    settings: Settings,
    questions: Sequence[EvalQuestion],
    *,
    label: str,
    progress: bool,
) -> tuple[list[dict[str, Any]], float]:
    """Load the app's Assistant once and put every question to it."""
    from tqdm import tqdm

    from assistant.answer import Assistant

    start = time.perf_counter()
    assistant = Assistant(settings)
    load_s = time.perf_counter() - start
    pages = PageTexts(settings.corpus_dir)
    records = []
    for q in tqdm(questions, desc=label, unit="question", disable=not progress, leave=True):
        t0 = time.perf_counter()
        try:
            ans = assistant.answer(q.question, history=q.history_messages())
            wall = time.perf_counter() - t0
            # The answer keeps k passages; the same retriever, asked for 10, gives the @10 figures.
            ranking = assistant.retriever.search(ans.standalone_question or q.question, k=max(KS)).passages
        except Exception as exc:  # one broken question must not hide the others' figures
            records.append(error_record(q, exc, time.perf_counter() - t0))
            continue
        records.append(score_answer(q, ans, pages, wall, ranking))
    return records, load_s


def _run_piaf(settings: Settings, sample: int | None, log: Callable[[str], None]) -> dict[str, Any]:
    """Helper C's PIAF benchmark (evals/piaf.py); skipped with a reason when it or its data is absent."""
    try:
        from evals import piaf
    except ImportError:
        return {"skipped": "evals/piaf.py absent : benchmark PIAF non exécuté."}
    data = Path(piaf.DEFAULT_DATA).resolve()
    if not data.is_file():
        return {"skipped": f"Benchmark PIAF ignoré : données absentes ({data})."}
    log(f"Benchmark PIAF ({sample or 'toutes les'} questions, embedder {settings.embedder})…")
    try:
        result = piaf.run(
            data, sample=sample, cache_dir=settings.data_dir / "cache", embedder_spec=settings.embedder, log=log
        )
    except Exception as exc:  # the golden-set figures must survive a broken benchmark
        return {"skipped": f"Benchmark PIAF en échec : {type(exc).__name__}: {exc}"}
    return dict(result)


def expand_set_names(names: Sequence[str]) -> list[str]:
    """``["golden,real-docs", "piaf"]`` → ``["golden", "real-docs", "piaf"]`` (order kept, duplicates dropped)."""
    return list(dict.fromkeys(part.strip() for name in names for part in name.split(",") if part.strip()))


def load_sets(
    names: Sequence[str], limit: int | None, log: Callable[[str], None]
) -> tuple[list[LoadedSet], dict[str, str]]:
    """The sets to ask, and the reason of each set skipped because its data is absent."""
    loaded: list[LoadedSet] = []
    skipped: dict[str, str] = {}
    for name in names:
        try:
            one = load_named_set(name)
        except SetUnavailable as exc:
            skipped[name] = str(exc)
            log(str(exc))
            continue
        if limit:
            one = LoadedSet(one.name, one.questions[:limit], one.extra_files, one.source)
        if any(other.name == one.name for other in loaded):
            raise EvalError(f"Deux jeux portent le même nom « {one.name} ».")
        loaded.append(one)
    return loaded, skipped


def evaluate_set(
    settings: Settings,
    loaded: LoadedSet,
    *,
    fresh: bool,
    cache_dir: Path,
    label: str,
    progress: bool,
    log: Callable[[str], None],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ask one set against its own index (the corpus plus the set's extra files); records and figures."""
    with (
        set_corpus(settings, loaded.extra_files, log=log) as set_settings,
        # Extra files are in no existing index: such a set always gets a temporary one.
        prepared_index(set_settings, fresh=fresh or bool(loaded.extra_files), cache_dir=cache_dir, log=log) as (
            scoped,
            index_info,
        ),
    ):
        records, load_s = evaluate_config(scoped, loaded.questions, label=label, progress=progress)
    return records, {
        "questions": len(records),
        "source": loaded.source,
        "index": index_info,
        "assistant_load_s": round(load_s, 3),
        "summary": summarise_set(records),
        "by_type": summarise_by_type(records),
        "by_category": summarise_by_category(records),
    }


def run(options: RunOptions, base: Settings | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every configuration on every set; write results.json, report.md and report.html.

    A set whose data is absent (real-docs without ``../shared``) is skipped with its reason
    (``results["sets"][name]["skipped"]``); the other sets are still evaluated.
    """
    base = base or Settings.from_env()
    base = base.with_overrides(data_dir=options.db, corpus_dir=options.corpus, answer_mode=options.mode)
    base.validate()
    names = expand_set_names(options.sets)
    want_piaf = "piaf" in names
    set_names = [s for s in names if s != "piaf"] or ([] if want_piaf else ["golden"])
    loaded_sets, skipped = load_sets(set_names, options.limit, log)
    questions = sum(len(one.questions) for one in loaded_sets)
    configs = [Config("base")] + [parse_config(spec, base) for spec in options.compare]
    cache_dir = (base.data_dir / "cache") if options.db is None else (Path(options.db) / "cache")

    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "meta": {
            "created": started.isoformat(timespec="seconds"),
            "git_commit": _git_commit(),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "sets": names,
            "questions": questions,
            "fresh": options.fresh,
        },
        "sets": {one.name: {"questions": len(one.questions), "source": one.source} for one in loaded_sets}
        | {name: {"skipped": reason} for name, reason in skipped.items()},
        "configs": [],
    }
    t_run = time.perf_counter()
    for config in configs if questions else []:
        settings = base.with_overrides(**config.overrides)
        fresh = options.fresh or config.needs_own_index
        records: list[dict[str, Any]] = []
        per_set: dict[str, dict[str, Any]] = {}
        for one in loaded_sets:
            label = config.name if len(loaded_sets) == 1 else f"{config.name} · {one.name}"
            set_records, per_set[one.name] = evaluate_set(
                settings, one, fresh=fresh, cache_dir=cache_dir, label=label, progress=options.progress, log=log
            )
            records.extend(set_records)
        first = next(iter(per_set.values()))
        results["configs"].append(
            {
                "name": config.name,
                "overrides": {k: str(v) if isinstance(v, Path) else v for k, v in config.overrides.items()},
                "settings": settings.public_dict(),
                "index": first["index"],
                "assistant_load_s": round(sum(v["assistant_load_s"] for v in per_set.values()), 3),
                # Every set pooled; each set alone (against its own index) under "sets".
                "summary": summarise_set(records),
                "by_type": summarise_by_type(records),
                "sets": per_set,
                "questions": records,
            }
        )
    if want_piaf:
        results["piaf"] = _run_piaf(base, options.piaf_sample, log)
    results["meta"]["duration_s"] = round(time.perf_counter() - t_run, 1)

    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    if options.report:
        from evals.report import write_reports

        write_reports(results, options.out)
    return results
