"""Resolving FORM arguments: a path to a YAML file, or the id of a form already registered."""

from __future__ import annotations

from pathlib import Path

from yntymak_cli.errors import NotFound
from yntymak_cli.forms.model import Form


def resolve_form(ref: str, version: str | None = None) -> Form:
    """A path (validated; errors raise ProblemsError) or a registered form id (latest version)."""
    path = Path(ref)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        if not path.is_file():
            raise NotFound(f"form file not found: {ref}")
        from yntymak_cli.forms.loader import load_form

        return load_form(path).require()
    from yntymak_cli.store.db import Store

    store = Store.open()
    form = store.get_form(ref, version)
    if form is None:
        known = ", ".join(store.form_ids()) or "none registered yet"
        raise NotFound(f"no form file or registered form named '{ref}' (registered: {known})")
    return form
