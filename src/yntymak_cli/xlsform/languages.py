"""Language names of XLSForm columns (`label::Kyrgyz (ky)`) <-> our language codes."""

from __future__ import annotations

import re

# pyxform's key for text written in columns without a language (`label`).
DEFAULT = "default"

# Languages we write with the ODK convention `Name (code)`; other codes go out as written.
NAMES = {
    "ky": "Kyrgyz",
    "ru": "Russian",
    "en": "English",
    "uz": "Uzbek",
    "tg": "Tajik",
    "kk": "Kazakh",
    "fr": "French",
    "es": "Spanish",
    "ar": "Arabic",
    "de": "German",
}

_CODE_IN_PARENS = re.compile(r"\(\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*)\s*\)\s*$")
_NOT_CODE_CHARS = re.compile(r"[^\w-]+")


def code_of(column_language: str) -> str:
    """`English (en)` -> `en`; a bare name is sanitised: `Tajik Latin` -> `tajik_latin`."""
    text = column_language.strip()
    match = _CODE_IN_PARENS.search(text)
    if match:
        return match.group(1)
    if text == DEFAULT:
        return DEFAULT
    return _NOT_CODE_CHARS.sub("_", text.lower()).strip("_") or "lang"


def column_name(code: str) -> str:
    """`ky` -> `Kyrgyz (ky)`; codes we have no name for are written as they are."""
    name = NAMES.get(code)
    return f"{name} ({code})" if name else code
