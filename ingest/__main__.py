"""``python -m ingest [fetch]``: the parser and the commands are in :mod:`ingest.cli`."""

import sys

from ingest.cli import main

sys.exit(main())
