"""HQ side of sync: enrolled devices, bundle import and merge, receipts, status.

HQ keeps the same tables as a device (forms, submissions, revisions), so exports work the
same at both ends. A bundle is verified and decrypted outside any transaction, then merged
in ONE write transaction: a crash or `kill -9` leaves the database as before that bundle.
The merge is idempotent and order-independent: `submissions` always holds the highest
revision known (void if any void of it arrived), `revisions` every revision received.
The policy is the pure `sync.merge.plan_merge`; the SQL is in `store.hq`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from yntymak_cli.canonical import SHA256_HEX_RE, canonical_text
from yntymak_cli.errors import InvalidInput, NotFound, Problem, ProblemsError, YntymakError
from yntymak_cli.forms.model import Form
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.limits import MAX_NAME_CHARS, MAX_TEXT_CHARS
from yntymak_cli.store import hq as hq_store
from yntymak_cli.store.db import utcnow
from yntymak_cli.store.hqdb import HqDb
from yntymak_cli.sync.answers import AnswerError, AnswerSchema
from yntymak_cli.sync.keys import DevicePublic, HqIdentity, read_sync_file, write_sync_file
from yntymak_cli.sync.merge import Existing, Incoming, plan_merge

if TYPE_CHECKING:
    from yntymak_cli.sync.container import BundleData
    from yntymak_cli.sync.hq_media import Staged
    from yntymak_cli.sync.review import Outgoing

STATUS_FORMAT_VERSION = 1

# Characters of refusal reasons in one receipt, all entries together (a receipt's body is
# at most 16 MiB): a bundle of many refused records gets shorter reasons, never no receipt.
_REASONS_BUDGET = 4 * 1024 * 1024
# Record metadata: ids, versions, timestamps and names are short; instance names and void
# reasons are text a person typed or a form computed (bounded like a text answer).
_META_LIMITS = {
    **dict.fromkeys(
        ("form_id", "form_version", "created_at", "updated_at", "submission_time", "voided_at"),
        MAX_NAME_CHARS,
    ),
    "enumerator": MAX_NAME_CHARS,
    "instance_name": MAX_TEXT_CHARS,
    "void_reason": MAX_TEXT_CHARS,
}

_RECORD_KEYS = {
    "uuid",
    "revision",
    "form_id",
    "form_version",
    "form_hash",
    "status",
    "created_at",
    "updated_at",
    "submission_time",
    "enumerator",
    "device_id",
    "instance_name",
    "void_reason",
    "voided_at",
    "answers",
    "paradata",
    "hash",
}


def _refuse(message: str) -> Exception:
    from yntymak_cli.sync.container import BundleError

    return BundleError("corrupted", message)


# -- devices -------------------------------------------------------------------------------


def enroll(
    store: HqDb,
    pub: DevicePublic,
    name: str | None,
    district: str | None,
    *,
    update: bool = False,
) -> bool:
    """Register a device's key. Returns False when it was enrolled already (name updated).

    A revoked device stays revoked: enrolling it again is refused. The device's X25519 key
    (a device.pub of version 2, signed by its Ed25519 key) is learned or replaced either
    way. `update` only adds that key to a device enrolled before (name and district kept
    unless given), and refuses a device.pub without one.
    """
    lang = current_lang()
    if not update and (name is None or not name.strip()):
        raise InvalidInput(t("hq_enroll_needs_name", lang))
    if update and pub.box_key is None:
        raise InvalidInput(t("hq_enroll_update_no_box_key", lang, device=pub.device_id))
    box_key = None if pub.box_key is None else base64.b64encode(pub.box_key).decode("ascii")
    with store.write() as conn:
        row = hq_store.device_by_id(conn, pub.device_id)
        if row is not None and row["revoked_at"]:
            raise InvalidInput(
                t("hq_enroll_revoked", lang, device=pub.device_id, at=row["revoked_at"])
            )
        if row is None:
            if update:
                raise NotFound(t("hq_enroll_update_unknown", lang, device=pub.device_id))
            assert name is not None
            hq_store.enroll_device(
                conn,
                pub.device_id,
                base64.b64encode(pub.sign_key).decode("ascii"),
                pub.fingerprint,
                name,
                district,
                utcnow(),
                box_key,
            )
            return True
        # The device id is derived from the key, so the same id means the same key; the
        # box key was checked against it (its signature) when device.pub was read.
        if name is not None and name.strip():
            new_district = district if district is not None or not update else row["district"]
            hq_store.rename_device(conn, pub.device_id, name, new_district)
        elif district is not None:
            hq_store.rename_device(conn, pub.device_id, row["name"], district)
        if box_key is not None and box_key != row["box_key"]:
            if row["box_key"] is not None and not update:
                # A different key, genuinely signed: maybe the laptop's new one, maybe an
                # old device.pub. Sealing decisions to an old key would lose them: ask.
                from yntymak_cli.sync.keys import box_key_fingerprint

                raise InvalidInput(
                    t(
                        "hq_enroll_box_key_changed",
                        lang,
                        device=pub.device_id,
                        old=box_key_fingerprint(base64.b64decode(row["box_key"])),
                        new=box_key_fingerprint(pub.box_key) if pub.box_key else "-",
                    )
                )
            hq_store.set_box_key(conn, pub.device_id, box_key)
        return False


def revoke(store: HqDb, device_id: str) -> dict[str, Any]:
    with store.write() as conn:
        row = hq_store.device_by_id(conn, device_id)
        if row is None:
            raise NotFound(t("hq_revoke_unknown", current_lang(), device=device_id))
        if not row["revoked_at"]:
            hq_store.revoke_device(conn, device_id, utcnow())
        row = hq_store.device_by_id(conn, device_id)
    assert row is not None  # a device is never deleted
    return dict(row)


def device_lookup(store: HqDb):
    """The key lookup `container.open_bundle` needs, backed by `hq_devices`."""
    from yntymak_cli.sync.container import RevokedDevice

    def lookup(device_id: str) -> bytes | RevokedDevice | None:
        row = hq_store.device_by_id(store.conn, device_id)
        if row is None:
            return None
        key = base64.b64decode(row["sign_key"])
        return RevokedDevice(key) if row["revoked_at"] else key

    return lookup


# -- verify --------------------------------------------------------------------------------


@dataclass
class OpenedBundle:
    header: dict[str, Any]
    payload: dict[str, Any]
    file_hash: str
    device_name: str
    forms: dict[str, tuple[str, str, str]]  # definitions in the bundle: hash -> id, version, JSON
    answers_json: list[str | None]  # canonical JSON of each record's answers, computed once
    # Records refused on their own ((uuid, revision) -> reason): the rest is still imported.
    refused: dict[tuple[str, int], str] = field(default_factory=dict)
    # Definitions that are in the bundle but unusable: hash -> reason.
    bad_forms: dict[str, str] = field(default_factory=dict)
    # The bundle's media files, decrypted and checked (sync/hq_media.py); for an import,
    # those HQ lacks wait in temp files for the merge's transaction.
    media: list[Staged] = field(default_factory=list)

    @property
    def device_id(self) -> str:
        return self.header["device_id"]

    @property
    def seq(self) -> int:
        return self.header["seq"]


def open_for_import(
    store: HqDb, hq: HqIdentity, data: BundleData, *, stage: bool = False
) -> OpenedBundle:
    """Every check short of merging: container checks, then each record and form, then the
    media files (named by the answers, each decrypted and hashed). With `stage`, the files
    HQ lacks are left in temp files for import_bundle (which names or removes them)."""
    from yntymak_cli.forms.media import media_refs
    from yntymak_cli.sync import container, hq_media

    opened = container.open_bundle_container(
        data, device_lookup(store), hq, max_payload=container.DEFAULT_MAX_PAYLOAD
    )
    header, payload = opened.header, opened.payload
    forms, parsed, bad_forms = _check_forms(payload["forms"])
    schemas: dict[str, AnswerSchema | str] = {}  # form hash -> schema, or why it has none
    answers_json: list[str | None] = []
    refused: dict[tuple[str, int], str] = {}
    named: dict[str, str] = {}  # sha256 -> uuid of the first record naming it
    # What the media answers of every record name, accepted or refused (read through the
    # media questions of the record's form, never a `sha256:` in a text answer); and the
    # answers of records whose form HQ cannot read, whose files are checked, not kept.
    mentioned: set[str] = set()
    unreadable: list[str] = []
    for record, answers_text in zip(payload["submissions"], opened.answers_json, strict=True):
        key = (record["uuid"], record["revision"])  # shapes checked by the container
        media_form = _form_for_media(store, record, parsed, bad_forms, schemas)
        if media_form is not None:
            mentioned |= {ref.sha256 for _n, ref in media_refs(media_form, record["answers"])}
        elif answers_text is not None:
            unreadable.append(answers_text)
        try:
            text = _check_record(record, header["device_id"], answers_text)
            schema = _schema_for(store, record, parsed, bad_forms, schemas)
            if text is not None:
                try:
                    schema.check(record["answers"])
                except AnswerError as exc:
                    raise _refuse(
                        t("refusal_record", "en", uuid=record["uuid"], revision=key[1], detail=exc)
                    ) from None
        except InvalidInput as exc:
            refused[key] = exc.message
            answers_json.append(None)
            continue
        answers_json.append(text)
        if text is not None:
            for _name, ref in media_refs(schema.form, record["answers"]):
                named.setdefault(ref.sha256, record["uuid"])
    have, dropped = hq_media.check_names(store, opened, named, mentioned, unreadable)
    staged = hq_media.extract(store if stage else None, opened, have, frozenset(dropped))
    device = hq_store.device_by_id(store.conn, header["device_id"])
    assert device is not None  # the container found its key there
    name = device["name"]
    return OpenedBundle(
        header,
        payload,
        opened.file_hash,  # of the bytes authenticated, not a second read of the file
        name,
        forms,
        answers_json,
        refused,
        bad_forms,
        staged,
    )


def _form_for_media(
    store: HqDb,
    record: dict[str, Any],
    parsed: dict[str, Form],
    bad_forms: dict[str, str],
    schemas: dict[str, AnswerSchema | str],
) -> Form | None:
    """The form whose media questions say which answers name files: the record's, when
    HQ can read it (the record may still be refused for other reasons); else None."""
    try:
        return _schema_for(store, record, parsed, bad_forms, schemas).form
    except InvalidInput:
        return None


def _schema_for(
    store: HqDb,
    record: dict[str, Any],
    parsed: dict[str, Form],
    bad_forms: dict[str, str],
    schemas: dict[str, AnswerSchema | str],
) -> AnswerSchema:
    """The answer schema of the definition a record names; refuses the record without one."""
    form_hash = record["form_hash"]
    if form_hash not in schemas:
        form = parsed.get(form_hash)
        if form_hash in bad_forms:
            schemas[form_hash] = bad_forms[form_hash]
        elif form is None and not hq_store.form_known(store.conn, form_hash):
            schemas[form_hash] = t("refusal_no_definition", "en", hash=form_hash[:12])
        else:
            if form is None:
                form = store.form_by_hash(form_hash)
            try:
                schemas[form_hash] = AnswerSchema.of(form)
            except AnswerError as exc:
                schemas[form_hash] = t(
                    "refusal_form_unusable", "en", form=form.id, version=form.version, detail=exc
                )
    schema = schemas[form_hash]
    if isinstance(schema, str):
        raise _refuse(t("refusal_submission", "en", uuid=record["uuid"], detail=schema))
    form = schema.form
    if (record["form_id"], record["form_version"]) != (form.id, form.version):
        raise _refuse(
            t(
                "refusal_form_mismatch",
                "en",
                uuid=record["uuid"],
                form=record["form_id"],
                version=record["form_version"],
                real_form=form.id,
                real_version=form.version,
            )
        )
    return schema


def _check_forms(
    definitions: list[dict[str, Any]],
) -> tuple[dict[str, tuple[str, str, str]], dict[str, Form], dict[str, str]]:
    """(hash -> (form_id, version, canonical definition), hash -> Form, hash -> reason).

    Each definition is identified by the sha256 of its canonical JSON. One that does not
    "load" lands in the third map with the reason, and the records using it are refused.
    "Load" means what `forms validate` and `collect` demand of a YAML file (build, then the
    semantic checks): a definition HQ stores is later read by export and status, and a
    device can only have collected with a form that passed them.
    """
    from yntymak_cli.forms.loader import MAX_FORM_BYTES, LoadedForm, form_from_dict
    from yntymak_cli.forms.validate import validate_form

    out: dict[str, tuple[str, str, str]] = {}
    parsed: dict[str, Form] = {}
    bad: dict[str, str] = {}
    for definition in definitions:
        text = canonical_text(definition)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if digest in out or digest in bad:
            continue
        if len(text) > MAX_FORM_BYTES:
            bad[digest] = t("refusal_form_too_large", "en", size=len(text), limit=MAX_FORM_BYTES)
            continue
        try:
            form = form_from_dict(definition)
            loaded = LoadedForm(f"<form {form.id}>", form)
            validate_form(loaded)
            problems: list[Problem] | list[str] = loaded.errors
        except ProblemsError as exc:
            problems = exc.problems
        except Exception as exc:  # pydantic and friends: any failure is a refusal
            bad[digest] = t("refusal_form_invalid", "en", detail=_short(str(exc)))
            continue
        if problems:
            bad[digest] = t("refusal_form_invalid", "en", detail=_short(str(problems[0])))
            continue
        out[digest] = (form.id, form.version, text)
        parsed[digest] = form
    return out, parsed, bad


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def revision_hash(record: dict[str, Any], answers_json: str | None = None) -> str:
    """The device's revision hash (store.db.Store.finalise), recomputed from the record.

    Spelled out as the canonical JSON of {answers, form_hash, revision, uuid} (sorted keys),
    so the answers, the bulk of a record, are encoded once per import.
    """
    if answers_json is None:
        answers_json = canonical_text(record["answers"])
    text = (
        f'{{"answers":{answers_json},"form_hash":{json.dumps(record["form_hash"])},'
        f'"revision":{int(record["revision"])},"uuid":{json.dumps(record["uuid"])}}}'
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_record(
    rec: dict[str, Any], device_id: str, answers_text: str | None = None
) -> str | None:
    """Refuse a malformed record; return the canonical JSON of its answers.

    `answers_text` is that JSON when the caller has it (the container computed it).
    """
    # Refusal reasons in English on purpose: stored at HQ and sent in the receipt, and
    # shown in the reader's language by sync.reasons (hence the `refusal_*` templates).
    uid = rec.get("uuid")
    if set(rec) != _RECORD_KEYS:
        missing = sorted(_RECORD_KEYS - set(rec))
        extra = sorted(set(rec) - _RECORD_KEYS)
        raise _refuse(t("refusal_record_fields", "en", uuid=uid, missing=missing, extra=extra))
    if rec["device_id"] != device_id:
        raise _refuse(
            t(
                "refusal_signed_by_other",
                "en",
                uuid=uid,
                named=repr(rec["device_id"]),
                device=device_id,
            )
        )
    if rec["status"] not in ("final", "void"):
        raise _refuse(t("refusal_record_status", "en", uuid=uid, status=repr(rec["status"])))
    for key in ("form_id", "form_version", "created_at", "updated_at", "submission_time"):
        if not isinstance(rec[key], str):
            raise _refuse(t("refusal_record_not_text", "en", uuid=uid, field=key))
    if not isinstance(rec["enumerator"], str):
        raise _refuse(t("refusal_record_not_text", "en", uuid=uid, field="enumerator"))
    for key in ("instance_name", "void_reason", "voided_at"):
        if rec[key] is not None and not isinstance(rec[key], str):
            raise _refuse(t("refusal_record_not_text", "en", uuid=uid, field=key))
    for key, limit in _META_LIMITS.items():  # metadata is short; bounded like answers
        if rec[key] is not None and len(rec[key]) > limit:
            raise _refuse(t("refusal_record_too_long", "en", uuid=uid, field=key, limit=limit))
    if (rec["status"] == "void") != isinstance(rec["voided_at"], str):
        raise _refuse(t("refusal_record_voided_at", "en", uuid=uid))
    for key in ("form_hash", "hash"):
        if not isinstance(rec[key], str) or not SHA256_HEX_RE.fullmatch(rec[key]):
            raise _refuse(t("refusal_record_not_digest", "en", uuid=uid, field=key))
    if rec["paradata"] is not None and not isinstance(rec["paradata"], dict):
        raise _refuse(t("refusal_record_not_object", "en", uuid=uid, field="paradata"))
    answers = rec["answers"]
    if answers is None:
        # Answers purged on the device after HQ acknowledged them: only a void can follow.
        if rec["status"] != "void":
            raise _refuse(t("refusal_no_answers", "en", uuid=uid, revision=rec["revision"]))
        return None
    if not isinstance(answers, dict):
        raise _refuse(t("refusal_record_not_object", "en", uuid=uid, field="answers"))
    text = canonical_text(answers) if answers_text is None else answers_text
    if revision_hash(rec, text) != rec["hash"]:
        raise _refuse(t("refusal_hash_mismatch", "en", uuid=uid, revision=rec["revision"]))
    return text


# -- import --------------------------------------------------------------------------------


@dataclass
class ImportResult:
    device_id: str
    seq: int
    bundle_id: str
    # What the bundle holds, counted as `bundle create` and `bundle verify` count it:
    # distinct submissions, and revisions (records, voids included).
    submissions: int = 0
    revisions: int = 0
    voids: int = 0
    # Each revision is one of: new, updated, unchanged or refused.
    new: int = 0  # records of submissions HQ did not know
    updated: int = 0  # a new revision or a void of a known submission
    unchanged: int = 0  # already at HQ (replays, re-sent after a lost receipt)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    replay: bool = False
    # Records not imported, each {"uuid", "revision", "reason"}; the receipt lists them.
    refused: list[dict[str, Any]] = field(default_factory=list)
    media_files: int = 0  # media files written: new to HQ, or lost or damaged and restored


def _merge(conn: Any, opened: OpenedBundle) -> ImportResult:
    """Apply one verified bundle. Runs inside the caller's transaction."""
    header, payload = opened.header, opened.payload
    bundle_id = header["bundle_id"]
    result = ImportResult(opened.device_id, opened.seq, bundle_id)
    records = payload["submissions"]
    result.submissions = len({r["uuid"] for r in records})
    result.revisions = len(records)
    result.voids = sum(1 for r in records if r["status"] == "void")

    seen = hq_store.bundle_file_hash(conn, bundle_id)
    if seen is not None:
        if seen != opened.file_hash:
            raise _refuse(t("bundle_err_id_reused", current_lang(), bundle_id=bundle_id))
        # The same receipt again: what was refused then is read back, not worked out anew.
        refused_then = hq_store.refusals_for_bundle(conn, bundle_id)
        for r in records:
            key = (r["uuid"], r["revision"])
            if key in refused_then:
                result.refused.append(_refusal(key, refused_then[key]))
            else:
                result.accepted.append({"uuid": key[0], "revision": key[1]})
        result.unchanged = len(result.accepted)
        result.replay = True
        return result

    now = utcnow()
    conflicts = _form_conflicts(conn, opened.forms)
    hq_store.add_forms(
        conn,
        [
            (h, fid, ver, text, now)
            for h, (fid, ver, text) in opened.forms.items()
            if h not in conflicts
        ],
    )
    incoming: list[Incoming] = []
    for rec, answers_text in zip(records, opened.answers_json, strict=True):
        uid, rev = rec["uuid"], rec["revision"]
        reason = opened.refused.get((uid, rev))
        if reason is None and rec["form_hash"] in conflicts:
            detail = conflicts[rec["form_hash"]]
            reason = t("refusal_record", "en", uuid=uid, revision=rev, detail=detail)
        incoming.append(Incoming(rec, answers_text, reason))
    subs, revs = hq_store.load_state(conn, sorted({r["uuid"] for r in records}))
    plan = plan_merge(Existing(subs, revs), incoming)
    hq_store.apply_merge(conn, plan)
    _record_bundle(conn, opened, len(records), now)
    for o in plan.outcomes:
        if o.kind == "refused":
            assert o.reason is not None
            result.refused.append(_refusal((o.uuid, o.revision), o.reason))
        else:
            result.accepted.append({"uuid": o.uuid, "revision": o.revision})
    result.new = plan.count("new")
    result.updated = plan.count("updated")
    result.unchanged = plan.count("unchanged")
    hq_store.record_refusals(
        conn, bundle_id, [(r["uuid"], r["revision"], r["reason"]) for r in result.refused], now
    )
    return result


def _refusal(key: tuple[str, int], reason: str) -> dict[str, Any]:
    from yntymak_cli.sync.container import MAX_REFUSAL_REASON

    return {"uuid": key[0], "revision": key[1], "reason": _short(reason, MAX_REFUSAL_REASON)}


def _form_conflicts(conn: Any, forms: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    """Definitions of the bundle that reuse a form id and version HQ knows with other content.

    hash -> reason. The first definition HQ accepted for an (id, version) stays the only
    one: a device must not relabel the answers other devices collected with that version.
    Within one bundle, the first definition of an (id, version) new to HQ wins. Runs inside
    the import's transaction with each (id, version) locked (SQLite's write lock; on
    PostgreSQL an advisory lock per form version, taken in one order), so two imports
    cannot both bring a "first" definition.
    """
    out: dict[str, str] = {}
    first: dict[tuple[str, str], str] = {}
    for form_id, version in sorted({(f, v) for f, v, _text in forms.values()}):
        hq_store.lock_form_version(conn, form_id, version)
    for digest, (form_id, version, _text) in forms.items():
        if (form_id, version) not in first:
            held_first = hq_store.first_form_hash(conn, form_id, version)
            first[(form_id, version)] = digest if held_first is None else held_first
        held = first[(form_id, version)]
        if held != digest and not hq_store.form_known(conn, digest):
            out[digest] = t(
                "refusal_form_differs", "en", form=form_id, version=version, held=held[:12]
            )
    return out


def _record_bundle(conn: Any, opened: OpenedBundle, n_records: int, now: str) -> None:
    h = opened.header
    hq_store.record_bundle(
        conn, h["bundle_id"], h["device_id"], h["seq"], opened.file_hash, h["prev_hash"],
        h["created_at"], n_records, now,
    )  # fmt: skip


def import_bundle(store: HqDb, hq: HqIdentity, data: BundleData) -> ImportResult:
    """Verify, decrypt and merge one bundle in one transaction; BundleError if refused.

    `data` is the bundle's bytes or a seekable file open on it (read as a stream: the
    media files are decrypted a chunk at a time into temp files beside their places)."""
    from yntymak_cli.sync import hq_media

    opened = open_for_import(store, hq, data, stage=True)
    try:
        with store.write() as conn:
            hq_store.lock_device(conn, opened.device_id)
            # Enrolment is checked again under the lock: a revoke may have landed meanwhile.
            row = hq_store.device_by_id(conn, opened.device_id)
            if row is None or row["revoked_at"]:
                from yntymak_cli.sync.container import BundleError

                raise BundleError(
                    "revoked-device",
                    t("bundle_err_revoked", current_lang(), device=opened.device_id),
                )
            result = _merge(conn, opened)
            # A replay too: it writes again a file HQ lost or damaged since (and only that).
            result.media_files = hq_media.keep(
                store, conn, opened.media, result.bundle_id, utcnow()
            )
            return result
    finally:
        hq_media.discard(opened.media)  # a refusal, a replay or a crash: no temp file stays


def receipt_for_import(result: ImportResult, hq: HqIdentity, sent: Outgoing | None = None) -> bytes:
    """The signed receipt HQ returns for one imported bundle (container.sign_receipt).

    With decisions to send (or waiting) in `sent`, a receipt v2 that carries them; else
    version 1, which laptops of every version read.
    """
    from yntymak_cli.sync import container

    receipt: dict[str, Any] = {
        "bundle_id": result.bundle_id,
        "device_id": result.device_id,
        "seq": result.seq,
        "accepted": result.accepted,
    }
    if result.refused:  # absent when empty: such a receipt reads the same to older devices
        # Many refusals get shorter reasons, so the receipt stays far below its size limit.
        per = max(60, min(container.MAX_REFUSAL_REASON, _REASONS_BUDGET // len(result.refused)))
        receipt[container.RECEIPT_REFUSED_KEY] = [
            {**r, "reason": _short(r["reason"], per)} for r in result.refused
        ]
    if sent is not None and not sent.empty:
        from yntymak_cli.sync.review import sign_with_decisions

        return sign_with_decisions(receipt, hq, sent)
    try:
        return container.sign_receipt(receipt, hq)
    except ValueError as exc:  # more records than one receipt can list
        raise YntymakError(t("receipt_err_cannot_build", current_lang(), error=exc)) from None


def issue_receipt(
    store: HqDb, hq: HqIdentity, result: ImportResult
) -> tuple[bytes, Outgoing | None]:
    """The receipt of an imported bundle, kept in `hq_receipts`; with the review decisions
    waiting for its device, marked delivered in the same transaction.

    A replayed bundle gets the bytes issued the first time (the same acknowledgements and
    the same sealed decisions); one imported before receipts were kept gets a new one.
    The receipt is looked up, built and kept under the device's import lock, in one
    transaction: a copy of the bundle imported at the same moment (another worker, another
    `hq serve` on the same PostgreSQL) may have kept its receipt since this import
    committed, and every copy must answer with those bytes.
    """
    from yntymak_cli.sync.review import outgoing

    with store.write() as conn:
        hq_store.lock_device(conn, result.device_id)
        kept = hq_store.receipt_of_bundle(conn, result.bundle_id)
        if kept is not None:
            return kept, None
        # A bundle that carries again revisions HQ already held means an earlier receipt
        # never reached the laptop (lost, or the laptop restored from a backup): then the
        # newest decision of every submission goes again, not only those no receipt
        # carried yet.
        sent = outgoing(store, result.device_id, again=result.unchanged > 0)
        data = receipt_for_import(result, hq, sent)
        now = utcnow()
        hq_store.save_receipt(conn, result.bundle_id, result.device_id, result.seq, now, data)
        if sent.decisions:
            hq_store.mark_delivered(conn, [d.decision_id for d in sent.decisions], now)
    return data, sent


def import_for_receipt(
    store: HqDb, hq: HqIdentity, data: BundleData
) -> tuple[ImportResult, bytes, Outgoing | None]:
    """`hq import` of one bundle's bytes and its receipt (what `hq serve` answers a POST
    with). BundleError / InvalidInput when the bundle is refused: nothing written."""
    result = import_bundle(store, hq, data)
    receipt, sent = issue_receipt(store, hq, result)
    return result, receipt, sent


def latest_receipt(store: HqDb, device_id: str) -> bytes | None:
    """The receipt of a device's last bundle HQ imported (for a laptop that lost it)."""
    return hq_store.latest_receipt(store.conn, device_id)


def write_receipt(
    result: ImportResult, hq: HqIdentity, out_dir: Path, store: HqDb | None = None
) -> tuple[Path, Outgoing | None]:
    """Write the receipt of an imported bundle to `out_dir`; with `store`, the receipt
    issued (and kept) by issue_receipt, carrying the decisions waiting for the device."""
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.sync.container import receipt_name

    path = Path(out_dir) / receipt_name(result.device_id, result.seq)
    check_overwrite(path, "receipt")  # the same receipt again, never a key or a database
    if store is not None:
        data, sent = issue_receipt(store, hq, result)
    else:
        data, sent = receipt_for_import(result, hq), None
    write_sync_file(path, data)
    return path, sent


def check_receipts_dir(out_dir: Path) -> None:
    """Create a missing receipts folder (like export's -o); refuse one that cannot be
    written, before any import.

    Tried by creating (and removing) a hidden file there, not from permission bits: those
    say nothing for root, a read-only mount or a full disk.
    """
    import tempfile

    from yntymak_cli.outputs import ensure_folder

    out_dir = Path(out_dir)
    ensure_folder(out_dir)
    try:
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".yntymak-probe-"):
            pass
    except OSError as exc:
        raise InvalidInput(
            t(
                "hq_receipts_unwritable",
                current_lang(),
                folder=out_dir,
                error=exc.strerror or exc,
            )
        ) from None


@contextmanager
def open_bundle_file(path: Path) -> Iterator[BinaryIO]:
    """A bundle file open for reading as a stream, refused before reading when it is larger
    than any bundle can be, or is not a regular file."""
    from yntymak_cli.sync.container import MAX_BUNDLE_FILE_SIZE, BundleError
    from yntymak_cli.sync.keys import what_text

    try:
        info = os.stat(path)
    except OSError:
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        read_bundle_file(path)  # missing, a folder, a FIFO: refused in the same words
        raise InvalidInput(
            t("sync_file_not_found", current_lang(), path=path, what=what_text("a bundle"))
        )
    if info.st_size > MAX_BUNDLE_FILE_SIZE:
        raise BundleError(
            "too-large", t("bundle_err_file_too_large", current_lang(), size=info.st_size)
        )
    with open(path, "rb") as f:
        yield f


def read_bundle_file(path: Path) -> bytes:
    """A bundle file, refused before reading when it is larger than any bundle can be."""
    from yntymak_cli.sync.container import MAX_BUNDLE_FILE_SIZE, BundleError

    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0  # read_sync_file reports a missing or unreadable file
    if size > MAX_BUNDLE_FILE_SIZE:
        raise BundleError("too-large", t("bundle_err_file_too_large", current_lang(), size=size))
    return read_sync_file(path, "a bundle", MAX_BUNDLE_FILE_SIZE)


def bundle_paths(paths: list[Path]) -> list[Path]:
    """Files as given; folders scanned (not recursively) for *.ykb, in name order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.glob("*.ykb") if p.is_file()))
        else:
            out.append(path)
    return out


# -- status --------------------------------------------------------------------------------


MAX_GAPS_LISTED = 1000  # a device's signed seq can be up to 2**31 - 1: never list them all


def _gaps(seqs: list[int]) -> tuple[list[int], int]:
    """(the first MAX_GAPS_LISTED seqs missing between 1 and the highest, how many in all).

    Walks the received seqs, so the cost depends on the bundles held, not on how high a
    seq a device signed.
    """
    listed: list[int] = []
    total = 0
    expected = 1
    for n in sorted(set(seqs)):
        if n > expected:
            total += n - expected
            listed.extend(range(expected, min(n, expected + MAX_GAPS_LISTED - len(listed))))
        expected = n + 1
    return listed, total


def status(store: HqDb) -> dict[str, Any]:
    """Per device and totals, as plain data (the CLI renders it or prints it as JSON)."""
    conn = store.conn
    devices: list[dict[str, Any]] = []
    by_form: dict[str, int] = defaultdict(int)
    by_district: dict[str, int] = defaultdict(int)
    total_void = 0
    for d in hq_store.all_devices(conn):
        did = d["device_id"]
        bundles = hq_store.bundles_of(conn, did)
        hashes: dict[int, set[str]] = defaultdict(set)
        for b in bundles:
            hashes[b["seq"]].add(b["file_hash"])
        # A chain break: bundle n names a predecessor other than the bundle n-1 HQ holds.
        breaks = sorted(
            {
                b["seq"]
                for b in bundles
                if hashes.get(b["seq"] - 1) and b["prev_hash"] not in hashes[b["seq"] - 1]
            }
        )
        last = max(bundles, key=lambda b: (b["seq"], b["received_at"])) if bundles else None
        forms = hq_store.finals_by_form(conn, did)
        voids = hq_store.void_count(conn, did)
        enumerators = hq_store.enumerators_of(conn, did)
        for form_id, n in forms.items():
            by_form[form_id] += n
            by_district[d["district"] or ""] += n
        total_void += voids
        gaps, gaps_total = _gaps([b["seq"] for b in bundles])
        devices.append(
            {
                "device_id": did,
                "name": d["name"],
                "district": d["district"],
                "fingerprint": d["fingerprint"],
                "enrolled_at": d["enrolled_at"],
                "revoked_at": d["revoked_at"],
                "enumerators": enumerators,
                "bundles": len(bundles),
                "last_seq": last["seq"] if last else None,
                "last_created_at": last["created_at"] if last else None,
                "last_received_at": last["received_at"] if last else None,
                "submissions_by_form": forms,
                "void": voids,
                "gaps": gaps,
                "gaps_total": gaps_total,
                "chain_breaks": breaks,
                "repeated_seqs": sorted(s for s, h in hashes.items() if len(h) > 1),
                # Review decisions: whether HQ can seal them to this device, and how many
                # no receipt has carried yet.
                "encryption_key": d["box_key"] is not None,
                "decisions_waiting": len(hq_store.to_deliver(conn, did)),
            }
        )
    return {
        "format_version": STATUS_FORMAT_VERSION,
        "devices": devices,
        "totals": {
            "submissions": sum(by_form.values()),
            "void": total_void,
            "by_form": dict(sorted(by_form.items())),
            "by_district": dict(sorted(by_district.items())),
        },
    }


def summarise(opened: OpenedBundle) -> dict[str, Any]:
    """What a bundle holds, for `bundle verify`."""
    records = opened.payload["submissions"]
    # Submissions (not revisions) per form, as `hq status` counts them.
    uuids_by_form: dict[str, set[str]] = defaultdict(set)
    for r in records:
        if (r["uuid"], r["revision"]) not in opened.refused:  # a refused one may lack form_id
            uuids_by_form[r["form_id"]].add(r["uuid"])
    by_form = {form_id: len(uuids) for form_id, uuids in uuids_by_form.items()}
    return {
        "device_id": opened.device_id,
        "device_name": opened.device_name,
        "seq": opened.seq,
        "bundle_id": opened.header["bundle_id"],
        "created_at": opened.header["created_at"],
        "prev_hash": opened.header["prev_hash"],
        "file_hash": opened.file_hash,
        "forms": len(opened.payload["forms"]),
        "records": len(records),
        "submissions": len({r["uuid"] for r in records}),
        "voids": sum(1 for r in records if r["status"] == "void"),
        "media_files": len(opened.media),  # each decrypted and its hash checked
        "by_form": dict(sorted(by_form.items())),
        # Records HQ would refuse on their own (more may be refused at import, where they
        # are compared with what HQ holds).
        "refused": [_refusal(k, reason) for k, reason in opened.refused.items()],
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
