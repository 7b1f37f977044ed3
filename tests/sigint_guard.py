"""SIGINT in pytest's own process: the session starts from a terminal's state, and no test may change it.

An ignored or blocked SIGINT survives exec: left so in pytest's process, it reaches every child a later test
starts, and an ingestion job started by the Ctrl+C test then never sees its Ctrl+C (it ended 0 in a CI
session). So a test (its set-up, call or tear-down) that leaves SIGINT changed fails, named, and the state is
put back for the next one; and a pytest started with SIGINT ignored or blocked (a POSIX shell without job
control starts ``command &`` so, and keeps it across exec) gets Python's default handler back, said in the
report's header.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Generator
from pathlib import Path

import pytest

SigintState = tuple[object, bool, bool]  # Python's handler, ignored by the kernel, blocked in this thread
_INHERITED = pytest.StashKey[SigintState]()


def sigint_state() -> SigintState:
    """SIGINT as this process holds it. The kernel's ignored bit is read from /proc: a C library can ignore
    the signal without Python's handler knowing, and that is what a child inherits."""
    handler = signal.getsignal(signal.SIGINT)
    ignored = handler == signal.SIG_IGN
    try:
        found = re.search(r"^SigIgn:\s*([0-9a-f]+)", Path("/proc/self/status").read_text(), re.MULTILINE)
    except OSError:  # not Linux: Python's view only
        found = None
    if found:
        ignored = bool(int(found.group(1), 16) >> (signal.SIGINT - 1) & 1)
    return handler, ignored, signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def restore(state: SigintState) -> None:
    handler, _, blocked = state
    if handler is not None:  # None: installed outside Python, nothing to put back from here
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
    signal.pthread_sigmask(signal.SIG_BLOCK if blocked else signal.SIG_UNBLOCK, {signal.SIGINT})


def pytest_configure(config: pytest.Config) -> None:
    state = sigint_state()
    if state[1] or state[2]:
        config.stash[_INHERITED] = state
        restore((signal.default_int_handler, False, False))


def pytest_report_header(config: pytest.Config) -> str | None:
    inherited = config.stash.get(_INHERITED, None)
    if inherited is None:
        return None
    return (f"SIGINT was {'ignored' if inherited[1] else 'blocked'} when pytest started (inherited from what "
            "launched it): set back to Python's default for the tests")


def _keeps_sigint(item: pytest.Item, when: str) -> Generator[None, object, object]:
    before = sigint_state()
    try:
        result = yield
    finally:
        after = sigint_state()
        if after != before:
            restore(before)
    if after != before:
        pytest.fail(f"{item.nodeid} ({when}) leaves SIGINT changed in pytest's process: (handler, ignored, "
                    f"blocked) {before} -> {after}. Restore it: an ignored or blocked SIGINT survives exec, and "
                    "the children of later tests (the Ctrl+C ingestion test) would never see a Ctrl+C.",
                    pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _keeps_sigint(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _keeps_sigint(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    return (yield from _keeps_sigint(item, "teardown"))
