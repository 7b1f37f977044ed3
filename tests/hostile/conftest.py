"""The reliability suite's fixtures: the read-only index of the fault tests, shared with them."""

from tests.test_faults import env, read_only_index, shared_dir  # noqa: F401  (pytest fixtures, used by name)
