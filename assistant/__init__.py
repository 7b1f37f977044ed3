"""The assistant library: sourced answers from the indexed corpus.

    from assistant import Assistant, Settings
    answer = Assistant(Settings.from_env()).answer("Qu'est-ce qu'un catalyseur territorial ?")
    print(answer.text, [c.passage.title for c in answer.citations])

The names below are loaded on first use: ``Assistant`` and ``Filters`` bring Chroma, LangChain and the
embedder code (seconds), which ``import assistant.settings`` or a command line's ``--help`` must not pay.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistant.answer import Assistant
    from assistant.retrieve import Filters
    from assistant.schema import Answer
    from assistant.settings import Settings

__all__ = ["Answer", "Assistant", "Filters", "Settings"]

_HOMES = {
    "Answer": "assistant.schema",
    "Assistant": "assistant.answer",
    "Filters": "assistant.retrieve",
    "Settings": "assistant.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
