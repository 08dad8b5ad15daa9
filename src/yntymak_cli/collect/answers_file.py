"""Reading an answers file (YAML or JSON) for non-interactive collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.files import MAX_ANSWERS_BYTES, read_limited
from yntymak_cli.yaml_io import Positions, YamlSyntaxError, load_yaml


def _t(key: str, /, **params: object) -> str:
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


def read_answers(path: Path) -> dict[str, Any]:
    """A mapping of question name -> value; repeats as lists of mappings."""
    return parse_answers(path, read_answers_text(path))[0]


def read_answers_text(path: Path) -> str:
    """The text of an answers file (any format), read within the size cap."""
    try:
        # FileRefused (a FIFO, a device, too large) is already one line naming the file.
        return read_limited(path, MAX_ANSWERS_BYTES, "an answers file").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(_t("answers_not_utf8", path=path)) from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # JSON lets the last of two equal keys win in silence; YAML answers files refuse them.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(_t("yaml_duplicate_key", key=key))
        out[key] = value
    return out


def parse_answers(path: Path, text: str) -> tuple[dict[str, Any], Positions | None]:
    """One submission from YAML or JSON text, with the positions of its keys when known."""
    positions = None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                _t("answers_bad_json", path=path, line=exc.lineno, col=exc.colno, detail=exc.msg)
            ) from None
        except RecursionError:
            raise InvalidInput(_t("answers_too_deep", path=path)) from None
        except ValueError as exc:  # a duplicate key; a number of over 4,300 digits
            detail = str(exc).split(":")[0]
            raise InvalidInput(
                _t("answers_bad_json", path=path, line=1, col=1, detail=detail)
            ) from None
    else:
        try:
            data, positions = load_yaml(text)
        except YamlSyntaxError as exc:
            raise InvalidInput(f"{path}:{exc.line}:{exc.col}: {exc.message}") from None
    if not isinstance(data, dict):
        raise InvalidInput(_t("answers_file_not_mapping", path=path))
    return data, positions
