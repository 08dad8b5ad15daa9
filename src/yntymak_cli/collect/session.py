"""One survey being filled: the pure engine's state, autosaved to the store after every
accepted answer, with paradata (when each answer was first given and last changed, and
back-steps) kept for HQ's quality checks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yntymak_cli.engine.state import Step, SurveyState, format_path
from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms.model import Form
from yntymak_cli.store.db import Draft, Store, utcnow

if TYPE_CHECKING:
    from yntymak_cli.collect.media import PreparedMedia


def new_paradata(lang: str | None = None) -> dict[str, Any]:
    return {"answers": {}, "back_steps": [], "sessions": [_session_entry(lang)]}


def _session_entry(lang: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"started": utcnow()}
    if lang:
        entry["lang"] = lang
    return entry


def draft_language(paradata: dict[str, Any] | None) -> str | None:
    """The language the draft was last filled in (so `resume` without --lang keeps it)."""
    for entry in reversed((paradata or {}).get("sessions") or []):
        if isinstance(entry, dict) and isinstance(entry.get("lang"), str):
            return entry["lang"]
    return None


@dataclass
class Session:
    store: Store
    engine: Engine
    form: Form
    uuid: str
    state: SurveyState
    paradata: dict[str, Any]
    base_revision: int = 0

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def start(
        cls, store: Store, form: Form, *, lang: str | None, enumerator: str, device_id: str
    ) -> Session:
        engine = _engine(form, lang, enumerator, device_id)
        state = engine.start()
        paradata = new_paradata(lang)
        uuid = store.create_draft(form, state.to_json(), enumerator, device_id, paradata)
        return cls(store, engine, form, uuid, state, paradata)

    @classmethod
    def resume(cls, store: Store, uuid: str, *, lang: str | None, reopen: bool = False) -> Session:
        """Continue a draft. An edit in progress of a submission HQ approved since is
        refused unless `reopen`, as `edit` is: finishing it would undo the approval."""
        draft = store.get_draft(uuid)
        assert draft is not None
        if draft.base_revision:
            from yntymak_cli.collect.hq_review import check_edit_allowed

            check_edit_allowed(store, draft.uuid, reopen=reopen)
        return cls._from_draft(store, draft, lang)

    @classmethod
    def edit(
        cls,
        store: Store,
        uuid: str,
        *,
        lang: str | None,
        enumerator: str,
        device_id: str,
        reopen: bool = False,
    ) -> Session:
        """Reopen a finalised submission: its answers become a draft of the next revision.

        One HQ approved is refused unless `reopen` (collect.hq_review)."""
        from yntymak_cli.collect.hq_review import check_edit_allowed

        record = store.get_record(uuid)
        check_edit_allowed(store, record["uuid"], reopen=reopen)
        form = store.form_by_hash(record["form_hash"])
        engine = _engine(form, lang, enumerator, device_id)
        state = engine.start(record["answers"])
        # Questions left blank in the finalised record were seen: mark them answered (blank),
        # so Enter on a list keeps them blank and resuming the edit does not stop at them.
        # Likewise each "add another?" was answered no.
        for step in list(engine.steps(state)):
            if step.kind == "question" and not step.answered and not step.required:
                engine.answer(state, step.path, None)
            elif step.kind == "add_repeat":
                engine.decline_repeat(state, step.path)
        draft = store.open_edit(
            record["uuid"], state.to_json(), enumerator, device_id, new_paradata(lang)
        )
        return cls._from_draft(store, draft, lang)

    @classmethod
    def _from_draft(cls, store: Store, draft: Draft, lang: str | None) -> Session:
        engine = _engine(draft.form, lang, draft.enumerator, draft.device_id)
        state = SurveyState.from_json(draft.state)
        engine.refresh(state)
        paradata = draft.paradata or new_paradata()
        paradata.setdefault("sessions", []).append(_session_entry(lang))
        session = cls(store, engine, draft.form, draft.uuid, state, paradata, draft.base_revision)
        session.save()
        return session

    # -- filling ----------------------------------------------------------------------

    def save(self) -> None:
        self.store.save_draft(self.uuid, self.state.to_json(), self.paradata)

    def answer(self, step: Step, raw: Any) -> str | None:
        """Validate and store one answer; autosaves. Returns an error message or None."""
        before = value_at(self.state.answers, step.path)
        error = self.engine.answer(self.state, step.path, raw)
        if error is None:
            after = value_at(self.state.answers, step.path)
            self._touch(step.path, changed=after != before)
            self.save()
        return error

    def answer_media(self, step: Step, media: PreparedMedia) -> str | None:
        """Keep a checked file and store the answer naming it, in one write transaction:
        after a crash either both are there or neither (a file whose answer was refused
        stays without an answer until purge). OSError when the disk refuses the file."""
        from yntymak_cli.collect.media import keep_media

        with self.store.write():
            ref = keep_media(self.store, media)
            return self.answer(step, ref.text)

    def add_repeat(self, step: Step) -> None:
        self.engine.add_repeat(self.state, step.path)
        self._active(utcnow())
        self.save()

    def decline_repeat(self, step: Step) -> None:
        self.engine.decline_repeat(self.state, step.path)
        self._active(utcnow())
        self.save()

    def back(self, step: Step) -> Step | None:
        # Back from an instance just added by mistake removes it and asks "add?" again.
        previous = self.engine.back_out_of_instance(self.state, step)
        if previous is None:
            previous = self.engine.previous_step(self.state, step)
        now = utcnow()
        self.paradata.setdefault("back_steps", []).append(
            {"at": now, "from": format_path(step.path)}
        )
        self._active(now)
        self.save()
        return previous

    def _touch(self, path: tuple, changed: bool) -> None:
        now = utcnow()
        entry = self.paradata.setdefault("answers", {}).setdefault(
            format_path(path), {"first": now, "last": now, "changes": 0}
        )
        if changed and entry["first"] != now:
            entry["last"] = now
            entry["changes"] += 1
        self._active(now)

    def _active(self, now: str) -> None:
        """The session's latest activity, so a session left without finalising (the
        volunteer quit, to resume later) still has an end. Older paradata lacks it."""
        sessions = self.paradata.get("sessions")
        if isinstance(sessions, list) and sessions and isinstance(sessions[-1], dict):
            sessions[-1]["last"] = now

    # -- finishing --------------------------------------------------------------------

    def finalise(self) -> int:
        """Store the answers as the submission's next revision; returns the revision."""
        answers = self.engine.finalise(self.state)
        instance_name = self.engine.instance_name(self.state)
        self.paradata["sessions"][-1]["finalised"] = utcnow()
        draft = self.store.get_draft(self.uuid)
        assert draft is not None
        draft.paradata = self.paradata
        return self.store.finalise(draft, answers, instance_name)


def value_at(answers: dict[str, Any], path: tuple) -> Any:
    """The stored value at a node path such as ("incidents", 1, "resolved"), or None."""
    node: Any = answers
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _engine(form: Form, lang: str | None, enumerator: str, device_id: str) -> Engine:
    return Engine(
        form,
        lang=lang or form.language,
        now=lambda: dt.datetime.now().replace(microsecond=0),
        username=enumerator,
        deviceid=device_id,
    )


def submit_answers(
    store: Store,
    form: Form,
    answers: dict[str, Any],
    *,
    lang: str | None,
    enumerator: str,
    device_id: str,
) -> str:
    """The non-interactive path: fill through the same engine, finalise, return the UUID.

    Nothing is saved when any answer is refused: the problems are raised together.
    """
    from yntymak_cli.engine.fill import fill
    from yntymak_cli.errors import ProblemsError

    engine = _engine(form, lang, enumerator, device_id)
    final, problems = fill(engine, answers)
    if problems or final is None:
        raise ProblemsError(problems)
    return save_filled(store, engine, final, lang=lang)


def answers_engine(form: Form, *, lang: str | None, enumerator: str, device_id: str) -> Engine:
    """The engine that checks answers files (one serves any number of submissions)."""
    return _engine(form, lang, enumerator, device_id)


def save_filled(store: Store, engine: Engine, final: dict[str, Any], *, lang: str | None) -> str:
    """Store answers `engine.fill.fill()` accepted as a new finalised submission; its UUID.

    Inside `store.write()` it joins that transaction (a batch is saved all or nothing)."""
    form, enumerator, device_id = engine.form, engine.username, engine.deviceid
    paradata = new_paradata(lang)
    paradata["source"] = "answers-file"
    state = engine.start(final)
    uuid = store.create_draft(form, state.to_json(), enumerator, device_id, paradata)
    draft = store.get_draft(uuid)
    assert draft is not None
    store.finalise(draft, final, engine.instance_name(state))
    return uuid
