"""``python -m assistant.sandbox_child PARENT_PID MODULE [ARG…]``: how :func:`assistant.sandbox.run_worker` starts a
worker. The child first ties its life to its parent's (:func:`assistant.sandbox.die_with_parent`), then runs
``MODULE`` as ``python -m MODULE ARG…`` would: no worker can forget to, and none outlives a killed job.
"""

from __future__ import annotations

import runpy
import sys

from assistant.sandbox import die_with_parent


def main(argv: list[str]) -> None:
    parent, module, args = int(argv[0]), argv[1], argv[2:]
    die_with_parent(parent)
    sys.argv = [module, *args]  # runpy puts the module's file name in sys.argv[0]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
