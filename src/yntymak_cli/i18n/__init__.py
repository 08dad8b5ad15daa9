"""Message catalogs for the survey's own words (ky, ru, en).

Catalogs are JSON files beside this module, keyed by message id, with `{name}`
placeholders. English is the fallback; a test fails when ky or ru lacks a key.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

LANGUAGES = ("ky", "ru", "en")
FALLBACK = "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    try:
        text = resources.files(__package__).joinpath(f"{lang}.json").read_text("utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return json.loads(text)


def t(key: str, lang: str | None = None, /, **params: object) -> str:
    """The message `key` in `lang` (falling back to English), formatted with params."""
    template = catalog(lang or FALLBACK).get(key) or catalog(FALLBACK).get(key) or key
    try:
        return template.format(**params)
    except (KeyError, IndexError, ValueError):
        return template


_ERRNO_KEYS = {
    "ENOENT": "os_not_found",
    "EACCES": "os_permission",
    "EPERM": "os_permission",
    "EISDIR": "os_is_folder",
    "ENOTDIR": "os_not_folder",
    "EEXIST": "os_exists",
    "ENOSPC": "os_disk_full",
    "EDQUOT": "os_disk_full",
    "EROFS": "os_read_only",
    "ENAMETOOLONG": "os_name_too_long",
    "ELOOP": "os_loop",
}


def os_error_text(exc: BaseException, lang: str | None = None) -> str:
    """The reason of an OSError in `lang` ("No such file or directory" comes from the C
    library, in English): the common ones from the catalog, others as the system says."""
    import errno

    code = getattr(exc, "errno", None)
    key = _ERRNO_KEYS.get(errno.errorcode.get(code, "")) if isinstance(code, int) else None
    if key:
        return t(key, lang)
    return getattr(exc, "strerror", None) or str(exc)


def missing_keys(lang: str) -> set[str]:
    return set(catalog(FALLBACK)) - {k for k, v in catalog(lang).items() if v}


# -- the language of the tool's own messages ------------------------------------------------
# Chosen once per process by the CLI (`--lang` > YNTYMAK_LANG > config > form default > en);
# core modules format their messages with `t(key, current_lang(), ...)`.
_chosen: str | None = None


def set_lang(lang: str | None) -> None:
    """Fix the message language for this process (None: back to the environment/default)."""
    global _chosen
    _chosen = lang if lang in LANGUAGES else None


def chosen_lang() -> str | None:
    """The language given with `--lang` for this command, if any."""
    return _chosen


def current_lang(form_default: str | None = None) -> str:
    """The language for messages now: the CLI's choice (`--lang`), else YNTYMAK_LANG, else
    the home's config (`yntymak config set lang ky`), else the form's default language when
    one is known, else English."""
    import os

    if _chosen:
        return _chosen
    env = os.environ.get("YNTYMAK_LANG", "")
    if env in LANGUAGES:
        return env
    from yntymak_cli.config import config_lang

    configured = config_lang()
    if configured:
        return configured
    if form_default in LANGUAGES:
        return form_default
    return FALLBACK
