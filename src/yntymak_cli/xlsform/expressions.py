"""XLSForm (XPath) expressions -> our expression language.

Ours is the XLSForm subset with `${name}` references, so most text passes through as is.
What is rewritten: absolute paths to questions (`/data/group/age` -> `${age}`). What
cannot run here (external data, repeat look-ups, unknown functions, syntax we reject)
is reported so the importer can keep the original text aside instead of evaluating it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container, Iterator, Mapping
from dataclasses import dataclass

from yntymak_cli.forms import expressions as ex

# Functions that read data a terminal survey does not have; named so the warning says why.
_EXTERNAL = {
    "pulldata": "pulldata() reads an external CSV file",
    "instance": "instance() looks up external or secondary data",
    "search": "search() reads an external CSV file",
    "current": "current() paths are not supported",
}
_CALL_RE = re.compile(r"(?<![\w:.-])([A-Za-z_][\w.:-]*)\s*\(")
_PATH_RE = re.compile(r"(?<![\w.)\]}$])(?:/[A-Za-z_][\w.-]*){2,}")
_REF_RE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Translation:
    """Our expression text, or `problem` saying why the XLSForm text cannot run here."""

    text: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _chunks(text: str) -> Iterator[tuple[bool, str]]:
    """(inside a string literal?, chunk) so rewrites never touch quoted text."""
    i, n = 0, len(text)
    start = 0
    while i < n:
        if text[i] in "'\"":
            end = text.find(text[i], i + 1)
            if end < 0:
                break
            if start < i:
                yield False, text[start:i]
            yield True, text[i : end + 1]
            i = start = end + 1
            continue
        i += 1
    if start < n:
        yield False, text[start:]


def _outside_strings(text: str, rewrite: Callable[[str], str]) -> str:
    return "".join(chunk if quoted else rewrite(chunk) for quoted, chunk in _chunks(text))


def from_xlsform(text: str, names: Container[str] = ()) -> Translation:
    """Translate one XLSForm expression; `names` are the form's question names."""
    text = text.strip()

    def absolute_paths(chunk: str) -> str:
        def replace(match: re.Match[str]) -> str:
            last = match.group(0).rsplit("/", 1)[1]
            return f"${{{last}}}" if last in names else match.group(0)

        return _PATH_RE.sub(replace, chunk)

    text = _outside_strings(text, absolute_paths)
    calls = {
        m.group(1)
        for quoted, chunk in _chunks(text)
        if not quoted
        for m in _CALL_RE.finditer(chunk)
    }
    for name in sorted(calls):
        if name in _EXTERNAL:
            return Translation(text, _EXTERNAL[name])
    try:
        ex.parse(text)
    except ex.ExpressionError as exc:
        return Translation(text, exc.message)
    return Translation(text)


def rename_refs(text: str, renamed: Mapping[str, str]) -> str:
    """`${old}` -> `${new}` everywhere (jr:choice-name quotes its reference, so strings too)."""
    if not renamed:
        return text
    return _REF_RE.sub(lambda m: f"${{{renamed.get(m.group(1), m.group(1))}}}", text)


def refs_in(text: str) -> set[str]:
    """Names written as `${name}` (in labels, where we do not parse)."""
    return {m.group(1) for m in _REF_RE.finditer(text)}
