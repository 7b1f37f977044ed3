"""The one base of every error the project raises on purpose, with a French message.

The app, ``python -m assistant``, ``python -m ingest`` and ``python -m evals``
catch this one type at their boundary and show its message as it is; anything
else is a bug, logged with its traceback and shown as a generic sentence.
"""

from __future__ import annotations


class AssistantError(Exception):
    """An expected failure; ``str(exc)`` is one French sentence for the user or the maintainer."""
