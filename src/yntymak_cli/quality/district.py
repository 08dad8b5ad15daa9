"""A submission's district, one notion for checks, targets and progress."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from yntymak_cli.forms.model import Form


def district_by(form: Form) -> str | None:
    """The question the form names as its district (`quality.district_by`), if any."""
    return form.quality.district_by if form.quality is not None else None


def district_of(question: str | None, answers: Mapping[str, Any], enrolled: str | None) -> str:
    """The answer to the district question (a choice name) when the form names one and the
    submission answered it; else the district HQ enrolled the laptop with; else ""."""
    if question:
        value = answers.get(question)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return (enrolled or "").strip()


def answers_object(raw: Any) -> dict[str, Any]:
    """Stored answers (JSON text, or already decoded) as the object district_of and the
    checks read; {} when they are not one (a hostile or damaged row counts as blank)."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str | bytes):
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
        return value if isinstance(value, dict) else {}
    return {}
