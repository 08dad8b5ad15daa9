"""Settings a volunteer sets once: `yntymak config set lang ky`.

`lang` and `forms_dir` live in a small JSON file in the home, HOME/config.json, and not in
the database's settings table: every command needs the language before anything else (its
usage errors included), and reading a few bytes of JSON costs nothing, while opening the
database imports sqlite3, runs the migrations and would create a database in a new home.
Reading never creates the home or the file.

The enumerator name stays where `collect` remembers it (the database's settings table, set
by every `--enumerator`), so `config set enumerator` writes it there: one place for it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from yntymak_cli.errors import InvalidInput

CONFIG_NAME = "config.json"
KEYS = ("lang", "enumerator", "forms_dir", "hq_url", "hq_db")
# hq_url (where `yntymak sync` sends bundles) sits beside the trusted HQ's key in the home,
# read only by `sync`: a file key, so setting it never creates a database.
FILE_KEYS = ("lang", "forms_dir", "hq_url", "hq_db")  # the rest live in the database
MAX_CONFIG_BYTES = 64 * 1024

# (path, mtime_ns, size) -> contents: current_lang() may ask many times per command.
_cache: dict[Path, tuple[tuple[int, int], dict[str, str]]] = {}
# What was already warned about in this command (a damaged file, a bad YNTYMAK_LANG): one
# line each, on stderr, never a stop.
_warned: set[str] = set()
_reading: list[Path] = []  # the config.json being read now (see _read)


def reset_warnings() -> None:
    """A new command line (the CLI calls this; tests run many in one process)."""
    _warned.clear()


def _warn(what: str, key: str, **params: object) -> None:
    if what in _warned:
        return
    _warned.add(what)
    import sys

    from yntymak_cli.i18n import LANGUAGES, chosen_lang, t

    # Only what is known without this file: --lang, a valid YNTYMAK_LANG, else English.
    env = os.environ.get("YNTYMAK_LANG", "")
    lang = chosen_lang() or (env if env in LANGUAGES else None)
    from yntymak_cli.plain import plain

    print(plain(t(key, lang, **params)), file=sys.stderr)


class _Damaged(Exception):
    """config.json exists but is not a JSON object (reported in the message language, which
    is known only once the file has been given up on)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.path = path

    def error(self) -> InvalidInput:
        from yntymak_cli.i18n import current_lang, t

        return InvalidInput(t("config_damaged", current_lang(), path=self.path))


@dataclass(frozen=True)
class Setting:
    key: str
    value: str | None
    source: str  # "config", "database", "YNTYMAK_LANG", "YNTYMAK_FORMS" or "" (not set)


def config_path() -> Path:
    from yntymak_cli.home import home_dir

    return home_dir(create=False) / CONFIG_NAME


def read_config() -> dict[str, str]:
    """The file's settings; {} when there is none. A damaged file is ignored here (the
    language must never stop a command: a warning says so); `config show` and `config set`
    report it."""
    try:
        return _read(config_path())
    except _Damaged as exc:
        _warn(f"damaged:{exc.path}", "config_damaged_ignored", path=exc.path)
        return {}


def _read_checked(path: Path) -> dict[str, str]:
    try:
        return _read(path)
    except _Damaged as exc:
        raise exc.error() from None


def _read(path: Path) -> dict[str, str]:
    try:
        info = path.stat()
    except OSError:
        return {}
    stamp = (info.st_mtime_ns, info.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    if _reading:
        # read_limited asks current_lang() for its messages, which reads this file: while
        # it is being read, the language comes from elsewhere (no endless recursion).
        return {}
    from yntymak_cli.files import FileRefused, read_limited

    _reading.append(path)
    try:
        data = json.loads(read_limited(path, MAX_CONFIG_BYTES, "config.json").decode("utf-8"))
    except (FileRefused, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        data = None
    finally:
        _reading.pop()
    if not isinstance(data, dict):
        raise _Damaged(path)
    values = {k: v for k, v in data.items() if k in FILE_KEYS and isinstance(v, str) and v}
    _cache[path] = (stamp, values)
    return values


def config_lang() -> str | None:
    from yntymak_cli.i18n import LANGUAGES

    _check_env_lang()
    lang = read_config().get("lang")
    return lang if lang in LANGUAGES else None


def config_lang_at(home: Path) -> str | None:
    """The language config.json in `home` asks for (a `--home` not yet parsed: read only,
    nothing created)."""
    from yntymak_cli.i18n import LANGUAGES

    _check_env_lang()
    try:
        lang = _read(Path(home).expanduser() / CONFIG_NAME).get("lang")
    except _Damaged as exc:
        _warn(f"damaged:{exc.path}", "config_damaged_ignored", path=exc.path)
        return None
    except (OSError, ValueError):
        return None
    return lang if lang in LANGUAGES else None


def _check_env_lang() -> None:
    from yntymak_cli.i18n import LANGUAGES

    env = os.environ.get("YNTYMAK_LANG", "")
    if env and env not in LANGUAGES:
        langs = ", ".join(LANGUAGES)
        _warn("env_lang", "lang_env_unknown", lang=env, langs=langs)


def config_forms_dir() -> Path | None:
    value = read_config().get("forms_dir")
    return Path(value) if value else None


def _check_key(key: str) -> None:
    if key not in KEYS:
        from difflib import get_close_matches

        from yntymak_cli.i18n import current_lang, t

        near = get_close_matches(key, KEYS, n=1)
        lang = current_lang()
        hint = t("did_you_mean", lang, name=near[0]) if near else ""
        raise InvalidInput(t("config_unknown_key", lang, key=key, keys=", ".join(KEYS)) + hint)


def normalise(key: str, value: str) -> str:
    """The value as stored, or InvalidInput saying what is expected."""
    from yntymak_cli.i18n import LANGUAGES, current_lang, t

    _check_key(key)
    value = value.strip()
    if key == "lang":
        if value not in LANGUAGES:
            raise InvalidInput(
                t("lang_unknown", current_lang(), lang=value, langs=", ".join(LANGUAGES))
            )
        return value
    if key == "forms_dir":
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise InvalidInput(t("config_not_a_folder", current_lang(), path=value))
        return str(folder.resolve())
    if not value:
        raise InvalidInput(t("config_empty_value", current_lang(), key=key))
    if key == "hq_url":
        return check_hq_url(value)
    if key == "hq_db":  # HQ's PostgreSQL database (store/hqdb.py); secrets stay out of it
        from yntymak_cli.store.hqdb import check_url, has_password

        url = check_url(value)
        if has_password(url):
            # The config file is not a place for secrets (it is shown by `config show`).
            raise InvalidInput(t("hqdb_password_in_url", current_lang()))
        return url
    if key == "enumerator":
        from yntymak_cli.store.db import check_enumerator

        check_enumerator(value)
    return value


def check_hq_url(value: str) -> str:
    """An HQ address as `yntymak sync` uses it: http:// or https://, a host, no user name,
    query or fragment; without the trailing slash. InvalidInput otherwise."""
    from urllib.parse import urlsplit

    from yntymak_cli.i18n import current_lang, t

    url = value.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or not url.isprintable()
        or " " in url
    ):
        raise InvalidInput(t("config_bad_hq_url", current_lang(), url=url))
    return url.rstrip("/")


def config_hq_url() -> str | None:
    """The HQ address `config set hq_url` (or `keys trust-hq --url`) remembered."""
    return read_config().get("hq_url")


def set_value(key: str, value: str) -> str:
    value = normalise(key, value)
    if key in FILE_KEYS:
        path = config_path()
        try:
            data = {**_read(path), key: value}
        except _Damaged:  # a damaged file is replaced by a good one
            data = {key: value}
        _write(path, data)
    else:
        from yntymak_cli.store.db import Store

        with Store.open() as store:
            store.set_setting(key, value)
    return value


def unset_value(key: str) -> None:
    _check_key(key)
    if key in FILE_KEYS:
        path = config_path()
        data = _read_checked(path)
        if key in data:
            _write(path, {k: v for k, v in data.items() if k != key})
        return
    from yntymak_cli.home import DB_NAME, home_dir

    if not (home_dir(create=False) / DB_NAME).exists():
        return
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        store.delete_setting(key)


def settings() -> list[Setting]:
    """Every key with its value and where it comes from (for `config show`)."""
    from yntymak_cli.i18n import FALLBACK, LANGUAGES, chosen_lang

    data = _read_checked(config_path())
    out: list[Setting] = []
    # The language in effect now first, then the stored one when something else wins.
    env_lang = os.environ.get("YNTYMAK_LANG", "")
    stored = data.get("lang") if data.get("lang") in LANGUAGES else None
    if chosen_lang():
        out.append(Setting("lang", chosen_lang(), "option"))
    elif env_lang in LANGUAGES:
        out.append(Setting("lang", env_lang, "YNTYMAK_LANG"))
    elif stored:
        out.append(Setting("lang", stored, "config"))
    else:
        out.append(Setting("lang", FALLBACK, "default"))
    if stored and out[0].source != "config":
        out.append(Setting("lang", stored, "stored"))
    out.append(Setting("enumerator", *_db_setting("enumerator")))
    if os.environ.get("YNTYMAK_FORMS"):
        out.append(Setting("forms_dir", os.environ["YNTYMAK_FORMS"], "YNTYMAK_FORMS"))
    else:
        value = data.get("forms_dir")
        out.append(Setting("forms_dir", value, "config" if value else ""))
    if data.get("hq_url"):  # listed once set (`keys trust-hq --url` sets it too)
        out.append(Setting("hq_url", data["hq_url"], "config"))
    return out


def _db_setting(key: str) -> tuple[str | None, str]:
    from yntymak_cli.home import DB_NAME, home_dir

    # Never a database created only to show that nothing is set.
    if not (home_dir(create=False) / DB_NAME).exists():
        return None, ""
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        value = store.get_setting(key)
    return (value, "database") if value else (None, "")


def _write(path: Path, data: dict[str, str]) -> None:
    from yntymak_cli.files import write_atomic
    from yntymak_cli.home import home_dir

    home_dir()  # created (0700) on the first `config set`
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write_atomic(path, text.encode("utf-8"), mode=0o600)
    _cache.pop(path, None)
