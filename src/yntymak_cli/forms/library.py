"""Resolving FORM arguments: a path to a YAML file, or the id of a form already registered."""

from __future__ import annotations

from pathlib import Path

from yntymak_cli.errors import NotFound
from yntymak_cli.forms.model import Form


def resolve_form(ref: str, version: str | None = None) -> Form:
    """A path (validated; errors raise ProblemsError) or a registered form id (latest version)."""
    path = Path(ref)
    if path.suffix.lower() in {".yaml", ".yml"} or path.exists():
        if not path.exists():
            raise NotFound(f"form file not found: {ref}")
        # A folder, pipe or device is refused by load_form with its reason (never read).
        from yntymak_cli.forms.loader import load_form

        return load_form(path).require()
    from yntymak_cli.store.db import Store

    store = Store.open()
    form = store.get_form(ref, version)
    if form is None:
        known = ", ".join(store.form_ids()) or "none registered yet"
        raise NotFound(f"no form file or registered form named '{ref}' (registered: {known})")
    return form


def changed_without_new_version(store, form: Form) -> str | None:
    """A warning when this form's id and version are already stored with other content.

    Both definitions stay usable (each submission keeps the exact one it used), but exports
    label rows by version, so an author who forgot to bump it makes two forms look alike.
    """
    # Hashes only: rebuilding the stored definition costs as much as reading the form file.
    stored = store.form_hash(form.id, form.version)
    if stored is None or stored == form.definition_hash():
        return None
    return (
        f"form '{form.id}' version '{form.version}' differs from the one already used on this "
        "laptop: give the changed form a new version so that exports can tell them apart"
    )
