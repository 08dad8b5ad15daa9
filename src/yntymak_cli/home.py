"""Where the data lives: YNTYMAK_HOME, the --home option, or the platform's user data dir."""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "YNTYMAK_HOME"
DB_NAME = "yntymak.db"

_override: Path | None = None


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
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def db_path() -> Path:
    return home_dir() / DB_NAME
