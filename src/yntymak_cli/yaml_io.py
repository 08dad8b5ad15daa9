"""YAML 1.2 reading with positions, and writing.

Scalars are kept as the text written: `01` stays "01", `2026-10-01` stays a string and
`yes`/`no` are strings (YAML 1.2). Only plain `null`/`~`/empty and `true`/`false` become
None and booleans; the pydantic models coerce numbers where a field is numeric.
Every node's position is recorded under its path so problems can name FILE:LINE:COL.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from yntymak_cli.errors import InvalidInput

Path_ = tuple[str | int, ...]

_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_TRUE = {"true", "True", "TRUE"}


@dataclass
class Positions:
    """1-based (line, col) of each value (and of each mapping key) by path."""

    values: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    # Scalars written on one line in quotes: their text starts one column after the mark.
    quoted: set[Path_] = field(default_factory=set)

    def text_start(self, path: Path_) -> tuple[int, int]:
        """Where the text of a scalar begins, so an offset into it gives a column."""
        line, col = self.of(path)
        return (line, col + 1) if tuple(path) in self.quoted else (line, col)

    def of(self, path: Path_, key: bool = False) -> tuple[int, int]:
        """Position of the path, or of its nearest known ancestor."""
        table = self.keys if key else self.values
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if p in self.values:
                return self.values[p]
            p = p[:-1]
        return self.values.get((), (1, 1))


def _t(key: str, /, **params: object) -> str:
    """A message in the reader's language (ruamel.yaml's own detail stays as it says it)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


class YamlSyntaxError(InvalidInput):
    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line = line
        self.col = col


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.Composer = _no_alias_composer()
    return yaml


def _no_alias_composer():
    """A composer that refuses aliases (`*name`). Each alias repeats a whole subtree, so nine
    nested ones turn a 400-byte file into a billion strings ("billion laughs"); forms and
    answers files have no need for them."""
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent

    class NoAliasComposer(Composer):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.parser.check_event(AliasEvent):
                mark = self.parser.peek_event().start_mark
                raise YamlSyntaxError(
                    _t("yaml_alias"),
                    mark.line + 1,
                    mark.column + 1,
                )
            return super().compose_node(parent, index)

    return NoAliasComposer


def load_yaml(text: str) -> tuple[Any, Positions]:
    """Parse one YAML document into plain dicts/lists/strings plus positions."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from yntymak_cli.yaml_fast import load_fast

    fast = load_fast(text)  # libyaml for plain files; None: ruamel.yaml decides below
    if fast is not None:
        return fast
    positions = Positions()
    try:
        node = _yaml().compose(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or _t("yaml_invalid")
        raise YamlSyntaxError(_t("yaml_syntax", detail=problem), line, col) from None
    except (YAMLError, ValueError, RecursionError, NotImplementedError) as exc:
        # NotImplementedError: ruamel.yaml raises it on some broken comment layouts.
        detail = (str(exc).splitlines() or [""])[0]
        raise YamlSyntaxError(_t("yaml_syntax", detail=detail), 1, 1) from None
    if node is None:
        return None, positions
    duplicates: list[tuple[str, int, int]] = []
    data = _convert(node, (), positions, duplicates, depth=0)
    if duplicates:
        key, line, col = duplicates[0]
        raise YamlSyntaxError(_t("yaml_duplicate_key", key=key), line, col)
    return data, positions


def _convert(node, path: Path_, positions: Positions, dups: list, depth: int) -> Any:
    from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

    if depth > 100:
        raise YamlSyntaxError(_t("yaml_nested"), node.start_mark.line + 1, 1)
    positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, ScalarNode):
        if node.style in ("'", '"') and node.start_mark.line == node.end_mark.line:
            positions.quoted.add(path)
        if node.style is None:
            if node.tag == _NULL:
                return None
            if node.tag == _BOOL:
                return node.value in _TRUE
        if node.style == ">":
            # ruamel marks fold points with BEL to round-trip them; the text has none.
            return str(node.value).replace("\a", "")
        return str(node.value)
    if isinstance(node, SequenceNode):
        return [
            _convert(item, (*path, i), positions, dups, depth + 1)
            for i, item in enumerate(node.value)
        ]
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                raise YamlSyntaxError(_t("yaml_key_not_text"), line, col)
            key = str(key_node.value)
            kpos = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in out:
                dups.append((key, *kpos))
            # a name first: mypy reads (*a, b) inside [] as Python 3.11 syntax
            key_path = (*path, key)
            positions.keys[key_path] = kpos
            out[key] = _convert(value_node, key_path, positions, dups, depth + 1)
        return out
    raise YamlSyntaxError(_t("yaml_unsupported_node"), node.start_mark.line + 1, 1)


def dump_yaml(data: Any) -> str:
    """Readable block-style YAML (used for XLSForm import and `forms` output)."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()
