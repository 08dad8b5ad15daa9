"""Safe parser and evaluator for the XLSForm/XPath expression subset.

Forms use these expressions in ``relevant``, ``constraint``, ``calculation``,
``choice_filter``, ``repeat_count`` and ``instance_name``. Text is tokenised and
parsed by hand into a small immutable tree (never ``eval``), then evaluated
against a :class:`Context` supplied by the form engine.

Semantics follow ODK/JavaRosa where it matters to form authors:

* unanswered values are empty (``None`` / ``''``); comparing an empty value with a
  number is false (NaN), ``${x} = ''`` is true;
* equality is XPath 1.0: booleans first, then numbers, then strings, so the
  integer answer ``34`` equals ``'34'``;
* ISO date/datetime/time strings and ``datetime`` objects act as day numbers
  (days since 1970-01-01, fractional for times) in comparisons and arithmetic,
  because answers are stored as strings where ODK would hold typed dates;
* division by zero gives Infinity/NaN; any failure during evaluation surfaces
  as :class:`ExpressionError`, never as another exception.

This module is self-contained (stdlib only) so that validation, the engine and
the XLSForm interop can all share it.
"""

from __future__ import annotations

import datetime
import difflib
import functools
import math
import re
import secrets
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any, Protocol

from yntymak_cli.forms import odk_functions as odk
from yntymak_cli.forms.model import NAME_RE, rows_by_key

__all__ = [
    "SUPPORTED_FUNCTIONS",
    "Context",
    "Expr",
    "ExpressionError",
    "LimitExceeded",
    "MAX_STRING_LENGTH",
    "MappingContext",
    "evaluate",
    "parse",
    "to_bool",
    "to_number",
    "to_string",
]

NAN = float("nan")
INF = float("inf")
_EPOCH = datetime.date(1970, 1, 1)
_EPOCH_DT = datetime.datetime(1970, 1, 1)
# Ints beyond the exactly representable double range are turned into floats, like XPath numbers,
# so products of literals cannot grow without bound.
_MAX_EXACT_INT = 2**53
# Parentheses, calls and unary minus nest the parser's recursion; a cap keeps a hostile or
# generated expression from exhausting Python's stack.
_MAX_NESTING = 50
# Text a function may compute: forty calculations that each double a string would otherwise
# need a terabyte. A million characters is far beyond any label, name or note.
MAX_STRING_LENGTH = 1_000_000


def _t(key: str, /, **params: object) -> str:
    """A problem text in the reader's language (names and expressions stay as written)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


class ExpressionError(ValueError):
    """A problem in an expression; ``offset`` is the 0-based character position in its text."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class LimitExceeded(ExpressionError):
    """A result beyond what an expression may compute: a bug in the form, not in the answers,
    that the engine reports instead of treating the expression as false or empty."""


# --------------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Literal:
    pos: int
    value: str | int | float


@dataclass(frozen=True)
class Ref:
    """``${name}``."""

    pos: int
    name: str


@dataclass(frozen=True)
class Current:
    """``.``: the answer being checked (constraints) or computed."""

    pos: int


@dataclass(frozen=True)
class Column:
    """A bare name: a column of the choice row in a choice_filter."""

    pos: int
    name: str


@dataclass(frozen=True)
class Call:
    pos: int
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Negate:
    pos: int
    operand: Node


@dataclass(frozen=True)
class Chain:
    """Operands of one precedence level joined left to right: ``a + b - c``.

    Chains are flat (not a left-deep tree) so that a long ``or`` list does not turn into
    deep recursion when evaluated.
    """

    pos: int
    items: tuple[Node, ...]
    ops: tuple[str, ...]


Node = Literal | Ref | Current | Column | Call | Negate | Chain


@dataclass(frozen=True)
class Expr:
    """A parsed expression. Build it with :func:`parse`, not directly."""

    text: str
    root: Node = field(repr=False, compare=False)
    _refs: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    _functions: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    _bare: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    _current: bool = field(repr=False, compare=False, default=False)

    def refs(self) -> frozenset[str]:
        """Question names used as ``${name}`` (including jr:choice-name's quoted ``'${q}'``)."""
        return self._refs

    def functions(self) -> frozenset[str]:
        return self._functions

    def bare_names(self) -> frozenset[str]:
        """Bare names: choice-row columns in a choice_filter, a mistake elsewhere."""
        return self._bare

    def uses_current(self) -> bool:
        return self._current

    def evaluate(self, ctx: Context) -> Any:
        return evaluate(self, ctx)

    def __str__(self) -> str:
        return self.text


# --------------------------------------------------------------------------- tokenizer

_TOKEN_RE = re.compile(
    r"""
     (?P<ws>\s+)
    |(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
    |(?P<dotdot>\.\.)
    |(?P<dot>\.)
    |(?P<op><=|>=|!=|[=<>+\-*(),])
    |(?P<name>[^\W\d][\w.\-]*(?::[^\W\d][\w.\-]*)?)
    """,
    re.VERBOSE,
)


# A word operator glued to what follows (`1div1`, `1 mod1`, `1and1`): after a value JavaRosa's
# lexer reads the operator first, so a digit, '.', '-' or '$' after it starts the next operand.
# A letter or '_' after it keeps the whole word a name (`${a} order`, `x divider`).
_GLUED_OP_RE = re.compile(r"(and|or|div|mod)(?=[0-9.\-$'\"(])")


def _ends_value(tok: _Token) -> bool:
    return tok.kind in ("num", "ref", "str", "dot") or (tok.kind == "op" and tok.value == ")")


@dataclass(frozen=True)
class _Token:
    kind: str  # ref str num dot dotdot op name eof
    value: str
    pos: int


def _describe(tok: _Token) -> str:
    if tok.kind == "eof":
        return _t("ex_tok_end")
    if tok.kind == "ref":
        return f"'${{{tok.value}}}'"
    if tok.kind == "str":
        return _t("ex_tok_string")
    return f"'{tok.value}'"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "$":
            if not text.startswith("${", i):
                raise ExpressionError(_t("ex_dollar"), i)
            end = text.find("}", i + 2)
            if end < 0:
                raise ExpressionError(_t("ex_unclosed_ref"), i)
            name = text[i + 2 : end]
            if not name:
                raise ExpressionError(_t("ex_empty_ref"), i)
            if not NAME_RE.match(name):
                raise ExpressionError(_t("ex_bad_ref", name=name, ref=f"${{{name}}}"), i + 2)
            tokens.append(_Token("ref", name, i))
            i = end + 1
            continue
        if ch in "'\"":
            end = text.find(ch, i + 1)
            if end < 0:
                raise ExpressionError(_t("ex_unclosed_string", mark=ch), i)
            tokens.append(_Token("str", text[i + 1 : end], i))
            i = end + 1
            continue
        if tokens and _ends_value(tokens[-1]) and (w := _GLUED_OP_RE.match(text, i)):
            tokens.append(_Token("name", w[1], i))  # `1div2`, `1 mod2`: ODK's lexers split these
            i = w.end(1)
            continue
        m = _TOKEN_RE.match(text, i)
        if m is None:
            raise ExpressionError(_t("ex_unexpected_char", char=ch), i)
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, m.group(), i))
        i = m.end()
    tokens.append(_Token("eof", "", n))
    return tokens


# --------------------------------------------------------------------------- parser

# Binary levels from loosest to tightest (XPath 1.0 precedence).
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"or"}),
    frozenset({"and"}),
    frozenset({"=", "!="}),
    frozenset({"<", "<=", ">", ">="}),
    frozenset({"+", "-"}),
    frozenset({"*", "div", "mod"}),
)
_WORD_OPS = frozenset({"or", "and", "div", "mod"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        if self.tok.kind == "eof":
            raise ExpressionError(_t("ex_empty"), 0)
        node = self.level(0)
        tok = self.tok
        if tok.kind != "eof":
            if tok.value == ")":
                raise ExpressionError(_t("ex_unmatched_close"), tok.pos)
            raise ExpressionError(_t("ex_expected_operator", what=_describe(tok)), tok.pos)
        return node

    def _op_at(self, level: int) -> str | None:
        tok = self.tok
        ops = _LEVELS[level]
        if tok.kind == "op" and tok.value in ops:
            return tok.value
        # and/or/div/mod are operators only where an operator is expected (XPath's rule).
        if tok.kind == "name" and tok.value in _WORD_OPS and tok.value in ops:
            return tok.value
        return None

    def level(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.unary()
        first = self.level(level + 1)
        op = self._op_at(level)
        if op is None:
            return first
        items = [first]
        ops: list[str] = []
        while op is not None:
            op_tok = self.advance()
            if self.tok.kind == "eof":
                raise ExpressionError(_t("ex_value_after", op=op), op_tok.pos)
            ops.append(op)
            items.append(self.level(level + 1))
            op = self._op_at(level)
        return Chain(_node_pos(first), tuple(items), tuple(ops))

    def _nest(self, pos: int) -> None:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise ExpressionError(_t("ex_nested"), pos)

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.value == "-":
            self.advance()
            self._nest(tok.pos)
            operand = self.unary()
            self.depth -= 1
            return Negate(tok.pos, operand)
        return self.primary()

    def primary(self) -> Node:
        tok = self.advance()
        if tok.kind == "num":
            return Literal(tok.pos, _parse_number(tok.value))
        if tok.kind == "str":
            return Literal(tok.pos, tok.value)
        if tok.kind == "ref":
            return Ref(tok.pos, tok.value)
        if tok.kind == "dot":
            return Current(tok.pos)
        if tok.kind == "dotdot":
            raise ExpressionError(_t("ex_dotdot"), tok.pos)
        if tok.kind == "op" and tok.value == "(":
            self._nest(tok.pos)
            node = self.level(0)
            self.expect_close(tok)
            self.depth -= 1
            return node
        if tok.kind == "name":
            if self.tok.kind == "op" and self.tok.value == "(":
                return self.call(tok)
            if ":" in tok.value:
                raise ExpressionError(_t("ex_unsupported_name", name=tok.value), tok.pos)
            return Column(tok.pos, tok.value)
        if tok.kind == "eof":
            raise ExpressionError(_t("ex_ends_early"), tok.pos)
        if tok.value == ")":
            raise ExpressionError(_t("ex_unexpected_close"), tok.pos)
        raise ExpressionError(_t("ex_expected_value", what=_describe(tok)), tok.pos)

    def expect_close(self, open_tok: _Token) -> None:
        tok = self.tok
        if tok.kind == "op" and tok.value == ")":
            self.advance()
            return
        if tok.kind == "eof":
            raise ExpressionError(_t("ex_unclosed_paren"), open_tok.pos)
        raise ExpressionError(_t("ex_expected_comma", what=_describe(tok)), tok.pos)

    def call(self, name_tok: _Token) -> Node:
        name = name_tok.value
        spec = _FUNCTIONS.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, _FUNCTIONS, n=1)
            hint = _t("ex_did_you_mean_function", name=close[0]) if close else ""
            raise ExpressionError(_t("ex_unknown_function", name=name, hint=hint), name_tok.pos)
        open_tok = self.advance()
        self._nest(open_tok.pos)
        args: list[Node] = []
        if name == "position" and self.tok.kind == "dotdot":
            # position(..) is the one place a parent step is allowed; it means "my index".
            self.advance()
        elif not (self.tok.kind == "op" and self.tok.value == ")"):
            args.append(self.level(0))
            while self.tok.kind == "op" and self.tok.value == ",":
                self.advance()
                args.append(self.level(0))
        self.expect_close(open_tok)
        self.depth -= 1
        if not spec.min_args <= len(args) <= (spec.max_args if spec.max_args >= 0 else len(args)):
            raise ExpressionError(
                _t("ex_arity", name=name, arity=spec.arity_text(), n=len(args)), name_tok.pos
            )
        node = Call(name_tok.pos, name, tuple(args))
        _check_call(node)
        return node


def _node_pos(node: Node) -> int:
    return node.pos


def _parse_number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text or len(text) > 18:
        return _norm(float(text))
    return _norm(int(text))


def _choice_name_question(node: Node) -> str:
    """The question named by jr:choice-name's second argument: a quoted '${q}' (or 'q')."""
    if not isinstance(node, Literal) or not isinstance(node.value, str):
        raise ExpressionError(_t("ex_choice_name_quoted"), node.pos)
    raw = node.value.strip()
    m = re.fullmatch(r"\$\{([^}]*)\}", raw)
    name = m.group(1) if m else raw
    if not NAME_RE.match(name):
        raise ExpressionError(_t("ex_choice_name_ref", value=node.value), node.pos)
    return name


def _check_call(node: Call) -> None:
    """Parse-time checks that let form validation catch mistakes before anyone is surveyed."""
    if node.name == "jr:choice-name":
        _choice_name_question(node.args[1])
    elif node.name == "regex":
        pattern = node.args[1]
        if isinstance(pattern, Literal) and isinstance(pattern.value, str):
            _compile_regex(pattern.value, pattern.pos)
    elif node.name == "indexed-repeat":
        if len(node.args) % 2 == 0:
            raise ExpressionError(_t("ex_indexed_pairs"), node.pos)
        for ref in (node.args[0], *node.args[1::2]):
            if not isinstance(ref, Ref):
                raise ExpressionError(_t("ex_indexed_refs"), ref.pos)
    elif node.name == "weighted-checklist" and len(node.args) % 2:
        raise ExpressionError(_t("ex_weighted_pairs"), node.pos)


@functools.lru_cache(maxsize=128)
def _compile_cached(pattern: str) -> Any:
    # RE2 matches in time linear in the text, so no pattern can hang a survey: Python's
    # backtracking `re` never finishes '^(a+)+$' against forty a's and a '!'. Like Java's
    # (ODK Collect's), its \d \w \s are ASCII; \p{L} matches any letter. Imported here so
    # `yntymak --help` stays fast.
    import re2

    options = re2.Options()
    options.log_errors = False  # the message below says what is wrong; RE2 would also print it
    return re2.compile(pattern, options)


def _compile_regex(pattern: str, pos: int) -> Any:
    """A compiled RE2 pattern, or ExpressionError for a pattern RE2 cannot run."""
    import re2

    try:
        return _compile_cached(pattern)
    except (re2.error, UnicodeError, ValueError, TypeError) as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        detail = str(detail)
        if "perl operator: (?" in detail or re.search(r"escape sequence: \\[0-9]", detail):
            detail += _t("ex_regex_lookaround")
        raise ExpressionError(_t("ex_bad_regex", pattern=pattern, detail=detail), pos) from None


def slow_regex_patterns(expr: Expr) -> list[tuple[int, str]]:
    """(offset, pattern) of each literal regex() pattern that repeats a group which itself
    holds a variable repeat, like '^(a+)+$'. RE2 runs them in linear time, but backtracking
    engines (Java's, in ODK Collect and Enketo's JavaScript) can take exponential time on an
    answer that almost matches, so the same form would hang on a phone."""
    found = []
    for node in _walk(expr.root):
        if isinstance(node, Call) and node.name == "regex":
            pattern = node.args[1]
            if isinstance(pattern, Literal) and isinstance(pattern.value, str):
                if _nested_quantifier(pattern.value):
                    found.append((pattern.pos, pattern.value))
    return sorted(found)


_QUANTIFIER_RE = re.compile(r"[*+?]|\{([0-9]+)(,([0-9]*))?\}")


def _nested_quantifier(pattern: str) -> bool:
    """True when a group holding a variable repeat ('a+', 'a{1,3}') is repeated again.

    A small scan rather than a full parser: it only needs groups, escapes, classes and
    quantifiers, and a wrong guess costs a warning, never an error.
    """
    holds = [False]  # per open group: it holds a variable repeat
    after_atom = False  # a quantifier here applies to the previous atom
    group_holds = False  # that atom is a group holding a variable repeat
    i, n = 0, len(pattern)
    while i < n:
        m = _QUANTIFIER_RE.match(pattern, i) if after_atom else None
        if m:
            if m[0] in "*+?":
                low, high = {"*": (0, None), "+": (1, None), "?": (0, 1)}[m[0]]
            else:
                low = int(m[1])
                high = low if m[2] is None else (int(m[3]) if m[3] else None)
            if group_holds and (high is None or high > 1):
                return True
            if high is None or low != high:
                holds[-1] = True
            after_atom = group_holds = False
            i = m.end()
            if i < n and pattern[i] in "?+":  # lazy or possessive
                i += 1
            continue
        ch = pattern[i]
        after_atom, group_holds = True, False
        if ch == "\\":
            if pattern[i + 1 : i + 3] in ("p{", "P{"):
                end = pattern.find("}", i)
                i = n if end < 0 else end + 1
            else:
                i += 2
        elif ch == "[":
            j = i + 1
            if pattern[j : j + 1] == "^":
                j += 1
            if pattern[j : j + 1] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
        elif ch == "(":
            holds.append(False)
            after_atom = False
            i += 1
        elif ch == ")":
            group_holds = holds.pop() if len(holds) > 1 else False
            holds[-1] = holds[-1] or group_holds
            i += 1
        else:
            after_atom = ch not in "|^"
            i += 1
    return False


def _walk(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, Chain):
            stack.extend(node.items)
        elif isinstance(node, Call):
            stack.extend(node.args)
        elif isinstance(node, Negate):
            stack.append(node.operand)


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Expr:
    """Parse ``text``; raise :class:`ExpressionError` with the offending offset."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, not {type(text).__name__}", 0)
    try:
        root = _Parser(text).parse()
    except RecursionError as exc:  # belt and braces: _MAX_NESTING should prevent this
        raise ExpressionError(_t("ex_nested"), 0) from exc
    refs: set[str] = set()
    funcs: set[str] = set()
    bare: set[str] = set()
    current = False
    for node in _walk(root):
        if isinstance(node, Ref):
            refs.add(node.name)
        elif isinstance(node, Column):
            bare.add(node.name)
        elif isinstance(node, Current):
            current = True
        elif isinstance(node, Call):
            funcs.add(node.name)
            if node.name == "jr:choice-name":
                refs.add(_choice_name_question(node.args[1]))
    return Expr(text, root, frozenset(refs), frozenset(funcs), frozenset(bare), current)


# --------------------------------------------------------------------------- context


class Context(Protocol):
    """What the evaluator needs from the form engine."""

    def value(self, name: str) -> Any:
        """``${name}`` seen from the current repeat instance; None when unanswered."""

    def values(self, name: str) -> list[Any]:
        """Every value of ``name`` visible from here (a repeat's own name: one per instance)."""

    def current(self) -> Any:
        """The value of ``.``."""

    def column(self, name: str) -> Any:
        """A choice-row column in a choice_filter; raise ExpressionError if unavailable."""

    def position(self) -> int:
        """1-based index of the current repeat instance, 0 outside repeats."""

    def size(self) -> int:
        """last(): how many instances the current repeat has (1 outside repeats)."""

    def indexed(self, name: str, positions: dict[str, int]) -> Any:
        """indexed-repeat(): ``name`` in the instances named (repeat -> 1-based position)."""

    def pulldata(self, file: str, column: str, key_column: str, key: str) -> str:
        """pulldata(): ``column`` of the first row of table ``file`` whose key is ``key``."""

    def choice_label(self, question: str, choice: str) -> str: ...

    def now(self) -> datetime.datetime: ...


def _is_repeat(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


class MappingContext:
    """A :class:`Context` over plain answers (the answers-file shape).

    Lists of dicts are repeats: ``values(name)`` collects ``name`` from every instance,
    at any depth. ``instance`` is the current repeat instance, searched before ``answers``
    by ``value()``. ``labels`` maps question -> choice name -> label.
    """

    def __init__(
        self,
        answers: dict[str, Any] | None = None,
        current: Any = None,
        columns: dict[str, Any] | None = None,
        position: int = 0,
        labels: dict[str, dict[str, str]] | None = None,
        now: datetime.datetime | None = None,
        instance: dict[str, Any] | None = None,
        count: int = 1,
        tables: dict[str, list[dict[str, str]]] | None = None,
    ) -> None:
        self.answers = answers if answers is not None else {}
        self.current_value = current
        self.columns = columns
        self.index = position
        self.labels = labels if labels is not None else {}
        self.fixed_now = now
        self.instance = instance
        self.count = count
        self.tables = tables if tables is not None else {}

    def __repr__(self) -> str:
        return (
            f"MappingContext(answers={self.answers!r}, current={self.current_value!r}, "
            f"columns={self.columns!r}, position={self.index!r})"
        )

    def value(self, name: str) -> Any:
        if self.instance is not None and name in self.instance:
            return self.instance[name]
        return self.answers.get(name)

    def values(self, name: str) -> list[Any]:
        if name in self.answers:
            value = self.answers[name]
            return list(value) if _is_repeat(value) else [value]
        found: list[Any] = []

        def collect(data: dict[str, Any]) -> None:
            for key, value in data.items():
                if key == name:
                    found.extend(value if _is_repeat(value) else [value])
                elif _is_repeat(value):
                    for inst in value:
                        collect(inst)

        collect(self.answers)
        return found

    def current(self) -> Any:
        return self.current_value

    def column(self, name: str) -> Any:
        if self.columns is None:
            raise ExpressionError(_t("ex_column_not_here", name=name, ref=f"${{{name}}}"))
        if name not in self.columns:
            raise ExpressionError(_t("ex_no_column", name=name))
        return self.columns[name]

    def position(self) -> int:
        return self.index

    def size(self) -> int:
        return self.count

    def indexed(self, name: str, positions: dict[str, int]) -> Any:
        cont: Any = self.answers
        for repeat, n in positions.items():  # outermost first, as written
            instances = cont.get(repeat) if isinstance(cont, dict) else None
            if not isinstance(instances, list) or not _is_repeat(instances):
                return None
            if not 1 <= n <= len(instances):
                return None
            cont = instances[n - 1]
        return cont.get(name) if isinstance(cont, dict) else None

    def pulldata(self, file: str, column: str, key_column: str, key: str) -> str:
        if file not in self.tables:
            raise ExpressionError(_t("ex_pulldata_no_table", file=file))
        row = rows_by_key(self.tables[file], key_column).get(key)
        return "" if row is None else row.get(column, "")

    def choice_label(self, question: str, choice: str) -> str:
        return self.labels.get(question, {}).get(choice, "")

    def now(self) -> datetime.datetime:
        # With the local offset, as ODK's now(): its text names the instant ('...+06:00').
        return (
            self.fixed_now if self.fixed_now is not None else datetime.datetime.now().astimezone()
        )


# --------------------------------------------------------------------------- conversions

# Text as a number. The exponent is not XPath's (JavaRosa gives NaN for '1.1e6'), but Java
# writes small and large decimals that way ('7.9E-12'), so answers synced from Collect carry it.
_NUM_RE = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TZ = r"(Z|[+-]\d{2}(?::?\d{2})?)?"
_TIME = r"(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
# Month and day may be a single digit: JavaRosa reads '1970-1-2'.
_DATE_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DATETIME_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})[T ]" + _TIME + _TZ)
_TIME_RE = re.compile(_TIME + _TZ)
# Java's double equality in XPath '=' and its boolean/string conversions allow this much slack,
# so that 6.1 - 7.8 = -1.7 holds as it does in ODK Collect.
_EPSILON = 1e-12
# Day numbers a date may have: JavaRosa refuses any beyond a Java int.
_MAX_DAY = 2**31 - 1


def _norm_int(value: int) -> int | float:
    if -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return value
    try:
        return float(value)
    except OverflowError:
        return INF if value > 0 else -INF


def _norm(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return _norm_int(value)
    return value


def _parse_time_parts(h: str, mi: str, s: str | None, frac: str | None) -> datetime.time:
    micro = int((frac or "0")[:6].ljust(6, "0"))
    return datetime.time(int(h), int(mi), int(s or 0), micro)


def _parse_offset(text: str | None) -> datetime.timezone | None:
    if not text:
        return None
    if text == "Z":
        return datetime.timezone.utc
    digits = text[1:].replace(":", "")
    delta = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    return datetime.timezone(-delta if text[0] == "-" else delta)


def _parse_temporal(text: str) -> datetime.date | datetime.datetime | datetime.time | None:
    """An ISO date, datetime or time string, else None. A datetime with an offset ('Z',
    '+06', '-07:00') keeps it, so that it names an instant; without one it is wall clock."""
    text = text.strip()
    try:
        if m := _DATE_RE.fullmatch(text):
            return datetime.date(int(m[1]), int(m[2]), int(m[3]))
        if m := _DATETIME_RE.fullmatch(text):
            t = _parse_time_parts(m[4], m[5], m[6], m[7]).replace(tzinfo=_parse_offset(m[8]))
            return datetime.datetime.combine(datetime.date(int(m[1]), int(m[2]), int(m[3])), t)
        if m := _TIME_RE.fullmatch(text):
            return _parse_time_parts(m[1], m[2], m[3], m[4])
    except ValueError:  # 2026-02-30, 25:00 and the like are just text
        return None
    return None


def _days(value: datetime.date | datetime.time) -> int | float:
    """Days since the epoch; wall-clock time as JavaRosa does, so dates with and without
    offsets mix without shifting by the zone."""
    if isinstance(value, datetime.datetime):
        naive = value.replace(tzinfo=None)
        return (naive - _EPOCH_DT).total_seconds() / 86400
    if isinstance(value, datetime.date):
        return (value - _EPOCH).days
    seconds = value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6
    return seconds / 86400


def _str_to_num(text: str) -> int | float:
    # A decimal comma reads as a point, as in JavaRosa (for locales that write 4,6).
    s = text.strip().replace(",", ".") if "," in text else text.strip()
    if _NUM_RE.fullmatch(s):
        return _parse_number(s)
    temporal = _parse_temporal(s)
    if temporal is not None:
        return _days(temporal)
    return NAN


def _num(value: Any) -> int | float:
    """XPath number(), keeping ints as ints so integer arithmetic stays exact."""
    if value is None:
        return NAN
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _norm_int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return _str_to_num(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return _days(value)
    if isinstance(value, list):
        return _str_to_num(to_string(value))
    return NAN


def to_number(value: Any) -> float:
    """XPath number(): empty or non-numeric -> NaN; dates -> days since 1970-01-01."""
    return float(_num(value))


def _float_to_string(value: float) -> str:
    # XPath's text for NaN. A calculation still stores NaN as empty (the engine's rule, as
    # JavaRosa's Recalculate.wrapData), but string() and concat() show it, as ODK does.
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer():
        return str(int(value))
    # Within 1e-12 above a whole number is that number, as JavaRosa prints it (0.1 * 3 * 10).
    if abs(value) < _EPSILON:
        return "0"
    if abs(value) < _MAX_DAY and abs(value - math.trunc(value)) < _EPSILON:
        return str(math.trunc(value))
    text = repr(value)
    if "e" in text or "E" in text:  # XPath never uses exponent notation
        text = format(Decimal(text), "f")
    return text


def to_string(value: Any) -> str:
    """XPath string(): None -> '', 3.0 -> '3', dates ISO, booleans 'true'/'false'."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float_to_string(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return " ".join(to_string(v) for v in value)
    if isinstance(value, dict):  # a repeat instance has no text of its own
        return ""
    return str(value)


def to_bool(value: Any) -> bool:
    """XPath boolean(): empty, 0, NaN and empty lists are false; any other text is true."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value == value and abs(value) > _EPSILON
    if isinstance(value, str):
        return value != ""
    if isinstance(value, (list, dict)):
        return len(value) > 0
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, list):
        return len(value) == 0
    return False


def _to_int(value: Any) -> int:
    """Java's (int) cast: NaN -> 0, infinities clamp."""
    n = _num(value)
    if n != n:
        return 0
    if n in (INF, -INF):
        return 2**31 - 1 if n > 0 else -(2**31)
    return int(n)


def _items(value: Any) -> list[str]:
    """A select_multiple answer as choice names; accepts a list or 'a b c'."""
    if value is None:
        return []
    if isinstance(value, list):
        return [s for s in (to_string(v).strip() for v in value) if s]
    return to_string(value).split()


# --------------------------------------------------------------------------- operators


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return to_bool(a) == to_bool(b)
    if _is_number(a) or _is_number(b):
        return _num_equal(_num(a), _num(b))
    if isinstance(a, (datetime.date, datetime.time)) or isinstance(
        b, (datetime.date, datetime.time)
    ):
        return _num_equal(_num(a), _num(b))
    return to_string(a) == to_string(b)


def _num_equal(x: int | float, y: int | float) -> bool:
    """JavaRosa's number equality: within 1e-12, so decimal rounding does not make 6.1 - 7.8
    differ from -1.7. Equal infinities are equal here (JavaRosa's inf - inf is NaN: unequal)."""
    return x == y or abs(x - y) < _EPSILON


def _div(x: int | float, y: int | float) -> int | float:
    if y == 0:
        if x != x or x == 0:
            return NAN
        return INF if (x > 0) == (math.copysign(1, y) > 0) else -INF
    if isinstance(x, int) and isinstance(y, int) and x % y == 0:
        return x // y
    return x / y


def _mod(x: int | float, y: int | float) -> int | float:
    # XPath mod truncates like Java's %: the result has the sign of the dividend.
    if y == 0 or x != x or y != y or math.isinf(x):
        return NAN
    if isinstance(x, int) and isinstance(y, int):
        r = abs(x) % abs(y)
        return -r if x < 0 else r
    return math.fmod(x, y)


def _binary(op: str, a: Any, b: Any) -> Any:
    if op == "=":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    x, y = _num(a), _num(b)
    if op == "<":
        return x < y
    if op == "<=":
        return x <= y
    if op == ">":
        return x > y
    if op == ">=":
        return x >= y
    if op == "+":
        return _norm(x + y)
    if op == "-":
        return _norm(x - y)
    if op == "*":
        return _norm(x * y)
    if op == "div":
        return _norm(_div(x, y))
    if op == "mod":
        return _norm(_mod(x, y))
    raise ExpressionError(f"unknown operator '{op}'")  # pragma: no cover - parser guarantees


# --------------------------------------------------------------------------- evaluator


class _Evaluator:
    __slots__ = ("ctx",)

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def ev(self, node: Node) -> Any:
        try:
            if isinstance(node, Literal):
                return node.value
            if isinstance(node, Ref):
                return self.ctx.value(node.name)
            if isinstance(node, Chain):
                return self.chain(node)
            if isinstance(node, Call):
                result = _FUNCTIONS[node.name].impl(self, node.args)
                if isinstance(result, str) and len(result) > MAX_STRING_LENGTH:
                    raise LimitExceeded(_too_long(node.name), node.pos)
                return result
            if isinstance(node, Negate):
                return _norm(-_num(self.ev(node.operand)))
            if isinstance(node, Current):
                return self.ctx.current()
            if isinstance(node, Column):
                try:
                    return self.ctx.column(node.name)
                except ExpressionError as exc:
                    raise ExpressionError(exc.message, node.pos) from exc
        except ExpressionError:
            raise
        except odk.InputError as exc:  # its message names the function already
            raise ExpressionError(str(exc), node.pos) from exc
        except RecursionError as exc:
            raise ExpressionError(_t("ex_nested"), node.pos) from exc
        except Exception as exc:  # the contract: nothing but ExpressionError escapes
            where = f"{node.name}(): " if isinstance(node, Call) else ""
            raise ExpressionError(f"{where}cannot evaluate: {exc}", node.pos) from exc
        raise ExpressionError(f"cannot evaluate {type(node).__name__}", 0)

    def chain(self, node: Chain) -> Any:
        items, ops = node.items, node.ops
        if ops[0] == "or":
            return any(to_bool(self.ev(item)) for item in items)
        if ops[0] == "and":
            return all(to_bool(self.ev(item)) for item in items)
        acc = self.ev(items[0])
        for op, item in zip(ops, items[1:], strict=True):
            acc = _binary(op, acc, self.ev(item))
        return acc

    def nodeset(self, node: Node) -> list[Any]:
        """A ${ref} argument of count/sum/...: every value across repeat instances."""
        if isinstance(node, Ref):
            return list(self.ctx.values(node.name))
        return [self.ev(node)]

    def nodes_only(self, name: str, node: Node) -> list[Any]:
        """The nodes of count(), count-non-empty() and sum(), which JavaRosa refuses a plain
        value ('not a nodeset'): a ${ref}, or '.' for the current answer."""
        if isinstance(node, Current):
            return [self.ctx.current()]
        if not isinstance(node, Ref):
            raise ExpressionError(_t("ex_not_nodeset", name=name), node.pos)
        return self.nodeset(node)


def evaluate(expr: Expr | str, ctx: Context) -> Any:
    """Evaluate ``expr`` against ``ctx``.

    Returns str, int, float, bool, datetime.date, datetime.datetime or what the context
    supplies (None, list[str]); store results with :func:`to_string`.
    """
    if isinstance(expr, str):
        expr = parse(expr)
    try:
        return _Evaluator(ctx).ev(expr.root)
    except ExpressionError:
        raise
    except Exception as exc:  # e.g. a context method failing outside any node
        raise ExpressionError(f"cannot evaluate: {exc}", 0) from exc


# --------------------------------------------------------------------------- functions

_Impl = Callable[[_Evaluator, tuple[Node, ...]], Any]


@dataclass(frozen=True)
class _Function:
    min_args: int
    max_args: int  # -1: any number
    impl: _Impl

    def arity_text(self) -> str:
        from yntymak_cli.i18n import current_lang

        if current_lang() != "en":  # ky and ru name the count after the word "arguments"
            if self.max_args < 0:
                return _t("ex_arity_least", n=self.min_args)
            if self.min_args == self.max_args:
                return str(self.min_args)
            return _t("ex_arity_range", min=self.min_args, max=self.max_args)

        def plural(n: int) -> str:
            return f"{n} argument" + ("" if n == 1 else "s")

        if self.max_args < 0:
            return f"at least {plural(self.min_args)}"
        if self.min_args == self.max_args:
            return plural(self.min_args)
        return f"{self.min_args} to {plural(self.max_args)}"


_FUNCTIONS: dict[str, _Function] = {}


def _raw(*names: str, args: tuple[int, int]) -> Callable[[_Impl], _Impl]:
    """Register a function that evaluates its own arguments (lazy ones, nodesets)."""

    def register(impl: _Impl) -> _Impl:
        for name in names:
            _FUNCTIONS[name] = _Function(args[0], args[1], impl)
        return impl

    return register


def _fn(*names: str, args: tuple[int, int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a plain function of its evaluated arguments."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        def impl(ev: _Evaluator, nodes: tuple[Node, ...]) -> Any:
            return func(*[ev.ev(n) for n in nodes])

        for name in names:
            _FUNCTIONS[name] = _Function(args[0], args[1], impl)
        return func

    return register


def _current_or(ev: _Evaluator, nodes: tuple[Node, ...]) -> Any:
    """XPath string functions default to the context node when called without argument."""
    return ev.ev(nodes[0]) if nodes else ev.ctx.current()


# -- logic


@_raw("if", args=(3, 3))
def _if(ev: _Evaluator, a: tuple[Node, ...]) -> Any:
    return ev.ev(a[1]) if to_bool(ev.ev(a[0])) else ev.ev(a[2])


@_raw("coalesce", args=(2, -1))
def _coalesce(ev: _Evaluator, a: tuple[Node, ...]) -> Any:
    value: Any = None
    for node in a:
        value = ev.ev(node)
        if not _blank(value):
            return value
    return value


_fn("not", args=(1, 1))(lambda x: not to_bool(x))
_fn("true", args=(0, 0))(lambda: True)
_fn("false", args=(0, 0))(lambda: False)
_fn("boolean", args=(1, 1))(to_bool)
_fn("once", args=(1, 1))(lambda x: x)  # the engine decides when to recompute
_fn("boolean-from-string", args=(1, 1))(
    lambda x: to_string(x).strip().lower() == "true" or to_string(x).strip() == "1"
)

# -- selects


@_fn("selected", args=(2, 2))
def _selected(value: Any, choice: Any) -> bool:
    return to_string(choice).strip() in _items(value)


_fn("count-selected", args=(1, 1))(lambda value: len(_items(value)))


@_fn("selected-at", args=(2, 2))
def _selected_at(value: Any, index: Any) -> str:
    items, i = _items(value), _to_int(index)
    return items[i] if 0 <= i < len(items) else ""


@_raw("jr:choice-name", args=(2, 2))
def _choice_name(ev: _Evaluator, a: tuple[Node, ...]) -> str:
    question = _choice_name_question(a[1])
    value = ev.ev(a[0])
    choices = value if isinstance(value, list) else [value]
    labels = [
        to_string(ev.ctx.choice_label(question, to_string(c))) for c in choices if not _blank(c)
    ]
    return " ".join(labels)


# -- strings


# string() and number() take exactly one argument in JavaRosa (not XPath's context-node default);
# string-length() and normalize-space() do use the current answer.
_fn("string", args=(1, 1))(to_string)


@_raw("string-length", args=(0, 1))
def _string_length(ev: _Evaluator, a: tuple[Node, ...]) -> int:
    return len(to_string(_current_or(ev, a)))


@_raw("normalize-space", args=(0, 1))
def _normalize_space(ev: _Evaluator, a: tuple[Node, ...]) -> str:
    return re.sub(r"[ \t\r\n]+", " ", to_string(_current_or(ev, a))).strip(" ")


def _too_long(name: str) -> str:
    return _t("ex_too_long", name=name, limit=f"{MAX_STRING_LENGTH:,}")


def _joined(name: str, sep: str, parts: list[str]) -> str:
    """``sep.join(parts)``, refused before it is built when the result would be too long."""
    if sum(map(len, parts)) + len(sep) * max(len(parts) - 1, 0) > MAX_STRING_LENGTH:
        raise LimitExceeded(_too_long(name))
    return sep.join(parts)


_fn("concat", args=(0, -1))(lambda *xs: _joined("concat", "", [to_string(x) for x in xs]))
_fn("contains", args=(2, 2))(lambda s, t: to_string(t) in to_string(s))
_fn("starts-with", args=(2, 2))(lambda s, t: to_string(s).startswith(to_string(t)))
_fn("ends-with", args=(2, 2))(lambda s, t: to_string(s).endswith(to_string(t)))


@_fn("substr", args=(2, 3))
def _substr(s: Any, start: Any, end: Any = None) -> str:
    # 0-based, end exclusive, negative counts from the end (JavaRosa); out-of-range ends clamp.
    text = to_string(s)
    length = len(text)
    i = _to_int(start)
    j = length if end is None else _to_int(end)
    if i < 0:
        i += length
    if j < 0:
        j += length
    i, j = max(0, i), min(length, j)
    return text[i:j] if i < j else ""


@_raw("regex", args=(2, 2))
def _regex(ev: _Evaluator, a: tuple[Node, ...]) -> bool:
    text = to_string(ev.ev(a[0]))
    # ODK: "true if the string exactly and completely matches" (Java's String.matches()),
    # hence fullmatch rather than search.
    return _compile_regex(to_string(ev.ev(a[1])), a[1].pos).fullmatch(text) is not None


@_raw("join", args=(1, -1))
def _join(ev: _Evaluator, a: tuple[Node, ...]) -> str:
    sep = to_string(ev.ev(a[0]))
    return _joined("join", sep, [to_string(v) for node in a[1:] for v in ev.nodeset(node)])


@_fn("uuid", args=(0, 1))
def _uuid(length: Any = None) -> str:
    if length is None:
        return str(uuid.uuid4())
    n = min(max(_to_int(length), 0), 1024)
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


# -- numbers


_fn("number", args=(1, 1))(_num)


def _finite_int(func: Callable[[float], Any]) -> Callable[[Any], int | float]:
    def wrapped(x: Any) -> int | float:
        n = _num(x)
        if n != n or math.isinf(n):
            return n
        return _norm_int(int(func(n)))

    return wrapped


_fn("int", args=(1, 1))(_finite_int(math.trunc))
_fn("floor", args=(1, 1))(_finite_int(math.floor))
_fn("ceiling", args=(1, 1))(_finite_int(math.ceil))
_fn("abs", args=(1, 1))(lambda x: abs(_num(x)))


@_fn("round", args=(1, 2))
def _round(x: Any, digits: Any = None) -> int | float:
    """JavaRosa's round: halves go away from zero for positive numbers and toward zero for
    negative ones (round(-2.5) is -2); the places are a Java int (NaN is 0, 1.5 is 1), and
    more than 30 either way give NaN."""
    n = _num(x)
    d = 0 if digits is None else _to_int(digits)
    if n != n or math.isinf(n):
        return n
    if abs(d) > 30:
        return NAN
    if isinstance(n, int) and d >= 0:
        return n
    with localcontext() as dc:
        dc.prec = 800
        mode = ROUND_HALF_DOWN if n < 0 else ROUND_HALF_UP
        try:
            q = Decimal(repr(n)).quantize(Decimal(1).scaleb(-d), rounding=mode)
        except InvalidOperation:
            return n
    if d <= 0:
        return _norm_int(int(q))
    return float(q)


def _math(func: Callable[..., float]) -> Callable[..., float]:
    """Math-domain errors give NaN and overflows Infinity, as IEEE arithmetic would."""

    def wrapped(*xs: Any) -> float:
        nums = [float(_num(x)) for x in xs]
        try:
            return func(*nums)
        except ValueError:
            return NAN
        except OverflowError:
            return INF

    return wrapped


@_fn("pow", args=(2, 2))
def _pow(x: Any, y: Any) -> int | float:
    a, b = _num(x), _num(y)
    if isinstance(a, int) and isinstance(b, int) and 0 <= b <= 64:
        return _norm_int(a**b)
    return _math(math.pow)(a, b)


def _log(func: Callable[[float], float]) -> Callable[[float], float]:
    return lambda x: -INF if x == 0 else func(x)


_fn("sqrt", args=(1, 1))(_math(math.sqrt))
_fn("exp", args=(1, 1))(_math(math.exp))
_fn("exp10", args=(1, 1))(_math(lambda x: math.pow(10.0, x)))
_fn("log", args=(1, 1))(_math(_log(math.log)))
_fn("log10", args=(1, 1))(_math(_log(math.log10)))
_fn("sin", args=(1, 1))(_math(math.sin))
_fn("cos", args=(1, 1))(_math(math.cos))
_fn("tan", args=(1, 1))(_math(math.tan))
_fn("asin", args=(1, 1))(_math(math.asin))
_fn("acos", args=(1, 1))(_math(math.acos))
_fn("atan", args=(1, 1))(_math(math.atan))
_fn("atan2", args=(2, 2))(_math(math.atan2))
_fn("pi", args=(0, 0))(lambda: math.pi)

# -- nodesets


@_raw("count", args=(1, 1))
def _count(ev: _Evaluator, a: tuple[Node, ...]) -> int:
    return len(ev.nodes_only("count", a[0]))


@_raw("count-non-empty", args=(1, 1))
def _count_non_empty(ev: _Evaluator, a: tuple[Node, ...]) -> int:
    return sum(1 for v in ev.nodes_only("count-non-empty", a[0]) if not _blank(v))


@_raw("sum", args=(1, 1))
def _sum(ev: _Evaluator, a: tuple[Node, ...]) -> int | float:
    # Empty answers are skipped, as JavaRosa skips NaN: an unanswered row in a repeat does
    # not blank out a household total.
    total: int | float = 0
    for v in ev.nodes_only("sum", a[0]):
        if not _blank(v):
            total = _norm(total + _num(v))
    return total


def _extreme(pick: Callable[[list[int | float]], int | float]) -> _Impl:
    def impl(ev: _Evaluator, a: tuple[Node, ...]) -> int | float:
        # Empty answers are skipped like in sum(); nothing left (or any non-number) is NaN.
        nums = [_num(v) for node in a for v in ev.nodeset(node) if not _blank(v)]
        if not nums or any(n != n for n in nums):
            return NAN
        return pick(nums)

    return impl


_raw("min", args=(1, -1))(_extreme(min))
_raw("max", args=(1, -1))(_extreme(max))


@_raw("position", args=(0, 0))
def _position(ev: _Evaluator, a: tuple[Node, ...]) -> int:
    return int(ev.ctx.position())


# -- dates

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _temporal(value: Any, *, fn: str) -> datetime.date | datetime.datetime | None:
    """A date or datetime for the date functions; None for empty or NaN.

    Numbers are days since 1970-01-01 and give a datetime. As in JavaRosa's toDate, anything
    else is an error: booleans, text that is no ISO date (numeric text included) and day
    numbers beyond a Java int.
    """
    if isinstance(value, datetime.date):
        return value
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise ExpressionError(_t("ex_not_a_date", fn=fn, value=to_string(value)))
    if not isinstance(value, (int, float)):
        text = to_string(value)
        parsed = _parse_temporal(text)
        if isinstance(parsed, datetime.date):
            return parsed
        raise ExpressionError(_t("ex_not_a_date", fn=fn, value=text))
    if value != value:
        return None
    if not -_MAX_DAY <= value <= _MAX_DAY:
        raise ExpressionError(_t("ex_date_range", fn=fn, value=to_string(value)))
    return _EPOCH_DT + datetime.timedelta(days=value)


def _empty_date(value: Any) -> float | None:
    """What a date function gives for nothing to convert: NaN stays NaN, empty stays empty."""
    return NAN if _is_number(value) else None


@_fn("date", args=(1, 1))
def _date(value: Any) -> datetime.date | float | None:
    result = _temporal(value, fn="date")
    if result is None:
        return _empty_date(value)
    if _is_number(value):  # a day number is a calendar day; fractions go toward 1970 (Java int)
        return _EPOCH + datetime.timedelta(days=math.trunc(value))
    if isinstance(result, datetime.datetime) and not isinstance(value, str):
        return result.date()  # now() and other datetime values lose the time; ISO text keeps it
    return result


@_fn("date-time", args=(1, 1))
def _date_time(value: Any) -> datetime.datetime | float | None:
    result = _temporal(value, fn="date-time")
    if result is None:
        return _empty_date(value)
    if isinstance(result, datetime.datetime):
        return result
    return datetime.datetime.combine(result, datetime.time())


def _instant_days(value: datetime.date) -> float:
    """Days since 1970-01-01T00:00Z of the instant a datetime with an offset names; wall
    clock (as UTC) for one without, since answers carry no zone of their own."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
        return (value - epoch).total_seconds() / 86400
    return float(_days(value))


@_fn("decimal-date-time", args=(1, 1))
def _decimal_date_time(value: Any) -> float:
    result = _temporal(value, fn="decimal-date-time")
    if result is None:
        return NAN
    return float(value) if _is_number(value) else _instant_days(result)


@_raw("today", args=(0, 0))
def _today(ev: _Evaluator, a: tuple[Node, ...]) -> datetime.date:
    return ev.ctx.now().date()


@_raw("now", args=(0, 0))
def _now(ev: _Evaluator, a: tuple[Node, ...]) -> datetime.datetime:
    return ev.ctx.now()


@_fn("format-date", "format-date-time", args=(2, 2))
def _format_date(value: Any, fmt: Any) -> str:
    d = _temporal(value, fn="format-date")
    if d is None:
        return ""
    dt = d if isinstance(d, datetime.datetime) else datetime.datetime.combine(d, datetime.time())
    codes = {
        "Y": f"{dt.year:04d}",
        "y": f"{dt.year % 100:02d}",
        "m": f"{dt.month:02d}",
        "n": str(dt.month),
        "b": _MONTHS[dt.month - 1],
        "d": f"{dt.day:02d}",
        "e": str(dt.day),
        "a": _WEEKDAYS[dt.weekday()],
        "H": f"{dt.hour:02d}",
        "h": str(dt.hour),
        "M": f"{dt.minute:02d}",
        "S": f"{dt.second:02d}",
        "3": f"{dt.microsecond // 1000:03d}",
    }
    # Unknown %x sequences are kept as written rather than failing the form.
    return re.sub(r"%(.)", lambda m: codes.get(m[1], m[0]), to_string(fmt))


# -- repeats and data tables (need the context)


@_raw("last", args=(0, 0))
def _last(ev: _Evaluator, a: tuple[Node, ...]) -> int:
    return int(ev.ctx.size())


@_raw("indexed-repeat", args=(3, 7))
def _indexed_repeat(ev: _Evaluator, a: tuple[Node, ...]) -> Any:
    """indexed-repeat(${q}, ${repeat}, n[, ${repeat2}, n2[, ${repeat3}, n3]])."""
    positions: dict[str, int] = {}
    for repeat, index in zip(a[1::2], a[2::2], strict=True):
        n = _num(ev.ev(index))
        if isinstance(n, float) and not n.is_integer():  # NaN, Infinity, 1.5: no instance
            return ""
        positions[repeat.name] = int(n)  # type: ignore[union-attr]
    value = ev.ctx.indexed(a[0].name, positions)  # type: ignore[union-attr]
    return "" if value is None else value


@_raw("pulldata", args=(4, 4))
def _pulldata(ev: _Evaluator, a: tuple[Node, ...]) -> str:
    file, column, key_column, key = (to_string(ev.ev(n)) for n in a)
    return ev.ctx.pulldata(file, column, key_column, key)


# -- the rest of ODK's library (forms/odk_functions.py): values converted here. Its
# InputErrors (a form or data problem) become ExpressionErrors at the call, with its
# position, in _Evaluator.ev.


@_fn("substring-before", args=(2, 2))
def _substring_before(s: Any, sep: Any) -> str:
    return odk.substring_before(to_string(s), to_string(sep))


@_fn("substring-after", args=(2, 2))
def _substring_after(s: Any, sep: Any) -> str:
    return odk.substring_after(to_string(s), to_string(sep))


@_fn("translate", args=(3, 3))
def _translate(s: Any, source: Any, target: Any) -> str:
    return odk.translate(to_string(s), to_string(source), to_string(target))


@_fn("decimal-time", args=(1, 1))
def _decimal_time(value: Any) -> float:
    if isinstance(value, (datetime.datetime, datetime.time)):
        value = value.isoformat()
    elif _is_number(value):
        value = float(value)
    else:
        value = to_string(value)
    return odk.decimal_time(value)


def _flat(ev: _Evaluator, nodes: tuple[Node, ...]) -> list[Any]:
    """Arguments where a ${ref} in a repeat stands for all its values (checklist...)."""
    return [v for n in nodes for v in ev.nodeset(n)]


@_raw("checklist", args=(2, -1))
def _checklist(ev: _Evaluator, a: tuple[Node, ...]) -> bool:
    low, high, *flags = _flat(ev, a)
    return odk.checklist(to_number(low), to_number(high), *(to_bool(f) for f in flags))


@_raw("weighted-checklist", args=(2, -1))
def _weighted_checklist(ev: _Evaluator, a: tuple[Node, ...]) -> bool:
    low, high, *rest = _flat(ev, a)
    pairs = [to_bool(v) if i % 2 == 0 else to_number(v) for i, v in enumerate(rest)]
    return odk.weighted_checklist(to_number(low), to_number(high), *pairs)


def _geo(ev: _Evaluator, node: Node) -> str | list[str]:
    values = [to_string(v) for v in ev.nodeset(node)]
    values = [v for v in values if v.strip()]  # unanswered points of a repeat
    return values[0] if len(values) == 1 else values


@_raw("distance", args=(1, 1))
def _distance(ev: _Evaluator, a: tuple[Node, ...]) -> float:
    return odk.distance(_geo(ev, a[0]))


@_raw("area", "enclosed-area", args=(1, 1))
def _area(ev: _Evaluator, a: tuple[Node, ...]) -> float:
    return odk.area(_geo(ev, a[0]))


@_fn("digest", args=(2, 3))
def _digest(data: Any, algorithm: Any, encoding: Any = "base64") -> str:
    return odk.digest(to_string(data), to_string(algorithm), to_string(encoding))


@_fn("base64-decode", args=(1, 1))
def _base64_decode(text: Any) -> str:
    return odk.base64_decode(to_string(text))


@_raw("randomize", args=(1, 2))
def _randomize(ev: _Evaluator, a: tuple[Node, ...]) -> list[str]:
    values = ev.nodeset(a[0])
    items = _items(values[0]) if len(values) == 1 else [to_string(v) for v in values]
    seed = to_number(ev.ev(a[1])) if len(a) > 1 else None
    return odk.randomize(items, seed)


@_fn("random", args=(0, 0))
def _random() -> float:
    return odk.random_value()


SUPPORTED_FUNCTIONS: frozenset[str] = frozenset(_FUNCTIONS)
