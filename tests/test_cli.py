"""``alliances`` (cli.py): one parser for every command, French help, dispatch, exit codes and lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cli
from assistant.settings import Settings
from tests.conftest import ROOT

COMMANDS = ("ingest", "search", "ask", "feedback", "serve", "eval")


def _env(settings: Settings) -> dict[str, str]:
    return {"ASSISTANT_EMBEDDER": "hash:256", "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
            "ASSISTANT_DATA_DIR": str(settings.data_dir), "ASSISTANT_CHUNK_WORDS": str(settings.chunk_words),
            "ASSISTANT_CHUNK_OVERLAP_WORDS": str(settings.chunk_overlap_words)}


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: alliances") and "indexer le corpus" in out
    assert all(f"\n    {command} " in out for command in COMMANDS), out


@pytest.mark.parametrize("command", [
    ["ingest"], ["ingest", "fetch"], ["search"], ["ask"], ["feedback"], ["serve"],
    ["eval"], ["eval", "run"], ["eval", "gate"], ["eval", "thresholds"],
])
def test_every_command_has_its_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: alliances {' '.join(command)}")
    if command[0] != "eval" or len(command) > 1:
        assert "--db" in out or "--dest" in out or "--results" in out


def test_shared_options_have_one_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["ingest"], ["search"], ["ask"], ["feedback"], ["serve"], ["eval", "run"]):
        assert cli.main([*command, "--help"]) == 0
        assert "ASSISTANT_DATA_DIR ou data/" in " ".join(capsys.readouterr().out.split())


def test_usage_error_and_french_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["indexer"]) == 2
    assert "invalid choice" in capsys.readouterr().err  # argparse's own words
    absent = tmp_path / "absent.json"
    code = cli.main(["eval", "thresholds", "--results", str(absent), "--thresholds", str(tmp_path / "seuils.toml")])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"Erreur : Résultats introuvables : {absent}\n"


def test_ingest_then_ask_without_gradio(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["ingest", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passages"] > 0 and not report["failed"]

    # `ask` in a fresh process: the answer, and Gradio (the web app's) never imported on the way.
    script = ("import json, sys, cli\n"
              "code = cli.main(['ask', 'Combien de cibles compte l Agenda 2030 ?', '--json'])\n"
              "print(json.dumps({'code': code, 'gradio': 'gradio' in sys.modules, 'app': 'app' in sys.modules}))\n")
    env = os.environ | _env(settings) | {"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    answer, status = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert status == {"code": 0, "gradio": False, "app": False}
    assert answer["question"].startswith("Combien de cibles")


def test_batch_questions_report_each_malformed_row_and_answer_the_others(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    assert cli.main(["ingest", "--json"]) == 0
    capsys.readouterr()
    rows = [
        b'{"id": "ok1", "question": "Combien de cibles compte l\'Agenda 2030 ?"}',
        b'{"id": "sans-question"}',
        b"42",
        b'["une", "liste"]',
        b'{"question": "Et ensuite ?", "history": "bonjour"}',
        '{"question": "Où en est l\'été ?"}'.encode("latin-1"),
        b"",
        b'{"question": 7}',
        b"{pas du json",
        b'{"id": "ok2", "question": "Que propose le MOOC des alliances ?", '
        b'"history": [{"role": "user", "content": "Bonjour"}]}',
    ]
    questions = tmp_path / "questions.jsonl"
    questions.write_bytes(b"\n".join(rows) + b"\n")
    for command in ("ask", "search"):
        assert cli.main([command, "--questions", str(questions)]) == 1
        captured = capsys.readouterr()
        assert [json.loads(line)["id"] for line in captured.out.splitlines()] == ["ok1", "ok2"]
        errors = captured.err.splitlines()
        assert [int(line.split("ligne ")[1].split(" ")[0]) for line in errors] == [2, 3, 4, 5, 6, 8, 9]
        assert all(line.startswith("Erreur : ligne ") and line.endswith("ligne ignorée.") for line in errors)
        assert "Traceback" not in captured.err
    assert "UTF-8" in errors[4] and "history" in errors[3] and "question" in errors[0]

    good = tmp_path / "bonnes.jsonl"
    good.write_bytes(rows[0] + b"\n")
    assert cli.main(["ask", "--questions", str(good)]) == 0
