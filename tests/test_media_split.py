"""Pending data larger than one bundle: `bundle create` packs whole submissions up to the
limit and the next run goes on with the rest (sync/split.py, docs/bundle-format.md
"Payload records"). The limit is lowered in-process so that a few small files need
several bundles; HQ (same process) reads with the same lowered limit."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

import pytest

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.sync import container, split

from .helpers import Field, hq_db, rows, yn
from .test_media import answers, count, hq_files

FORM = """\
id: split_visit
version: "1"
title: Visit
max_size: 1 MB
questions:
  - name: village
    type: text
    label: Village
  - name: scan
    type: file
    label: Scan
  - name: extra
    type: file
    label: Extra scan
"""

KB = 1024
FILE = 40 * KB  # one scan
# Content room once split.MARGIN is kept free: two submissions of one scan fit, three do not.
ROOM = 100 * KB


@pytest.fixture
def form(tmp_path: Path) -> Path:
    path = tmp_path / "split.yaml"
    path.write_text(FORM, encoding="utf-8")
    return path


@pytest.fixture
def small_bundles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bundles of ROOM bytes of content (split.pack and container read the constant)."""
    monkeypatch.setattr(container, "MAX_CONTENT_SIZE", split.MARGIN + ROOM)


def collect_scans(home: Path, form: Path, folder: Path, village: str, *sizes: int) -> str:
    """A submission with a scan (and an extra scan) of random bytes: its uuid."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"village: {village}"]
    for question, size in zip(("scan", "extra"), sizes, strict=False):
        name = f"{village}-{question}.bin"
        (folder / name).write_bytes(os.urandom(size))
        lines.append(f"{question}: {name}")
    path = answers(folder, "\n".join(lines) + "\n", f"{village}.yaml")
    return yn(home, "collect", form, "--answers", path, "--enumerator", "A").strip()


def collect_many(field: Field, form: Path, n: int, size: int = FILE) -> list[str]:
    return [collect_scans(field.a, form, field.tmp / "in", f"v{i}", size) for i in range(n)]


def create(field: Field) -> tuple[Path, str]:
    """`bundle create` on laptop a: (the bundle, what it printed)."""
    out_dir = field.tmp / "bundles"
    text = yn(field.a, "bundle", "create", "-o", out_dir)
    found = re.search(r"^Wrote (.+\.ykb) \(bundle \d+\)", text, re.M)
    assert found, text
    return Path(found.group(1)), text


def carried(home: Path, bundle: Path) -> set[str]:
    """The uuids a bundle carried, as the laptop recorded them."""
    import json

    with sqlite3.connect(home / "yntymak.db") as conn:
        (contents,) = conn.execute(
            "SELECT contents FROM sync_bundles WHERE file_name = ?", [bundle.name]
        ).fetchone()
    return {u for u, _r, _s in json.loads(contents)}


def opened(field: Field, bundle: Path) -> dict:
    """The bundle's payload, opened with HQ's key."""
    from yntymak_cli.sync import hq as hq_mod
    from yntymak_cli.sync import keys

    with hq_db(field.hq) as store, bundle.open("rb") as f:
        _header, payload = container.open_bundle(
            f, hq_mod.device_lookup(store), keys.load_hq_identity(field.hq)
        )
    return payload


def hq_whole(field: Field, uuids: list[str]) -> None:
    """HQ holds every submission, and every file their answers name, hashed as named."""
    held = rows(field.hq, "SELECT uuid FROM submissions ORDER BY uuid")
    assert [r["uuid"] for r in held] == sorted(uuids)
    expected = {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (field.tmp / "in").glob("*.bin")
    }
    assert {r["sha256"] for r in rows(field.hq, "SELECT sha256 FROM hq_media")} == expected
    kept = hq_files(field.hq)
    assert {p.name for p in kept} == expected
    for path in kept:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name


def nothing_pending(field: Field) -> None:
    assert "Nothing to send" in yn(field.a, "bundle", "create", "-o", field.tmp / "bundles")


@pytest.mark.parametrize("order", ["in-order", "reversed"])
def test_two_bundles_back_to_back_carry_disjoint_halves_and_hq_gets_all(
    field, form, small_bundles, order
):
    uuids = collect_many(field, form, 4)
    first, said = create(field)
    assert (
        "Bundle 1 carries 2 of 4 pending submissions (0.1 MB); 2 wait for the next bundle: "
        "run `yntymak bundle create` again for the rest." in said
    )
    second, said = create(field)  # no receipt in between
    assert "wait for the next bundle" not in said and "Take it to HQ" in said
    one, two = carried(field.a, first), carried(field.a, second)
    assert not one & two and one | two == set(uuids) and len(one) == len(two) == 2
    # Each bundle carries exactly the files its own answers name.
    for bundle, holds in ((first, one), (second, two)):
        payload = opened(field, bundle)
        assert {r["uuid"] for r in payload["submissions"]} == holds
        assert len(payload["media"]["files"]) == 2
        assert bundle.stat().st_size < split.MARGIN + ROOM
    bundles = [first, second] if order == "in-order" else [second, first]
    for bundle in bundles:
        assert "2 new" in field.import_(bundle)
    hq_whole(field, uuids)
    for bundle in bundles:
        assert "Acknowledged 2 revision(s)" in yn(field.a, "bundle", "ack", field.receipt(bundle))
    with sqlite3.connect(field.a / "yntymak.db") as conn:
        assert conn.execute(
            "SELECT COUNT(*) FROM revisions WHERE synced_at IS NULL"
        ).fetchone() == (0,)
        acked = conn.execute("SELECT COUNT(*) FROM sync_bundles WHERE acked_at IS NOT NULL")
        assert acked.fetchone() == (2,)
    nothing_pending(field)


def test_a_lost_first_bundle_is_carried_again_and_hq_ends_whole(field, form, small_bundles):
    uuids = collect_many(field, form, 4)
    first, _ = create(field)
    second, _ = create(field)
    # Bundle 1 is lost on the way; bundle 2 arrives and its receipt comes back.
    assert "2 new" in field.import_(second)
    yn(field.a, "bundle", "ack", field.receipt(second))
    third, said = create(field)
    assert "wait for the next bundle" not in said
    assert carried(field.a, third) == carried(field.a, first)
    assert "2 new" in field.import_(third)
    hq_whole(field, uuids)
    yn(field.a, "bundle", "ack", field.receipt(third))
    nothing_pending(field)


def test_without_receipts_the_oldest_carried_goes_again_first(field, form, small_bundles):
    collect_many(field, form, 4)
    bundles = [create(field)[0] for _ in range(4)]
    one, two, three, four = (carried(field.a, b) for b in bundles)
    # Nothing is unsent after bundle 2: bundle 3 heals bundle 1, bundle 4 bundle 2.
    assert three == one and four == two and not one & two


def test_the_last_part_carries_only_what_is_new(field, form, small_bundles):
    """Three submissions, two per bundle: the second bundle has the third alone (room left
    is not filled with what the first carries); once nothing is new, the next re-carries
    the oldest."""
    uuids = collect_many(field, form, 3)
    first, _ = create(field)
    second, said = create(field)
    assert "wait for the next bundle" not in said
    one, two = carried(field.a, first), carried(field.a, second)
    assert len(one) == 2 and two == set(uuids) - one
    third, _ = create(field)  # nothing new: bundle 1's submissions go again
    assert carried(field.a, third) == one
    field.import_(second)
    field.import_(third)
    hq_whole(field, uuids)


def test_what_fits_travels_in_one_bundle_as_before(field, form):
    """The default limit: everything pending, in pending_records' order, with the files in
    the order first named, as bundle create always packed it; a bundle not acknowledged
    yet travels again in the next."""
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.device_sync import pending_records
    from yntymak_cli.sync.bundle import _media_files

    uuids = collect_many(field, form, 3)
    first, said = create(field)
    assert "wait for the next bundle" not in said
    assert carried(field.a, first) == set(uuids)
    uuids.append(collect_scans(field.a, form, field.tmp / "in", "v3", FILE, 2 * KB))
    with Store(field.a / "yntymak.db") as store:
        records = pending_records(store)
        files = [entry.doc() for entry, _path in _media_files(store, records)]
    second, said = create(field)
    assert "wait for the next bundle" not in said
    payload = opened(field, second)
    assert payload["submissions"] == records and payload["media"]["files"] == files
    assert [r["uuid"] for r in records] == sorted(uuids)
    assert "4 new" in field.import_(second)
    hq_whole(field, uuids)


def test_the_size_bound_holds_the_real_payload(field, form, small_bundles):
    """split.pack's bounds are above what the bundle really holds, and not far above."""
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.device_sync import pending_records
    from yntymak_cli.sync import keys

    collect_many(field, form, 3, size=30 * KB)
    hq = keys.load_trusted_hq(field.a)
    assert hq is not None
    with Store(field.a / "yntymak.db") as store:
        packing = split.pack(store, pending_records(store), hq.fingerprint)
    bundle, _ = create(field)
    payload = opened(field, bundle)
    assert {r["uuid"] for r in payload["submissions"]} == {r["uuid"] for r in packing.records}
    real = len(canonical_bytes(payload))
    assert real <= packing.payload_bound <= real + 400
    # Content: the file less its magic, header section, two frames and signature.
    data = bundle.read_bytes()
    header = int.from_bytes(data[5:9], "big")
    content = len(data) - 4 - 5 - header - 5 - 5 - 64
    assert content <= packing.content_bound <= ROOM


def test_a_submission_larger_than_a_bundle_does_not_hold_up_the_others(field, form, small_bundles):
    """It is left out with a warning naming it, and the others travel; once it is all that
    is pending, bundle create refuses in one line and writes nothing."""
    (small,) = collect_many(field, form, 1)
    big = collect_scans(field.a, form, field.tmp / "in", "big", 60 * KB, 60 * KB)
    bundle, out = create(field)
    assert carried(field.a, bundle) == {small}
    assert f"submission {big[:8]} takes 0.1 MB with its 2 media file(s)" in out
    assert "it is left out and stays on this laptop, unsent" in out
    assert "wait for the next bundle" not in out  # nothing a further bundle could carry
    field.import_(bundle)
    yn(field.a, "bundle", "ack", field.receipt(bundle))
    out_dir = field.tmp / "bundles"
    before = sorted(out_dir.iterdir())
    out = yn(field.a, "bundle", "create", "-o", out_dir, code=2)
    assert out.strip().count("\n") == 0  # one line
    assert f"No bundle made: submission {big[:8]} takes 0.1 MB with its 2 media file(s)" in out
    assert "more than one bundle holds (0.2 MB)" in out and "max_size or max_pixels" in out
    assert sorted(out_dir.iterdir()) == before
    assert count(field.a, "sync_bundles") == 1


def test_sync_sends_every_part(field, form, small_bundles, tmp_path, monkeypatch):
    """`yntymak sync` makes and uploads the parts one after another (each acknowledged at
    once), and one more run has nothing to send. The laptop's limit is lowered; HQ's
    server, another process, takes bundles up to the real one."""
    from .test_http_sync import Server

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    uuids = collect_many(field, form, 5)
    server = Server(field.hq, tmp_path)
    try:
        server.start()
        out = yn(field.a, "sync", server.url)
        assert "Synced with HQ: 3 bundle(s) sent, 5 revision(s) acknowledged" in out
        hq_whole(field, uuids)
        assert not list((field.a / "outbox").glob("*.ykb"))
        out = yn(field.a, "sync", server.url)
        assert "Synced with HQ: 0 bundle(s) sent" in out
        # A submission no bundle can hold: the others go, it is named; alone, sync still
        # runs (decisions fetched) and says so again, exit 0.
        big = collect_scans(field.a, form, field.tmp / "in", "big", 60 * KB, 60 * KB)
        small = collect_scans(field.a, form, field.tmp / "in", "v5", FILE)
        out = yn(field.a, "sync", server.url)
        assert "1 bundle(s) sent, 1 revision(s) acknowledged" in out
        assert f"submission {big[:8]} takes 0.1 MB" in out and "left out" in out
        out = yn(field.a, "sync", server.url)
        assert "0 bundle(s) sent" in out and f"submission {big[:8]} takes 0.1 MB" in out
        held = {r["uuid"] for r in rows(field.hq, "SELECT uuid FROM submissions")}
        assert small in held and big not in held
    finally:
        server.stop()


def test_sync_max_size_sends_smaller_parts(field, form, tmp_path, monkeypatch):
    """`yntymak sync --max-size 1 MB` (a slow link): parts of at most 1 MB, each sent and
    acknowledged in turn, HQ whole in one run."""
    from .test_http_sync import Server

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    uuids = [
        collect_scans(field.a, form, field.tmp / "in", f"m{i}", 300 * KB, 300 * KB)
        for i in range(3)
    ]
    server = Server(field.hq, tmp_path)
    try:
        server.start()
        out = yn(field.a, "sync", server.url, "--max-size", "1 MB")
        assert "Synced with HQ: 3 bundle(s) sent, 3 revision(s) acknowledged" in out  # 600 kB each
        hq_whole(field, uuids)
    finally:
        server.stop()


@pytest.mark.parametrize("n", [0, 1, 100, 65_535, 65_536, 1_000_003])
def test_deflate_bound_holds_for_incompressible_bytes(n):
    import zlib

    data = os.urandom(n)
    assert len(zlib.compress(data, container.ZLIB_LEVEL)) <= split.deflate_bound(n)


def test_answers_alone_are_split_at_what_hq_inflates(field, form, monkeypatch):
    """Without media the bound is HQ's max_payload (the inflated JSON): a payload above it
    used to make a bundle HQ refused as too-large; now it is split too."""
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.device_sync import pending_records
    from yntymak_cli.sync import keys

    uuids = [collect_scans(field.a, form, field.tmp / "in", f"v{i}") for i in range(4)]
    hq = keys.load_trusted_hq(field.a)
    assert hq is not None
    with Store(field.a / "yntymak.db") as store:
        whole = split.pack(store, pending_records(store), hq.fingerprint).payload_bound
    monkeypatch.setattr(container, "DEFAULT_MAX_PAYLOAD", whole * 6 // 10)
    first, said = create(field)
    assert "wait for the next bundle" in said
    second, said = create(field)
    assert "wait for the next bundle" not in said
    assert not carried(field.a, first) & carried(field.a, second)
    for bundle in (first, second):
        assert len(canonical_bytes(opened(field, bundle))) <= whole * 6 // 10
        field.import_(bundle)
    held = rows(field.hq, "SELECT uuid FROM submissions ORDER BY uuid")
    assert [r["uuid"] for r in held] == sorted(uuids)


def test_a_submission_whose_answers_alone_are_too_large_names_that_limit(field, form, monkeypatch):
    """Refused for its answers' size (what HQ inflates), not its files: the message gives
    that limit, not the bundle's 1 GiB, which the submission is far below."""
    big = collect_scans(field.a, form, field.tmp / "in", "v0")
    monkeypatch.setattr(container, "DEFAULT_MAX_PAYLOAD", 100)  # bytes of answers JSON
    out = yn(field.a, "bundle", "create", "-o", field.tmp / "bundles", code=2)
    assert f"submission {big[:8]} takes 0.0 MB" in out  # its answers, not its 40 kB scan
    assert "(0.0 MB)" in out and "1,024 MB" not in out


def test_a_lost_bundle_heals_while_new_data_keeps_coming(field, form, small_bundles):
    """Bundle 1 is lost, bundle 2 acknowledged: bundle 1 is presumed lost (HQ answered a
    later one), so its submissions count as unsent again and travel even though new data
    arrives before every `bundle create`."""
    collect_many(field, form, 4)
    first, _ = create(field)
    second, _ = create(field)
    lost = carried(field.a, first)
    field.import_(second)
    yn(field.a, "bundle", "ack", field.receipt(second))
    travelled: set[str] = set()
    for week in range(2):
        for i in range(2):
            collect_scans(field.a, form, field.tmp / "in", f"w{week}-{i}", FILE)
        bundle, _said = create(field)
        travelled |= carried(field.a, bundle)
        assert lost <= travelled  # the oldest data first: at once
        field.import_(bundle)
        yn(field.a, "bundle", "ack", field.receipt(bundle))
    assert lost <= travelled
    held = {r["uuid"] for r in rows(field.hq, "SELECT uuid FROM submissions")}
    assert lost <= held


def test_bundles_on_their_way_are_said_when_not_packed_again(field, form, small_bundles):
    collect_many(field, form, 2)
    create(field)  # on its way, no receipt yet
    for i in range(3):
        collect_scans(field.a, form, field.tmp / "in", f"new{i}", FILE)
    _bundle, said = create(field)  # two of the three new ones
    assert "1 wait for the next bundle" in said
    _bundle, said = create(field)  # the third: the first bundle's two are on their way
    # bundle 1's two and bundle 2's two
    assert "4 submission(s) already on their way in bundles HQ has not acknowledged" in said


def test_sync_heals_a_bundle_lost_on_a_usb_stick(field, form, small_bundles, tmp_path, monkeypatch):
    """A bundle taken by USB and lost: the next `yntymak sync` sends its submissions too,
    even with new data waiting (each part is acknowledged at once, so the lost one is
    older than an acknowledged bundle after the first part)."""
    from .test_http_sync import Server

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    collect_many(field, form, 2)
    first, _ = create(field)
    lost = carried(field.a, first)
    new = {collect_scans(field.a, form, field.tmp / "in", f"n{i}", FILE) for i in range(2)}
    server = Server(field.hq, tmp_path)
    try:
        server.start()
        yn(field.a, "sync", server.url)
        held = {r["uuid"] for r in rows(field.hq, "SELECT uuid FROM submissions")}
        assert new | lost <= held
    finally:
        server.stop()


def test_max_size_makes_smaller_parts(field, form):
    """`bundle create --max-size 1 MB` (a volunteer sending by email): each part at most
    that, the rest in the next; a size that is not one is refused in one line."""
    uuids = [
        collect_scans(field.a, form, field.tmp / "in", f"m{i}", 300 * KB, 300 * KB)
        for i in range(3)
    ]
    out_dir = field.tmp / "bundles"
    travelled: set[str] = set()
    for _part in range(3):
        out = yn(field.a, "bundle", "create", "-o", out_dir, "--max-size", "1 MB")
        found = re.search(r"^Wrote (.+\.ykb)", out, re.M)
        assert found, out
        bundle = Path(found.group(1))
        assert bundle.stat().st_size <= 1024 * 1024
        travelled |= carried(field.a, bundle)
        field.import_(bundle)
    assert travelled == set(uuids)
    hq_whole(field, uuids)
    for bad in ("tiny", "500 kB", "-3 MB"):
        out = yn(field.a, "bundle", "create", "-o", out_dir, "--max-size", bad, code=2)
        assert out.count("\n") == 1 and f"--max-size: '{bad}' is not a size" in out
    out = yn(field.a, "sync", "http://127.0.0.1:9", "--max-size", "tiny", code=2)
    assert "--max-size: 'tiny' is not a size" in out  # before any connection
