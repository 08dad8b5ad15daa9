"""The fast path of `yaml_io.load_yaml`: libyaml's C parser (through PyYAML) for plain files.

ruamel.yaml is pure Python: a form with a 100,000-choice list takes it half a minute to
read. libyaml reads the same file in under a second. It is used only where both parsers
agree, and gives the same result as `yaml_io` (text stays text, only YAML 1.2 null and
booleans are converted, the same positions):

* one document, a mapping or a list, of mappings, lists and untagged scalars, with plain
  text keys; no anchors, aliases or tags, no duplicate keys, nesting within the limit;
* none of the few things YAML 1.1 (libyaml) and 1.2 (ruamel.yaml) read differently, or
  that only ruamel.yaml refuses (see _DIFFERENT).

Anything else (and every syntax error) returns None, and `yaml_io` reads the text with
ruamel.yaml, which gives the exact message and position of the problem.

Positions are worked out only when asked for (a form with a problem to locate), by a
second libyaml pass; where a value is left empty (`hint:`) the two parsers place it
differently, so ruamel.yaml's pass gives them.
"""

from __future__ import annotations

import gc
import re
from contextvars import ContextVar
from typing import Any

from yntymak_cli.yaml_io import Path_, Positions

MAX_DEPTH = 100  # as yaml_io: deeper nesting is refused there with its message

# YAML 1.2 core schema, as ruamel.yaml resolves plain scalars; everything else is text.
_PLAIN: dict[str, bool | None] = {"": None, "~": None, "null": None, "Null": None, "NULL": None}
_PLAIN.update({s: True for s in ("true", "True", "TRUE")})
_PLAIN.update({s: False for s in ("false", "False", "FALSE")})


# Where the two parsers differ: tabs and "..." document end markers (ruamel.yaml refuses
# some libyaml takes), NEL, LS and PS (line breaks in YAML 1.1, not in 1.2), and a block
# scalar (| or >) with a comment right after the mark or a blank first line.
_DIFFERENT = ("\t", "\x85", "\u2028", "\u2029", "\n...")
_BLOCK_DIFFERENT = re.compile(r"[|>][-+0-9]*(?:#| *(?:#.*)?\r?\n *\r?$)", re.MULTILINE)

# Set while positions are taken from ruamel.yaml after all (see _LazyPositions).
_RUAMEL_ONLY: ContextVar[bool] = ContextVar("yntymak_yaml_ruamel_only", default=False)


class _Unsure(Exception):
    """Something only ruamel.yaml should decide (or report)."""


class _LazyPositions(Positions):
    """Positions worked out on first use: a valid form never needs them, and recording one
    path per node would double the time to read a big file."""

    def __init__(self, text: str) -> None:  # no dataclass fields yet: see __getattr__
        self._text = text

    def __getattr__(self, name: str) -> Any:
        if name not in ("values", "keys", "quoted"):
            raise AttributeError(name)
        found = _parse(self._text, record=True)
        positions = found[1] if found is not None else _ruamel_positions(self._text)
        self.values, self.keys, self.quoted = positions.values, positions.keys, positions.quoted
        return getattr(self, name)


def _ruamel_positions(text: str) -> Positions:
    from yntymak_cli.yaml_io import YamlSyntaxError, load_yaml

    token = _RUAMEL_ONLY.set(True)
    try:
        return load_yaml(text)[1]
    except YamlSyntaxError:  # pragma: no cover - libyaml read it, so ruamel.yaml does too
        return Positions()
    finally:
        _RUAMEL_ONLY.reset(token)


def load_fast(text: str) -> tuple[Any, Positions] | None:
    """(data, positions) as `yaml_io.load_yaml` returns them, or None to use ruamel.yaml."""
    if _RUAMEL_ONLY.get() or not _same_for_both(text):
        return None
    found = _parse(text, record=False)
    if found is None:
        return None
    return found[0], _LazyPositions(text)


def _same_for_both(text: str) -> bool:
    """Nothing in the text that the two parsers read differently (see _DIFFERENT)."""
    if text.startswith("...") or any(mark in text for mark in _DIFFERENT):
        return False
    return _BLOCK_DIFFERENT.search(text) is None


def _parse(text: str, record: bool) -> tuple[Any, Positions] | None:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency; an old venv may lack it
        return None
    if not getattr(yaml, "__with_libyaml__", False):
        return None  # pure-Python PyYAML is no faster than ruamel.yaml
    parser = yaml.CBaseLoader(text)
    # The tree is made of fresh lists and dicts that hold no cycles: without pausing the
    # collector it would rescan them again and again as they grow.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _build(parser, yaml.events, record)
    except (_Unsure, yaml.YAMLError, ValueError):
        return None
    finally:
        if collecting:
            gc.enable()
        parser.dispose()


def _build(parser: Any, ev: Any, record: bool) -> tuple[Any, Positions]:
    scalar_t, map_t, seq_t = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    end_t = (ev.MappingEndEvent, ev.SequenceEndEvent)
    get = parser.get_event
    positions = Positions()
    values, keys, quoted = positions.values, positions.keys, positions.quoted

    if not isinstance(get(), ev.StreamStartEvent):
        raise _Unsure
    start = get()
    if not isinstance(start, ev.DocumentStartEvent) or start.version or start.tags:
        raise _Unsure  # an empty stream, or %YAML/%TAG directives: ruamel.yaml decides
    root: Any = None
    # One frame per open collection: [container, is a mapping, pending key, path].
    stack: list[list[Any]] = []
    frame: list[Any] | None = None
    path: Path_ = ()
    while True:
        event = get()
        kind = type(event)
        if kind in end_t:
            stack.pop()
            if not stack:
                break
            frame = stack[-1]
            continue
        if kind is not scalar_t and kind is not map_t and kind is not seq_t:
            raise _Unsure  # an alias, or something unexpected
        if event.anchor is not None or event.tag is not None:
            raise _Unsure
        if frame is not None and frame[1] and frame[2] is None:  # a mapping key
            if kind is not scalar_t:
                raise _Unsure
            key = event.value
            if key in frame[0]:
                raise _Unsure  # a duplicate key: ruamel.yaml's pass reports it
            if record:
                mark = event.start_mark
                # a name first: mypy reads (*a, b) inside [] as Python 3.11 syntax
                key_path = (*frame[3], key)
                keys[key_path] = (mark.line + 1, mark.column + 1)
            frame[2] = key
            continue
        if len(stack) > MAX_DEPTH:
            raise _Unsure
        if kind is scalar_t:
            style = event.style
            value = event.value if style else _PLAIN.get(event.value, event.value)
            if record and not style and not event.value:
                raise _Unsure  # an empty value: where it is depends on the parser
        else:
            value = {} if kind is map_t else []
        if frame is None:
            root = value
        elif frame[1]:
            key = frame[2]
            frame[0][key] = value
            frame[2] = None
            if record:
                path = (*frame[3], key)
        else:
            if record:
                path = (*frame[3], len(frame[0]))
            frame[0].append(value)
        if record:
            mark = event.start_mark
            values[path] = (mark.line + 1, mark.column + 1)
            if kind is scalar_t and style in ("'", '"') and event.end_mark.line == mark.line:
                quoted.add(path)
        if kind is not scalar_t:
            frame = [value, kind is map_t, None, path]
            stack.append(frame)
        elif frame is None:
            raise _Unsure  # the document is one scalar (not a form, and read differently)
    if not isinstance(get(), ev.DocumentEndEvent) or not isinstance(get(), ev.StreamEndEvent):
        raise _Unsure  # more than one document
    return root, positions
