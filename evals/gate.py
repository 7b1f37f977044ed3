"""The quality gate: compare a run's figures with the versioned thresholds, set by set and half by half.

``evals/thresholds.toml`` has one table per set and part of it, each line a bound and the value
measured when it was set::

    [golden.heldout]
    "fact_recall" = { min = 0.75, measured = 0.8108 }
    "false_refusal_rate" = { max = 0.09, measured = 0.027 }

Parts: ``tune`` and ``heldout`` (the two halves of a set), ``all`` (the whole set) and ``hard_layout``.
Metric names are the dotted names of the run summary (``retrieval_doc.hit@5``). The file is written by
:func:`propose_thresholds` / :func:`render_thresholds` (``python -m evals thresholds --write``): for a rate
over n questions, the bound sits two questions away from the measure (``metrics.rate_bound``).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from evals import metrics
from evals.run import flatten

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.toml"
SCOPES = ("all", "tune", "heldout", "hard_layout")
SCOPE_LABELS = {
    "all": "ensemble",
    "tune": "réglage (tune)",
    "heldout": "contrôle (heldout)",
    "hard_layout": "mise en page difficile",
}
KINDS = ("min", "max")
# Questions of a margin: how many may still go wrong before the bound is crossed.
MARGIN_UNITS = 2

# What a metric is a rate of: (name or prefix, summary count that is its denominator, French unit).
_DENOMINATORS: list[tuple[str, str, str]] = [
    ("retrieval_doc.", "answerable", "question"),
    ("retrieval_page.", "answerable", "question"),
    ("fact_recall", "answerable", "question"),
    ("all_facts_rate", "answerable", "question"),
    ("false_refusal_rate", "answerable", "question"),
    ("fact_on_expected_page", "answers_with_fact", "question"),
    ("abstention.recall", "out_of_corpus", "question"),
    ("abstention.precision", "refusals.total", "refus"),
    # Citations are pooled, but one question moves all of its citations at once: the margin of a pooled
    # citation figure is counted in the questions whose citations it pools (two questions of average size).
    ("citation_precision", "answers_with_checked_citations", "question"),
    ("citation_validity", "answers_with_citations", "question"),
]

# The metrics `python -m evals thresholds` proposes, and the direction of each.
PROPOSED: list[tuple[str, str]] = [
    ("retrieval_doc.hit@1", "min"),
    ("retrieval_doc.hit@5", "min"),
    ("retrieval_doc.mrr@10", "min"),
    ("retrieval_doc.ndcg@10", "min"),
    ("retrieval_page.hit@1", "min"),
    ("retrieval_page.hit@5", "min"),
    ("retrieval_page.mrr@10", "min"),
    ("fact_recall", "min"),
    ("all_facts_rate", "min"),
    ("fact_on_expected_page", "min"),
    ("citation_precision", "min"),
    ("citation_validity", "min"),
    ("abstention.recall", "min"),
    ("false_refusal_rate", "max"),
    ("latency_s.total.p95", "max"),
]
PROPOSED_SCOPES = ("tune", "heldout")
# Extractive answers only quote the corpus: when every quote is verbatim, one that is not is a bug.
INVARIANTS = {"citation_validity": 1.0}
# Latency is no rate: the bound catches an order-of-magnitude regression (a model reloaded per question),
# not the noise of the machine.
LATENCY_FACTOR, LATENCY_FLOOR_S = 5.0, 1.5


class GateError(AssistantError, ValueError):
    """The thresholds file or the results cannot be read (message in French)."""


def _fr(value: float, digits: int = 4) -> str:
    """A number the French way: « 0,8108 », « 2,4 »."""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return (text or "0").replace(".", ",").replace("-", "−")


def denominator(metric: str, summary: dict[str, Any]) -> tuple[int | None, str]:
    """Over how many items ``metric`` is a rate in ``summary``, and their French unit; (None, "s") for latency."""
    for prefix, count_path, unit in _DENOMINATORS:
        if metric == prefix or (prefix.endswith(".") and metric.startswith(prefix)):
            node: Any = summary
            for part in count_path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            return (int(node) if isinstance(node, int | float) else None), unit
    return None, "s" if metric.startswith("latency_s.") else ""


# --------------------------------------------------------------------------- thresholds file


@dataclass(frozen=True)
class Threshold:
    set_name: str
    scope: str
    metric: str
    kind: str  # "min" or "max"
    bound: float
    measured: float | None = None  # when the bound was set


def load_thresholds(path: Path = THRESHOLDS_FILE) -> list[Threshold]:
    """Every threshold of the file, in file order; :class:`GateError` (French) on any problem."""
    if not path.is_file():
        raise GateError(f"Fichier de seuils introuvable : {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GateError(f"{path} : TOML invalide ({exc}).") from None
    if set(data) & set(KINDS):
        raise GateError(
            f"{path} : ancien format ([min], [max]) : les seuils se rangent par jeu et par partie "
            "([golden.heldout], [real-docs.tune]…) ; produisez-les avec « python -m evals thresholds --write »."
        )
    out: list[Threshold] = []
    problems: list[str] = []
    for set_name, scopes in data.items():
        if not isinstance(scopes, dict):
            problems.append(f"« {set_name} » doit être une table de parties ([{set_name}.heldout]…)")
            continue
        for scope, table in scopes.items():
            where = f"[{set_name}.{scope}]"
            if scope not in SCOPES or not isinstance(table, dict):
                problems.append(f"{where} : partie inconnue (parties possibles : {', '.join(SCOPES)})")
                continue
            for metric, spec in table.items():
                kinds = [k for k in KINDS if isinstance(spec, dict) and k in spec]
                extra = set(spec) - {*KINDS, "measured"} if isinstance(spec, dict) else set()
                value = spec.get(kinds[0]) if len(kinds) == 1 else None
                measured = spec.get("measured") if isinstance(spec, dict) else None
                if (
                    len(kinds) != 1
                    or extra
                    or not isinstance(value, int | float)
                    or isinstance(value, bool)
                    or (measured is not None and not isinstance(measured, int | float))
                ):
                    problems.append(
                        f"{where} « {metric} » : attendu {{ min = 0.80, measured = 0.87 }} "
                        "ou { max = …, measured = … }"
                    )
                    continue
                out.append(
                    Threshold(
                        set_name, scope, str(metric), kinds[0], float(value),
                        None if measured is None else float(measured),
                    )
                )
    if problems:
        raise GateError(f"{path} :\n" + "\n".join(problems))
    if not out:
        raise GateError(f"{path} : aucun seuil défini.")
    return out


def threshold_sets(thresholds: Sequence[Threshold]) -> list[str]:
    """The sets named in the thresholds, in file order: those the gate evaluates."""
    return list(dict.fromkeys(t.set_name for t in thresholds))


# --------------------------------------------------------------------------- checking a run


@dataclass(frozen=True)
class Check:
    threshold: Threshold
    value: float | None  # None: the metric is absent from the run
    n: int | None = None  # items the metric is a rate of, in the part it gates
    unit: str = "question"

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        t = self.threshold
        return self.value >= t.bound if t.kind == "min" else self.value <= t.bound

    @property
    def margin(self) -> float | None:
        """Distance to the bound, in items of the part (questions) or in seconds for latency."""
        t = self.threshold
        if self.value is None:
            return None
        if self.n:
            return metrics.margin_in_items(self.value, t.bound, self.n, t.kind)
        if self.unit == "s":
            return t.bound - self.value if t.kind == "max" else self.value - t.bound
        return None

    def line(self) -> str:
        t = self.threshold
        where = f"{t.set_name} · {SCOPE_LABELS.get(t.scope, t.scope)}"
        sign = "≥" if t.kind == "min" else "≤"
        status = "OK   " if self.ok else "ÉCHEC"
        if self.value is None:
            return f"{status} {where:<34} {t.metric:<24} absente  (seuil {sign} {_fr(t.bound)})"
        margin = self.margin
        if margin is None:
            tail = ""
        elif self.unit == "s":
            tail = f" · marge : {_fr(margin, 2)} s"
        else:
            plural = "s" if abs(margin) >= 2 and not self.unit.endswith("s") else ""
            tail = f" · marge : {_fr(margin, 1)} {self.unit}{plural} (sur {self.n})"
        return f"{status} {where:<34} {t.metric:<24} mesuré {_fr(self.value):>6}  seuil {sign} {_fr(t.bound)}{tail}"


@dataclass(frozen=True)
class SkippedSet:
    name: str
    reason: str

    def line(self) -> str:
        return f"IGNORÉ {self.name} : {self.reason}"


@dataclass
class GateReport:
    checks: list[Check]
    skipped: list[SkippedSet]

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def lines(self) -> list[str]:
        out = [c.line() for c in self.checks] + [s.line() for s in self.skipped]
        if self.failed:
            out.append(f"Porte qualité : ÉCHEC ({len(self.failed)} seuil(s) non respecté(s) sur {len(self.checks)}).")
        else:
            out.append(f"Porte qualité : OK ({len(self.checks)} seuils respectés).")
        if self.skipped:
            out.append(f"Jeu(x) ignoré(s), sans effet sur la porte : {', '.join(s.name for s in self.skipped)}.")
        return out


def scope_summary(set_summary: dict[str, Any] | None, scope: str) -> dict[str, Any] | None:
    """The part of a set summary a threshold looks at (None when the run has no such part)."""
    if not set_summary:
        return None
    if scope == "all":
        return set_summary
    if scope == "hard_layout":
        return set_summary.get("hard_layout")
    return (set_summary.get("splits") or {}).get(scope)


def base_set_summaries(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Set name → summary of the base configuration (the first one) of a run."""
    configs = results.get("configs") or []
    if not configs:
        return {}
    return {name: s["summary"] for name, s in (configs[0].get("sets") or {}).items() if s.get("summary")}


def skipped_sets(results: dict[str, Any]) -> dict[str, str]:
    return {name: info["skipped"] for name, info in (results.get("sets") or {}).items() if info.get("skipped")}


def gate_results(results: dict[str, Any], thresholds: Sequence[Threshold]) -> GateReport:
    """Check each threshold against the run; a set skipped for absent data is reported, not failed.

    A threshold whose set, part or metric is missing from the run fails.
    """
    summaries = base_set_summaries(results)
    skipped = skipped_sets(results)
    if not summaries and not skipped:
        raise GateError("Les résultats ne contiennent aucun jeu évalué.")
    checks: list[Check] = []
    reported: list[SkippedSet] = []
    for t in thresholds:
        if t.set_name in skipped and t.set_name not in summaries:
            if all(s.name != t.set_name for s in reported):
                reported.append(SkippedSet(t.set_name, skipped[t.set_name]))
            continue
        part = scope_summary(summaries.get(t.set_name), t.scope)
        value = flatten(part).get(t.metric) if part else None
        n, unit = denominator(t.metric, part) if part else (None, "question")
        checks.append(Check(t, value, n, unit))
    return GateReport(checks, reported)


# --------------------------------------------------------------------------- proposing thresholds


def propose_scope(summary: dict[str, Any]) -> tuple[list[tuple[str, str, float, float, int | None]], list[str]]:
    """Bounds for one part: ``(metric, kind, bound, measured, n)``, and notes on the metrics left out.

    Rates over n items: ``metrics.rate_bound`` (two items of margin, rounded outward). A bound that
    would be vacuous (a minimum of 0, a maximum of 1: too few items to judge) is left out.
    """
    flat = flatten(summary)
    proposed: list[tuple[str, str, float, float, int | None]] = []
    notes: list[str] = []
    for metric, kind in PROPOSED:
        measured = flat.get(metric)
        if measured is None:
            continue
        n, unit = denominator(metric, summary)
        if metric in INVARIANTS and measured >= INVARIANTS[metric]:
            proposed.append((metric, kind, INVARIANTS[metric], measured, n))
            continue
        if unit == "s":
            bound = max(LATENCY_FLOOR_S, metrics.ceil_to(measured * LATENCY_FACTOR, 1))
            proposed.append((metric, kind, bound, measured, None))
            continue
        if not n:
            continue
        bound = metrics.rate_bound(measured, n, kind, MARGIN_UNITS)
        if (kind == "min" and bound <= 0.0) or (kind == "max" and bound >= 1.0):
            notes.append(f"{metric} non retenu : sur {n} {unit}(s), une marge de {MARGIN_UNITS} rendrait le seuil vide")
            continue
        proposed.append((metric, kind, bound, measured, n))
    return proposed, notes


def _scope_caption(summary: dict[str, Any]) -> str:
    refusals = summary.get("refusals") or {}
    return (
        f"{summary.get('questions', '?')} questions : {summary.get('answerable', '?')} dans le corpus, "
        f"{summary.get('out_of_corpus', '?')} hors corpus ({refusals.get('out_of_corpus_refused', '?')} refusée(s)), "
        f"{summary.get('answers_with_fact', '?')} réponses avec un fait, {summary.get('citations', '?')} citations "
        f"dans {summary.get('answers_with_citations', '?')} réponses"
    )


def _line(metric: str, kind: str, bound: float, measured: float | None) -> str:
    shown = "" if measured is None else f", measured = {round(measured, 4)}"
    return f'"{metric}" = {{ {kind} = {bound:.2f}{shown} }}'


_HEADER = """\
# Seuils de la porte qualité (`python -m evals gate`), par jeu et par moitié.
#
# FICHIER PRODUIT PAR `python -m evals thresholds --results evals/out/results.json --write` à partir d'un run
# (`python -m evals run --sets golden,real-docs --fresh`) : ne pas le modifier à la main.
# Règle : pour un taux mesuré sur n questions, seuil = mesure − 2/n (minimum) ou mesure + 2/n (maximum),
# arrondi vers l'extérieur à 2 décimales : la marge vaut au moins deux questions. Les citations sont mises
# en commun, mais une question déplace toutes les siennes : pour elles, n = les questions dont elles viennent.
# Un seuil qui serait vide (minimum 0, maximum 1 : trop peu de questions) n'est pas retenu.
# Exceptions : citation_validity reste à 1.0 quand toutes les citations sont littérales (une citation
# non littérale est un bogue) ; la latence p95 est bornée à max(1,5 s ; 5 × la mesure).
# On ne baisse jamais un seuil pour faire passer une modification : on corrige la modification, ou on
# explique dans le commit pourquoi la mesure elle-même a changé (nouveau jeu, nouveau corpus).
#
# Chaque ligne : "métrique" = { min|max = seuil, measured = valeur mesurée au moment du calcul }.
"""


def render_thresholds(
    summaries: dict[str, dict[str, Any]],
    meta: dict[str, Any],
    kept: Sequence[Threshold] = (),
    kept_reasons: dict[str, str] | None = None,
) -> str:
    """The thresholds file for freshly measured sets, plus the sections kept for sets not measured this time."""
    lines = [_HEADER]
    lines.append(f"# Run du {meta.get('created', '?')} · commit {meta.get('git_commit') or 'n/d'}")
    lines.append(
        f"# Embedder {meta.get('embedder', '?')} · réponse {meta.get('answer_mode', '?')} · "
        f"seuils produits le {dt.date.today().isoformat()}."
    )
    for set_name, summary in summaries.items():
        for scope in PROPOSED_SCOPES:
            part = scope_summary(summary, scope)
            if not part:
                continue
            proposed, notes = propose_scope(part)
            lines += ["", f"[{set_name}.{scope}]", f"# {_scope_caption(part)}"]
            lines += [f"# {note}" for note in notes]
            lines += [_line(metric, kind, bound, measured) for metric, kind, bound, measured, _ in proposed]
    by_part: dict[tuple[str, str], list[Threshold]] = {}
    for t in kept:
        if t.set_name not in summaries:
            by_part.setdefault((t.set_name, t.scope), []).append(t)
    for (set_name, scope), items in by_part.items():
        reason = (kept_reasons or {}).get(set_name, "jeu absent de ces résultats")
        lines += ["", f"[{set_name}.{scope}]", f"# Non remesuré ({reason}) : seuils repris du fichier précédent."]
        lines += [_line(t.metric, t.kind, t.bound, t.measured) for t in items]
    return "\n".join(lines) + "\n"


def propose_thresholds(
    results_list: Sequence[dict[str, Any]],
    current: Sequence[Threshold] = (),
    gateable: Sequence[str] | None = None,
) -> tuple[str, list[str]]:
    """TOML text of the thresholds proposed from one or more runs, and notes for the maintainer (French).

    Sets measured in the runs get new bounds (a later run wins); sets of ``current`` not measured this
    time (real-docs without ``../shared``) keep theirs. Only sets the gate can run by name (``gateable``)
    are proposed.
    """
    summaries: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    notes: list[str] = []
    meta: dict[str, Any] = {}
    for results in results_list:
        for name, summary in base_set_summaries(results).items():
            if gateable is not None and name not in gateable:
                notes.append(f"Jeu « {name} » non retenu : la porte ne sait pas l'évaluer par son nom.")
                continue
            summaries[name] = summary
            skipped.pop(name, None)
        for name, reason in skipped_sets(results).items():
            if name not in summaries:
                skipped[name] = reason
        configs = results.get("configs") or []
        settings = configs[0].get("settings", {}) if configs else {}
        meta = dict(results.get("meta") or {}) | {
            "embedder": settings.get("embedder", "?"), "answer_mode": settings.get("answer_mode", "?")
        }
    if not summaries:
        raise GateError("Aucun jeu évalué dans ces résultats : impossible de proposer des seuils.")
    kept = [t for t in current if t.set_name not in summaries]
    for name in threshold_sets(kept):
        notes.append(f"Jeu « {name} » non remesuré ({skipped.get(name, 'absent des résultats')}) : seuils conservés.")
    return render_thresholds(summaries, meta, kept, skipped), notes
