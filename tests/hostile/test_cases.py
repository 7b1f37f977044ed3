"""The case index of the reliability suite names only tests that exist."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT
from tests.hostile.cases import CASES, listed

pytestmark = pytest.mark.hostile


def _test_names(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_listed_test_exists(case: str) -> None:
    for ref in CASES[case]:
        path, _, name = ref.partition("::")
        assert (ROOT / path).is_file(), ref
        names = _test_names(path)
        assert names, ref
        assert not name or name in names, ref


def test_listing_matches_node_ids() -> None:
    assert listed("tests/test_faults.py::test_feedback_file_setting")
    assert listed("tests/test_app.py::test_traversal_and_ssrf_are_refused[/documents/../x]")
    assert not listed("tests/test_app.py::test_traversal_and_ssrf_are_refused_not")
    assert not listed("tests/test_app.py::test_clear")
