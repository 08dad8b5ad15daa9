"""The sync commands speak the volunteer's language: keys, bundle, hq and purge, on their
success paths and main error paths, print no English word in Kyrgyz or Russian.

Homes are set up in English with the helpers of test_sync_flow; only the command under test
runs with YNTYMAK_LANG. Record refusals stay English in receipts (a contract) and are shown
in the reader's language.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from yntymak_cli.cli import app

from .helpers import CONTRACT_ANSWERS as ANSWERS
from .helpers import (
    Field,
    collect_in,
    device_id,
    english_words,
    hq_db,
    relabelled_form,
    resign,
    rows,
    runner,
    yn,
)

pytestmark = pytest.mark.slow  # every sync command in two languages
LANGS = ["ky", "ru"]

# Words of commands a message names (`yntymak keys trust-hq`, `bundle ack`, `hq init`).
# base64: the encoding a key file's field is refused for, named like JSON.
SYNC_WORDS = {"trust-hq", "ack", "init", "revoke", "yntymak.db-wal", "ykb", "ykr", "base64"}
# What the field fixture's devices and forms are called: data, not messages.
FIELD_NAMES = {"Aida", "Bakyt", "aida", "bakyt", "kara_suu", "at_bashy", "village_safety"}
_IDS = (
    re.compile(r"\b[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\b"),  # UUIDs, before hashes
    re.compile(r"\b[0-9A-F]{4}(?:-[0-9A-F]{4}){3}\b"),  # fingerprints
    re.compile(r"\b[a-z2-7]{16}\b"),  # device and HQ ids
    re.compile(r"\b[0-9a-f]{12,}\b"),  # hashes
    re.compile(r"[A-Za-z0-9+/]{43}="),  # public keys (base64)
)


def run(
    home: Path, lang: str, *args: object, code: int | None = 0, input: str | None = None
) -> str:
    """`yntymak --home HOME ARGS` with YNTYMAK_LANG=lang; code None: any failure."""
    result = runner.invoke(
        app, ["--home", str(home), *map(str, args)], env={"YNTYMAK_LANG": lang}, input=input
    )
    out = result.stdout + result.stderr
    if code is None:
        assert result.exit_code in (1, 2), (args, out, result.exception)
    else:
        assert result.exit_code == code, (args, out, result.exception)
    return out


def leaks(text: str) -> set[str]:
    for pattern in _IDS:
        text = pattern.sub(" ", text)
    return english_words(text, allow=SYNC_WORDS | FIELD_NAMES)


def assert_local(text: str) -> None:
    assert text.strip()
    if leaks(text):
        pytest.fail(f"English words {sorted(leaks(text))} in:\n{text}")
    assert re.search(r"[А-Яа-яЁёҢңӨөҮү]", text), text


def bundle_of(f: Field, home: Path) -> Path:
    out = f.tmp / f"out-{home.name}"
    out.mkdir(exist_ok=True)
    before = set(out.glob("*.ykb"))
    yn(home, "bundle", "create", "-o", out)
    (path,) = set(out.glob("*.ykb")) - before
    return path


# -- keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_keys_commands(lang: str, tmp_path: Path) -> None:
    home = tmp_path / "d"
    assert_local(run(home, lang, "keys", "show"))
    assert_local(run(home, lang, "keys", "export", "-o", tmp_path / "device.pub"))
    yn(tmp_path / "hq", "hq", "init", "-o", tmp_path / "hq.pub")
    yn(tmp_path / "hq2", "hq", "init", "-o", tmp_path / "hq2.pub")
    assert_local(run(home, lang, "keys", "trust-hq", tmp_path / "hq.pub"))
    assert_local(run(home, lang, "keys", "show"))
    # Errors: another HQ, a missing file, the wrong kind of key file.
    assert_local(run(home, lang, "keys", "trust-hq", tmp_path / "hq2.pub", code=2))
    assert_local(run(home, lang, "keys", "trust-hq", tmp_path / "nope.pub", code=2))
    assert_local(run(home, lang, "keys", "trust-hq", tmp_path / "device.pub", code=2))
    # The global option says the same as the environment variable.
    result = runner.invoke(app, ["--lang", lang, "--home", str(home), "keys", "show"])
    assert result.exit_code == 0 and not leaks(result.output), result.output
    # --json stays as it was: a contract for scripts.
    data = json.loads(run(home, lang, "keys", "show", "--json"))
    assert set(data) == {"device_id", "public_key", "box_key", "fingerprint", "hq"}


# -- hq init / enroll / revoke / status ----------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_hq_identity_and_devices(lang: str, tmp_path: Path) -> None:
    hq, dev = tmp_path / "hq", tmp_path / "dev"
    assert_local(run(hq, lang, "hq", "status"))  # no devices yet
    assert_local(run(hq, lang, "bundle", "verify", tmp_path / "x.ykb", code=None))  # no HQ key
    assert_local(run(hq, lang, "hq", "init", "-o", tmp_path / "hq.pub"))
    assert_local(run(hq, lang, "hq", "init", "-o", tmp_path / "hq.pub"))  # exists already
    yn(dev, "keys", "export", "-o", tmp_path / "dev.pub")
    assert_local(run(hq, lang, "hq", "enroll", tmp_path / "dev.pub", "--name", "Айгүл"))
    assert_local(run(hq, lang, "hq", "enroll", tmp_path / "dev.pub", "--name", "Айгүл К."))
    assert_local(run(hq, lang, "hq", "enroll", tmp_path / "dev.pub", "--name", " ", code=2))
    assert_local(run(hq, lang, "hq", "enroll", tmp_path / "hq.pub", "--name", "Б", code=2))
    assert_local(run(hq, lang, "hq", "revoke", "aaaaaaaaaaaaaaaa", code=None))
    assert_local(run(hq, lang, "hq", "revoke", device_id(dev)))
    assert_local(run(hq, lang, "hq", "enroll", tmp_path / "dev.pub", "--name", "Айгүл", code=2))


@pytest.mark.parametrize("lang", LANGS)
def test_hq_status_table(lang: str, field: Field) -> None:  # noqa: F811
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    f.import_(bundle_of(f, f.a))
    yn(f.hq, "hq", "revoke", device_id(f.b))
    result = runner.invoke(
        app, ["--home", str(f.hq), "hq", "status"], env={"YNTYMAK_LANG": lang, "COLUMNS": "160"}
    )
    assert result.exit_code == 0, result.output
    # Names, districts, enumerators and form ids come from devices: not ours to translate.
    text = result.output
    for word in ("Aida", "Bakyt", "kara_suu", "at_bashy", "aida", "village_safety"):
        text = text.replace(word, " ")
    assert_local(text)
    before = json.loads(yn(f.hq, "hq", "status", "--json"))
    assert json.loads(run(f.hq, lang, "hq", "status", "--json")) == before


# -- bundle create / verify / import / ack -------------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_bundle_round_trip(lang: str, field: Field) -> None:  # noqa: F811
    f = field
    # No trusted HQ yet, a missing folder, then a bundle and nothing more to send.
    lonely = f.tmp / "lonely"
    collect_in(lonely, f.tmp, "Ак-Суу")
    assert_local(run(lonely, lang, "bundle", "create", "-o", f.tmp, code=2))
    collect_in(f.a, f.tmp, "Ак-Суу")
    out_dir = f.tmp / "out"
    out_dir.mkdir()
    assert_local(run(f.a, lang, "bundle", "create", "-o", out_dir))
    (bundle,) = out_dir.glob("*.ykb")
    assert_local(run(f.a, lang, "bundle", "create", "-o", out_dir))

    assert_local(run(f.hq, lang, "bundle", "verify", bundle))
    assert json.loads(run(f.hq, lang, "bundle", "verify", bundle, "--json"))["submissions"] == 1
    assert_local(run(f.hq, lang, "hq", "import", bundle, "--receipts", f.receipts))
    receipt = f.receipt(bundle)
    assert_local(run(f.a, lang, "bundle", "ack", receipt))
    assert_local(run(f.a, lang, "bundle", "ack", receipt))  # already acknowledged
    # A receipt given to the wrong laptop, a missing one, a bundle given as a receipt.
    assert_local(run(f.b, lang, "bundle", "ack", receipt, code=2))
    assert_local(run(f.a, lang, "bundle", "ack", f.tmp / "nope.ykr", code=2))
    assert_local(run(f.a, lang, "bundle", "ack", bundle, code=2))


@pytest.mark.parametrize("lang", LANGS)
def test_refused_bundles(lang: str, field: Field, tmp_path: Path) -> None:  # noqa: F811
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = bundle_of(f, f.a)
    # Not a bundle at all, empty, a receipt, damaged, truncated.
    junk = f.tmp / "junk.ykb"
    junk.write_bytes(b"hello, this is not a bundle")
    empty = f.tmp / "empty.ykb"
    empty.write_bytes(b"")
    bad = f.tmp / "bad.ykb"
    data = bundle.read_bytes()
    bad.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
    short = f.tmp / "short.ykb"
    short.write_bytes(data[:100])
    for path in (junk, empty, bad, short):
        assert_local(run(f.hq, lang, "bundle", "verify", path, code=2))
    assert_local(run(f.hq, lang, "hq", "import", junk, bad, "--receipts", f.receipts, code=2))
    assert_local(run(f.hq, lang, "hq", "import", f.tmp / "nothing", code=2))
    receipts_file = f.tmp / "receipts.txt"  # a file where the receipts folder should be
    receipts_file.write_text("x")
    assert_local(run(f.hq, lang, "hq", "import", bundle, "--receipts", receipts_file, code=2))

    # A bundle from a device HQ never enrolled names the command that enrols it.
    stranger = tmp_path / "stranger"
    yn(stranger, "keys", "trust-hq", f.tmp / "hq.pub")
    collect_in(stranger, f.tmp, "Ош")
    unknown = bundle_of(f, stranger)
    out = run(f.hq, lang, "bundle", "verify", unknown, code=2)
    assert "yntymak hq enroll device.pub --name" in out
    assert_local(out)


def test_the_unknown_device_refusal_names_hq_enroll(field: Field, tmp_path: Path) -> None:  # noqa: F811
    f = field
    stranger = tmp_path / "stranger"
    yn(stranger, "keys", "trust-hq", f.tmp / "hq.pub")
    collect_in(stranger, f.tmp, "Ош")
    out = yn(f.hq, "bundle", "verify", bundle_of(f, stranger), code=2)
    assert "unknown device" in out and "`yntymak hq enroll device.pub --name NAME`" in out
    assert "register" not in out


@pytest.mark.parametrize("lang", LANGS)
def test_refused_records_in_the_readers_language(lang: str, field: Field) -> None:  # noqa: F811
    """HQ refuses one record: import, verify and ack show why in the reader's language,
    while the receipt and HQ's table keep HQ's English wording (a contract)."""
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    f.import_(bundle_of(f, f.a))
    answers = f.tmp / "answers-b.yaml"
    answers.write_text(ANSWERS.read_text("utf-8"), "utf-8")
    yn(f.b, "collect", relabelled_form(f.tmp), "--answers", answers, "--enumerator", "bakyt")
    b_bundle = bundle_of(f, f.b)
    assert_local(run(f.hq, lang, "bundle", "verify", b_bundle))
    out = run(f.hq, lang, "hq", "import", b_bundle, "--receipts", f.receipts, code=2)
    assert_local(out)
    receipt = f.receipts / f"{device_id(f.b)}-1.ykr"
    assert_local(run(f.b, lang, "bundle", "ack", receipt))

    from yntymak_cli.sync.keys import load_trusted_hq

    (stored,) = rows(f.hq, "SELECT reason FROM hq_refused")
    assert "definition differs from the one HQ already has" in stored["reason"]
    (on_device,) = rows(f.b, "SELECT refused_reason FROM revisions")
    assert on_device["refused_reason"] == stored["reason"]
    assert load_trusted_hq(f.b) is not None


def test_localize_reads_hq_english_reasons() -> None:
    from yntymak_cli.sync.reasons import localize

    uid = "0123abcd-0000-4000-8000-0123456789ab"
    reason = (
        f"submission {uid} revision 2: form village_safety version 2026-11-01: definition"
        " differs from the one HQ already has (hash 0123456789ab); give the changed form a"
        " new version"
    )
    ky = localize(reason, "ky")
    assert ky.startswith(f"анкета {uid}, редакция 2: village_safety формасы, 2026-11-01")
    assert "0123456789ab" in ky and not leaks(ky.replace("village_safety", ""))
    ru = localize(reason, "ru")
    assert "форма village_safety, версия 2026-11-01" in ru
    assert localize(reason, "en") == reason
    # Reasons nest: the record, then the answer, then what is wrong with it.
    answer = f"submission {uid} revision 1: answer felt_tension: not a choice of list yes_no"
    assert localize(answer, "ru") == (
        f"анкета {uid}, редакция 1: ответ felt_tension: это не вариант из списка yes_no"
    )
    assert not leaks(localize(answer, "ky"))
    other = f"submission {uid} names device 'abcdefghijklmnop', but the bundle is signed by x"
    assert not leaks(localize(other, "ky").replace("'", " "))
    # Words from another version of HQ, or cut short, are shown as they came.
    assert localize("something new went wrong", "ky") == "something new went wrong"


# -- purge ---------------------------------------------------------------------------------


@pytest.fixture
def acknowledged(field: Field) -> Field:  # noqa: F811
    """Device A has one submission HQ acknowledged and one it never saw."""
    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = bundle_of(f, f.a)
    f.import_(bundle)
    yn(f.a, "bundle", "ack", f.receipt(bundle))
    collect_in(f.a, f.tmp, "Ош")
    return f


@pytest.mark.parametrize("lang", LANGS)
def test_purge_messages(lang: str, acknowledged: Field) -> None:
    f = acknowledged
    assert_local(run(f.a, lang, "submissions", "purge", code=2))  # say what
    assert_local(run(f.a, lang, "submissions", "purge", "--synced", code=2))  # no terminal
    assert_local(run(f.a, lang, "submissions", "purge", "--synced", "--yes"))
    assert_local(run(f.a, lang, "submissions", "purge", "--synced", "--yes"))  # nothing left


@pytest.mark.parametrize(
    ("lang", "yes", "no"),
    [("ky", "ооба", "жок"), ("ru", "да", "нет"), ("en", "y", "n"), ("ky", "Y", "N")],
)
def test_purge_question_takes_local_yes_and_no(
    lang: str, yes: str, no: str, acknowledged: Field, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yntymak_cli.cli import sync as sync_cli

    monkeypatch.setattr(sync_cli, "_stdin_is_terminal", lambda: True, raising=False)
    f = acknowledged
    # "No" keeps everything; an unknown word asks again; "yes" erases.
    out = run(f.a, lang, "submissions", "purge", "--synced", input=f"{no}\n", code=1)
    assert {"ky": "[ооба/жок]", "ru": "[да/нет]", "en": "[y/n]"}[lang] in out
    if lang != "en":
        assert_local(out)
    assert [r["answers"] is not None for r in _subs(f.a)] == [True, True]
    out = run(f.a, lang, "submissions", "purge", "--synced", input=f"maybe\n{yes}\n")
    if lang != "en":
        assert_local(out.replace("maybe", ""))
    assert sorted(r["answers"] is None for r in _subs(f.a)) == [False, True]


def _subs(home: Path) -> list[dict]:

    return rows(home, "SELECT uuid, answers FROM submissions ORDER BY created_at")


# -- damaged and forged files: the frame is ours, field paths and parser words are data ----


def _hq_pub(tmp_path: Path) -> dict:
    yn(tmp_path / "hq", "hq", "init", "-o", tmp_path / "hq.pub")
    return json.loads((tmp_path / "hq.pub").read_text("utf-8"))


@pytest.mark.parametrize("lang", LANGS)
def test_corrupted_key_files(lang: str, tmp_path: Path) -> None:
    good = _hq_pub(tmp_path)
    home = tmp_path / "d"
    parse_error = "Expecting value: line 1 column 1 (char 0)"  # Python's words: data
    cases = {
        "list.pub": "[]",
        "future.pub": json.dumps({**good, "version": 99}),
        "extra.pub": json.dumps({**good, "extra_field": 1}),
        "short.pub": json.dumps({k: v for k, v in good.items() if k != "box_key"}),
        "b64.pub": json.dumps({**good, "sign_key": "not base64!"}),
        "id.pub": json.dumps({**good, "hq_id": "aaaaaaaaaaaaaaaa"}),
        "json.pub": "",
        "twice.pub": '{"format": 1, "format": 2}',
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, "utf-8")
        out = run(home, lang, "keys", "trust-hq", tmp_path / name, code=2)
        assert str(tmp_path / name) in out
        assert_local(out.replace(parse_error, " ").replace("box_key", " "))
    assert "99" in run(home, lang, "keys", "trust-hq", tmp_path / "future.pub", code=2)


@pytest.mark.parametrize("lang", LANGS)
def test_broken_device_key_says_restore_from_backup(lang: str, tmp_path: Path) -> None:
    home = tmp_path / "d"
    yn(home, "keys", "show")
    key = home / "device.key"
    data = json.loads(key.read_text("utf-8"))
    for text in (json.dumps({**data, "sign_seed": "not base64!"}), "[1, 2]"):
        key.write_text(text, "utf-8")
        out = run(home, lang, "keys", "show", code=2)
        assert "device.key" in out
        assert_local(out)


@pytest.mark.parametrize("lang", LANGS)
def test_forged_bundle_details(lang: str, field: Field) -> None:  # noqa: F811
    import struct

    from yntymak_cli.sync import container, keys

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    bundle = bundle_of(f, f.a)
    data = bundle.read_bytes()
    # A header section twice: refused before the signature is checked.
    (length,) = struct.unpack_from(">I", data, 5)
    header_section = data[4 : 9 + length]
    twice = f.tmp / "twice.ykb"
    twice.write_bytes(data[: 9 + length] + header_section + data[9 + length :])
    # A genuine device signs a manifest whose digest is no sha256.
    hq_identity = keys.load_hq_identity(f.hq)
    device = keys.load_or_create_device_identity(f.a)
    header = container.inspect_bundle(data)
    records = json.loads(yn(f.a, "submissions", "list", "--json"))
    assert records  # the bundle's record is in the device's store
    from yntymak_cli.sync import hq as hq_mod

    store = hq_db(f.hq)
    try:
        _, payload = container.open_bundle(data, hq_mod.device_lookup(store), hq_identity)
    finally:
        store.close()
    payload["manifest"][0]["sha256"] = "XYZ"
    forged = f.tmp / "forged.ykb"
    header = {**header, "bundle_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"}
    forged.write_bytes(container._seal_bundle(header, payload, device, hq_identity.public()))
    for path in (twice, forged):
        out = run(f.hq, lang, "bundle", "verify", path, code=2)
        assert_local(out.replace("manifest[0].sha256", " "))
        out = run(f.hq, lang, "hq", "import", path, "--receipts", f.receipts, code=2)
        assert_local(out.replace("manifest[0].sha256", " "))
    assert "manifest[0].sha256" in out


@pytest.mark.parametrize("lang", LANGS)
def test_record_missing_a_field_in_the_readers_language(lang: str, field: Field) -> None:  # noqa: F811

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")

    def drop(records: list[dict]) -> None:
        del records[0]["instance_name"]

    forged = resign(f, f.a, drop, "x.ykb")
    out = run(f.hq, lang, "hq", "import", forged, "--receipts", f.receipts, code=2)
    assert "instance_name" in out
    assert_local(out)
    (stored,) = rows(f.hq, "SELECT reason FROM hq_refused")
    assert stored["reason"].endswith(": missing ['instance_name'], unexpected []")


@pytest.mark.parametrize(
    ("reason", "ky"),
    [
        ("submission {u} has status 'draft'", "анкета {u}: жараксыз статус 'draft'"),
        ("submission {u}: enumerator is not a string", "анкета {u}: enumerator талаасы текст эмес"),
        ("submission {u}: void_reason is longer than 500 characters", "500 белгиден узун"),
        ("submission {u}: voided_at does not match its status", "статусуна туура келбейт"),
        ("submission {u}: form_hash is not a sha256 digest", "form_hash талаасы хэш эмес"),
        ("submission {u}: paradata is not an object", "paradata талаасы объект эмес"),
        ("submission {u}: answers is not an object", "answers талаасы объект эмес"),
        # An answer that is not an object stays an answer's reason.
        (
            "submission {u} revision 1: answer g[0]: a repeat instance is not an object",
            "анкета {u}, редакция 1: жооп g[0]:",
        ),
    ],
)
def test_localize_reads_record_field_checks(reason: str, ky: str) -> None:
    from yntymak_cli.sync.reasons import localize

    uid = "0123abcd-0000-4000-8000-0123456789ab"
    reason, ky = reason.format(u=uid), ky.format(u=uid)
    assert ky in localize(reason, "ky")
    fields = {"draft", "enumerator", "paradata", "answers"}  # field names and values: data
    assert not english_words(localize(reason, "ru"), allow=fields)
    assert localize(reason, "en") == reason


@pytest.mark.parametrize("lang", LANGS)
def test_unwritable_bundle_output(lang: str, field: Field) -> None:  # noqa: F811
    import os

    f = field
    collect_in(f.a, f.tmp, "Ак-Суу")
    out = run(f.a, lang, "bundle", "create", "-o", "/proc", code=None)
    assert "/proc" in out
    for code in (2, 13, 30):  # the system's own words for why: data
        out = out.replace(os.strerror(code), " ")
    assert_local(out)
