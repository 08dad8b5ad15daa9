"""Where the data lives: YNTYMAK_HOME, the --home option, or the platform's user data dir."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

ENV_HOME = "YNTYMAK_HOME"
DB_NAME = "yntymak.db"

_override: Path | None = None
_noted: set[Path] = set()  # homes tightened in this process (the note is printed once)


def set_home(path: Path | None) -> None:
    """Set by the CLI's global --home option; wins over the environment."""
    global _override
    _override = path


def home_dir(create: bool = True) -> Path:
    if _override is not None:
        path = _override
    elif os.environ.get(ENV_HOME):
        path = Path(os.environ[ENV_HOME])
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir("yntymak", appauthor=False))
    path = path.expanduser()
    if create:
        existed = path.is_dir()
        if not existed:
            _make_home(path)
        if existed:
            _owner_only(path)
    return path


def _home_named(path: Path) -> str:
    """The home as the user gave it: `--home DIR`, `YNTYMAK_HOME=DIR`, or the path."""
    from yntymak_cli.plain import plain

    if _override is not None:
        return f"--home {plain(path)}"
    if os.environ.get(ENV_HOME):
        return f"{ENV_HOME}={plain(path)}"
    return plain(path)


def _make_home(path: Path) -> None:
    """Create the home (0700), or InvalidInput (exit 2) saying why it cannot be one: a
    `--home` naming a file is a slip to be told plainly, not an OSError."""
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.i18n import current_lang, t

    is_a_file = t("home_is_a_file", current_lang(), home=_home_named(path))
    if path.exists():
        raise InvalidInput(is_a_file)
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise InvalidInput(is_a_file) from None
    except OSError as exc:
        error = exc.strerror or str(exc)
        raise InvalidInput(
            t("home_cannot_create", current_lang(), home=_home_named(path), error=error)
        ) from None


def _owner_only(path: Path) -> None:
    """Tighten a home that already existed to 0700: it holds the database and the keys.

    mkdir's mode applies only to a folder it creates; a home made by hand (or by an older
    version) may be open to every user of the laptop. Only our own folder is changed.
    """
    if os.name == "nt":
        return
    try:
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or not mode & 0o077:
            return
        os.chmod(path, 0o700)
    except OSError:
        return  # not ours to change (or a read-only medium): the files inside are 0600
    if path not in _noted:
        _noted.add(path)
        print(
            f"note: {path} could be read by other users (mode {mode:o}); made it 700 (owner"
            " only), as it holds the database and keys",
            file=sys.stderr,
        )


def db_path() -> Path:
    return home_dir() / DB_NAME
