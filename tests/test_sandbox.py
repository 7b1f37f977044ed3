"""The one launcher of capped child processes (readers, OCR, previews): answers, kills, time and memory caps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.sandbox import ROOT, WorkerResult, WorkerTimeout, run_worker
from tests.processes import alive, wait_until

WORKER = "tests.sandbox_worker"


def test_the_workers_json_answer_comes_back() -> None:
    done = run_worker(WORKER, ["echo"], stdin='{"page": 3, "texte": "été"}'.encode(), timeout_s=60)
    assert done == WorkerResult({"page": 3, "texte": "été"}, 0)
    assert not done.killed


def test_checked_raises_the_callers_error_with_the_workers_reason_or_its_own() -> None:
    class Failure(Exception):
        pass

    assert WorkerResult({"pages": {}}, 0).checked(Failure, "aucune réponse") == {"pages": {}}
    with pytest.raises(Failure, match=r"^fichier illisible$"):
        WorkerResult({"error": "fichier illisible"}, 0).checked(Failure, "aucune réponse")
    with pytest.raises(Failure, match=r"^aucune réponse$"):
        WorkerResult(None, -9).checked(Failure, "aucune réponse")


def test_no_answer_when_the_worker_writes_junk_or_is_killed() -> None:
    assert run_worker(WORKER, ["junk"], timeout_s=60).answer is None
    killed = run_worker(WORKER, ["killed"], timeout_s=60)
    assert killed.answer is None and killed.killed and killed.returncode == -signal.SIGKILL


def test_past_its_time_cap_the_worker_is_killed(tmp_path: Path) -> None:
    where = tmp_path / "pid"
    with pytest.raises(WorkerTimeout, match=r"interrompu après 5 s") as info:
        run_worker(WORKER, ["hang", str(where)], timeout_s=5)
    assert info.value.timeout_s == 5
    pid = int(where.read_text(encoding="utf-8"))
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(pid, 0)


def test_own_group_puts_the_worker_in_its_own_process_group() -> None:
    alone = run_worker(WORKER, ["group"], timeout_s=60, own_group=True).answer
    assert alone and alone["pgid"] == alone["pid"]
    shared = run_worker(WORKER, ["group"], timeout_s=60).answer
    assert shared and shared["pgid"] == os.getpgid(0)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to see the worker")
@pytest.mark.parametrize("own_group", [False, True])
def test_a_worker_dies_with_its_parent_killed_by_kill_9(tmp_path: Path, own_group: bool) -> None:
    """The time cap is the parent's: without the kernel's help a hung worker would outlive a killed parent."""
    where = tmp_path / "pid"
    parent = subprocess.Popen(
        [sys.executable, "-c", "from assistant.sandbox import run_worker; "
         f"run_worker({WORKER!r}, ['hang', {str(where)!r}], timeout_s=3600, own_group={own_group})"],
        cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    pid = 0
    try:
        assert wait_until(lambda: where.exists() and where.read_text(encoding="utf-8")), "the worker never started"
        pid = int(where.read_text(encoding="utf-8"))
        parent.kill()
        parent.wait(timeout=60)
        assert wait_until(lambda: not alive(pid)), "the worker outlived its parent"
    finally:
        parent.kill()
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_memory_cap_makes_a_big_allocation_fail_in_the_worker_only() -> None:
    assert run_worker(WORKER, ["allocate", "512", "4096"], timeout_s=60).answer == {"error": "mémoire dépassée"}
    assert run_worker(WORKER, ["allocate", "512", "16"], timeout_s=60).answer == {"allocated_mb": 16}
