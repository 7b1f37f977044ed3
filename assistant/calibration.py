"""Numbers fitted for one embedder: refusal floors, the sentence ranker, the short-answer bar.

A cosine of 0.82 means "close" for multilingual-e5 and "unrelated" for another
model, so every number that depends on the embedder lives in a profile named
after it (``assistant/calibration/*.json``), never in code or in a default
setting. The refusal floors are cosines of the dense search's best passage, which depends on how passages
are scored (``ASSISTANT_PASSAGE_VECTORS``: a best unit's cosine runs higher than a whole passage's), so a
profile is also keyed by that mode: ``<embedder>.json`` for ``text``, ``<embedder>+<mode>.json`` for the
others. An embedder (or mode) without a profile runs with :data:`UNCALIBRATED`: no
cosine floor at all (only the lexical rules refuse) and ranker weights that
use no absolute cosine, and the assistant says so once in the log.

Profiles are written by ``python -m evals.calibrate`` (refusal, short answer,
on the tuning halves of the evaluation sets) and ``python -m evals.fit_ranker``
(ranker, on the tuning half of PIAF); each records what it was fitted on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.ranker import FEATURES, RankerWeights
from assistant.settings import Settings

PROFILES_DIR = Path(__file__).resolve().parent / "calibration"
DEFAULT_PROFILE = "uncalibrated.json"


class CalibrationError(AssistantError, ValueError):
    """A calibration profile that cannot be used (message in French)."""


@dataclass(frozen=True)
class Calibration:
    embedder: str  # the embedder name the numbers were fitted for ("*" for the uncalibrated profile)
    # Refusal: below relevance_floor (best passage cosine) nothing is close enough; between it and
    # uncertain_floor, refuse too when more than max_unknown_share of the question's terms are unknown.
    relevance_floor: float
    uncertain_floor: float
    max_unknown_share: float
    # «Not covered»: the selected quotes must hold at least this share of the question's key terms
    # (rarity-weighted), unless the top quote's probability reaches confident_answer.
    coverage_floor: float
    confident_answer: float
    # Shown only above this confidence: «En bref : …».
    short_answer_floor: float
    ranker: RankerWeights
    fitted_on: dict[str, str] = field(default_factory=dict)
    passage_vectors: str = "text"  # the ASSISTANT_PASSAGE_VECTORS mode the floors were fitted with

    @property
    def calibrated(self) -> bool:
        return self.embedder != "*"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ranker"] = {
            "names": list(self.ranker.names), "coef": list(self.ranker.coef), "intercept": self.ranker.intercept,
        }
        return data

    def with_changes(self, **changes: Any) -> Calibration:
        return replace(self, **changes)

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str = "") -> Calibration:
        try:
            r = data["ranker"]
            ranker = RankerWeights(tuple(r["names"]), tuple(float(x) for x in r["coef"]), float(r["intercept"]))
            cal = cls(
                embedder=str(data["embedder"]),
                relevance_floor=float(data["relevance_floor"]),
                uncertain_floor=float(data["uncertain_floor"]),
                max_unknown_share=float(data["max_unknown_share"]),
                coverage_floor=float(data["coverage_floor"]),
                confident_answer=float(data["confident_answer"]),
                short_answer_floor=float(data["short_answer_floor"]),
                ranker=ranker,
                fitted_on={str(k): str(v) for k, v in dict(data.get("fitted_on", {})).items()},
                passage_vectors=str(data.get("passage_vectors", "text")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"Profil de calibration illisible {where} : {exc}") from None
        if tuple(ranker.names) != FEATURES or len(ranker.coef) != len(FEATURES):
            raise CalibrationError(
                f"Profil de calibration {where} ajusté sur d'autres caractéristiques : "
                "relancez python -m evals.fit_ranker."
            )
        return cal


def _read(path: Path) -> Calibration:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"Profil de calibration illisible {path} : {exc}") from None
    return Calibration.from_json(data, str(path))


def profile_path(embedder_name: str, profiles_dir: Path = PROFILES_DIR, passage_vectors: str = "text") -> Path:
    """Where the profile of ``embedder_name`` with that passage-vectors mode is (or would be) stored."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder_name)
    mode = "" if passage_vectors == "text" else "+" + "".join(c if c.isalnum() else "-" for c in passage_vectors)
    return profiles_dir / f"{safe}{mode}.json"


def load_calibration(embedder_name: str, profiles_dir: Path = PROFILES_DIR,
                     passage_vectors: str = "text") -> Calibration:
    """The profile of this embedder and mode, else the uncalibrated one (never another embedder's or
    another mode's numbers)."""
    own = profile_path(embedder_name, profiles_dir, passage_vectors)
    if own.is_file():
        cal = _read(own)
        if cal.embedder != embedder_name:
            raise CalibrationError(
                f"Le profil {own} a été calibré pour « {cal.embedder} », pas pour « {embedder_name} »."
            )
        if cal.passage_vectors != passage_vectors:
            raise CalibrationError(
                f"Le profil {own} a été calibré avec ASSISTANT_PASSAGE_VECTORS={cal.passage_vectors}, "
                f"pas {passage_vectors}."
            )
        return cal
    return _read(profiles_dir / DEFAULT_PROFILE)


def save_calibration(cal: Calibration, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cal.to_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


_OVERRIDABLE = ("relevance_floor", "uncertain_floor", "max_unknown_share", "coverage_floor", "short_answer_floor")


def calibration_for(settings: Settings, embedder_name: str) -> Calibration:
    """The embedder's profile, with the values the settings override (ASSISTANT_RELEVANCE_FLOOR…)."""
    cal = load_calibration(embedder_name, settings.calibration_dir or PROFILES_DIR, settings.passage_vectors)
    changes = {k: getattr(settings, k) for k in _OVERRIDABLE if getattr(settings, k) is not None}
    return cal.with_changes(**changes) if changes else cal
