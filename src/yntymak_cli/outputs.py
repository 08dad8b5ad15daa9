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

# What each command writes; the value names it in messages.
KINDS = {
    "xlsx": "an Excel export",
    "csv": "a CSV export",
    "csv-zip": "a zip of CSV files",
    "csv-folder": "a folder of CSV files",
    "json": "a JSON export",
    "jsonl": "a JSON Lines export",
    "yaml-form": "a YAML form",
    "xlsform": "an XLSForm",
    "device-pub": "a device public key (device.pub)",
    "hq-pub": "an HQ public key (hq.pub)",
    "bundle": "a sync bundle (.ykb)",
    "receipt": "a sync receipt (.ykr)",
}

# Outputs that never replace a file (a CSV folder; a bundle, which may be the only copy of
# its data): the command refuses any existing file in its own words, after this check has
# named the protected ones.
_CALLER_REFUSES = {"csv-folder", "bundle"}

_SNIFF = 64 * 1024  # enough for every magic number and a whole key file

_SQLITE_MAGIC = b"SQLite format 3\x00"
_WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")
# The -shm file starts with the WAL index header; its version field is 3007000.
_SHM_VERSIONS = ((3007000).to_bytes(4, "little"), (3007000).to_bytes(4, "big"))
_KEY_FORMAT = re.compile(rb'"format"\s*:\s*"(yntymak-(?:device|hq)-(?:key|pub))"')
_KEY_WHAT = {
    b"yntymak-device-key": ("a device secret key", None),
    b"yntymak-hq-key": ("an HQ secret key", None),
    b"yntymak-device-pub": ("a device public key", "device-pub"),
    b"yntymak-hq-pub": ("an HQ public key", "hq-pub"),
}
# Names that say "not an export" even when the content is empty or damaged.
_PROTECTED_SUFFIXES = {
    ".db": ("a database", None),
    ".sqlite": ("a database", None),
    ".sqlite3": ("a database", None),
    ".key": ("a secret key", None),
    ".ykb": ("a sync bundle", "bundle"),
    ".ykr": ("a sync receipt", "receipt"),
}
# SQLite's companions of a database file, recognised by name next to it.
_SIDE_FILES = {
    "-wal": "a database's write-ahead log",
    "-shm": "a database's shared memory",
    "-journal": "a database's rollback journal",
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
        raise InvalidInput(f"{plain(path)}: a link that leads nowhere; name a file") from None
    via = f" (a link to {target})" if named != target else ""
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
        raise InvalidInput(f"{plain(path)} is a folder{plain(via)}: name a file to write")
    if not target.is_file():
        raise InvalidInput(
            f"{plain(path)}{plain(via)} is not a regular file (a pipe or a device): name a"
            " file to write"
        )
    what, same = _content(target, kind, same_id)
    if what is not None and not same:
        _refuse(path, via, what)
    if link:
        _refuse_link(path)
    if not same and kind not in _CALLER_REFUSES:
        _refuse(path, via, f"not {KINDS[kind]} written earlier")


def _refuse_link(path: Path) -> NoReturn:
    raise InvalidInput(
        f"{plain(path)} is a symbolic link (to {plain(os.readlink(path))}): give the real"
        " path, or a new name"
    )


def _refuse(path: Path, via: str, what: str) -> NoReturn:
    raise InvalidInput(
        f"refusing to write over {plain(path)}{plain(via)}: it is {what}. Name a new file,"
        " or move that one away first"
    )


def _reserved(target: Path) -> str | None:
    """The home's own files, which commands create themselves: reserved even if missing."""
    from yntymak_cli.home import DB_NAME, home_dir

    home = home_dir(create=False).resolve()
    if target.parent != home:
        return None
    names = {
        DB_NAME: "this home's database",
        "device.key": "this laptop's device secret key",
        "hq.key": "the HQ secret key",
        "trusted_hq.pub": "the HQ key this device trusts",
    }
    for side in _SIDE_FILES:
        names[DB_NAME + side] = f"this home's database {side[1:]} file"
    return names.get(target.name)


def _protected_name(path: Path, kind: str) -> str | None:
    """What an existing file's name says it is (a new file may have any name)."""
    if not os.path.lexists(path):
        return None
    name = path.name.lower()
    for suffix, (what, allowed) in _PROTECTED_SUFFIXES.items():
        if name.endswith(suffix) and kind != allowed:
            return f"{what} (by its name, {suffix})"
    for side, what in _SIDE_FILES.items():
        if name.endswith(side) and path.with_name(path.name[: -len(side)]).exists():
            return what
    if name == "trusted_hq.pub":  # in any home: replacing it would switch a laptop's HQ
        return "the HQ key a device trusts (trusted_hq.pub)"
    return None


def _content(path: Path, kind: str, same_id: str | None = None) -> tuple[str | None, bool]:
    """(what protected thing the file is, or None; whether it is an output of `kind`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return "a file that cannot be read", False
    if not head:
        return None, True  # empty: nothing to lose
    if head.startswith(_SQLITE_MAGIC):
        return "a database", False
    if head[:4] in _WAL_MAGICS:
        return "a database's write-ahead log", False
    if head[:4] in _SHM_VERSIONS:
        return "a database's shared memory", False
    # Bundles and receipts by magic (any format version); keys by their JSON "format".
    if head.startswith(b"YKB"):
        return "a sync bundle", kind == "bundle"
    if head.startswith(b"YKR"):
        return "a sync receipt", kind == "receipt"
    found = _KEY_FORMAT.search(head)
    if found:
        what, same = _KEY_WHAT[found.group(1)]
        if same == kind and same_id is not None and _key_id(head) != same_id:
            return f"{what} of another {'HQ' if kind == 'hq-pub' else 'device'}", False
        return what, same == kind
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
_CSV_KEYS = {"_uuid", "_index", "_submission__uuid"}
_FORM_ID = re.compile(r"""^id:[ \t]*["']?([^\s"'#]+)""", re.MULTILINE)
_FORM_QUESTIONS = re.compile(r"^questions:", re.MULTILINE)


def form_id_of(yaml_text: str) -> str | None:
    """The top-level `id:` of a YAML form's text (for `same_id`)."""
    found = _FORM_ID.search(yaml_text)
    return found.group(1) if found else None


def _is_output(path: Path, head: bytes, kind: str, same_id: str | None = None) -> bool:
    if kind in ("xlsx", "xlsform", "csv-zip"):
        if not head.startswith(b"PK"):
            return False
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return False
        if kind == "csv-zip":
            return bool(names) and all(n.endswith(".csv") for n in names)
        return "xl/workbook.xml" in names
    if kind in ("csv", "json", "jsonl", "yaml-form"):
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
