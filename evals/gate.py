"""The quality gate: compare a run's headline figures with the versioned thresholds.

``evals/thresholds.toml`` has a ``[min]`` table (figures that must not fall
below) and a ``[max]`` table (figures that must not rise above, e.g. latency),
keyed by the dotted names of the run summary (``retrieval_doc.hit@5``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.run import flatten

THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.toml"


class GateError(ValueError):
    """The thresholds file or the results cannot be read (message in French)."""


@dataclass(frozen=True)
class Check:
    metric: str
    value: float | None
    bound: float
    kind: str  # "min" or "max"

    @property
    def ok(self) -> bool:
        if self.value is None:
            return False
        return self.value >= self.bound if self.kind == "min" else self.value <= self.bound

    def line(self) -> str:
        sign = "≥" if self.kind == "min" else "≤"
        shown = "absente" if self.value is None else f"{self.value:.4g}"
        return f"{'OK   ' if self.ok else 'ÉCHEC'} {self.metric:<32} {shown:>8}  (seuil {sign} {self.bound:g})"


def load_thresholds(path: Path = THRESHOLDS_FILE) -> dict[str, dict[str, float]]:
    if not path.is_file():
        raise GateError(f"Fichier de seuils introuvable : {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GateError(f"{path} : TOML invalide ({exc}).") from None
    out: dict[str, dict[str, float]] = {}
    for kind in ("min", "max"):
        table = data.get(kind, {})
        if not isinstance(table, dict) or not all(isinstance(v, int | float) for v in table.values()):
            raise GateError(f"{path} : la table [{kind}] doit associer des noms de métriques à des nombres.")
        out[kind] = {str(k): float(v) for k, v in table.items()}
    if not out["min"] and not out["max"]:
        raise GateError(f"{path} : aucun seuil défini ([min] ou [max]).")
    return out


def check_summary(summary: dict[str, Any], thresholds: dict[str, dict[str, float]]) -> list[Check]:
    """One :class:`Check` per threshold; a metric missing from the summary fails."""
    flat = flatten(summary)
    return [
        Check(metric, flat.get(metric), bound, kind)
        for kind in ("min", "max")
        for metric, bound in sorted(thresholds.get(kind, {}).items())
    ]


def gate_results(results: dict[str, Any], thresholds: dict[str, dict[str, float]]) -> list[Check]:
    """The gate looks at the base configuration (the first one) of a run."""
    configs = results.get("configs") or []
    if not configs or not configs[0].get("summary"):
        raise GateError("Les résultats ne contiennent aucune configuration évaluée.")
    return check_summary(configs[0]["summary"], thresholds)
