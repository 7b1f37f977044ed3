"""A worker for tests/test_sandbox.py, run as ``python -m tests.sandbox_worker ACTION [ARG…]`` like the real ones."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from assistant.sandbox import cap_memory


def main() -> None:
    action, args = sys.argv[1], sys.argv[2:]
    if action == "echo":
        sys.stdout.write(sys.stdin.read())
    elif action == "group":
        json.dump({"pid": os.getpid(), "pgid": os.getpgid(0)}, sys.stdout)
    elif action == "hang":  # tells where it is, then never answers
        Path(args[0]).write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(3600)
    elif action == "junk":
        sys.stdout.write("pas du JSON")
    elif action == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "allocate":  # MEMORY_CAP_MB SIZE_MB
        cap_memory(int(args[0]))
        try:
            block = bytearray(int(args[1]) * 1024 * 1024)
        except MemoryError:
            json.dump({"error": "mémoire dépassée"}, sys.stdout)
        else:
            json.dump({"allocated_mb": len(block) // (1024 * 1024)}, sys.stdout)


if __name__ == "__main__":
    main()
