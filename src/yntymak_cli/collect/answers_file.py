"""Reading an answers file (YAML or JSON) for non-interactive collection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput
from yntymak_cli.files import MAX_ANSWERS_BYTES, read_limited
from yntymak_cli.yaml_io import YamlSyntaxError, load_yaml


def read_answers(path: Path) -> dict[str, Any]:
    """A mapping of question name -> value; repeats as lists of mappings."""
    try:
        # FileRefused (a FIFO, a device, too large) is already one line naming the file.
        text = read_limited(path, MAX_ANSWERS_BYTES, "an answers file").decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: answers file is not UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(
                f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise InvalidInput(f"{path}: JSON nested too deeply for an answers file") from None
    else:
        try:
            data, _ = load_yaml(text)
        except YamlSyntaxError as exc:
            raise InvalidInput(f"{path}:{exc.line}:{exc.col}: {exc.message}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: an answers file must be a mapping of question name to value")
    return data
