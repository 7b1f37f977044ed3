"""One error boundary: every error raised on purpose is an AssistantError whose message is shown as it is."""

from __future__ import annotations

import importlib
import inspect

import pytest

from assistant.errors import AssistantError

MODULES = [
    "assistant.limits", "assistant.calibration", "assistant.embeddings", "assistant.feedback", "assistant.glossary",
    "assistant.lexical", "assistant.llm", "assistant.settings", "assistant.store", "ingest.fetch", "ingest.index",
    "ingest.formats", "ingest.split", "ingest.manifest", "evals.gate", "evals.run", "evals.sets",
]


@pytest.mark.parametrize("module", MODULES)
def test_every_project_error_is_an_assistant_error(module: str) -> None:
    mod = importlib.import_module(module)
    own = [obj for _, obj in inspect.getmembers(mod, inspect.isclass)
           if obj.__module__ == mod.__name__ and issubclass(obj, Exception)]
    assert own, module
    assert all(issubclass(cls, AssistantError) for cls in own), [c.__name__ for c in own]


def test_the_app_shows_the_french_message_of_any_of_them() -> None:
    from assistant.glossary import GlossaryError
    from assistant.lexical import LexicalIndexError
    from webui.context import GENERIC_ERROR, user_error

    for exc in (GlossaryError("Glossaire illisible : ligne 3."), LexicalIndexError("Index lexical abîmé.")):
        assert user_error(exc) == str(exc)
    assert user_error(RuntimeError("boom")) == GENERIC_ERROR


def test_the_command_line_prints_one_french_line_for_a_bad_setting(capsys: pytest.CaptureFixture[str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.cli import main

    monkeypatch.setenv("ASSISTANT_K", "beaucoup")
    assert main(["search", "ODD"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Erreur : ") and "ASSISTANT_K" in err and "Traceback" not in err
