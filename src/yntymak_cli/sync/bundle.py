"""Device side of sync: pack unacknowledged revisions and voids into a bundle; apply receipts.

A revision stays "unacknowledged" until a receipt signed by the trusted HQ lists it, so a
bundle lost on a USB stick is healed by the next one (HQ's import is idempotent). The
bundle chain (seq, prev_hash) and what each bundle carried live in `sync_bundles`.
"""

from __future__ import annotations

import glob
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli import files
from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.outputs import check_overwrite, ensure_folder
from yntymak_cli.store import device_sync, reviews
from yntymak_cli.store.db import Store, utcnow
from yntymak_cli.store.device_sync import SentBundle, pending_records
from yntymak_cli.store.reviews import Decision
from yntymak_cli.sync.keys import DeviceIdentity, HqPublic, cannot_write

if TYPE_CHECKING:
    from yntymak_cli.sync.media_section import MediaEntry

MAX_RECEIPT_FILE = 64 * 1024 * 1024  # a receipt of a million ids is ~60 MB; refuse beyond


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write a whole file or nothing under its name (files.write_atomic); errors as messages.

    With overwrite=False an existing file is never replaced (FileExistsError).
    """
    path = Path(path)
    _publish(_write_temp(path, data), path, overwrite=overwrite)


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a hidden file beside `path` (".NAME.RANDOM.tmp"), on disk before we return."""
    try:
        return files.write_temp(path, data)
    except OSError as exc:
        raise cannot_write(path, exc) from exc


def _publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give a temp file of _write_temp its name; the temp name is gone afterwards."""
    try:
        files.publish(tmp, path, overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise cannot_write(path, exc) from exc


@dataclass(frozen=True)
class CreatedBundle:
    path: Path
    seq: int
    bundle_id: str
    submissions: int  # distinct uuids
    revisions: int
    voids: int
    forms: int
    size: int
    media_files: int = 0  # files the bundle carries
    # Finished from the hidden temp file of a run killed after recording this bundle:
    # nothing new was packed (run `bundle create` again for data collected since).
    resumed: bool = False
    # Submissions with something pending, and how many of them no unacknowledged bundle
    # carries once this one is made: more than 0 when they did not all fit (sync/split.py),
    # left for the next `bundle create`.
    pending: int = 0
    left: int = 0
    in_transit: int = 0  # submissions on their way in earlier bundles, not packed again
    # Submissions no bundle can hold (sync/split.py), each a worded line: left out, pending.
    too_large: tuple[str, ...] = ()


def _exists(path: Path) -> YntymakError:
    # A file already there is never written over (it may be the only copy): refused, exit 2.
    return InvalidInput(t("bundle_exists", current_lang(), path=path))


def create_bundle(
    store: Store,
    device: DeviceIdentity,
    hq: HqPublic,
    out_dir: Path,
    *,
    max_size: int | None = None,
) -> CreatedBundle | None:
    """Write `<device-id>-<seq>.ykb` into out_dir; None when there is nothing to send.

    It carries everything pending, or as much as fits in one bundle (sync/split.py: then
    `left` says how many submissions wait for the next call).

    Runs in one write transaction: two `bundle create` at once cannot take the same seq, and
    the records read are a consistent snapshot. The file appears under its name only after
    the bundle is recorded (committed): a run killed before that leaves a hidden temp file
    and no trace in the database; one killed between the two leaves the recorded bundle as
    a temp file, which the next run into the same folder finishes instead of packing anew.
    So a `.ykb` this database does not know is never left behind to collide later.
    """
    from yntymak_cli.sync import container, split

    out_dir = Path(out_dir)
    ensure_folder(out_dir)  # created when missing, like export's -o
    tmp: Path | None = None
    try:
        with store.write():
            last = device_sync.last_bundle(store)
            if last is not None and last.acked_at is None:
                resumed = _finish_interrupted(store, out_dir, last)
                if resumed is not None:
                    return resumed
            records = pending_records(store)
            if not records:
                return None
            # What does not fit in one bundle is left for the next (split.py); when all
            # fits, these are all the records, in the same order.
            packing = split.pack(store, records, hq.fingerprint, max_size)
            records = packing.records
            media = _media_files(store, records)
            seq = last.seq + 1 if last else 1
            prev_hash = last.file_hash if last else None
            form_hashes = sorted({r["form_hash"] for r in records})
            forms = store.form_definitions(form_hashes)
            header: dict[str, Any] = {
                "seq": seq,
                "prev_hash": prev_hash,
                "bundle_id": str(uuid.uuid4()),
                "created_at": utcnow()[:19] + "Z",
            }
            path = out_dir / container.bundle_name(device.device_id, seq)
            check_overwrite(path, "bundle")  # a database or key renamed to this name: refused
            # Never replace a file of that name: after a restore from a backup the seq is
            # reused, and the older bundle there may hold data that is nowhere else.
            if os.path.lexists(path):
                raise _exists(path)
            # Temp files of this seq are from runs killed before they recorded it: garbage.
            for stale in out_dir.glob(f".{glob.escape(path.name)}.*.tmp"):
                stale.unlink(missing_ok=True)
            # Written as a stream straight into the temp file: media files are read and
            # encrypted a chunk at a time, so a bundle of photos is never held in memory.
            try:
                tmp = files.create_temp(path)
            except OSError as exc:
                raise cannot_write(path, exc) from exc
            try:
                with open(tmp, "r+b") as out:
                    _, file_hash, size = container.write_bundle(
                        out,
                        header,
                        {"forms": forms, "submissions": records},
                        device,
                        hq,
                        media,
                    )
                    out.flush()
                    os.fsync(out.fileno())
            except ValueError as exc:  # e.g. content beyond the bundle's size limit
                raise YntymakError(
                    t("bundle_err_cannot_build", current_lang(), error=exc)
                ) from None
            except OSError as exc:
                raise cannot_write(path, exc) from exc
            device_sync.record_bundle(
                store,
                seq=seq,
                bundle_id=header["bundle_id"],
                file_name=path.name,
                file_hash=file_hash,
                prev_hash=prev_hash,
                hq_fingerprint=hq.fingerprint,
                created_at=header["created_at"],
                contents=[(r["uuid"], r["revision"], r["status"]) for r in records],
            )
    except BaseException:
        if tmp is not None:  # not recorded: the temp file is nobody's
            tmp.unlink(missing_ok=True)
        raise
    assert tmp is not None
    try:
        _publish(tmp, path, overwrite=False)
    except (FileExistsError, YntymakError) as exc:
        # The file never appeared: forget the bundle, so the next run reuses the seq.
        device_sync.forget_bundle(store, seq)
        if isinstance(exc, FileExistsError):
            raise _exists(path) from None
        raise
    return CreatedBundle(
        path=path,
        seq=seq,
        bundle_id=header["bundle_id"],
        submissions=len({r["uuid"] for r in records}),
        revisions=len(records),
        voids=sum(1 for r in records if r["status"] == "void"),
        forms=len(forms),
        size=size,
        media_files=len(media),
        pending=packing.pending,
        left=packing.left,
        in_transit=packing.in_transit,
        too_large=packing.too_large,
    )


def _media_files(store: Store, records: list[Any]) -> list[tuple[MediaEntry, Path]]:
    """The files the records' media answers name, each once, in the order first named:
    (what the bundle lists, where the file is on this laptop). InvalidInput when one is not
    in the home (sending the answer without its file would look complete at HQ while it is
    not; HQ refuses such a bundle too)."""
    from yntymak_cli.forms.media import media_refs
    from yntymak_cli.store.media import get_media, has_file, media_path
    from yntymak_cli.sync.media_section import MediaEntry

    out: list[tuple[MediaEntry, Path]] = []
    seen: set[str] = set()
    for record in records:
        if record.get("answers") is None:
            continue
        form = store.form_by_hash(record["form_hash"])
        for _name, ref in media_refs(form, record["answers"]):
            if ref.sha256 in seen:
                continue
            seen.add(ref.sha256)
            row = get_media(store, ref.sha256)
            if row is None or not has_file(store, ref.sha256):
                raise InvalidInput(
                    t(
                        "bundle_media_not_on_laptop",
                        current_lang(),
                        uuid=record["uuid"][:8],
                        name=ref.name,
                        sha256=ref.sha256[:12],
                    )
                )
            out.append(
                (MediaEntry(ref.sha256, row.size, row.media_type), media_path(store, ref.sha256))
            )
    return out


def _finish_interrupted(store: Store, out_dir: Path, last: SentBundle) -> CreatedBundle | None:
    """Publish the recorded bundle `last` if it is still a hidden temp file in out_dir.

    The temp file is recognised by its hash, which the database recorded; anything else
    of a similar name is left alone. A temp file that duplicates the published bundle
    (a run killed just after publishing) is removed.
    """
    from yntymak_cli.sync import container

    path = out_dir / last.file_name
    published = os.path.lexists(path)
    for tmp in sorted(out_dir.glob(f".{glob.escape(last.file_name)}.*.tmp")):
        # Hashed as a stream: a bundle of photos is not read into memory.
        try:
            with tmp.open("rb") as f:
                if container.bundle_file_hash(f) != last.file_hash:
                    continue
                bundle_id = container.inspect_bundle(f)["bundle_id"]
            size = tmp.stat().st_size
        except (OSError, container.BundleError):
            continue
        if published:
            # Killed after the link, before the temp name went: the same bytes twice.
            try:
                if os.path.samefile(tmp, path):
                    tmp.unlink()
                else:
                    with path.open("rb") as f:
                        if container.bundle_file_hash(f) == last.file_hash:
                            tmp.unlink()
            except OSError:
                pass
            continue
        try:
            _publish(tmp, path, overwrite=False)
        except FileExistsError:
            return None
        contents = last.contents
        form_hashes = device_sync.carried_form_hashes(store, contents)
        return CreatedBundle(
            path=path,
            seq=last.seq,
            bundle_id=bundle_id,
            submissions=len({u for u, _r, _s in contents}),
            revisions=len(contents),
            voids=sum(1 for _u, _r, status in contents if status == "void"),
            forms=len(form_hashes),
            size=size,
            resumed=True,
        )
    return None


@dataclass(frozen=True)
class AckResult:
    seq: int | None  # None: a receipt that answers no bundle (`hq receipt DEVICE`)
    acknowledged: int  # revisions newly marked as synced
    voids: int  # voids newly marked as synced
    already: int  # listed entries that were acknowledged before (a receipt applied twice)
    # What HQ refused of this bundle, as (uuid, revision, reason): never sent again.
    refused: tuple[tuple[str, int, str], ...] = ()
    # HQ's review decisions the receipt carried that stand (new, or held already).
    decisions: tuple[Decision, ...] = ()
    received: tuple[Decision, ...] = ()  # of those, the ones this laptop did not hold yet
    # Of those, how many were older than one this laptop holds for the same submission
    # (a receipt delivered after a newer one): not stored, as HQ decided again since.
    skipped_decisions: int = 0
    decisions_waiting: int = 0  # at HQ, not sent: this laptop's box key is unknown there

    @property
    def new_decisions(self) -> int:
        return len(self.received)


def ack_receipt(store: Store, device: DeviceIdentity, hq: HqPublic, data: bytes) -> AckResult:
    """Verify HQ's receipt, mark what it lists as synced and store the decisions it carries.

    Only entries that the named bundle of this device carried are marked: a receipt proves
    what HQ holds, and the bundle record says whether an entry was a revision or a void.
    A receipt that is refused changes nothing: every check runs before the one write.
    """
    from yntymak_cli.sync import container
    from yntymak_cli.sync.review import decision_from_doc

    opened = container.read_receipt(data, hq)
    receipt = opened.doc
    if receipt["device_id"] != device.device_id:
        raise container.BundleError(
            "wrong-device",
            t(
                "receipt_other_device",
                current_lang(),
                device=receipt["device_id"],
                this=device.device_id,
            ),
        )
    decisions: list[Decision] = []
    if opened.sealed:
        if device.box_key is None:  # pragma: no cover - load_or_create always makes one
            raise InvalidInput(t("receipt_no_box_key", current_lang()))
        decisions = [decision_from_doc(d) for d in opened.decisions(device.box_key)]
    now = utcnow()
    receipt_id = receipt.get("receipt_id")  # v2 only
    with store.write() as conn:
        fresh = _current_decisions(conn, receipt_id, decisions)
        received = tuple(reviews.receive(conn, fresh, now))
        if receipt_id is not None:
            reviews.record_receipt(conn, receipt_id, now)
        skipped = len(decisions) - len(fresh)
        if receipt["bundle_id"] is None:
            return AckResult(
                seq=None,
                acknowledged=0,
                voids=0,
                already=0,
                decisions=tuple(fresh),
                received=received,
                skipped_decisions=skipped,
                decisions_waiting=receipt.get("decisions_waiting", 0),
            )
        sent = device_sync.bundle_by_id(store, receipt["bundle_id"])
        if sent is None or sent.seq != receipt["seq"]:
            raise InvalidInput(
                t(
                    "receipt_unknown_bundle",
                    current_lang(),
                    seq=receipt["seq"],
                    bundle_id=receipt["bundle_id"],
                )
            )
        if sent.hq_fingerprint != receipt["hq_fingerprint"]:
            # Only the HQ a bundle was sealed to can have read it: a receipt from another
            # HQ (after `trust-hq --replace`) must not mark its data as safe to purge.
            raise InvalidInput(
                t(
                    "receipt_other_hq",
                    current_lang(),
                    named=receipt["hq_fingerprint"],
                    seq=receipt["seq"],
                    sent=sent.hq_fingerprint,
                )
            )
        carried = sent.carried()
        accepted = []  # in the receipt's order: an entry listed twice counts as "already"
        for entry in receipt["accepted"]:
            key = (entry["uuid"], entry["revision"])
            if key in carried:
                accepted.append((key[0], key[1], carried[key]))
        marks = device_sync.mark_acknowledged(store, accepted, now)
        refused = _refused(receipt.get(container.RECEIPT_REFUSED_KEY, []), carried)
        device_sync.mark_refused(store, refused, now)
        device_sync.mark_bundle_acked(store, receipt["bundle_id"], now)
    return AckResult(
        seq=sent.seq,
        acknowledged=marks.acknowledged,
        voids=marks.voids,
        already=marks.already,
        refused=tuple((u, r, reason) for u, r, _status, reason in refused),
        decisions=tuple(fresh),
        received=received,
        skipped_decisions=skipped,
        decisions_waiting=receipt.get("decisions_waiting", 0),
    )


def _current_decisions(
    conn: Any, receipt_id: str | None, decisions: list[Decision]
) -> list[Decision]:
    """The decisions of a receipt to store: those not older than one this laptop holds for
    the same submission.

    A receipt this laptop applied before that now holds such an older decision is a
    replay after a newer decision: refused whole. One never applied (delivered late, after
    a newer one) is applied without its superseded decisions, so that its others, and its
    acknowledgements, are not lost. A decision id this laptop holds with other content
    (HQ's numbers reused) is refused rather than ignored.
    """
    from yntymak_cli.sync.container import BundleError

    lang = current_lang()
    known = reviews.held(conn, [d.decision_id for d in decisions])
    for d in decisions:
        mine = known.get(d.decision_id)
        if mine is not None and mine != d:
            raise InvalidInput(t("receipt_decision_conflict", lang, decision=d.decision_id))
    newest = reviews.newest_ids(conn, sorted({d.uuid for d in decisions}))
    fresh = [d for d in decisions if newest.get(d.uuid, 0) <= d.decision_id]
    if len(fresh) < len(decisions) and receipt_id is not None:
        if reviews.receipt_applied(conn, receipt_id):
            old = next(d for d in decisions if d not in fresh)
            raise BundleError(
                "replayed",
                t(
                    "receipt_replayed",
                    lang,
                    uuid=old.uuid,
                    decision=old.decision_id,
                    newer=newest[old.uuid],
                ),
            )
    return fresh


def _refused(
    entries: list[dict[str, Any]], carried: dict[tuple[str, int], str]
) -> list[tuple[str, int, str, str]]:
    """What HQ refused of this bundle, as (uuid, revision, status, reason), to be marked so
    that `bundle create` stops sending it.

    Only entries this bundle carried count. A refused revision (or void) is kept on the
    laptop, never purged (it is not acknowledged), and is not sent again: HQ would refuse
    it again. A later edit or void of the submission is new data and travels as usual.
    """
    out = []
    for entry in entries:
        key = (entry["uuid"], entry["revision"])
        status = carried.get(key)
        if status is not None:
            out.append((key[0], key[1], status, entry["reason"]))
    return out
