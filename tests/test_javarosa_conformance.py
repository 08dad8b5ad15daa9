"""The expression engine against JavaRosa's (ODK Collect's) own XPath test vectors.

The cases live in tests/data/javarosa_xpath_cases.json (what each field means is in its
"about"). A case that needs a function this engine lacks is skipped until the function is
registered; a documented difference asserts this engine's value, and fails once the engine
agrees with JavaRosa after all, so that the difference is dropped from the data and the docs.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any

import pytest

from yntymak_cli.forms.expressions import (
    SUPPORTED_FUNCTIONS,
    ExpressionError,
    MappingContext,
    evaluate,
    parse,
    to_bool,
    to_number,
    to_string,
)

from .conftest import DATA

DOC = json.loads((DATA / "javarosa_xpath_cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOC["cases"]
NOW = datetime.datetime.fromisoformat(DOC["now"])
KINDS = {"string", "number", "boolean", "date", "error"}


def _case_id(case: dict[str, Any]) -> str:
    m = re.fullmatch(r"XPathEvalTest line (\d+)", case["source"])
    where = f"L{m[1]}" if m else case["source"].split()[0].removesuffix(".java")
    return f"{where}: {case['expr']}"


def _number(value: Any) -> float:
    return float(value) if not isinstance(value, str) else float(value.replace("Infinity", "inf"))


def _same_number(got: float, want: float) -> bool:
    """NaN equals NaN; otherwise equal to 1e-9 relative (1e-12 near zero), as doubles allow."""
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    return got == want or math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)


def _instant(value: datetime.date) -> datetime.datetime:
    """A date or datetime as a comparable naive UTC (or wall-clock) datetime."""
    if not isinstance(value, datetime.datetime):
        return datetime.datetime.combine(value, datetime.time())
    if value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def _matches(kind: str, got: Any, want: Any) -> bool:
    if kind == "number":
        return _same_number(to_number(got), _number(want))
    if kind == "boolean":
        return to_bool(got) is want
    if kind == "string":
        return to_string(got) == want
    assert kind == "date", kind
    if not isinstance(got, datetime.date):
        return False
    if "T" not in want:  # a calendar day: the value must be a day, not a datetime
        return not isinstance(got, datetime.datetime) and got.isoformat() == want
    return isinstance(got, datetime.datetime) and _instant(got) == _instant(
        datetime.datetime.fromisoformat(want)
    )


def _run(expr: str) -> Any:
    ctx = MappingContext(answers=DOC["instance"], current=DOC["current"], now=NOW)
    return evaluate(parse(expr), ctx)


def test_cases_are_well_formed() -> None:
    assert len(CASES) > 300
    for case in CASES:
        assert case["kind"] in KINDS, case
        assert case["source"], case
        assert (case["kind"] == "error") == (case["expected"] == "error"), case
        if "difference" in case:
            assert "ours" in case and case["difference"].strip(), case
        if "needs" in case:
            assert re.fullmatch(r"[a-z][a-z-]*", case["needs"]), case


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_javarosa_case(case: dict[str, Any]) -> None:
    needs = case.get("needs")
    if needs and needs not in SUPPORTED_FUNCTIONS:
        pytest.skip(f"needs {needs}()")
    kind, expected = case["kind"], case["expected"]
    if "difference" in case:
        got = _run(case["expr"])
        assert _matches(kind, got, case["ours"]), (case["difference"], got)
        assert not _matches(kind, got, expected), "the engine now agrees: drop the difference"
        return
    if kind == "error":
        with pytest.raises(ExpressionError):
            _run(case["expr"])
        return
    got = _run(case["expr"])
    assert _matches(kind, got, expected), f"{case['expr']} gave {got!r}, JavaRosa {expected!r}"
