"""What a command may write over: one check for every `-o` and every file a command writes.

A mistyped `-o` must never destroy what cannot be rebuilt: a database (and its `-wal`,
`-shm` and `-journal` files), a secret key, a public key of another kind, a sync bundle
or receipt. They are recognised by content (a renamed `yntymak.db` is still a database)
and by name, through symlinks, and the home's own files are reserved even before they
exist (`hq init -o HOME/hq.key` would otherwise create the key, then write over it).

An existing file may be replaced only when it is itself an earlier output of the same
kind: analysts re-export to `report.xlsx` every day.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import NoReturn

from yntymak_cli.errors import InvalidInput
from yntymak_cli.plain import plain

# What each command writes; the value is the catalog key that names it in messages.
KINDS = {
    "xlsx": "out_kind_xlsx",
    "csv": "out_kind_csv",
    "csv-zip": "out_kind_csv_zip",
    "csv-folder": "out_kind_csv_folder",
    "json": "out_kind_json",
    "jsonl": "out_kind_jsonl",
    "geojson": "out_kind_geojson",
    "sav": "out_kind_sav",
    "dta": "out_kind_dta",
    "stats-zip": "out_kind_stats_zip",
    "stats-variables": "out_kind_stats_variables",
    "yaml-form": "out_kind_yaml_form",
    "xlsform": "out_kind_xlsform",
    "device-pub": "out_kind_device_pub",
    "hq-pub": "out_kind_hq_pub",
    "bundle": "out_kind_bundle",
    "receipt": "out_kind_receipt",
}


def _t(key: str, /, **params: object) -> str:
    """A message or a description in the reader's language (paths stay as they are)."""
    from yntymak_cli.i18n import current_lang, t

    return t(key, current_lang(), **params)


# Outputs that never replace a file (a CSV folder; a bundle, which may be the only copy of
# its data): the command refuses any existing file in its own words, after this check has
# named the protected ones.
_CALLER_REFUSES = {"csv-folder", "bundle"}

_SNIFF = 64 * 1024  # enough for every magic number and a whole key file

_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")
# The -shm file starts with the WAL index header; its version field is 3007000.
_SHM_VERSIONS = ((3007000).to_bytes(4, "little"), (3007000).to_bytes(4, "big"))
_KEY_FORMAT = re.compile(rb'"format"\s*:\s*"(yntymak-(?:device|hq)-(?:key|pub|box-key))"')
# (catalog key of what it is, the kind of output that may replace it)
_KEY_WHAT = {
    b"yntymak-device-key": ("out_what_device_key", None),
    b"yntymak-device-box-key": ("out_what_device_key", None),
    b"yntymak-hq-key": ("out_what_hq_key", None),
    b"yntymak-device-pub": ("out_what_device_pub", "device-pub"),
    b"yntymak-hq-pub": ("out_what_hq_pub", "hq-pub"),
}
# Names that say "not an export" even when the content is empty or damaged.
_PROTECTED_SUFFIXES = {
    ".db": ("out_what_database", None),
    ".sqlite": ("out_what_database", None),
    ".sqlite3": ("out_what_database", None),
    ".key": ("out_what_secret_key", None),
    ".ykb": ("out_what_bundle", "bundle"),
    ".ykr": ("out_what_receipt", "receipt"),
}
# SQLite's companions of a database file, recognised by name next to it (catalog keys).
_SIDE_FILES = {
    "-wal": "out_what_wal",
    "-shm": "out_what_shm",
    "-journal": "out_what_journal",
}


def check_overwrite(path: Path, kind: str, same_id: str | None = None) -> None:
    """Raise InvalidInput (exit 2) unless writing `kind` at `path` destroys nothing.

    Fine: a path that does not exist yet, an empty file, or an earlier output of this
    kind. Refused: anything protected (see the module docstring), a symbolic link (the
    write would replace the link, not what it points to), anything that is not a regular
    file (a FIFO would hang the write, a device would be replaced), and any other file.
    `same_id`, once known, narrows "earlier output" for public keys and YAML forms to one
    of the same device, HQ or form id: another laptop's `device.pub` is not ours to replace.
    """
    assert kind in KINDS, kind
    path = Path(path)
    try:
        named = path.parent.resolve() / path.name  # the name itself, which may be a link
        target = path.resolve()  # what a write through that name would reach
    except (OSError, RuntimeError):  # a loop of symlinks
        raise InvalidInput(_t("out_link_nowhere", path=plain(path))) from None
    via = _t("out_via_link", target=target) if named != target else ""
    for place in dict.fromkeys((named, target)):
        what = _reserved(place) or _protected_name(place, kind)
        if what:
            _refuse(path, via, what)
    link = os.path.islink(path)  # a write would replace the link, not what it points to
    if not target.exists():
        if link:
            _refuse_link(path)
        return
    if target.is_dir():
        if kind == "csv-folder" and not link:
            return
        raise InvalidInput(_t("out_is_folder", path=plain(path), via=plain(via)))
    if not target.is_file():
        raise InvalidInput(_t("out_not_regular", path=plain(path), via=plain(via)))
    what, same = _content(target, kind, same_id)
    if what is not None and not same:
        _refuse(path, via, what)
    if link:
        _refuse_link(path)
    if not same and kind not in _CALLER_REFUSES:
        _refuse(path, via, _t("out_not_earlier", kind=_t(KINDS[kind])))


def _refuse_link(path: Path) -> NoReturn:
    raise InvalidInput(_t("out_symlink", path=plain(path), target=plain(os.readlink(path))))


def _refuse(path: Path, via: str, what: str) -> NoReturn:
    raise InvalidInput(_t("out_refuse", path=plain(path), via=plain(via), what=what))


def _reserved(target: Path) -> str | None:
    """The home's own files, which commands create themselves: reserved even if missing."""
    from yntymak_cli.home import DB_NAME, home_dir

    home = home_dir(create=False).resolve()
    if target.parent != home:
        return None
    names = {
        DB_NAME: "out_what_home_db",
        "device.key": "out_what_home_device_key",
        "device_box.key": "out_what_home_device_key",
        "hq.key": "out_what_home_hq_key",
        "trusted_hq.pub": "out_what_home_trusted",
    }
    for side in _SIDE_FILES:
        if target.name == DB_NAME + side:
            return _t("out_what_home_db_side", side=side[1:])
    found = names.get(target.name)
    return _t(found) if found else None


def _protected_name(path: Path, kind: str) -> str | None:
    """What an existing file's name says it is (a new file may have any name)."""
    if not os.path.lexists(path):
        return None
    name = path.name.lower()
    for suffix, (what, allowed) in _PROTECTED_SUFFIXES.items():
        if name.endswith(suffix) and kind != allowed:
            return _t("out_what_by_name", what=_t(what), suffix=suffix)
    for side, what in _SIDE_FILES.items():
        if name.endswith(side) and path.with_name(path.name[: -len(side)]).exists():
            return _t(what)
    if name == "trusted_hq.pub":  # in any home: replacing it would switch a laptop's HQ
        return _t("out_what_trusted")
    return None


def _content(path: Path, kind: str, same_id: str | None = None) -> tuple[str | None, bool]:
    """(what protected thing the file is, or None; whether it is an output of `kind`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return _t("out_what_unreadable"), False
    if not head:
        return None, True  # empty: nothing to lose
    if head.startswith(_SQLITE_MAGIC):
        return _t("out_what_database"), False
    if head[:4] in _WAL_MAGICS:
        return _t("out_what_wal"), False
    if head[:4] in _SHM_VERSIONS:
        return _t("out_what_shm"), False
    # Bundles and receipts by magic (any format version); keys by their JSON "format".
    if head.startswith(b"YKB"):
        return _t("out_what_bundle"), kind == "bundle"
    if head.startswith(b"YKR"):
        return _t("out_what_receipt"), kind == "receipt"
    found = _KEY_FORMAT.search(head)
    if found:
        what, same = _KEY_WHAT[found.group(1)]
        if same == kind and same_id is not None and _key_id(head) != same_id:
            other = "out_what_other_hq" if kind == "hq-pub" else "out_what_other_device"
            return _t(other, what=_t(what)), False
        return _t(what), same == kind
    return None, _is_output(path, head, kind, same_id)


def _key_id(head: bytes) -> str | None:
    import json

    try:
        data = json.loads(head.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    found = data.get("device_id") or data.get("hq_id")
    return found if isinstance(found, str) else None


# What our own exports start with: a re-export replaces an export, not a hand-made file.
_JSON_EXPORT = re.compile(r'^\s*\{"format_version":\s*\d+,\s*"form_id":')
_JSONL_EXPORT = re.compile(r'^\{"form_id":')
_GEOJSON_EXPORT = re.compile(r'^\{"type": "FeatureCollection", "form_id":')
_CSV_KEYS = {"_uuid", "_index", "_submission__uuid"}
_FORM_ID = re.compile(r"""^id:[ \t]*["']?([^\s"'#]+)""", re.MULTILINE)
_FORM_QUESTIONS = re.compile(r"^questions:", re.MULTILINE)


def form_id_of(yaml_text: str) -> str | None:
    """The top-level `id:` of a YAML form's text (for `same_id`)."""
    found = _FORM_ID.search(yaml_text)
    return found.group(1) if found else None


def _is_output(path: Path, head: bytes, kind: str, same_id: str | None = None) -> bool:
    if kind == "sav":
        return head.startswith((b"$FL2", b"$FL3"))
    if kind == "dta":
        return head.startswith(b"<stata_dta>")
    if kind == "stats-variables":
        return head.removeprefix(b"\xef\xbb\xbf").startswith(b"table,variable,name,")
    if kind in ("xlsx", "xlsform", "csv-zip", "stats-zip"):
        if not head.startswith(b"PK"):
            return False
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return False
        if kind == "csv-zip":
            return bool(names) and all(n.endswith(".csv") for n in names)
        if kind == "stats-zip":  # tables and their _variables.csv
            return "_variables.csv" in names and all(
                n.endswith((".sav", ".dta", ".csv")) for n in names
            )
        return "xl/workbook.xml" in names
    if kind in ("csv", "json", "jsonl", "geojson", "yaml-form"):
        if b"\x00" in head:
            return False
        try:
            text = head.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not only a character cut at the sniff limit
                return False
            text = head[: exc.start].decode("utf-8-sig")
        if kind == "json":
            return _JSON_EXPORT.match(text) is not None
        if kind == "jsonl":
            return _JSONL_EXPORT.match(text) is not None
        if kind == "geojson":
            return _GEOJSON_EXPORT.match(text) is not None
        if kind == "csv":
            header = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r").split(",")
            return bool(_CSV_KEYS & {h.strip('"') for h in header})
        # yaml-form: a yntymak form (of the same id, once known), not any text file
        found = form_id_of(text)
        if found is None or _FORM_QUESTIONS.search(text) is None:
            return False
        return same_id is None or found == same_id
    return False  # keys, bundles, receipts: recognised in _content


def ensure_folder(folder: Path) -> None:
    """`mkdir -p` for an output folder (`bundle create -o DIR`, `hq import --receipts DIR`),
    as `export` does; InvalidInput (exit 2) when the path is a file or cannot be created."""
    from yntymak_cli.i18n import current_lang, t

    folder = Path(folder)
    if folder.is_dir():
        return
    if folder.exists():
        raise InvalidInput(t("output_not_a_folder", current_lang(), folder=plain(folder)))
    try:
        folder.mkdir(parents=True, mode=0o777)
    except FileExistsError:
        if not folder.is_dir():  # made by someone else meanwhile: fine if it is a folder
            raise InvalidInput(
                t("output_not_a_folder", current_lang(), folder=plain(folder))
            ) from None
    except OSError as exc:
        raise InvalidInput(
            t(
                "output_folder_not_created",
                current_lang(),
                folder=plain(folder),
                error=exc.strerror or exc,
            )
        ) from None
