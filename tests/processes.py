"""Child processes seen from /proc, for the tests that kill a job and check that nothing it started is left."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(condition: Callable[[], object], seconds: float = 300.0) -> bool:
    """Whether ``condition()`` came true within ``seconds``: a guard against hanging, not a measure, so it is
    generous: on a machine loaded by other jobs, a child that imports, indexes and starts its own child can
    take well over a minute."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def as_from_a_terminal() -> None:
    """The job starts as a terminal starts it: SIGINT delivered and not ignored. An ignored or blocked SIGINT
    survives exec: a pytest launched as a background job of a non-interactive shell has SIGINT ignored (in the
    clean-clone CI, the job then never saw the Ctrl+C and ended 0). tests/sigint_guard.py resets the session
    and fails a test that changes it; this keeps the test right when run without that plugin."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGINT, signal.SIG_DFL)
