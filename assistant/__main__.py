"""``python -m assistant search|ask|feedback``: the parsers and commands are in :mod:`assistant.cli`."""

import sys

from assistant.cli import main

sys.exit(main())
