"""Why HQ refused a single record, in the reader's language.

HQ words each refusal in English (catalog keys `refusal_*` formatted with "en"): it stores
them in `hq_refused` and sends them in receipts, to devices of any language and version,
so that text is a contract. A reader sees it in their own language: `localize` matches the
English text against the `refusal_*` templates and formats the same values in the message
language. A reason no template matches (another version's wording, a shortened one) is
shown as it came.
"""

from __future__ import annotations

import re
import string
from functools import cache

from yntymak_cli.i18n import FALLBACK, catalog, current_lang, t

PREFIX = "refusal_"
# Placeholders that hold one token: a record's uuid (the container checked it) and a field
# name. Kept narrow so that "submission {uuid}: {field} is not an object" does not claim
# "submission X revision 1: answer g[0]: a repeat instance is not an object".
_NARROW = {"uuid": r"[^\s:]+?", "field": r"\w+?"}


@cache
def _templates() -> tuple[tuple[str, re.Pattern[str]], ...]:
    out = []
    for key, template in catalog(FALLBACK).items():
        if not key.startswith(PREFIX):
            continue
        pattern = ""
        for literal, name, _spec, _conv in string.Formatter().parse(template):
            pattern += re.escape(literal)
            if name:
                pattern += f"(?P<{name}>{_NARROW.get(name, '.+?')})"
        out.append((key, re.compile(pattern, re.S)))
    # The template with the most fixed text first: the most specific wording wins.
    out.sort(key=lambda kp: -len(re.sub(r"\(\?P<\w+>[^)]*\)", "", kp[1].pattern)))
    return tuple(out)


def localize(reason: str, lang: str | None = None) -> str:
    """`reason` (English, as HQ stores and sends it) in `lang` (default: the current one)."""
    lang = lang or current_lang()
    if lang == FALLBACK:
        return reason
    for key, pattern in _templates():
        found = pattern.fullmatch(reason)
        if found:
            # A value may itself be a worded reason ("submission X revision 2: <why>").
            params = {name: localize(value, lang) for name, value in found.groupdict().items()}
            return t(key, lang, **params)
    return reason
