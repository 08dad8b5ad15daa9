"""Text from outside is text: one helper for every value printed to a terminal.

A value that came from a form, an answer, a bundle or a file may hold rich markup (`[red]`,
`[/x]`), ANSI/OSC escape sequences or lone surrogates. `plain()` makes control characters
visible and surrogates printable; `text()` wraps the result in a rich `Text`, which rich
never parses as markup. No rich import at module level: the core may use `plain()` too.
"""

from __future__ import annotations

from typing import Any

# C0 and C1 controls, DEL, and the Unicode bidi/format controls that reorder or hide text
# (a name could otherwise make a terminal line read backwards).
_BIDI = {
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
}


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0 or ch in _BIDI:
        # Caret notation for C0 (ESC -> ^[), escapes for the rest: visible, never executed.
        if code < 0x20:
            return "^" + chr(code + 0x40)
        return f"\\u{code:04x}"
    if 0xD800 <= code <= 0xDFFF:  # a lone surrogate cannot be encoded to any terminal
        return f"\\u{code:04x}"
    return ch


def plain(value: Any, *, keep_newlines: bool = False) -> str:
    """`value` as one printable string: control characters shown, never interpreted.

    `keep_newlines=True` keeps line breaks (and tabs) for multi-line cells such as notes.
    """
    s = value if isinstance(value, str) else str(value)
    if s.isprintable():  # the common case, fast
        return s
    out = []
    for ch in s:
        if keep_newlines and ch in "\n\t":
            out.append(ch)
        else:
            out.append(_visible(ch))
    return "".join(out)


def text(value: Any, *, style: str = "", keep_newlines: bool = False):
    """A rich `Text` holding `plain(value)`: safe as a table cell or in `Console.print`."""
    from rich.text import Text

    return Text(plain(value, keep_newlines=keep_newlines), style=style)


def json_text(dumped: str) -> str:
    """JSON from `json.dumps(..., ensure_ascii=False)`, safe to print: every character
    `plain()` would make visible is written as a `\\uXXXX` escape, which reads back as the
    same string (JSON escapes C0 controls itself, but not C1, bidi controls or surrogates)."""
    if dumped.isprintable():
        return dumped
    return "".join(ch if ch == "\n" or _visible(ch) == ch else f"\\u{ord(ch):04x}" for ch in dumped)
