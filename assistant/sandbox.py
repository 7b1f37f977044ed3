"""Work on untrusted files in a child process under a time cap and a memory cap.

The readers of corpus files (:mod:`ingest.load_worker`), the OCR (:mod:`ingest.ocr_worker`) and the page
previews (:mod:`assistant.page_preview_worker`) each run in a fresh interpreter: a file that hangs a parser or
blows its memory up costs that one task, and the parent's threads (Chroma, the embedder, the web server) are
never forked. The parent sets the time cap (:func:`run_worker`); the worker caps its own address space first
thing (:func:`cap_memory`), because a ``preexec_fn`` is unsafe in a parent that holds threads.

A worker answers with one JSON object on stdout (``{"error": French reason}`` for a failure it caught); the
caller turns a timeout or a missing answer into its own French reason.

A worker never outlives its parent: the time cap is the parent's, so a parent killed by ``kill -9`` would
leave a hung worker running for ever. Each one starts through :mod:`assistant.sandbox_child`, which asks the
kernel to kill it when its parent dies (:func:`die_with_parent`) before it runs the worker's module.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

# The project's root: ``python -m ingest.load_worker`` imports the project's packages from there.
ROOT = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG = 1


class WorkerTimeout(AssistantError):
    """The worker ran past its time cap and was killed (callers say what was interrupted)."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"traitement interrompu après {timeout_s:g} s")
        self.timeout_s = timeout_s


@dataclass(frozen=True)
class WorkerResult:
    answer: dict[str, Any] | None  # the JSON object the worker wrote; None when it wrote none (killed, crashed)
    returncode: int  # negative: killed by that signal (a crash on a refused allocation, the OOM killer)

    @property
    def killed(self) -> bool:
        return self.returncode < 0

    def checked(self, failure: Callable[[str], Exception], no_answer: str) -> dict[str, Any]:
        """The answer, or ``failure(reason)`` raised: ``no_answer`` when the worker wrote none, else its error."""
        if self.answer is None:
            raise failure(no_answer)
        if "error" in self.answer:
            raise failure(str(self.answer["error"]))
        return self.answer


def run_worker(module: str, args: Sequence[str], *, timeout_s: float, stdin: bytes | None = None,
               own_group: bool = False) -> WorkerResult:
    """Run ``python -m module *args`` (``stdin`` on its standard input), killed past ``timeout_s``, and killed
    with this process if it dies first (even by ``kill -9``). Raises :class:`WorkerTimeout`.

    ``own_group``: the child gets its own process group, so a terminal's Ctrl+C reaches the job that started
    it (which decides: it stops) and not the child, which would otherwise fail its task on the way and print
    KeyboardInterrupt's traceback mid-import. The child then ends with the job: the kernel kills it when the
    job's process ends, however it ends.
    """
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "assistant.sandbox_child", str(os.getpid()), module, *args], input=stdin,
            capture_output=True, timeout=timeout_s, cwd=ROOT, check=False, process_group=0 if own_group else None,
        )
    except subprocess.TimeoutExpired:
        raise WorkerTimeout(timeout_s) from None
    try:
        answer = json.loads(proc.stdout.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        answer = None
    return WorkerResult(answer if isinstance(answer, dict) else None, proc.returncode)


def cap_memory(memory_mb: int) -> None:
    """Cap this process's address space at ``memory_mb`` MiB: past it, allocations fail (MemoryError)."""
    cap = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (``PR_SET_PDEATHSIG``), with a watchdog thread
    where that call is unavailable. ``parent`` is the pid the parent had: one that died before this call
    took effect has already left this process to another parent, which is checked here.

    Linux sends the signal when the *thread* that started this process ends: :func:`run_worker` waits for
    its child in that thread, so only the death of the whole parent process ends it early.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watchdog below still applies
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()
