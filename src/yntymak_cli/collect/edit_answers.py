"""`submissions edit UUID --answers FILE`: a finalised submission changed from a file.

FILE holds one submission's answers, in any shape `collect --answers` reads (YAML, JSON,
a .jsonl of one line, a .csv of one row). Its top-level answers replace the latest
revision's (a repeat given replaces the whole repeat) and the others are kept; the whole is
then checked by `engine.fill` exactly as `collect --answers` checks a file, and finalised
as the next revision without a prompt, so a fix HQ asked for can be scripted. Calculations
are computed again; the interview's metadata (date, start, enumerator) and read-only
values are kept, as the interactive edit keeps them. Nothing is written unless the
answers are accepted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.collect.bulk import check_entry, keep_files, read_entries, read_media
from yntymak_cli.collect.hq_review import check_edit_allowed
from yntymak_cli.collect.session import answers_engine, new_paradata
from yntymak_cli.engine.fill import strip_computed
from yntymak_cli.errors import InvalidInput, ProblemsError
from yntymak_cli.forms.model import METADATA_TYPES, Form
from yntymak_cli.i18n import t

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store


def _stamped(form: Form, answers: dict[str, Any]) -> dict[str, Any]:
    """The stored top-level metadata and read-only values of a submission."""
    out = {}
    for key, value in answers.items():
        q = form.index.get(key)
        if q is None or q.is_group or q.is_repeat:
            continue
        if q.base_type in METADATA_TYPES or q.read_only:
            out[key] = value
    return out


@dataclass(frozen=True)
class EditOutcome:
    uuid: str  # the whole UUID (the command may have been given its first characters)
    revision: int  # the new revision


def edit_from_file(
    store: Store,
    uuid: str,
    path: Path,
    *,
    lang: str | None,
    enumerator: str,
    device_id: str,
    reopen: bool = False,
    media_from: Collection[Path] = (),
) -> EditOutcome:
    """Apply the answers in `path` over the submission's latest revision and finalise the
    next revision. InvalidInput (nothing written) for a submission HQ approved (unless
    `reopen`), one being edited already, a void or purged one, a file that does not hold
    exactly one submission, and ProblemsError for answers `engine.fill` refuses."""
    record = store.get_record(uuid)
    uuid = record["uuid"]
    check_edit_allowed(store, uuid, reopen=reopen)
    if store.get_draft(uuid, missing_ok=True) is not None:
        # An interactive edit in progress: finishing over it would lose its answers.
        raise InvalidInput(t("edit_in_progress", lang, uuid=uuid))
    form = store.form_by_hash(record["form_hash"])
    engine = answers_engine(form, lang=lang, enumerator=enumerator, device_id=device_id)
    base = strip_computed(form, record["answers"])
    paradata = new_paradata(lang)
    paradata["source"] = "answers-file"
    with store.write():  # the draft opened here is rolled back with a refused file
        # A void or purged submission is refused here, before the file is read.
        draft = store.open_edit(uuid, engine.start(base).to_json(), enumerator, device_id, paradata)
        entries = read_entries(Path(path), form, lang)
        if len(entries) != 1:
            raise InvalidInput(t("edit_one_submission", lang, path=path, n=len(entries)))
        entry = entries[0]
        media, problems = read_media(store, form, entry, lang, media_from=media_from)
        if problems:
            raise ProblemsError(problems)
        given = entry.data if isinstance(entry.data, dict) else {}
        merged = {**base, **given}
        kept = set(base) - {str(key) for key in given}
        final, problems = check_entry(engine, entry, merged, kept=kept)
        if final is None:
            raise ProblemsError(problems)
        stamped = _stamped(form, record["answers"])
        if stamped:
            # The interview's date, start, enumerator and read-only values stay those of
            # the interview (as in the interactive edit); calculations using them are
            # computed again, and `end` says when this edit was finalised.
            final = engine.finalise(engine.start({**final, **stamped}))
        instance_name = engine.instance_name(engine.start(final))
        keep_files(store, media, lang)
        revision = store.finalise(draft, final, instance_name)
    return EditOutcome(uuid, revision)
