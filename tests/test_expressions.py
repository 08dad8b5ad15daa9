"""The XLSForm expression language: parsing, errors, ODK semantics, safety."""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yntymak_cli.forms.expressions import (
    SUPPORTED_FUNCTIONS,
    Expr,
    ExpressionError,
    MappingContext,
    evaluate,
    parse,
    to_bool,
    to_number,
    to_string,
)

NOW = datetime.datetime(2026, 11, 3, 14, 5, 9)

ANSWERS: dict[str, Any] = {
    "age": 34,
    "height": 1.75,
    "name": "Aizada",
    "empty": None,
    "blank": "",
    "sm": ["water", "land"],
    "sm_text": "water land pasture",
    "dob": "1990-05-17",
    "visit": "2026-10-01T09:30:00",
    "oblast": "osh",
    "household": [
        {"member": "Bakyt", "member_age": 40, "income": 1200},
        {"member": "Nurlan", "member_age": 12, "income": None},
        {"member": "Gulnara", "member_age": 37, "income": "800.5"},
    ],
}
LABELS = {"oblast": {"osh": "Osh oblast", "naryn": "Naryn oblast"}, "sm": {"water": "Water"}}


def ctx(**overrides: Any) -> MappingContext:
    kwargs: dict[str, Any] = {"answers": ANSWERS, "labels": LABELS, "now": NOW}
    kwargs.update(overrides)
    return MappingContext(**kwargs)


def ev(text: str, **overrides: Any) -> Any:
    return evaluate(text, ctx(**overrides))


def s(text: str, **overrides: Any) -> str:
    return to_string(ev(text, **overrides))


# --------------------------------------------------------------------------- parsing


def test_parse_reports_refs_functions_bare_names_and_current() -> None:
    expr = parse("selected(${sm}, 'water') and oblast = ${oblast} and . > count(${household})")
    assert isinstance(expr, Expr)
    assert expr.text.startswith("selected(")
    assert expr.refs() == {"sm", "oblast", "household"}
    assert expr.functions() == {"selected", "count"}
    assert expr.bare_names() == {"oblast"}
    assert expr.uses_current()
    plain = parse("${a} + 1")
    assert not plain.uses_current()
    assert plain.bare_names() == frozenset()


def test_choice_name_quoted_reference_counts_as_ref() -> None:
    expr = parse("jr:choice-name(${district}, '${district}')")
    assert expr.refs() == {"district"}
    assert expr.functions() == {"jr:choice-name"}
    # A plain quoted name is accepted too, and still reported.
    assert parse("jr:choice-name(., 'oblast')").refs() == {"oblast"}


def test_parse_is_memoised_and_position_parent_is_allowed() -> None:
    assert parse("${a} + 1") is parse("${a} + 1")
    assert parse("position(..)").functions() == {"position"}


def test_names_with_dots_and_dashes_and_keywords_as_columns() -> None:
    assert parse("${hh.size-1} + 1").refs() == {"hh.size-1"}
    # 'and' in operand position is a name (XPath's disambiguation rule).
    assert parse("and = 'x'").bare_names() == {"and"}
    assert parse("${a}div${b}").functions() == frozenset()


@pytest.mark.parametrize(
    ("text", "offset", "fragment"),
    [
        ("${a} + fooo(1)", 7, "unknown function 'fooo()'"),
        ("string-lenght(${a})", 0, "did you mean string-length()"),
        ("(1 + 2", 0, "unclosed '('"),
        ("concat('a', 'b'", 6, "unclosed '('"),
        ("1 + 2)", 5, "unmatched ')'"),
        ("1 # 2", 2, "unexpected character '#'"),
        ("${a} = ${}", 7, "empty reference"),
        ("${a b}", 2, "invalid question name"),
        ("${a", 0, "unclosed '${'"),
        ("$a", 0, "'$' must start"),
        ("'abc", 0, "unclosed string"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("1 +", 2, "expected a value after '+'"),
        ("1 2", 2, "expected an operator"),
        ("* 2", 0, "expected a value"),
        ("..", 0, "position(..)"),
        ("if(1, 2)", 0, "if() takes 3 arguments, got 2"),
        ("round()", 0, "1 to 2 arguments"),
        ("concat(1,)", 9, "expected a value"),
        ("regex(., '[a-')", 9, "invalid regular expression"),
        ("jr:choice-name(., ${q})", 18, "quoted reference"),
        ("jr:foo", 0, "unsupported name"),
        ("/data/a", 0, "unexpected character '/'"),
        ("(" * 60 + "1" + ")" * 60, 50, "nested too deeply"),
    ],
)
def test_parse_errors_carry_offsets(text: str, offset: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert fragment in info.value.message
    assert info.value.offset == offset
    assert isinstance(info.value, ValueError)


def test_required_functions_are_supported() -> None:
    required = {
        "selected", "count-selected", "string-length", "regex", "if", "coalesce", "concat",
        "contains", "starts-with", "substr", "int", "number", "round", "today", "now", "date",
        "count", "sum", "min", "max", "position", "jr:choice-name", "not", "true", "false",
        "boolean", "string", "floor", "ceiling", "abs", "pow", "sqrt", "exp", "log",
        "selected-at", "join", "once", "boolean-from-string", "normalize-space", "ends-with",
        "decimal-date-time", "format-date", "uuid",
    }  # fmt: skip
    assert required <= SUPPORTED_FUNCTIONS


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("2 * 3 mod 4", 2),
        ("7 div 2 * 2", 7.0),
        ("-2 * 3", -6),
        ("- -2", 2),
        ("1 + 2 = 3", True),
        ("1 < 2 = 2 > 1", True),  # relational binds tighter than equality
        ("1 = 1 or 1 = 2 and 1 = 2", True),  # and binds tighter than or
        ("(1 = 1 or 1 = 2) and 1 = 2", False),
        ("1 < 2 < 3", True),  # (1 < 2) is true, true is 1, 1 < 3
        ("3 > 2 > 1", False),
        ("${age}+1", 35),
        ("${age} -1", 33),
        ("7 mod 3", 1),
        ("-7 mod 3", -1),
        ("7 mod -3", 1),
        ("7.5 mod 2", 1.5),
        ("6 div 3", 2),
        ("1 div 4", 0.25),
    ],
)
def test_operator_precedence_and_arithmetic(text: str, expected: Any) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


def test_integer_results_stay_integers() -> None:
    assert ev("${age} + 1") == 35 and isinstance(ev("${age} + 1"), int)
    assert s("${height} * 2") == "3.5"
    assert s("1.5 + 1.5") == "3"
    assert s("0.1 + 0.2") == "0.30000000000000004"
    assert s("0.0000001 * 1") == "0.0000001"
    # Beyond 2**53 numbers are doubles, as in XPath.
    assert s("99999999999 * 99999999999") == "9999999999800000905216"


def test_division_by_zero_is_infinity_or_nan() -> None:
    assert ev("1 div 0") == math.inf
    assert ev("-1 div 0") == -math.inf
    assert math.isnan(ev("0 div 0"))
    assert math.isnan(ev("5 mod 0"))
    assert s("1 div 0") == "Infinity"
    assert s("0 div 0") == "NaN"  # XPath's text; a calculation still stores it as empty


def test_or_and_short_circuit() -> None:
    # The right side would raise (bad regex from an answer) if it were evaluated.
    c = {"answers": {"p": "[", "x": "a"}}
    assert ev("1 = 1 or regex(${x}, ${p})", **c) is True
    assert ev("1 = 2 and regex(${x}, ${p})", **c) is False
    with pytest.raises(ExpressionError):
        ev("1 = 1 and regex(${x}, ${p})", **c)


# --------------------------------------------------------------------------- empty answers


def test_empty_answer_semantics() -> None:
    assert ev("${empty} = ''") is True
    assert ev("${blank} = ''") is True
    assert ev("${missing} = ''") is True
    assert ev("${empty} != ''") is False
    assert ev("${age} = ''") is False
    assert ev("${empty} > 5") is False
    assert ev("${empty} < 5") is False
    assert ev("${empty} = 0") is False
    assert ev("${empty} != 0") is True
    assert math.isnan(ev("${empty} + 1"))
    assert s("${empty} + 1") == "NaN"  # string() of it, as in ODK; stored as empty
    assert ev("not(${empty})") is True
    assert ev("string-length(${empty})") == 0
    assert ev("count-selected(${empty})") == 0
    assert ev("selected(${empty}, 'water')") is False


def test_equality_follows_xpath() -> None:
    assert ev("${age} = '34'") is True
    assert ev("${age} = '34.0'") is True  # compared as numbers
    assert ev("'34' = '34.0'") is False  # both strings: compared as strings
    assert ev("${oblast} = 'osh'") is True
    assert ev("true() = 'false'") is True  # non-empty string is true
    assert ev("false() = ''") is True
    assert ev("true() = 1") is True
    assert ev("'abc' = 0") is False
    assert ev("'abc' != 0") is True
    assert ev("${sm} = 'water land'") is True  # select_multiple compares as its text
    assert ev("'b' > 'a'") is False  # relational is numeric only


# --------------------------------------------------------------------------- dates


def test_dates_compare_and_subtract_as_days() -> None:
    assert ev("today()") == datetime.date(2026, 11, 3)
    assert ev("now()") == NOW
    assert ev("${dob} < today()") is True
    assert ev("${dob} > '1990-05-16'") is True
    assert ev("${dob} >= date('1990-05-17')") is True
    assert ev("${dob} = date('1990-05-17')") is True
    assert ev("today() - ${dob}") == (datetime.date(2026, 11, 3) - datetime.date(1990, 5, 17)).days
    assert ev("int((today() - ${dob}) div 365.25)") == 36
    assert ev("${visit} < today()") is True
    assert ev("${visit} > '2026-10-01'") is True  # 09:30 is later than midnight
    assert ev("'08:30' < '17:00'") is True  # time answers compare as times of day
    assert ev("${dob} < 7000") is False  # 1990-05-17 is day 7441
    assert ev("${dob} + 1 = date('1990-05-18')") is True


def test_date_functions() -> None:
    assert ev("date('2026-10-01')") == datetime.date(2026, 10, 1)
    assert ev("date(20000)") == datetime.date(2024, 10, 4)
    assert ev("date(-0.5)") == datetime.date(1970, 1, 1)  # a Java int: toward 1970
    assert ev("date(-1.5)") == datetime.date(1969, 12, 31)
    with pytest.raises(ExpressionError, match="cannot convert '20000' to a date"):
        ev("date('20000')")  # numeric text is no date in JavaRosa
    assert ev("date(${visit})") == datetime.datetime(2026, 10, 1, 9, 30)
    assert ev("date(${empty})") is None
    assert s("date(today() + 30)") == "2026-12-03"
    assert ev("date-time(0.5)") == datetime.datetime(1970, 1, 1, 12)
    assert ev("decimal-date-time('1970-01-02T06:00:00')") == 1.25
    assert math.isnan(ev("decimal-date-time('')"))
    with pytest.raises(ExpressionError, match="cannot convert 'soon' to a date"):
        ev("date('soon')")


def test_format_date_tokens() -> None:
    fmt = "'%Y %y %m %n %b %d %e %a %H %h %M %S %3 %q'"
    assert s(f"format-date('2026-03-05T07:08:09.250', {fmt})") == (
        "2026 26 03 3 Mar 05 5 Thu 07 7 08 09 250 %q"
    )
    assert s("format-date(${dob}, '%d/%m/%Y')") == "17/05/1990"
    assert s("format-date(${empty}, '%Y')") == ""
    assert s("format-date-time(now(), '%H:%M')") == "14:05"


def test_to_string_of_temporal_values() -> None:
    assert to_string(datetime.date(2026, 1, 2)) == "2026-01-02"
    assert to_string(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert to_number(datetime.date(1970, 1, 11)) == 10.0
    assert to_number("1970-01-01T18:00:00") == 0.75


# --------------------------------------------------------------------------- functions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("selected(${sm}, 'land')", True),
        ("selected(${sm}, 'pasture')", False),
        ("selected(${sm_text}, 'pasture')", True),
        ("selected(${sm_text}, ' pasture ')", True),
        ("count-selected(${sm})", 2),
        ("count-selected(${sm_text})", 3),
        ("selected-at(${sm}, 1)", "land"),
        ("selected-at(${sm_text}, 0)", "water"),
        ("selected-at(${sm}, 5)", ""),
        ("selected-at(${sm}, -1)", ""),
        ("string-length(${name})", 6),
        ("string-length('Ыntymak')", 7),
        ("regex(${name}, '[A-Z][a-z]+')", True),
        ("regex(${name}, 'Aiz')", False),  # full match, as Java's matches()
        ("regex('0555123456', '0[0-9]{9}')", True),
        ("if(${age} >= 18, 'adult', 'child')", "adult"),
        ("if(${empty}, 'yes', 'no')", "no"),
        ("coalesce(${empty}, ${name})", "Aizada"),
        ("coalesce(${blank}, ${empty}, 'x')", "x"),
        ("coalesce(${name}, 'x')", "Aizada"),
        ("concat(${name}, '-', ${age}, '-', ${height})", "Aizada-34-1.75"),
        ("concat(${sm}, '|')", "water land|"),
        ("concat()", ""),
        ("contains(${name}, 'zad')", True),
        ("contains(${name}, 'x')", False),
        ("starts-with(${name}, 'Ai')", True),
        ("ends-with(${name}, 'da')", True),
        ("ends-with(${name}, 'Ai')", False),
        ("substr('2026-11-03', 0, 4)", "2026"),
        ("substr('hello', 1)", "ello"),
        ("substr('hello', -3)", "llo"),
        ("substr('hello', 1, 99)", "ello"),
        ("substr('hello', 3, 1)", ""),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),
        ("int('12')", 12),
        ("number('12.5')", 12.5),
        ("number('12')", 12),
        ("round(2.5)", 3),
        ("round(-2.5)", -2),  # JavaRosa: negative halves go toward zero
        ("round(2.675, 2)", 2.68),
        ("round(1234.5, -2)", 1200),
        ("round(7, 2)", 7),
        ("not(1 = 1)", False),
        ("true()", True),
        ("false()", False),
        ("boolean('false')", True),
        ("boolean(0)", False),
        ("boolean(${sm})", True),
        ("string(3.0)", "3"),
        ("string(true())", "true"),
        ("floor(-1.5)", -2),
        ("ceiling(1.2)", 2),
        ("abs(-4)", 4),
        ("abs(-4.5)", 4.5),
        ("pow(2, 10)", 1024),
        ("pow(4, 0.5)", 2.0),
        ("sqrt(16)", 4.0),
        ("exp(0)", 1.0),
        ("log(1)", 0.0),
        ("log10(1000)", 3.0),
        ("once(${name})", "Aizada"),
        ("boolean-from-string('true')", True),
        ("boolean-from-string('1')", True),
        ("boolean-from-string('yes')", False),
        ("normalize-space('  a \t b\n ')", "a b"),
        ("jr:choice-name(${oblast}, '${oblast}')", "Osh oblast"),
        ("jr:choice-name('naryn', '${oblast}')", "Naryn oblast"),
        ("jr:choice-name(${empty}, '${oblast}')", ""),
        ("jr:choice-name(${sm}, '${sm}')", "Water "),
        ("position(..)", 2),
        ("position()", 2),
        ("min(3, ${age}, 7)", 3),
        ("max(3, ${age}, 7)", 34),
        ("max(3, ${empty})", 3),
        ("string(.)", "cur"),
        ("string-length()", 3),
    ],
)
def test_functions(text: str, expected: Any) -> None:
    result = ev(text, position=2, current="cur")
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(result)
        return
    assert result == expected
    assert type(result) is type(expected)


def test_math_edge_cases_give_ieee_values() -> None:
    assert math.isnan(ev("sqrt(-1)"))
    assert ev("log(0)") == -math.inf
    assert math.isnan(ev("log(-1)"))
    assert ev("exp(100000)") == math.inf
    assert math.isnan(ev("int(${empty})"))
    assert math.isnan(ev("round(${empty})"))
    assert math.isnan(ev("min(${empty})"))
    assert math.isnan(ev("max('abc', 2)"))


def test_uuid() -> None:
    value = ev("uuid()")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", value)
    assert ev("uuid()") != value
    assert re.fullmatch(r"[A-Za-z0-9]{12}", ev("uuid(12)"))


def test_regex_errors_from_answers_become_expression_errors() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("regex(${name}, ${pattern})", answers={"name": "x", "pattern": "(unclosed"})
    assert "invalid regular expression" in info.value.message
    assert info.value.offset == 15


def test_if_evaluates_only_the_chosen_branch() -> None:
    seen: list[str] = []

    class Spy(MappingContext):
        def value(self, name: str) -> Any:
            seen.append(name)
            return super().value(name)

    spy = Spy(answers={"a": 1, "b": "x", "c": "y"}, now=NOW)
    assert evaluate("if(${a} = 1, ${b}, ${c})", spy) == "x"
    assert seen == ["a", "b"]
    assert evaluate("coalesce(${b}, ${c})", spy) == "x"
    assert "c" not in seen


# --------------------------------------------------------------------------- repeats


def test_nodeset_functions_over_repeats() -> None:
    assert ev("count(${household})") == 3
    assert ev("count(${member})") == 3
    assert ev("count(${missing})") == 0
    assert ev("count-non-empty(${income})") == 2
    assert ev("sum(${member_age})") == 89
    assert ev("sum(${income})") == 2000.5  # the unanswered income is skipped
    assert ev("sum(${missing})") == 0
    assert ev("min(${member_age})") == 12
    assert ev("max(${member_age})") == 40
    assert math.isnan(ev("max(${missing})"))
    assert ev("join(', ', ${member})") == "Bakyt, Nurlan, Gulnara"
    assert ev("join('-', ${member}, ${name})") == "Bakyt-Nurlan-Gulnara-Aizada"
    assert ev("count(${household}) > 2") is True


def test_repeat_instance_values_come_first() -> None:
    c = ctx(instance=ANSWERS["household"][1], position=2)
    assert evaluate("concat(${member}, ' of ', ${name}, ' #', position(..))", c) == (
        "Nurlan of Aizada #2"
    )


# --------------------------------------------------------------------------- choice filters


def test_choice_filter_bare_columns() -> None:
    expr = parse("oblast = ${oblast} and name != 'other'")
    assert expr.bare_names() == {"oblast", "name"}
    rows = [
        {"name": "kara-suu", "label": "Kara-Suu", "oblast": "osh"},
        {"name": "kochkor", "label": "Kochkor", "oblast": "naryn"},
        {"name": "other", "label": "Other", "oblast": "osh"},
    ]
    kept = [r["name"] for r in rows if to_bool(evaluate(expr, ctx(columns=r)))]
    assert kept == ["kara-suu"]


def test_bare_name_without_columns_is_an_expression_error_at_its_offset() -> None:
    with pytest.raises(ExpressionError) as info:
        ev("1 = 1 and district = 'x'")
    assert info.value.offset == 10
    with pytest.raises(ExpressionError, match="no column 'district'"):
        ev("district = 'x'", columns={"oblast": "osh"})


def test_context_failures_are_wrapped() -> None:
    class Broken(MappingContext):
        def value(self, name: str) -> Any:
            raise KeyError(name)

    with pytest.raises(ExpressionError) as info:
        evaluate("1 + ${a}", Broken(now=NOW))
    assert info.value.offset == 4


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("value", "as_bool", "as_string"),
    [
        (None, False, ""),
        ("", False, ""),
        ("false", True, "false"),
        (0, False, "0"),
        (0.0, False, "0"),
        (math.nan, False, "NaN"),
        (1e-13, False, "0"),  # within JavaRosa's 1e-12 of zero
        (3.0000000000000004, True, "3"),
        (2.9999999999999996, True, "2.9999999999999996"),  # Java's (int) cast truncates
        (7.9e-12, True, "0.0000000000079"),
        (3.0, True, "3"),
        (2.5, True, "2.5"),
        (-0.0, False, "0"),
        (True, True, "true"),
        (False, False, "false"),
        ([], False, ""),
        (["a", "b"], True, "a b"),
        (math.inf, True, "Infinity"),
    ],
)
def test_to_bool_and_to_string(value: Any, as_bool: bool, as_string: str) -> None:
    assert to_bool(value) is as_bool
    assert to_string(value) == as_string


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12.0),
        (" -3.5 ", -3.5),
        (".5", 0.5),
        ("1e3", 1000.0),  # not XPath, but Java writes decimals so: see javarosa_xpath_cases
        ("7.9E-12", 7.9e-12),
        ("4,6", 4.6),  # a decimal comma, as JavaRosa reads it
        ("inf", math.nan),
        ("", math.nan),
        (None, math.nan),
        ("abc", math.nan),
        (True, 1.0),
        (False, 0.0),
        (7, 7.0),
        ("1970-01-03", 2.0),
        ("12:00", 0.5),
        ("2026-02-30", math.nan),
    ],
)
def test_to_number(value: Any, expected: float) -> None:
    result = to_number(value)
    assert isinstance(result, float)
    if math.isnan(expected):
        assert math.isnan(result)
    else:
        assert result == expected


# --------------------------------------------------------------------------- properties

FUNCTION_CALLS = sorted(f"{name}(" for name in SUPPORTED_FUNCTIONS)
TOKENS = [
    "${age}", "${name}", "${sm}", "${empty}", "${dob}", "${household}", "${member_age}",
    "${income}", "${}", "${", "$", ".", "..", "(", ")", ",", "0", "1", "2.5", ".5", "-",
    "'x'", "'2026-01-01'", "'[a-'", '"y"', "'", '"', "and", "or", "div", "mod", "=", "!=",
    "<", "<=", ">", ">=", "+", "*", "oblast", "name", "jr:", "/", "#", "'${oblast}'",
    *FUNCTION_CALLS,
]  # fmt: skip

token_soup = st.lists(st.sampled_from(TOKENS), max_size=15).flatmap(
    lambda toks: st.lists(st.sampled_from(["", " "]), min_size=len(toks), max_size=len(toks)).map(
        lambda gaps: "".join(t + g for t, g in zip(toks, gaps, strict=True))
    )
)

LEAVES = st.sampled_from(
    [
        "${age}", "${height}", "${name}", "${sm}", "${sm_text}", "${empty}", "${blank}",
        "${dob}", "${visit}", "${household}", "${member_age}", "${income}", "${missing}",
        ".", "0", "1", "-1", "2.5", "1000000000", "'x'", "''", "'2026-01-01'", "'12:30'",
        "'%Y-%m'", "'[a-z]+'", "oblast", "true()", "today()", "now()", "position(..)",
    ]
)  # fmt: skip
BINARY = ["and", "or", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "div", "mod"]


def _arity_options(name: str) -> list[int]:
    """Argument counts parse() accepts for ``name``, probed through the parser itself."""
    options = []
    for n in range(4):
        try:
            parse(f"{name}({', '.join(['1'] * n)})")
        except ExpressionError:
            continue
        options.append(n)
    return options


# Functions whose arguments must be references (indexed-repeat, pulldata) take no count
# of plain '1's: left out, or hypothesis would fail whenever it drew one.
CALLABLE = {
    name: options
    for name in sorted(SUPPORTED_FUNCTIONS - {"position", "jr:choice-name", "regex"})
    if (options := _arity_options(name))
}


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(BINARY), children).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    call = st.sampled_from(sorted(CALLABLE)).flatmap(
        lambda name: st.sampled_from(CALLABLE[name]).flatmap(
            lambda n: st.lists(children, min_size=n, max_size=n).map(
                lambda args: f"{name}({', '.join(args)})"
            )
        )
    )
    special = st.one_of(
        children.map(lambda c: f"jr:choice-name({c}, '${{oblast}}')"),
        st.tuples(children, children).map(lambda t: f"regex({t[0]}, {t[1]})"),
    )
    return st.one_of(
        binary, call, special, children.map(lambda c: f"({c})"), children.map(lambda c: f"-{c}")
    )


valid_expressions = st.recursive(LEAVES, _extend, max_leaves=12)
PROPERTY_CTX = ctx(columns={"oblast": "osh"}, current=5, position=1)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.slow
@FAST
@given(st.one_of(st.text(max_size=40), token_soup))
def test_parse_never_raises_anything_but_expression_error(text: str) -> None:
    try:
        expr = parse(text)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    assert expr.text == text
    try:
        result = evaluate(expr, PROPERTY_CTX)
    except ExpressionError:
        return
    to_string(result)


@pytest.mark.slow
@FAST
@given(valid_expressions)
def test_generated_expressions_parse_and_evaluate_safely(text: str) -> None:
    expr = parse(text)  # the generator only builds well-formed expressions
    try:
        result = evaluate(expr, PROPERTY_CTX)
    except ExpressionError as exc:
        assert 0 <= exc.offset <= len(text)
        return
    assert isinstance(to_string(result), str)
    assert isinstance(to_bool(result), bool)
    assert isinstance(to_number(result), float)


# --------------------------------------------------------------------------- JavaRosa agreement
# Case tables from JavaRosa's own tests are in test_javarosa_conformance.py; these pin the
# rules around them that its tests do not reach.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1div1", 1),
        ("4 div2", 2),
        ("7mod2", 1),
        ("1and0", False),
        ("0or1", True),
        ("(3)div3", 1),
        ("${age}div2", 17),
        ("'1'and'1'", True),
        ("2 mod-3", 2),
    ],
)
def test_word_operators_glued_to_operands(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_glued_operators_leave_names_alone() -> None:
    answers = {"divider": 4, "order": 2, "mode": "x"}
    assert ev("${divider} div ${order}", answers=answers) == 2
    assert parse("order = 1 and divide = 2").bare_names() == {"order", "divide"}
    assert ev("concat(${mode}, 'and')", answers=answers) == "xand"
    with pytest.raises(ExpressionError, match="expected an operator"):
        parse("1 divider")  # a letter after 'div': one word, as in JavaRosa's lexer


def test_number_and_string_need_their_argument_but_length_uses_the_current_answer() -> None:
    for text in ("number()", "string()"):
        with pytest.raises(ExpressionError, match="takes 1 argument, got 0"):
            parse(text)
    # JavaRosa reads the context node for these two, so a constraint may leave out the '.'.
    assert ev("string-length()", current="Aizada") == 6
    assert ev("normalize-space()", current="  a  b ") == "a b"
    assert ev("string-length()", current=None) == 0


def test_count_and_sum_need_a_reference() -> None:
    for text in ("count('a b')", "count-non-empty(1)", "sum(${age} + 1)"):
        with pytest.raises(ExpressionError, match="give it a reference such as") as info:
            ev(text)
        assert info.value.offset == text.index("(") + 1
    assert ev("count(.)", current="x") == 1
    assert ev("count(${age})") == 1  # one answer outside a repeat


def test_numbers_equal_within_javarosa_slack() -> None:
    assert ev("6.1 - 7.8 = -1.7") is True
    assert ev("0.1 + 0.2 = 0.3") is True
    assert ev("0.1 + 0.2 != 0.3") is False
    assert ev("1 = 1.000000001") is False
    # A difference: JavaRosa compares |a - b| < 1e-12, and inf - inf is NaN there.
    assert ev("1 div 0 = 1 div 0") is True
    assert ev("${dob} = date('1990-05-17')") is True


def test_round_with_negative_places_on_negative_numbers() -> None:
    assert ev("round(-12345, -1)") == -12340  # halves toward zero, as JavaRosa
    # A difference: JavaRosa truncates (long)(x / 10 + 0.5), which gives -12340 here too.
    assert ev("round(-12346, -1)") == -12350
    assert ev("round(12346, -1)") == 12350
    assert math.isnan(ev("round(1.5, 31)"))
    assert ev("round(2.5, 0 div 0)") == 3  # NaN places are 0, Java's (int) cast


def test_datetimes_with_an_offset_name_an_instant() -> None:
    assert ev("decimal-date-time('1970-01-02T06:00:00+06:00')") == 1.0
    assert ev("decimal-date-time('1970-01-02T06:00:00Z')") == 1.25
    assert ev("decimal-date-time('1970-01-02T06:00:00')") == 1.25  # no offset: wall clock
    utc = datetime.timezone.utc
    assert ev("date-time('2026-03-01T10:00:00+06:00')") == datetime.datetime(
        2026, 3, 1, 4, tzinfo=utc
    )
    # Comparisons and arithmetic use each value's own wall clock, so answers with and without
    # an offset mix without shifting by a zone this engine does not know.
    assert ev("'2026-03-01T10:00:00+06:00' > '2026-03-01T09:00:00'") is True
    assert s("date('2026-3-1')") == "2026-03-01"


def test_now_carries_the_local_offset() -> None:
    now = MappingContext().now()
    assert now.utcoffset() is not None
    fixed = datetime.datetime(
        2026, 11, 3, 14, 5, 9, tzinfo=datetime.timezone(datetime.timedelta(hours=6))
    )
    assert s("now()", now=fixed) == "2026-11-03T14:05:09+06:00"
    assert s("today()", now=fixed) == "2026-11-03"
    assert s("date(now())", now=fixed) == "2026-11-03"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("date(true())", "cannot convert 'true' to a date"),
        ("date-time(false())", "cannot convert 'false' to a date"),
        ("decimal-date-time('-1000')", "cannot convert '-1000' to a date"),
        ("format-date(true(), '%Y')", "cannot convert 'true' to a date"),
        ("date(2147483648)", "out of range for a date"),
        ("date(1 div 0)", "out of range for a date"),
    ],
)
def test_values_javarosa_cannot_read_as_dates(text: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(fragment)):
        ev(text)


def test_empty_and_nan_through_date_functions() -> None:
    assert ev("date(${empty})") is None
    assert math.isnan(ev("date(0 div 0)"))
    assert s("format-date(0 div 0, '%Y')") == ""
    assert ev("date(-0.5)") == datetime.date(1970, 1, 1)


def test_bad_input_to_an_odk_function_is_an_error_at_its_call():
    with pytest.raises(ExpressionError) as info:
        evaluate("concat('x', digest('a', 'XYZ'))", MappingContext())
    assert info.value.message.startswith("digest(): unsupported algorithm 'XYZ'")
    assert info.value.offset == len("concat('x', ")
