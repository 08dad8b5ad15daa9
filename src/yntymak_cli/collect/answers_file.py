"""Reading an answers file (YAML or JSON) for non-interactive collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.yaml_io import YamlSyntaxError, load_yaml


def read_answers(path: Path) -> dict[str, Any]:
    """A mapping of question name -> value; repeats as lists of mappings."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read answers file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: answers file is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
    else:
        try:
            data, _ = load_yaml(text)
        except YamlSyntaxError as exc:
            raise InvalidInput(f"{path}:{exc.line}:{exc.col}: {exc.message}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: an answers file must be a mapping of question name to value")
    return data
