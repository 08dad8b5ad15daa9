"""Device side of sync: pack unacknowledged revisions and voids into a bundle; apply receipts.

A revision stays "unacknowledged" until a receipt signed by the trusted HQ lists it, so a
bundle lost on a USB stick is healed by the next one (HQ's import is idempotent). The
bundle chain (seq, prev_hash) and what each bundle carried live in `sync_bundles`.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput, YntymakError
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.outputs import check_overwrite, ensure_folder
from yntymak_cli.store.db import Store, utcnow
from yntymak_cli.sync.keys import DeviceIdentity, HqPublic

BUNDLE_SUFFIX = ".ykb"
RECEIPT_SUFFIX = ".ykr"
MAX_RECEIPT_FILE = 64 * 1024 * 1024  # a receipt of a million ids is ~60 MB; refuse beyond

# The revision as it travels: the record shape of docs/design.md plus paradata, the void
# time and the device's revision hash (HQ recomputes it to tell replays from conflicts).
_PENDING_SQL = """
SELECT r.uuid, r.revision, r.form_hash, r.submission_time, r.enumerator, r.device_id,
       r.instance_name, r.answers, r.paradata, r.hash,
       s.created_at, s.status, s.revision AS latest, s.void_reason, s.voided_at,
       f.form_id, f.version AS form_version
FROM revisions r
JOIN submissions s ON s.uuid = r.uuid
JOIN forms f ON f.hash = r.form_hash
WHERE (r.synced_at IS NULL AND r.refused_at IS NULL)
   OR (s.status = 'void' AND s.void_synced = 0 AND s.void_refused_at IS NULL
       AND r.revision = s.revision)
ORDER BY r.uuid, r.revision
"""


def bundle_name(device_id: str, seq: int) -> str:
    return f"{device_id}-{seq}{BUNDLE_SUFFIX}"


def receipt_name(device_id: str, seq: int) -> str:
    return f"{device_id}-{seq}{RECEIPT_SUFFIX}"


def write_atomic(path: Path, data: bytes, *, overwrite: bool = True) -> None:
    """Write a whole file or nothing under its name: temp file, fsync, rename.

    With overwrite=False an existing file is never replaced (FileExistsError): the temp
    file is hard-linked into place, and a link, unlike a rename, fails if the name exists.
    """
    path = Path(path)
    _publish(_write_temp(path, data), path, overwrite=overwrite)


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a hidden file beside `path` (".NAME.RANDOM.tmp"), on disk before we return."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise YntymakError(
            t("sync_cannot_write", current_lang(), path=path, error=exc.strerror or exc)
        ) from None
    return tmp


def _publish(tmp: Path, path: Path, *, overwrite: bool) -> None:
    """Give a temp file of _write_temp its name; the temp name is gone afterwards."""
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                # No hard links here (FAT USB sticks): check, then rename. Not atomic
                # against a racing writer, but bundle create holds the database lock.
                if path.exists():
                    raise FileExistsError(path) from None
                os.replace(tmp, path)
    except FileExistsError:
        raise
    except OSError as exc:
        raise YntymakError(
            t("sync_cannot_write", current_lang(), path=path, error=exc.strerror or exc)
        ) from None
    finally:
        tmp.unlink(missing_ok=True)
    try:  # make the rename durable; not possible on every platform
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def read_sync_file(path: Path, what: str, limit: int) -> bytes:
    """A bundle or receipt file: a regular file (a FIFO would hang) of at most `limit` bytes,
    read a megabyte at a time (one read of the limit would allocate it all up front)."""
    from yntymak_cli.files import FileRefused, read_limited

    try:
        return read_limited(path, limit, what)
    except FileRefused as exc:
        if exc.missing:
            from yntymak_cli.sync.keys import what_text

            raise InvalidInput(
                t("sync_file_not_found", current_lang(), path=path, what=what_text(what))
            ) from None
        raise


def _row_record(row: Any) -> dict[str, Any]:
    is_void = row["status"] == "void" and row["revision"] == row["latest"]
    return {
        "uuid": row["uuid"],
        "revision": row["revision"],
        "form_id": row["form_id"],
        "form_version": row["form_version"],
        "form_hash": row["form_hash"],
        "status": "void" if is_void else "final",
        "created_at": row["created_at"],
        "updated_at": row["voided_at"] if is_void else row["submission_time"],
        "submission_time": row["submission_time"],
        "enumerator": row["enumerator"],
        "device_id": row["device_id"],
        "instance_name": row["instance_name"],
        "void_reason": row["void_reason"] if is_void else None,
        "voided_at": row["voided_at"] if is_void else None,
        # None only for a purged revision that HQ already holds (a later void of it).
        "answers": json.loads(row["answers"]) if row["answers"] is not None else None,
        "paradata": json.loads(row["paradata"]) if row["paradata"] is not None else None,
        "hash": row["hash"],
    }


def pending_records(store: Store) -> list[dict[str, Any]]:
    """Every revision and void HQ has not acknowledged, oldest revision first per uuid."""
    return [_row_record(row) for row in store.conn.execute(_PENDING_SQL)]


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
    # Finished from the hidden temp file of a run killed after recording this bundle:
    # nothing new was packed (run `bundle create` again for data collected since).
    resumed: bool = False


def _exists(path: Path) -> YntymakError:
    # A file already there is never written over (it may be the only copy): refused, exit 2.
    return InvalidInput(t("bundle_exists", current_lang(), path=path))


def create_bundle(
    store: Store, device: DeviceIdentity, hq: HqPublic, out_dir: Path
) -> CreatedBundle | None:
    """Write `<device-id>-<seq>.ykb` into out_dir; None when there is nothing to send.

    Runs in one write transaction: two `bundle create` at once cannot take the same seq, and
    the records read are a consistent snapshot. The file appears under its name only after
    the bundle is recorded (committed): a run killed before that leaves a hidden temp file
    and no trace in the database; one killed between the two leaves the recorded bundle as
    a temp file, which the next run into the same folder finishes instead of packing anew.
    So a `.ykb` this database does not know is never left behind to collide later.
    """
    from yntymak_cli.sync import container

    out_dir = Path(out_dir)
    ensure_folder(out_dir)  # created when missing, like export's -o
    tmp: Path | None = None
    try:
        with store.write() as conn:
            last = conn.execute(
                "SELECT seq, file_name, file_hash, contents, acked_at FROM sync_bundles "
                "ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            if last is not None and last["acked_at"] is None:
                resumed = _finish_interrupted(store, out_dir, last)
                if resumed is not None:
                    return resumed
            records = pending_records(store)
            if not records:
                return None
            seq = last["seq"] + 1 if last else 1
            prev_hash = last["file_hash"] if last else None
            form_hashes = sorted({r["form_hash"] for r in records})
            forms = store.form_definitions(form_hashes)
            header: dict[str, Any] = {
                "seq": seq,
                "prev_hash": prev_hash,
                "bundle_id": str(uuid.uuid4()),
                "created_at": utcnow()[:19] + "Z",
            }
            try:
                data = container.build_bundle(
                    header, {"forms": forms, "submissions": records}, device, hq
                )
            except ValueError as exc:  # e.g. a payload beyond the section limit
                raise YntymakError(
                    t("bundle_err_cannot_build", current_lang(), error=exc)
                ) from None
            path = out_dir / bundle_name(device.device_id, seq)
            check_overwrite(path, "bundle")  # a database or key renamed to this name: refused
            # Never replace a file of that name: after a restore from a backup the seq is
            # reused, and the older bundle there may hold data that is nowhere else.
            if os.path.lexists(path):
                raise _exists(path)
            # Temp files of this seq are from runs killed before they recorded it: garbage.
            for stale in out_dir.glob(f".{glob.escape(path.name)}.*.tmp"):
                stale.unlink(missing_ok=True)
            tmp = _write_temp(path, data)
            contents = [[r["uuid"], r["revision"], r["status"]] for r in records]
            conn.execute(
                "INSERT INTO sync_bundles (seq, bundle_id, file_name, file_hash, prev_hash, "
                "hq_fingerprint, created_at, contents) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    seq,
                    header["bundle_id"],
                    path.name,
                    container.bundle_file_hash(data),
                    prev_hash,
                    hq.fingerprint,
                    header["created_at"],
                    json.dumps(contents, separators=(",", ":")),
                ],
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
        with store.write() as conn:
            conn.execute("DELETE FROM sync_bundles WHERE seq = ? AND acked_at IS NULL", [seq])
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
        size=len(data),
    )


def _finish_interrupted(store: Store, out_dir: Path, last: Any) -> CreatedBundle | None:
    """Publish the recorded bundle `last` if it is still a hidden temp file in out_dir.

    The temp file is recognised by its hash, which the database recorded; anything else
    of a similar name is left alone. A temp file that duplicates the published bundle
    (a run killed just after publishing) is removed.
    """
    from yntymak_cli.sync import container

    path = out_dir / last["file_name"]
    published = os.path.lexists(path)
    for tmp in sorted(out_dir.glob(f".{glob.escape(last['file_name'])}.*.tmp")):
        try:
            data = tmp.read_bytes()
        except OSError:
            continue
        if container.bundle_file_hash(data) != last["file_hash"]:
            continue
        if published:
            # Killed after the link, before the temp name went: the same bytes twice.
            try:
                if os.path.samefile(tmp, path) or path.read_bytes() == data:
                    tmp.unlink()
            except OSError:
                pass
            continue
        try:
            _publish(tmp, path, overwrite=False)
        except FileExistsError:
            return None
        contents = json.loads(last["contents"])
        form_hashes = {
            row[0]
            for u, r, _status in contents
            for row in store.conn.execute(
                "SELECT form_hash FROM revisions WHERE uuid = ? AND revision = ?", [u, r]
            )
        }
        bundle_id = container.inspect_bundle(data)["bundle_id"]
        return CreatedBundle(
            path=path,
            seq=last["seq"],
            bundle_id=bundle_id,
            submissions=len({u for u, _r, _s in contents}),
            revisions=len(contents),
            voids=sum(1 for _u, _r, status in contents if status == "void"),
            forms=len(form_hashes),
            size=len(data),
            resumed=True,
        )
    return None


@dataclass(frozen=True)
class AckResult:
    seq: int
    acknowledged: int  # revisions newly marked as synced
    voids: int  # voids newly marked as synced
    already: int  # listed entries that were acknowledged before (a receipt applied twice)
    # What HQ refused of this bundle, as (uuid, revision, reason): never sent again.
    refused: tuple[tuple[str, int, str], ...] = ()


def ack_receipt(store: Store, device: DeviceIdentity, hq: HqPublic, data: bytes) -> AckResult:
    """Verify HQ's receipt and mark what it lists as synced.

    Only entries that the named bundle of this device carried are marked: a receipt proves
    what HQ holds, and the bundle record says whether an entry was a revision or a void.
    """
    from yntymak_cli.sync import container

    receipt = container.open_receipt(data, hq)
    if receipt["device_id"] != device.device_id:
        raise InvalidInput(
            t(
                "receipt_other_device",
                current_lang(),
                device=receipt["device_id"],
                this=device.device_id,
            )
        )
    now = utcnow()
    with store.write() as conn:
        row = conn.execute(
            "SELECT seq, contents, hq_fingerprint FROM sync_bundles WHERE bundle_id = ?",
            [receipt["bundle_id"]],
        ).fetchone()
        if row is None or row["seq"] != receipt["seq"]:
            raise InvalidInput(
                t(
                    "receipt_unknown_bundle",
                    current_lang(),
                    seq=receipt["seq"],
                    bundle_id=receipt["bundle_id"],
                )
            )
        if row["hq_fingerprint"] != receipt["hq_fingerprint"]:
            # Only the HQ a bundle was sealed to can have read it: a receipt from another
            # HQ (after `trust-hq --replace`) must not mark its data as safe to purge.
            raise InvalidInput(
                t(
                    "receipt_other_hq",
                    current_lang(),
                    named=receipt["hq_fingerprint"],
                    seq=receipt["seq"],
                    sent=row["hq_fingerprint"],
                )
            )
        carried = {(u, r): status for u, r, status in json.loads(row["contents"])}
        acknowledged = voids = already = 0
        for entry in receipt["accepted"]:
            key = (entry["uuid"], entry["revision"])
            status = carried.get(key)
            if status is None:
                continue
            rev_new = conn.execute(
                "UPDATE revisions SET synced_at = ? WHERE uuid = ? AND revision = ? "
                "AND synced_at IS NULL",
                [now, *key],
            ).rowcount
            conn.execute(
                "UPDATE submissions SET synced_revision = ? WHERE uuid = ? AND synced_revision < ?",
                [key[1], key[0], key[1]],
            )
            void_new = 0
            if status == "void":
                void_new = conn.execute(
                    "UPDATE submissions SET void_synced = 1 WHERE uuid = ? AND status = 'void' "
                    "AND void_synced = 0",
                    [key[0]],
                ).rowcount
            acknowledged += rev_new
            voids += void_new
            if not rev_new and not void_new:
                already += 1
        refused = _mark_refused(conn, receipt.get(container.RECEIPT_REFUSED_KEY, []), carried, now)
        conn.execute(
            "UPDATE sync_bundles SET acked_at = COALESCE(acked_at, ?) WHERE bundle_id = ?",
            [now, receipt["bundle_id"]],
        )
    return AckResult(
        seq=row["seq"], acknowledged=acknowledged, voids=voids, already=already, refused=refused
    )


def _mark_refused(
    conn: Any, entries: list[dict[str, Any]], carried: dict[tuple[str, int], str], now: str
) -> tuple[tuple[str, int, str], ...]:
    """Mark what HQ refused so that `bundle create` stops sending it; returns the entries.

    Only entries this bundle carried count. A refused revision (or void) is kept on the
    laptop, never purged (it is not acknowledged), and is not sent again: HQ would refuse
    it again. A later edit or void of the submission is new data and travels as usual.
    """
    out = []
    for entry in entries:
        key = (entry["uuid"], entry["revision"])
        status = carried.get(key)
        if status is None:
            continue
        conn.execute(
            "UPDATE revisions SET refused_at = COALESCE(refused_at, ?), refused_reason = ? "
            "WHERE uuid = ? AND revision = ? AND synced_at IS NULL",
            [now, entry["reason"], *key],
        )
        if status == "void":
            conn.execute(
                "UPDATE submissions SET void_refused_at = COALESCE(void_refused_at, ?), "
                "void_refused_reason = ? WHERE uuid = ? AND status = 'void' AND void_synced = 0",
                [now, entry["reason"], key[0]],
            )
        out.append((key[0], key[1], entry["reason"]))
    return tuple(out)
