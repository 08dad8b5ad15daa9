"""Device side of sync: pack unacknowledged revisions and voids into a bundle; apply receipts.

A revision stays "unacknowledged" until a receipt signed by the trusted HQ lists it, so a
bundle lost on a USB stick is healed by the next one (HQ's import is idempotent). The
bundle chain (seq, prev_hash) and what each bundle carried live in `sync_bundles`.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yntymak_cli.errors import InvalidInput, YntymakError
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
WHERE r.synced_at IS NULL
   OR (s.status = 'void' AND s.void_synced = 0 AND r.revision = s.revision)
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
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
        raise YntymakError(f"cannot write {path}: {exc.strerror or exc}") from None
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


def read_sync_file(path: Path, what: str, limit: int | None = None) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read() if limit is None else f.read(limit + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: file not found (expected {what})") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    if limit is not None and len(data) > limit:
        raise InvalidInput(f"{path}: too large to be {what}")
    return data


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


def create_bundle(
    store: Store, device: DeviceIdentity, hq: HqPublic, out_dir: Path
) -> CreatedBundle | None:
    """Write `<device-id>-<seq>.ykb` into out_dir; None when there is nothing to send.

    Runs in one write transaction: two `bundle create` at once cannot take the same seq, and
    the records read are a consistent snapshot. The file is complete under its name before
    the bundle is recorded; if recording fails the next run reuses the seq.
    """
    from yntymak_cli.sync import container

    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InvalidInput(f"{out_dir}: no such folder")
    with store.write() as conn:
        records = pending_records(store)
        if not records:
            return None
        last = conn.execute(
            "SELECT seq, file_hash FROM sync_bundles ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq = last["seq"] + 1 if last else 1
        prev_hash = last["file_hash"] if last else None
        form_hashes = sorted({r["form_hash"] for r in records})
        forms = store.form_definitions(form_hashes)
        header = {
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
            raise YntymakError(f"cannot build the bundle: {exc}") from None
        path = out_dir / bundle_name(device.device_id, seq)
        try:
            # Never replace a file of that name: after a restore from a backup the seq is
            # reused, and the older bundle there may hold data that is nowhere else.
            write_atomic(path, data, overwrite=False)
        except FileExistsError:
            raise YntymakError(
                f"{path} already exists; refusing to replace it (it may hold data that is not"
                " in this database: was it restored from a backup?). Take that file to HQ or"
                " move it, then run `bundle create` again"
            ) from None
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


@dataclass(frozen=True)
class AckResult:
    seq: int
    acknowledged: int  # revisions newly marked as synced
    voids: int  # voids newly marked as synced
    already: int  # listed entries that were acknowledged before (a receipt applied twice)


def ack_receipt(store: Store, device: DeviceIdentity, hq: HqPublic, data: bytes) -> AckResult:
    """Verify HQ's receipt and mark what it lists as synced.

    Only entries that the named bundle of this device carried are marked: a receipt proves
    what HQ holds, and the bundle record says whether an entry was a revision or a void.
    """
    from yntymak_cli.sync import container

    receipt = container.open_receipt(data, hq)
    if receipt["device_id"] != device.device_id:
        raise InvalidInput(
            f"the receipt is for device {receipt['device_id']}, this device is"
            f" {device.device_id}; give it to that device"
        )
    now = utcnow()
    with store.write() as conn:
        row = conn.execute(
            "SELECT seq, contents, hq_fingerprint FROM sync_bundles WHERE bundle_id = ?",
            [receipt["bundle_id"]],
        ).fetchone()
        if row is None or row["seq"] != receipt["seq"]:
            raise InvalidInput(
                f"the receipt names bundle {receipt['seq']} ({receipt['bundle_id']}), which this"
                " device did not create (was the database restored from a backup?)"
            )
        if row["hq_fingerprint"] != receipt["hq_fingerprint"]:
            # Only the HQ a bundle was sealed to can have read it: a receipt from another
            # HQ (after `trust-hq --replace`) must not mark its data as safe to purge.
            raise InvalidInput(
                f"the receipt is from HQ {receipt['hq_fingerprint']}, but bundle"
                f" {receipt['seq']} was sent to HQ {row['hq_fingerprint']}; nothing acknowledged"
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
        conn.execute(
            "UPDATE sync_bundles SET acked_at = COALESCE(acked_at, ?) WHERE bundle_id = ?",
            [now, receipt["bundle_id"]],
        )
    return AckResult(seq=row["seq"], acknowledged=acknowledged, voids=voids, already=already)
