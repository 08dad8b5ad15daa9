"""Resolving FORM arguments: a path to a YAML file, or a bare form id.

A bare id is looked up in the forms folder (YNTYMAK_FORMS, else `forms_dir` in the home's
config, else ./forms) and among the forms already used on this laptop, so that
`yntymak collect mediation_case` works on a new home too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from yntymak_cli.errors import NotFound, YntymakError
from yntymak_cli.forms.model import Form

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store

ENV_FORMS = "YNTYMAK_FORMS"
FORM_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class AvailableForm:
    """One form `forms list` shows: from the forms folder or already used on this laptop."""

    id: str
    version: str
    title: str  # in the message language, else the form's default
    path: Path | None  # None: known only from the database


def forms_dir() -> tuple[Path, str]:
    """The folder bare form ids are looked up in, and what chose it.

    YNTYMAK_FORMS wins over the config's `forms_dir`, which wins over ./forms. The folder
    need not exist (a new home has none): callers check.
    """
    env = os.environ.get(ENV_FORMS, "").strip()
    if env:
        return Path(env).expanduser(), ENV_FORMS
    from yntymak_cli.config import config_forms_dir  # `yntymak config set forms_dir DIR`

    configured = config_forms_dir()
    if configured is not None:
        return configured.expanduser(), "forms_dir"
    return Path("forms"), "./forms"


def _folder_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FORM_SUFFIXES and p.is_file())


def _folder_form(ref: str, folder: Path) -> Form | None:
    """The form with id `ref` in the folder: FOLDER/ref.yaml first, else any file with that id.

    The file named after the id is loaded strictly (its errors are the user's to fix); other
    files that do not load are passed over, as they may be drafts or shared lists.
    """
    from yntymak_cli.forms.loader import load_form

    files = _folder_files(folder)
    named = [p for p in files if p.stem == ref]
    for path in named:
        loaded = load_form(path)
        if loaded.form is not None and loaded.form.id == ref:
            return loaded.require()
        if loaded.form is None or loaded.errors:
            return loaded.require()  # raises: the file called ref.yaml is broken
    for path in files:
        if path in named:
            continue
        loaded = load_form(path)
        if loaded.ok and loaded.form is not None and loaded.form.id == ref:
            return loaded.form
    return None


@contextmanager
def _open_store() -> Iterator[Store | None]:
    """The laptop's database, closed after the block, or None on a new home (never
    created only to look)."""
    from yntymak_cli.home import DB_NAME, home_dir

    if not (home_dir(create=False) / DB_NAME).exists():
        yield None
        return
    from yntymak_cli.store.db import Store

    with Store.open() as store:
        yield store


def resolve_form(ref: str, version: str | None = None) -> Form:
    """A path (validated; errors raise ProblemsError) or a bare form id.

    For an id, the forms folder's definition is used unless the laptop already holds a
    newer version (or `version` asks for one the folder does not have).
    """
    path = Path(ref)
    if path.suffix.lower() in FORM_SUFFIXES or path.exists():
        if not path.exists():
            from yntymak_cli.i18n import current_lang, t

            raise NotFound(t("form_file_not_found", current_lang(), path=ref))
        # A folder, pipe or device is refused by load_form with its reason (never read).
        from yntymak_cli.forms.loader import load_form

        return load_form(path).require()
    folder, _ = forms_dir()
    from_folder = _folder_form(ref, folder) if "/" not in ref and ref else None
    if from_folder is not None and version not in (None, from_folder.version):
        from_folder = None
    with _open_store() as store:
        stored = store.get_form(ref, version) if store is not None else None
    if from_folder is not None and stored is not None:
        from yntymak_cli.store.db import _natural

        if _natural(stored.version) > _natural(from_folder.version):
            return stored
        return from_folder
    form = from_folder or stored
    if form is None:
        raise NotFound(_not_found_message(ref, folder))
    return form


def _not_found_message(ref: str, folder: Path) -> str:
    from difflib import get_close_matches

    from yntymak_cli.i18n import current_lang, t

    lang = current_lang()
    known = sorted({f.id for f in available_forms()})
    message = t(
        "form_not_found",
        lang,
        ref=ref,
        folder=folder,
        known=", ".join(known) or t("form_none_known", lang),
    )
    near = get_close_matches(ref, known, n=1)
    if near:
        message += t("form_did_you_mean", lang, name=near[0])
    return message


def available_forms(lang: str | None = None) -> list[AvailableForm]:
    """Forms a bare id can name: the forms folder's (by file name), then
    those used on this laptop that the folder does not hold (each id and version once)."""
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.forms.model import text_in
    from yntymak_cli.i18n import current_lang

    out: list[AvailableForm] = []
    seen: set[tuple[str, str]] = set()
    folder, _ = forms_dir()
    for path in _folder_files(folder):
        try:
            loaded = load_form(path)
        except YntymakError:
            continue
        form = loaded.form
        if not loaded.ok or form is None or (form.id, form.version) in seen:
            continue  # shared choice lists, drafts with errors: `forms validate` tells why
        seen.add((form.id, form.version))
        title = text_in(form.title, lang or current_lang(form.language), form.language)
        out.append(AvailableForm(form.id, form.version, title, path))
    with _open_store() as store:
        stored = [f for i in store.form_ids() for f in store.form_versions(i)] if store else []
    for form in stored:
        if (form.id, form.version) in seen:
            continue
        seen.add((form.id, form.version))
        title = text_in(form.title, lang or current_lang(form.language), form.language)
        out.append(AvailableForm(form.id, form.version, title, None))
    return out


def changed_without_new_version(store, form: Form) -> str | None:
    """A warning when this form's id and version are already stored with other content.

    Both definitions stay usable (each submission keeps the exact one it used), but exports
    label rows by version, so an author who forgot to bump it makes two forms look alike.
    """
    # Hashes only: rebuilding the stored definition costs as much as reading the form file.
    stored = store.form_hash(form.id, form.version)
    if stored is None or stored == form.definition_hash():
        return None
    from yntymak_cli.i18n import current_lang, t

    return t("form_changed_same_version", current_lang(), form=form.id, version=form.version)
