"""`yntymak keys|bundle|hq ...` and `submissions purge`: sync between laptops and HQ.

Thin layer: parse options, call yntymak_cli.sync / store.purge, render. PyNaCl and the
store are imported inside the commands so `yntymak --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from yntymak_cli.i18n import current_lang, t

keys_app = typer.Typer(
    help="This laptop's signing key, and the HQ it sends bundles to.", no_args_is_help=True
)
bundle_app = typer.Typer(
    help="Signed, encrypted bundles: create (device), verify (HQ), ack a receipt (device).",
    no_args_is_help=True,
)
hq_app = typer.Typer(
    help="HQ: identity, enrolled devices, importing bundles, receipts, status.",
    no_args_is_help=True,
)


def _home() -> Path:
    from yntymak_cli.home import home_dir

    return home_dir()


def _trusted_hq():
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.sync.keys import load_trusted_hq

    hq = load_trusted_hq(_home())
    if hq is None:
        raise InvalidInput(t("sync_no_trusted_hq", current_lang()))
    return hq


# -- keys ----------------------------------------------------------------------------------


@keys_app.command("show")
def keys_show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show this device's id, public key and fingerprint.

    The key is created on first use. Read the fingerprint aloud to HQ to check it.
    """
    import base64

    from yntymak_cli.sync.keys import load_or_create_device_identity, load_trusted_hq

    home = _home()
    device = load_or_create_device_identity(home)
    hq = load_trusted_hq(home)
    public_key = base64.b64encode(device.verify_key_bytes).decode("ascii")
    if as_json:
        box = device.public().box_key
        data = {
            "device_id": device.device_id,
            "public_key": public_key,
            "box_key": base64.b64encode(box).decode("ascii") if box else None,
            "fingerprint": device.fingerprint,
            "hq": {"hq_id": hq.hq_id, "fingerprint": hq.fingerprint} if hq else None,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    lang = current_lang()
    trusted = hq.fingerprint if hq else t("keys_show_no_hq", lang)
    for key, value in (
        ("keys_show_device_id", device.device_id),
        ("keys_show_public_key", public_key),
        ("keys_show_fingerprint", device.fingerprint),
        ("keys_show_trusted_hq", trusted),
    ):
        typer.echo(t(key, lang, value=value))


@keys_app.command("export")
def keys_export(
    output: Path = typer.Option(
        Path("device.pub"), "-o", "--output", help="Where to write the public key file."
    ),
) -> None:
    """Write this device's public key file, for HQ to enrol it."""
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.plain import plain
    from yntymak_cli.sync.keys import load_or_create_device_identity, write_device_public

    check_overwrite(output, "device-pub")  # an earlier device.pub, never a key or a database
    device = load_or_create_device_identity(_home())
    check_overwrite(output, "device-pub", same_id=device.device_id)  # not another laptop's
    write_device_public(output, device.public())
    lang = current_lang()
    typer.echo(
        t(
            "keys_exported",
            lang,
            path=plain(output),
            device=device.device_id,
            fingerprint=device.fingerprint,
        )
    )
    typer.echo(t("keys_exported_next", lang))


@keys_app.command("trust-hq")
def keys_trust_hq(
    path: Path = typer.Argument(..., help="HQ's public key file (hq.pub)."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a different HQ this device already trusts."
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        metavar="URL",
        help="HQ's address for `yntymak sync` (as `yntymak config set hq_url URL`).",
    ),
) -> None:
    """Trust HQ's public key (hq.pub).

    Bundles are encrypted to it and its receipts accepted. Check the printed fingerprint
    with HQ by phone.
    """
    from yntymak_cli.config import check_hq_url, set_value
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.plain import plain
    from yntymak_cli.sync.keys import load_trusted_hq, read_hq_public, trust_hq

    home = _home()
    if url is not None:
        url = check_hq_url(url)  # before anything is trusted: all or nothing
    hq = read_hq_public(path)
    current = load_trusted_hq(home)
    if current is not None and current != hq and not replace:
        raise InvalidInput(
            t(
                "trust_hq_other",
                current_lang(),
                current=current.fingerprint,
                path=plain(path),
                new=hq.fingerprint,
            )
        )
    trust_hq(home, hq, replace=replace)
    typer.echo(t("trust_hq_done", current_lang(), hq_id=hq.hq_id, fingerprint=hq.fingerprint))
    typer.echo(t("trust_hq_next", current_lang()))
    if url is not None:
        stored = set_value("hq_url", url)
        typer.echo(t("config_set", current_lang(), key="hq_url", value=plain(stored)))


# -- bundle --------------------------------------------------------------------------------


@bundle_app.command("create")
def bundle_create(
    output: Path = typer.Option(
        Path("."),
        "-o",
        "--output",
        metavar="DIR",
        help="Folder to write the bundle into (created if missing).",
    ),
    max_size: str | None = typer.Option(
        None,
        "--max-size",
        metavar="SIZE",
        help="Write a bundle of at most this size (e.g. 20 MB to send by email; "
        "default and most 1 GB); what does not fit waits for the next bundle.",
    ),
) -> None:
    """Pack unacknowledged data into a bundle.

    Writes DEVICE-SEQ.ykb (signed, encrypted to the trusted HQ) with every revision and
    void HQ has not acknowledged; says so and writes nothing when there is none. When they
    do not fit in one bundle (1 GiB with their media files), it packs whole submissions up
    to that, those not sent in a bundle yet first, and says to run it again for the rest.
    """
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.bundle import create_bundle
    from yntymak_cli.sync.keys import load_or_create_device_identity
    from yntymak_cli.sync.split import read_max_size

    limit = read_max_size(max_size) if max_size is not None else None

    hq = _trusted_hq()
    device = load_or_create_device_identity(_home())
    with Store.open() as store:
        created = create_bundle(store, device, hq, output, max_size=limit)
    lang = current_lang()
    if created is None:
        typer.echo(t("bundle_nothing_to_send", lang))
        return
    voids = t("bundle_created_voids", lang, voids=created.voids) if created.voids else ""
    if created.resumed:
        typer.echo(t("bundle_resumed", lang, seq=created.seq))
    typer.echo(
        t(
            "bundle_created",
            lang,
            path=plain(created.path),
            seq=created.seq,
            submissions=created.submissions,
            revisions=created.revisions,
            voids=voids,
            size=created.size,
        )
    )
    if created.left:  # more than one bundle holds: the rest waits for the next run
        from yntymak_cli.sync.split import megabytes

        typer.echo(
            t(
                "bundle_split",
                lang,
                seq=created.seq,
                submissions=created.submissions,
                pending=created.pending,
                mb=megabytes(created.size),
                left=created.left,
            )
        )
    if created.in_transit and not created.left:  # said, so a lost stick is not forgotten
        typer.echo(t("bundle_in_transit", lang, n=created.in_transit))
    for line in created.too_large:  # left out, so that the others travel
        typer.echo(t("warning", lang, message=line), err=True)
    typer.echo(t("bundle_created_next", lang))


@bundle_app.command("verify")
def bundle_verify(
    path: Path = typer.Argument(..., help="A bundle file (.ykb)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check a bundle at HQ without importing it.

    Prints what it holds; exit 2 with the reason when it would be refused.
    """
    from yntymak_cli.plain import json_text, plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import hq as hq_mod
    from yntymak_cli.sync.keys import load_hq_identity

    hq = load_hq_identity(_home())
    with hq_mod.open_bundle_file(path) as data, HqDb.open() as store:
        summary = hq_mod.summarise(hq_mod.open_for_import(store, hq, data))
    if as_json:
        typer.echo(json_text(hq_mod.dumps(summary)))
        return
    from yntymak_cli.sync.reasons import localize

    lang = current_lang()
    # The device's name and the form ids came with the bundle: printed as plain text.
    typer.echo(
        t(
            "bundle_verify_ok",
            lang,
            path=plain(path),
            seq=summary["seq"],
            device=summary["device_id"],
            name=plain(summary["device_name"]),
            created=plain(summary["created_at"]),
        )
    )
    typer.echo(
        "  "
        + t(
            "bundle_verify_counts",
            lang,
            submissions=summary["submissions"],
            revisions=summary["records"],
            voids=summary["voids"],
            forms=summary["forms"],
        )
    )
    for form_id, n in summary["by_form"].items():
        typer.echo("  " + t("sync_form_submissions", lang, form=plain(form_id), submissions=n))
    if summary["refused"]:
        typer.echo("  " + t("bundle_verify_refused", lang, n=len(summary["refused"])))
        for r in summary["refused"]:
            reason = plain(localize(r["reason"], lang))
            typer.echo(
                "    "
                + t("record_refused", lang, uuid=r["uuid"], revision=r["revision"])
                + f": {reason}"
            )


@bundle_app.command("ack")
def bundle_ack(
    path: Path = typer.Argument(..., help="A receipt file (.ykr) from HQ."),
) -> None:
    """Apply HQ's receipt to this device.

    What it lists is not sent again, and may be purged.
    """
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.bundle import MAX_RECEIPT_FILE, ack_receipt
    from yntymak_cli.sync.keys import load_or_create_device_identity, read_sync_file

    hq = _trusted_hq()
    device = load_or_create_device_identity(_home())
    data = read_sync_file(path, "a receipt", MAX_RECEIPT_FILE)
    with Store.open() as store:
        result = ack_receipt(store, device, hq, data)
    lang = current_lang()
    voids = t("bundle_ack_voids", lang, voids=result.voids) if result.voids else ""
    again = t("bundle_ack_already", lang, already=result.already) if result.already else ""
    if result.seq is not None:
        typer.echo(
            t(
                "bundle_acked",
                lang,
                acknowledged=result.acknowledged,
                voids=voids,
                seq=result.seq,
                already=again,
            )
        )
    print_ack_details(result, lang)


def print_ack_details(result, lang: str) -> None:
    """What a receipt (or `yntymak sync`'s receipts together) said beyond the counts: HQ's
    decisions, and the records HQ refused. `result` has `decisions`, `decisions_waiting`
    and `refused` as sync.bundle.AckResult has them."""
    _print_decisions(result, lang)
    if result.refused:  # HQ kept the rest; these stay on this laptop and are not sent again
        from yntymak_cli.plain import plain
        from yntymak_cli.sync.reasons import localize

        typer.echo(t("bundle_ack_refused", lang, n=len(result.refused)))
        for uuid, revision, reason in result.refused:
            # HQ words its reasons in English (the receipt's language); shown in ours.
            shown = plain(localize(reason, lang))
            typer.echo(
                "  " + t("record_refused", lang, uuid=uuid, revision=revision) + f": {shown}"
            )


def _print_decisions(result, lang: str) -> None:
    """What HQ decided, counted by status, and where to see the comments."""
    from collections import Counter

    from yntymak_cli.cli.review import status_word

    if result.decisions:
        counts = Counter(d.status for d in result.decisions)
        parts = ", ".join(
            f"{counts[s]} {status_word(s, lang)}"
            for s in ("rejected", "on_hold", "approved")
            if counts[s]
        )
        typer.echo(t("bundle_ack_decisions", lang, n=len(result.decisions), parts=parts))
        if counts["rejected"] or counts["on_hold"]:
            typer.echo("  " + t("bundle_ack_see_inbox", lang))
    skipped = getattr(result, "skipped_decisions", 0)
    if skipped:
        typer.echo(t("bundle_ack_decisions_skipped", lang, n=skipped))
    if result.decisions_waiting:
        typer.echo(t("bundle_ack_decisions_waiting", lang, n=result.decisions_waiting))


# -- hq ------------------------------------------------------------------------------------


@hq_app.command("init")
def hq_init(
    output: Path = typer.Option(
        Path("hq.pub"), "-o", "--output", help="Where to write HQ's public key file."
    ),
    db: str | None = typer.Option(
        None,
        "--db",
        metavar="URL",
        help="Keep HQ's data in PostgreSQL (postgresql://USER@HOST/DB) instead of the "
        "embedded SQLite file; every hq command then uses it (as config set hq_db URL).",
    ),
) -> None:
    """Create the HQ identity and write hq.pub.

    The public file goes to every device (`yntymak keys trust-hq`). Run again to rewrite
    it; an existing HQ key is never replaced.
    """
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.plain import plain
    from yntymak_cli.sync.keys import (
        HQ_KEY_FILE,
        create_hq_identity,
        load_hq_identity,
        write_hq_public,
    )

    home = _home()
    # Before the key is created: -o HOME/hq.key must not create the key, then replace it.
    check_overwrite(output, "hq-pub")
    if db is not None:
        from yntymak_cli.config import set_value
        from yntymak_cli.store.hqdb import HqDb, check_url

        url = check_url(db)
        with HqDb.postgres(url):  # reachable, and its schema made, before anything else
            pass
        set_value("hq_db", url)
    existed = (home / HQ_KEY_FILE).exists()
    hq = load_hq_identity(home) if existed else create_hq_identity(home)
    check_overwrite(output, "hq-pub", same_id=hq.hq_id)  # not another HQ's hq.pub
    write_hq_public(output, hq.public())
    lang = current_lang()
    if existed:
        typer.echo(t("hq_init_exists", lang, home=plain(home)))
    else:
        typer.echo(t("hq_init_created", lang, home=plain(home), key=plain(home / HQ_KEY_FILE)))
    typer.echo(
        t("hq_init_wrote", lang, path=plain(output), hq_id=hq.hq_id, fingerprint=hq.fingerprint)
    )


@hq_app.command("enroll")
def hq_enroll(
    path: Path = typer.Argument(..., help="The device's public key file (device.pub)."),
    name: str | None = typer.Option(
        None, "--name", help="Who uses the laptop (shown in status); needed to enrol."
    ),
    district: str | None = typer.Option(None, "--district", help="District it works in."),
    update: bool = typer.Option(
        False,
        "--update",
        help="Only learn the encryption key of a device enrolled before (for review decisions).",
    ),
) -> None:
    """Enrol a device from its device.pub: its bundles will be accepted.

    A device.pub of version 2 also holds the laptop's encryption key, which HQ's review
    decisions are sealed to. `--update` takes it for a laptop enrolled before it had one.
    """
    from yntymak_cli.plain import plain
    from yntymak_cli.store import hq as hq_store
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.hq import enroll
    from yntymak_cli.sync.keys import read_device_public

    pub = read_device_public(path)
    with HqDb.open() as store:
        before = hq_store.device_by_id(store.conn, pub.device_id)
        created = enroll(store, pub, name, district, update=update)
        row = hq_store.device_by_id(store.conn, pub.device_id)
    assert row is not None
    lang = current_lang()
    old_key = before["box_key"] if before is not None else None
    typer.echo(
        t(
            "hq_enrolled" if created else "hq_enroll_updated",
            lang,
            device=pub.device_id,
            name=plain(row["name"]),
            fingerprint=pub.fingerprint,
        )
    )
    typer.echo("  " + t("hq_enroll_box_key" if pub.box_key else "hq_enroll_no_box_key", lang))
    if old_key is not None and row["box_key"] != old_key:
        import base64

        from yntymak_cli.sync.keys import box_key_fingerprint

        old, new = (box_key_fingerprint(base64.b64decode(k)) for k in (old_key, row["box_key"]))
        typer.echo("  " + t("hq_enroll_box_key_replaced", lang, old=old, new=new))
    if created:
        typer.echo(t("hq_enrolled_next", lang))


@hq_app.command("revoke")
def hq_revoke(
    device_id: str = typer.Argument(..., help="Device id (see `yntymak hq status`)."),
) -> None:
    """Stop accepting bundles from a device.

    What was imported from it stays.
    """
    from yntymak_cli.plain import plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync.hq import revoke

    with HqDb.open() as store:
        row = revoke(store, device_id)
    typer.echo(
        t(
            "hq_revoked",
            current_lang(),
            device=plain(device_id),
            name=plain(row["name"]),
            at=row["revoked_at"],
        )
    )


@hq_app.command("import")
def hq_import(
    paths: list[Path] = typer.Argument(..., help="Bundle files, or folders holding *.ykb."),
    receipts: Path = typer.Option(
        Path("."),
        "--receipts",
        metavar="DIR",
        help="Folder for the receipts (.ykr); created if missing.",
    ),
) -> None:
    """Verify and merge bundles; write a receipt for each.

    Each bundle is merged in one transaction and gets a signed receipt DEVICE-SEQ.ykr.
    The receipts folder is created if missing and tried first: if it cannot be written,
    nothing is imported.

    Prints `FILE: N new, N updated, N unchanged[, N refused] (N submission(s), N revision(s))`
    or `FILE: refused: REASON`,
    and a line per record HQ refused (the rest of its bundle is imported, and the receipt
    tells the device to stop sending it). Exit 2 if any bundle or record was refused (the
    others are still imported), 1 if a receipt could not be written.
    """
    from yntymak_cli.cli.review import print_waiting
    from yntymak_cli.errors import EXIT_FAILURE, EXIT_INVALID, InvalidInput, YntymakError
    from yntymak_cli.plain import plain
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import hq as hq_mod
    from yntymak_cli.sync.keys import load_hq_identity
    from yntymak_cli.sync.reasons import localize

    lang = current_lang()
    hq = load_hq_identity(_home())
    files = hq_mod.bundle_paths(paths)
    if not files:
        raise InvalidInput(
            t("hq_import_no_bundles", lang, paths=", ".join(plain(p) for p in paths))
        )
    hq_mod.check_receipts_dir(receipts)
    refused = written = records_refused = 0
    unwritten: list[str] = []
    with HqDb.open() as store:
        for path in files:
            try:
                with hq_mod.open_bundle_file(path) as data:
                    result = hq_mod.import_bundle(store, hq, data)
            except InvalidInput as exc:
                refused += 1
                typer.echo(
                    t("hq_import_refused", lang, path=plain(path), reason=plain(exc.message))
                )
                continue
            # What became of its revisions (new + updated + unchanged + refused = revisions),
            # then the totals in the words `bundle create` and `bundle verify` use.
            totals = t(
                "sync_counts",
                lang,
                submissions=result.submissions,
                revisions=result.revisions,
            )
            if result.voids:
                totals += t("sync_counts_voids", lang, voids=result.voids)
            fates = t(
                "hq_import_counts",
                lang,
                new=result.new,
                updated=result.updated,
                unchanged=result.unchanged,
            )
            if result.refused:
                fates += t("hq_import_counts_refused", lang, refused=len(result.refused))
            counts = f"{fates} ({totals})"
            try:
                _receipt_path, sent = hq_mod.write_receipt(result, hq, receipts, store)
            except YntymakError as exc:
                # Merged, but the device will not hear of it: say so and go on, so every
                # bundle of the call is reported (importing it again rewrites the receipt).
                unwritten.append(str(path))
                typer.echo(
                    t(
                        "hq_import_receipt_unwritten",
                        lang,
                        path=plain(path),
                        counts=counts,
                        error=plain(exc.message),
                    )
                )
            else:
                written += 1
                typer.echo(f"{plain(path)}: {counts}")
                if result.media_files:
                    typer.echo("  " + t("hq_import_media", lang, n=result.media_files))
                if sent is not None and sent.decisions:
                    typer.echo("  " + t("hq_import_decisions_sent", lang, n=len(sent.decisions)))
                print_waiting(sent, lang)
            for r in result.refused:
                records_refused += 1
                # Stored and sent in English (the receipt's contract); printed in ours.
                typer.echo(
                    "  "
                    + t(
                        "hq_import_record_refused",
                        lang,
                        uuid=r["uuid"],
                        revision=r["revision"],
                        reason=plain(localize(r["reason"], lang)),
                    )
                )
    if written:
        typer.echo(t("hq_import_receipts_written", lang, n=written, folder=plain(receipts)))
    if records_refused:
        typer.echo(t("hq_import_records_refused", lang, n=records_refused))
    if unwritten:
        typer.echo(
            t("hq_import_receipts_failed", lang, n=len(unwritten), folder=plain(receipts)),
            err=True,
        )
        raise typer.Exit(EXIT_FAILURE)
    if refused or records_refused:
        raise typer.Exit(EXIT_INVALID)


@hq_app.command("status")
def hq_status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    form: str | None = typer.Option(
        None,
        "--form",
        help="Also progress against this form's targets (`hq targets set`): done / target / "
        "percent per district and per enumerator, furthest behind first.",
    ),
) -> None:
    """Devices, their bundles and gaps, and submission totals.

    Per device: enumerators, last bundle, submissions by form, missing bundles (gaps) and
    chain breaks; totals by form and district.
    """
    from yntymak_cli.cli.targets import render_progress
    from yntymak_cli.plain import json_text, plain, text
    from yntymak_cli.quality.progress import progress
    from yntymak_cli.store.hqdb import HqDb
    from yntymak_cli.sync import hq as hq_mod

    with HqDb.open() as store:
        data = hq_mod.status(store)
        done = progress(store, form) if form is not None else None
    if as_json:
        if done is not None:
            data["progress"] = done.as_json()
        typer.echo(json_text(hq_mod.dumps(data)))
        return
    from rich.console import Console
    from rich.table import Table

    lang = current_lang()
    console = Console()
    if not data["devices"]:
        console.print(text(t("hq_status_no_devices", lang)))
        if done is not None:
            render_progress(done)
        return
    from rich import box

    def seqs(numbers: list[int]) -> str:
        return ", ".join(map(str, numbers))

    # Narrow columns with stacked lines: readable in an 80-column terminal.
    table = Table(title=text(t("hq_status_devices", lang)), box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column(t("hq_status_device", lang), no_wrap=True)
    # Kyrgyz and Russian headers are long: they wrap (or fold) rather than lose letters, and
    # a date (10 characters) always fits.
    table.add_column(t("hq_status_enumerators", lang), min_width=12, overflow="fold")
    table.add_column(t("hq_status_last_bundle", lang), min_width=10)
    table.add_column(t("hq_status_submissions", lang), no_wrap=True)
    table.add_column(t("hq_status_problems", lang), min_width=10, overflow="fold")
    for d in data["devices"]:
        problems = []
        if d["revoked_at"]:
            problems.append(t("hq_status_revoked", lang, date=d["revoked_at"][:10]))
        if d["gaps"]:
            more = ""
            if d["gaps_total"] > 20:
                more = t("hq_status_gaps_more", lang, n=d["gaps_total"] - 20)
            problems.append(t("hq_status_gaps", lang, seqs=seqs(d["gaps"][:20]), more=more))
        if d["chain_breaks"]:
            problems.append(t("hq_status_chain_break", lang, seqs=seqs(d["chain_breaks"])))
        if d["repeated_seqs"]:
            problems.append(t("hq_status_seq_reused", lang, seqs=seqs(d["repeated_seqs"])))
        if d.get("decisions_waiting") and not d.get("encryption_key") and not d["revoked_at"]:
            problems.append(t("hq_status_needs_key", lang, n=d["decisions_waiting"]))
        last = f"#{d['last_seq']}\n{d['last_received_at'][:10]}" if d["last_seq"] else "-"
        # Names, districts, enumerators and form ids came from devices and bundles: each
        # made plain on its own line, the cells given as Text so rich reads no markup.
        subs = "\n".join(f"{plain(f)}: {n}" for f, n in d["submissions_by_form"].items()) or "-"
        if d["void"]:
            subs += "\n" + t("hq_status_void", lang, n=d["void"])
        who = "\n".join(plain(x) for x in (d["name"], d["district"], d["device_id"]) if x)
        enumerators = "\n".join(plain(e) for e in d["enumerators"])
        cells = (who, enumerators, last, subs, "\n".join(problems) or t("hq_status_ok", lang))
        table.add_row(*(text(c, keep_newlines=True) for c in cells))
    console.print(table)
    totals = data["totals"]
    title = t("hq_status_totals", lang, submissions=totals["submissions"], void=totals["void"])
    # The totals line is printed above the table, not as its (narrow, centred) title: its
    # numbers stay on the line with their words.
    console.print(text(title))
    totals_table = Table(box=box.SIMPLE_HEAD)
    totals_table.add_column(t("hq_status_form", lang))
    totals_table.add_column(t("hq_status_submissions", lang), justify="right")
    for form_id, n in totals["by_form"].items():
        totals_table.add_row(text(form_id), str(n))
    totals_table.add_section()
    for district, n in totals["by_district"].items():
        name = plain(district) if district else t("hq_status_no_district", lang)
        totals_table.add_row(text(t("hq_status_district", lang, district=name)), str(n))
    console.print(totals_table)
    if done is not None:
        render_progress(done)


@hq_app.command("migrate")
def hq_migrate(
    to: str = typer.Option(
        ...,
        "--to",
        metavar="URL",
        help="An empty PostgreSQL database: postgresql://USER@HOST/DB (the password in "
        "~/.pgpass or PGPASSWORD).",
    ),
    switch: bool = typer.Option(
        False,
        "--switch",
        help="Once verified, make every hq command use it (as config set hq_db URL).",
    ),
) -> None:
    """Move this HQ's SQLite data into PostgreSQL.

    Every HQ table (devices, bundles, receipts, refusals, submissions, revisions, form
    definitions, review decisions, settings) is copied in one transaction, and counts and
    content hashes are compared on both sides before it commits. The SQLite file is only
    read, never changed. Exit 2 when the target already holds HQ data or is not PostgreSQL,
    or the home holds no HQ; 1 when the copy fails (nothing is kept in the target).
    Stop `hq serve` and imports first; see docs/scaling.md.
    """
    from yntymak_cli.config import normalise, set_value
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.home import DB_NAME, home_dir
    from yntymak_cli.plain import plain
    from yntymak_cli.store.hq_migrate import migrate_to_postgres
    from yntymak_cli.store.hqdb import check_url
    from yntymak_cli.sync.keys import HQ_KEY_FILE

    lang = current_lang()
    # --switch stores the URL: a password in it is refused before anything is copied.
    url = normalise("hq_db", to) if switch else check_url(to)
    home = home_dir(create=False)
    if not (home / HQ_KEY_FILE).is_file() or not (home / DB_NAME).is_file():
        raise InvalidInput(
            t("hq_migrate_not_hq", lang, home=plain(home), key_file=HQ_KEY_FILE, db=DB_NAME)
        )
    result = migrate_to_postgres(url, home / DB_NAME)
    for table in result.tables:
        typer.echo(
            t("hq_migrate_table", lang, table=table.table, rows=table.rows, hash=table.sha256[:16])
        )
    source, target = plain(result.source), plain(result.target)
    n = len(result.tables)
    typer.echo(t("hq_migrate_done", lang, rows=result.rows, path=source, url=target, tables=n))
    if switch:
        set_value("hq_db", url)
        typer.echo(t("hq_migrate_switched", lang, url=target, path=source))
    else:
        typer.echo(t("hq_migrate_next", lang, url=target))


# -- purge ---------------------------------------------------------------------------------


def purge_command(
    synced: bool = typer.Option(
        False, "--synced", help="Erase the answers of submissions HQ has acknowledged."
    ),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Erase the answers HQ has acknowledged from this laptop.

    Only with --synced: submissions whose every revision (and void) HQ confirmed with a
    receipt. Ids, revision numbers and metadata stay; drafts and unsent data are untouched.
    """
    from yntymak_cli.errors import EXIT_FAILURE, InvalidInput
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.purge import count_purgeable, needs_cleanup, purge

    lang = current_lang()
    if not synced:
        raise InvalidInput(t("purge_say_what", lang))
    with Store.open() as store:
        n, kept = count_purgeable(store)
        if n == 0 and not needs_cleanup(store):
            typer.echo(t("purge_nothing", lang, kept=kept))
            return
        if n and not yes:
            if not _stdin_is_terminal():
                raise InvalidInput(t("purge_needs_yes", lang))
            if not _confirm(t("purge_question", lang, n=n), lang):
                typer.echo(t("purge_cancelled", lang), err=True)
                raise typer.Exit(EXIT_FAILURE)
        result = purge(store, synced_only=True)
    if n:
        typer.echo(
            t(
                "purge_done",
                lang,
                submissions=result.submissions,
                revisions=result.revisions,
                kept=result.kept,
            )
        )
    elif not result.cleanup_error:
        # Nothing new: an earlier purge's clean-up (or deleted drafts' free pages) finished.
        typer.echo(t("purge_compacted", lang, kept=kept))
    if result.media_files:
        typer.echo(t("purge_media_files", lang, n=result.media_files))
    if result.edit_drafts:
        typer.echo(t("purge_edit_drafts", lang, n=result.edit_drafts), err=True)
    if result.cleanup_error:
        # The erasure is committed; only the compaction after it failed (a full disk).
        typer.echo(t("purge_not_compacted", lang, error=result.cleanup_error), err=True)
    if not result.wal_truncated:
        typer.echo(t("purge_wal_busy", lang), err=True)


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _yes_no(answer: str, lang: str) -> bool | None:
    """True or False for a yes/no answer in the message language; English y/n always work
    (a volunteer may have the Latin keyboard on). None when it is neither."""
    word = answer.strip().casefold()
    for key, value in (("answer_yes", True), ("answer_no", False)):
        words = f"{t(key, lang)}|{t(key, 'en')}".casefold().split("|")
        if word in {w.strip() for w in words}:
            return value
    return None


def _confirm(question: str, lang: str) -> bool:
    """Ask a yes/no question with the local answer words (click's confirm knows only y/n).
    Enter alone, or the end of input, is no."""
    yes, no = t("answer_yes", lang).split("|")[0], t("answer_no", lang).split("|")[0]
    while True:
        typer.echo(f"{question} [{yes}/{no}]: ", nl=False)
        line = sys.stdin.readline()
        if not line.strip():
            typer.echo("" if line else "\n", nl=False)
            return False
        answer = _yes_no(line, lang)
        if answer is not None:
            return answer
        typer.echo(t("answer_yes_or_no", lang, yes=yes, no=no))
