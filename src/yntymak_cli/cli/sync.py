"""`yntymak keys|bundle|hq ...` and `submissions purge`: sync between laptops and HQ.

Thin layer: parse options, call yntymak_cli.sync / store.purge, render. PyNaCl and the
store are imported inside the commands so `yntymak --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

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
        raise InvalidInput(
            "this device trusts no HQ yet; get hq.pub from HQ and run `yntymak keys trust-hq"
            " hq.pub` (check the fingerprint by phone)"
        )
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
        data = {
            "device_id": device.device_id,
            "public_key": public_key,
            "fingerprint": device.fingerprint,
            "hq": {"hq_id": hq.hq_id, "fingerprint": hq.fingerprint} if hq else None,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    typer.echo(f"Device id:    {device.device_id}")
    typer.echo(f"Public key:   {public_key}")
    typer.echo(f"Fingerprint:  {device.fingerprint}")
    typer.echo(f"Trusted HQ:   {hq.fingerprint if hq else 'none (see `yntymak keys trust-hq`)'}")


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
    write_device_public(output, device.public())
    typer.echo(
        f"Wrote {plain(output)} (device {device.device_id}, fingerprint {device.fingerprint})."
    )
    typer.echo("Read the fingerprint to HQ by phone when they enrol this laptop.")


@keys_app.command("trust-hq")
def keys_trust_hq(
    path: Path = typer.Argument(..., help="HQ's public key file (hq.pub)."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace a different HQ this device already trusts."
    ),
) -> None:
    """Trust HQ's public key (hq.pub).

    Bundles are encrypted to it and its receipts accepted. Check the printed fingerprint
    with HQ by phone.
    """
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.plain import plain
    from yntymak_cli.sync.keys import load_trusted_hq, read_hq_public, trust_hq

    home = _home()
    hq = read_hq_public(path)
    current = load_trusted_hq(home)
    if current is not None and current != hq and not replace:
        raise InvalidInput(
            f"this device already trusts HQ {current.fingerprint}; {plain(path)} is HQ"
            f" {hq.fingerprint}. Check with HQ by phone, then use --replace to switch"
        )
    trust_hq(home, hq, replace=replace)
    typer.echo(f"Trusted HQ {hq.hq_id}, fingerprint {hq.fingerprint}.")
    typer.echo("Check this fingerprint with HQ by phone before sending any bundle.")


# -- bundle --------------------------------------------------------------------------------


@bundle_app.command("create")
def bundle_create(
    output: Path = typer.Option(
        Path("."), "-o", "--output", metavar="DIR", help="Folder to write the bundle into."
    ),
) -> None:
    """Pack all unacknowledged data into one bundle.

    Writes DEVICE-SEQ.ykb (signed, encrypted to the trusted HQ) with every revision and
    void HQ has not acknowledged; says so and writes nothing when there is none.
    """
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.bundle import create_bundle
    from yntymak_cli.sync.keys import load_or_create_device_identity

    hq = _trusted_hq()
    device = load_or_create_device_identity(_home())
    store = Store.open()
    try:
        created = create_bundle(store, device, hq, output)
    finally:
        store.close()
    if created is None:
        typer.echo("Nothing to send: HQ has acknowledged every submission.")
        return
    voids = f", {created.voids} void(s)" if created.voids else ""
    if created.resumed:
        typer.echo(
            f"Finished bundle {created.seq}, left unfinished by an interrupted `bundle create`;"
            " run `bundle create` again for anything collected since."
        )
    typer.echo(
        f"Wrote {plain(created.path)} (bundle {created.seq}): {created.submissions} submission(s),"
        f" {created.revisions} revision(s){voids}, {created.size} bytes."
    )
    typer.echo("Take it to HQ; run `yntymak bundle ack RECEIPT` with the receipt HQ sends back.")


@bundle_app.command("verify")
def bundle_verify(
    path: Path = typer.Argument(..., help="A bundle file (.ykb)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check a bundle at HQ without importing it.

    Prints what it holds; exit 2 with the reason when it would be refused.
    """
    from yntymak_cli.plain import json_text, plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import hq as hq_mod
    from yntymak_cli.sync.keys import load_hq_identity

    hq = load_hq_identity(_home())
    data = hq_mod.read_bundle_file(path)
    store = Store.open()
    try:
        summary = hq_mod.summarise(hq_mod.open_bundle(store, hq, data))
    finally:
        store.close()
    if as_json:
        typer.echo(json_text(hq_mod.dumps(summary)))
        return
    # The device's name and the form ids came with the bundle: printed as plain text.
    typer.echo(
        f"{plain(path)}: ok: bundle {summary['seq']} from device {summary['device_id']}"
        f" ({plain(summary['device_name'])}), created {plain(summary['created_at'])}"
    )
    typer.echo(
        f"  {summary['submissions']} submission(s), {summary['records']} revision(s),"
        f" {summary['voids']} void(s), {summary['forms']} form definition(s)"
    )
    for form_id, n in summary["by_form"].items():
        typer.echo(f"  {plain(form_id)}: {n}")
    if summary["refused"]:
        typer.echo(f"  {len(summary['refused'])} record(s) would be refused on import:")
        for r in summary["refused"]:
            typer.echo(f"    {r['uuid']} revision {r['revision']}: {plain(r['reason'])}")


@bundle_app.command("ack")
def bundle_ack(
    path: Path = typer.Argument(..., help="A receipt file (.ykr) from HQ."),
) -> None:
    """Apply HQ's receipt to this device.

    What it lists is not sent again, and may be purged.
    """
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.bundle import MAX_RECEIPT_FILE, ack_receipt, read_sync_file
    from yntymak_cli.sync.keys import load_or_create_device_identity

    hq = _trusted_hq()
    device = load_or_create_device_identity(_home())
    data = read_sync_file(path, "a receipt", MAX_RECEIPT_FILE)
    store = Store.open()
    try:
        result = ack_receipt(store, device, hq, data)
    finally:
        store.close()
    voids = f" and {result.voids} void(s)" if result.voids else ""
    again = f" ({result.already} were already acknowledged)" if result.already else ""
    typer.echo(
        f"Acknowledged {result.acknowledged} revision(s){voids} from bundle {result.seq}{again}."
    )
    if result.refused:  # HQ kept the rest; these stay on this laptop and are not sent again
        from yntymak_cli.plain import plain

        typer.echo(f"HQ refused {len(result.refused)} record(s); they will not be sent again:")
        for uuid, revision, reason in result.refused:
            typer.echo(f"  {uuid} revision {revision}: {plain(reason)}")


# -- hq ------------------------------------------------------------------------------------


@hq_app.command("init")
def hq_init(
    output: Path = typer.Option(
        Path("hq.pub"), "-o", "--output", help="Where to write HQ's public key file."
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
    existed = (home / HQ_KEY_FILE).exists()
    hq = load_hq_identity(home) if existed else create_hq_identity(home)
    write_hq_public(output, hq.public())
    if existed:
        typer.echo(f"HQ identity already exists in {plain(home)}; wrote its public key again.")
    else:
        typer.echo(
            f"Created the HQ identity in {plain(home)}. Back up {plain(home / HQ_KEY_FILE)} safely."
        )
    typer.echo(f"Wrote {plain(output)}: HQ {hq.hq_id}, fingerprint {hq.fingerprint}.")


@hq_app.command("enroll")
def hq_enroll(
    path: Path = typer.Argument(..., help="The device's public key file (device.pub)."),
    name: str = typer.Option(..., "--name", help="Who uses the laptop (shown in status)."),
    district: str | None = typer.Option(None, "--district", help="District it works in."),
) -> None:
    """Enrol a device from its device.pub: its bundles will be accepted."""
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.hq import enroll
    from yntymak_cli.sync.keys import read_device_public

    pub = read_device_public(path)
    store = Store.open()
    try:
        created = enroll(store, pub, name, district)
    finally:
        store.close()
    verb = "Enrolled" if created else "Updated"
    typer.echo(f"{verb} device {pub.device_id} ({plain(name)}), fingerprint {pub.fingerprint}.")
    if created:
        typer.echo("Check the fingerprint with the volunteer by phone.")


@hq_app.command("revoke")
def hq_revoke(
    device_id: str = typer.Argument(..., help="Device id (see `yntymak hq status`)."),
) -> None:
    """Stop accepting bundles from a device.

    What was imported from it stays.
    """
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync.hq import revoke

    store = Store.open()
    try:
        row = revoke(store, device_id)
    finally:
        store.close()
    typer.echo(f"Revoked device {plain(device_id)} ({plain(row['name'])}) at {row['revoked_at']}.")


@hq_app.command("import")
def hq_import(
    paths: list[Path] = typer.Argument(..., help="Bundle files, or folders holding *.ykb."),
    receipts: Path = typer.Option(
        Path("."), "--receipts", metavar="DIR", help="Folder for the receipts (.ykr)."
    ),
) -> None:
    """Verify and merge bundles; write a receipt for each.

    Each bundle is merged in one transaction and gets a signed receipt DEVICE-SEQ.ykr.
    The receipts folder is tried first: if it cannot be written, nothing is imported.

    Prints `FILE: N new, N updated, N unchanged[, N refused]` or `FILE: refused: REASON`,
    and a line per record HQ refused (the rest of its bundle is imported, and the receipt
    tells the device to stop sending it). Exit 2 if any bundle or record was refused (the
    others are still imported), 1 if a receipt could not be written.
    """
    from yntymak_cli.errors import InvalidInput, YntymakError
    from yntymak_cli.plain import plain
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import hq as hq_mod
    from yntymak_cli.sync.keys import load_hq_identity

    hq = load_hq_identity(_home())
    files = hq_mod.bundle_paths(paths)
    if not files:
        raise InvalidInput(f"no bundles (*.ykb) in {', '.join(str(p) for p in paths)}")
    hq_mod.check_receipts_dir(receipts)
    refused = written = records_refused = 0
    unwritten: list[str] = []
    store = Store.open()
    try:
        for path in files:
            try:
                result = hq_mod.import_bundle(store, hq, hq_mod.read_bundle_file(path))
            except InvalidInput as exc:
                refused += 1
                typer.echo(f"{plain(path)}: refused: {plain(exc.message)}")
                continue
            counts = f"{result.new} new, {result.updated} updated, {result.unchanged} unchanged"
            if result.refused:
                counts += f", {len(result.refused)} refused"
            try:
                hq_mod.write_receipt(hq, result, receipts)
            except YntymakError as exc:
                # Merged, but the device will not hear of it: say so and go on, so every
                # bundle of the call is reported (importing it again rewrites the receipt).
                unwritten.append(str(path))
                typer.echo(f"{plain(path)}: {counts}; receipt NOT written: {plain(exc.message)}")
            else:
                written += 1
                typer.echo(f"{plain(path)}: {counts}")
            for r in result.refused:
                records_refused += 1
                typer.echo(f"  refused {r['uuid']} revision {r['revision']}: {plain(r['reason'])}")
    finally:
        store.close()
    if written:
        typer.echo(f"Wrote {written} receipt(s) (.ykr) to {receipts}: send each to its device.")
    if records_refused:
        typer.echo(
            f"{records_refused} record(s) refused; the receipts tell the devices not to send"
            " them again."
        )
    if unwritten:
        typer.echo(
            f"Error: {len(unwritten)} receipt(s) could not be written to {receipts}; their"
            " bundles are imported. Fix the folder and run `hq import` again with the same"
            " files to write them.",
            err=True,
        )
        raise typer.Exit(1)
    if refused or records_refused:
        raise typer.Exit(2)


@hq_app.command("status")
def hq_status(
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Devices, their bundles and gaps, and submission totals.

    Per device: enumerators, last bundle, submissions by form, missing bundles (gaps) and
    chain breaks; totals by form and district.
    """
    from yntymak_cli.plain import json_text, plain, text
    from yntymak_cli.store.db import Store
    from yntymak_cli.sync import hq as hq_mod

    store = Store.open()
    try:
        data = hq_mod.status(store)
    finally:
        store.close()
    if as_json:
        typer.echo(json_text(hq_mod.dumps(data)))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not data["devices"]:
        console.print("No devices enrolled (see `yntymak hq enroll`).")
        return
    from rich import box

    # Narrow columns with stacked lines: readable in an 80-column terminal.
    table = Table(title="Devices", box=box.SIMPLE_HEAD, show_lines=True)
    table.add_column("Device", no_wrap=True)
    table.add_column("Enumerators")
    table.add_column("Last bundle", no_wrap=True)
    table.add_column("Submissions", no_wrap=True)
    table.add_column("Problems")
    for d in data["devices"]:
        problems = []
        if d["revoked_at"]:
            problems.append(f"revoked {d['revoked_at'][:10]}")
        if d["gaps"]:
            more = f" and {d['gaps_total'] - 20} more" if d["gaps_total"] > 20 else ""
            problems.append("missing: " + ", ".join(map(str, d["gaps"][:20])) + more)
        if d["chain_breaks"]:
            problems.append("chain break: " + ", ".join(map(str, d["chain_breaks"])))
        if d["repeated_seqs"]:
            problems.append("seq reused: " + ", ".join(map(str, d["repeated_seqs"])))
        last = f"#{d['last_seq']}\n{d['last_received_at'][:10]}" if d["last_seq"] else "-"
        # Names, districts, enumerators and form ids came from devices and bundles: each
        # made plain on its own line, the cells given as Text so rich reads no markup.
        subs = "\n".join(f"{plain(f)}: {n}" for f, n in d["submissions_by_form"].items()) or "-"
        if d["void"]:
            subs += f"\nvoid: {d['void']}"
        who = "\n".join(plain(x) for x in (d["name"], d["district"], d["device_id"]) if x)
        enumerators = "\n".join(plain(e) for e in d["enumerators"])
        cells = (who, enumerators, last, subs, "\n".join(problems) or "ok")
        table.add_row(*(text(c, keep_newlines=True) for c in cells))
    console.print(table)
    totals = data["totals"]
    t = Table(
        title=f"Totals: {totals['submissions']} submission(s), {totals['void']} void",
        box=box.SIMPLE_HEAD,
    )
    t.add_column("Form")
    t.add_column("Submissions", justify="right")
    for form_id, n in totals["by_form"].items():
        t.add_row(text(form_id), str(n))
    t.add_section()
    for district, n in totals["by_district"].items():
        t.add_row(text(f"district {district or '(none)'}"), str(n))
    console.print(t)


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
    from yntymak_cli.errors import InvalidInput
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.purge import count_purgeable, needs_cleanup, purge

    if not synced:
        raise InvalidInput(
            "say what to purge: `yntymak submissions purge --synced` erases the answers HQ"
            " has acknowledged (nothing else can be purged)"
        )
    store = Store.open()
    try:
        n, kept = count_purgeable(store)
        if n == 0 and not needs_cleanup(store):
            typer.echo(f"Nothing to purge ({kept} submission(s) not yet acknowledged by HQ).")
            return
        if n and not yes:
            if not sys.stdin.isatty():
                raise InvalidInput("refusing to purge without confirmation: add --yes")
            typer.confirm(
                f"Erase the answers of {n} submission(s) acknowledged by HQ? This cannot be undone",
                abort=True,
            )
        result = purge(store, synced_only=True)
    finally:
        store.close()
    if n:
        typer.echo(
            f"Purged the answers of {result.submissions} submission(s) ({result.revisions}"
            f" revision(s)); kept {result.kept} not yet acknowledged."
        )
    elif not result.cleanup_error:
        # Nothing new: an earlier purge's clean-up (or deleted drafts' free pages) finished.
        typer.echo(f"Nothing new to purge ({kept} not yet acknowledged); database compacted.")
    if result.edit_drafts:
        typer.echo(
            f"Note: {result.edit_drafts} edit(s) in progress of purged submissions keep their"
            " answers until finalised, acknowledged by HQ and purged (see `yntymak drafts`).",
            err=True,
        )
    if result.cleanup_error:
        # The erasure is committed; only the compaction after it failed (a full disk).
        typer.echo(
            f"Warning: the answers are erased, but the database could not be compacted"
            f" afterwards ({result.cleanup_error}), so erased text may remain in its free"
            " space; free some disk space and run `yntymak submissions purge --synced` again.",
            err=True,
        )
    if not result.wal_truncated:
        typer.echo(
            "Warning: another yntymak process kept the database busy, so erased data may"
            " remain in the write-ahead log; close it and run the purge again.",
            err=True,
        )
