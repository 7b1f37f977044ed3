"""``python -m evals run|gate|thresholds``: the parser and the commands are in :mod:`evals.cli`."""

import sys

from evals.cli import main

sys.exit(main())
