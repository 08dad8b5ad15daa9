"""Media answers in an export: the file name column, its `_URL` link, and `--media DIR`.

xlsx and CSV show a media answer as two columns, KoboToolbox's way: `photo` holds the
file's original name and `photo_URL` a link relative to the folder of the workbook (or of
the CSV files), ``media/<form>/<uuid>/<file>``. `export FORM -o OUT --media DIR` copies
each exported submission's files into ``DIR/<form>/<uuid>/<file>`` and the links start
with DIR as seen from the workbook's folder (``media`` for ``--media OUT_FOLDER/media``,
the usual choice), so they open from the workbook. ``<file>`` is the original name, made
unique within a submission when two different files share it (``photo-1a2b3c4d.jpg``:
the hash's first 8 hex digits), made safe for Windows (`windows_safe`: forbidden
characters as `_`, no trailing dots or spaces, `CON`, `NUL.jpg`, `com1.txt` and the other
device names behind a `_`; the form's folder too).
JSON and JSONL keep the stored answer (``NAME sha256:HEX``).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yntymak_cli.forms.media import MediaRef, parse_ref

if TYPE_CHECKING:
    from yntymak_cli.forms.model import Form
    from yntymak_cli.store.db import Store

# The folder the `_URL` links point into, relative to the workbook.
LINK_ROOT = "media"
_UUID = re.compile(r"[0-9a-fA-F-]{1,64}")
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"/\\|?*]')
# Device names Windows reserves in every folder, with any extension (`NUL.jpg`, `com1.txt`):
# a file of that name cannot be made, or is the device.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{port}{n}" for port in ("COM", "LPT") for n in (*"0123456789", "¹", "²", "³")}
)


def windows_safe(name: str) -> str:
    """`name` as a file or folder name Windows makes and gives back as written (an export
    folder is often copied to, or opened on, Windows): its forbidden characters `<>:"/\\|?*`
    as `_`, no trailing dots or spaces (Windows drops them), and a reserved device name
    (the part before the first dot, in any case, trailing spaces ignored) behind a `_`:
    `CON` -> `_CON`, `nul.jpg` -> `_nul.jpg`. Deterministic: the workbook's links and the
    files written use this one function."""
    name = _WINDOWS_FORBIDDEN.sub("_", name).rstrip(". ") or "file"
    if name.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        name = "_" + name
    return name


def export_names(refs: Iterable[MediaRef]) -> dict[str, str]:
    """sha256 -> the file's name in its submission's folder: the original name, unless an
    earlier different file of the submission took it (then the hash's start is added)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for ref in refs:
        if ref.sha256 in names:
            continue
        name = windows_safe(ref.name)
        if name.lower() in taken:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{ref.sha256[:8]}.{ext}" if dot and stem else f"{name}-{ref.sha256[:8]}"
        taken.add(name.lower())
        names[ref.sha256] = name
    return names


def refs_in(answers: Any, media_names: frozenset[str]) -> Iterator[MediaRef]:
    """MediaRefs of the answers under `media_names`, repeats included, in answer order."""
    if not isinstance(answers, dict):
        return
    for key, value in answers.items():
        if isinstance(value, list):
            for item in value:
                yield from refs_in(item, media_names)
        elif key in media_names:
            ref = parse_ref(value)
            if ref is not None:
                yield ref


@dataclass
class MediaLinks:
    """The converters of media columns; `start(record)` before each record's rows (the
    links name the record's uuid and its unique file names)."""

    form_id: str
    media_names: frozenset[str]
    root: str = LINK_ROOT
    uuid: str = ""
    names: dict[str, str] = field(default_factory=dict)

    def start(self, record: dict[str, Any]) -> None:
        self.uuid = str(record.get("uuid") or "")
        self.names = export_names(refs_in(record.get("answers"), self.media_names))

    @staticmethod
    def name(value: Any) -> Any:
        ref = parse_ref(value)
        if ref is not None:
            return ref.name
        return value if value is None or isinstance(value, str) else str(value)

    def url(self, value: Any) -> str | None:
        ref = parse_ref(value)
        if ref is None:
            return None
        name = self.names.get(ref.sha256) or export_names([ref])[ref.sha256]
        return f"{self.root}/{windows_safe(self.form_id)}/{self.uuid}/{name}"


def media_question_names(forms: Iterable[Form], no_sensitive: bool = False) -> frozenset[str]:
    """The media questions of any version, as the export's columns: with --no-sensitive,
    less those marked sensitive (or inside a sensitive group or repeat) in any version."""
    names: set[str] = set()
    sensitive: set[str] = set()
    for form in forms:
        for q, ancestors in form.walk():
            if q.is_media:
                names.add(q.name)
                if q.sensitive or any(a.sensitive for a in ancestors):
                    sensitive.add(q.name)
    return frozenset(names - sensitive if no_sensitive else names)


@dataclass(frozen=True)
class CopyResult:
    files: int  # files copied (or already there, the same)
    missing: list[str]  # "uuid/name" of files not in the home (e.g. purged)


def copy_media(
    locate: Callable[[str], Path | None],
    form_id: str,
    records: Iterable[dict[str, Any]],
    media_names: frozenset[str],
    out_dir: Path,
) -> CopyResult:
    """Copy the files of `records` into ``out_dir/<form>/<uuid>/<name>``, each written
    atomically (one already there from an earlier export is replaced). `locate(sha256)`
    is where the home (the laptop's, or HQ's) keeps a file, None when it has none."""
    from yntymak_cli.files import atomic_path
    from yntymak_cli.outputs import ensure_folder

    copied = 0
    missing: list[str] = []
    for record in records:
        uuid = str(record.get("uuid") or "")
        refs = list(refs_in(record.get("answers"), media_names))
        if not refs or not _UUID.fullmatch(uuid):  # a uuid names a folder: nothing else
            continue
        names = export_names(refs)
        folder = Path(out_dir) / windows_safe(form_id) / uuid
        for sha256, name in names.items():
            source = locate(sha256)
            if source is None:
                missing.append(f"{uuid}/{name}")
                continue
            target = folder / name
            ensure_folder(folder)
            with atomic_path(target) as tmp:  # an earlier export's copy is replaced
                shutil.copyfile(source, tmp)
            copied += 1
    return CopyResult(copied, missing)


def laptop_locate(store: Store) -> Callable[[str], Path | None]:
    """copy_media's `locate` for the laptop's home."""
    from yntymak_cli.store.media import has_file, media_path

    return lambda sha256: media_path(store, sha256) if has_file(store, sha256) else None
