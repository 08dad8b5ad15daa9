"""Which pending records the next bundle carries, when they do not all fit in one.

A bundle holds at most `container.MAX_CONTENT_SIZE` of content (the sealed payload and the
media section together), and HQ inflates a payload of at most
`container.DEFAULT_MAX_PAYLOAD`. When everything pending fits, a bundle carries everything,
as it always did. Otherwise whole submissions (every pending revision and void of one
uuid) are taken, each if it still fits (first fit):

1. while some are unsent (no bundle still on its way carries them: one not acknowledged
   and newer than every bundle HQ acknowledged; an older one is presumed lost), those
   only, the oldest data (first finalised) first;
2. when every pending one is on its way already, those, the one that set out longest
   ago first.

So back-to-back `bundle create` runs move on through what is unsent, and each part is no
bigger than its new data needs (a volunteer sending over a messenger pays for every MB;
the last part of 1.5 GB of photos is 480 MB, not a second full GiB). What may have been
lost travels again once nothing new waits, oldest first, as a single bundle always
re-carried it. Each bundle names its own media files (sync/bundle._media_files), so none
depends on another.

Sizes are upper bounds, not guesses: the payload JSON is measured record by record with
the canonical encoding the bundle uses, zlib's output is bounded by zlib's deflateBound of
its input, the sealed box adds a fixed 80 bytes, and the media section's size is exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from yntymak_cli.canonical import canonical_bytes
from yntymak_cli.errors import InvalidInput
from yntymak_cli.i18n import current_lang, t
from yntymak_cli.store import device_sync
from yntymak_cli.sync import container, media_section

if TYPE_CHECKING:
    from yntymak_cli.store.db import Store
    from yntymak_cli.store.records import PayloadRecord

MB = 1024 * 1024
# Kept free below the limit, in case this module's accounting misses a few bytes: the
# bounds below are exact otherwise, so a bundle may come this close to the limit.
MARGIN = 64 * 1024
# The payload document with empty lists and the largest counts: what is not a list item.
_SKELETON = len(
    canonical_bytes(
        {
            "counts": {"forms": container.MAX_COUNTER, "submissions": container.MAX_COUNTER},
            "forms": [],
            "manifest": [],
            "media": {"files": [], "key": "A" * 44},  # base64 of the 32-byte key
            "submissions": [],
        }
    )
)


class NothingFits(InvalidInput):
    """Everything pending is submissions no bundle can hold: no bundle is made."""

    def __init__(self, message: str, left_out: str) -> None:
        super().__init__(message)
        self.left_out = left_out  # the same, worded as a warning (`yntymak sync` goes on)


MIN_MAX_SIZE = MB  # a smaller --max-size would leave out nearly every submission


def read_max_size(text: str) -> int:
    """`--max-size` (`25 MB`, `500 kB`, `2 GB`) in bytes, at most a bundle's 1 GiB;
    InvalidInput (one line) when it is not a size of at least 1 MB."""
    from yntymak_cli.forms.media import parse_size

    size = parse_size(text)
    if size is None or size < MIN_MAX_SIZE:
        raise InvalidInput(t("bundle_max_size_bad", current_lang(), value=text))
    return min(size, container.MAX_CONTENT_SIZE)


def megabytes(n: int) -> str:
    """n bytes in MB for a message: one decimal below 10 MB, "1,024" for a GiB."""
    mb = n / MB
    return f"{mb:,.1f}" if mb < 10 else f"{mb:,.0f}"


def deflate_bound(n: int) -> int:
    """The most zlib (level 6, default window) can make of n bytes: zlib's deflateBound,
    with a few bytes to spare. Incompressible input is stored in blocks with small headers."""
    return n + (n >> 12) + (n >> 14) + (n >> 25) + 64


@dataclass
class _Submission:
    """One uuid's pending records and what they add to a bundle."""

    records: list[PayloadRecord]
    json_size: int  # its records and manifest entries in the payload JSON, commas included
    forms: set[str]
    files: dict[str, tuple[int, int]]  # sha256 -> (encrypted size, its list entry's JSON)
    carried: int | None  # the seq an unacknowledged bundle last carried it in; None: unsent


@dataclass
class _Bundle:
    """What a bundle being packed holds so far, and its size bounds."""

    json_size: int = _SKELETON  # the payload's canonical JSON
    media_size: int = 0  # the media section
    forms: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    limit: int = container.MAX_CONTENT_SIZE  # content at most this (a --max-size, or 1 GiB)

    @property
    def content(self) -> int:
        """The sealed payload (header digest, zlib, sealed box) and the media section."""
        sealed = container.SEALED_BOX_OVERHEAD + container.DIGEST_SIZE
        return sealed + deflate_bound(self.json_size) + self.media_size

    def add(self, s: _Submission, form_sizes: dict[str, int], *, force: bool = False) -> bool:
        """Add `s` if the bundle still fits then (or anyway, with `force`); False, and
        nothing added, if not."""
        forms = s.forms - self.forms
        files = [sha for sha in s.files if sha not in self.files]  # each once in a bundle
        json_size = self.json_size + s.json_size + sum(form_sizes[h] for h in forms)
        json_size += sum(s.files[sha][1] for sha in files)
        media_size = self.media_size + sum(s.files[sha][0] for sha in files)
        sealed = container.SEALED_BOX_OVERHEAD + container.DIGEST_SIZE
        if not force and (
            sealed + deflate_bound(json_size) + media_size > self.limit - MARGIN
            or json_size > container.DEFAULT_MAX_PAYLOAD  # HQ inflates no more than this
            or len(self.files) + len(files) > media_section.MAX_MEDIA_FILES
        ):
            return False
        self.json_size, self.media_size = json_size, media_size
        self.forms |= forms
        self.files.update(files)
        return True


@dataclass(frozen=True)
class Packing:
    """What the next bundle carries."""

    records: list[PayloadRecord]  # in pending_records' order, as a single bundle had them
    pending: int  # submissions with something pending
    left: int  # of those, how many no unacknowledged bundle carries once this one is made
    # Of those, how many are on their way in earlier bundles and were not packed again.
    in_transit: int
    payload_bound: int  # the payload's canonical JSON is at most this many bytes
    content_bound: int  # the bundle's content (sealed payload and media) at most this
    # Submissions no bundle can hold, left out (one line each, worded): they stay pending.
    too_large: tuple[str, ...] = ()


def pack(
    store: Store, records: list[PayloadRecord], hq_fingerprint: str, limit: int | None = None
) -> Packing:
    """Choose the records of the next bundle (see the module's docstring).

    A submission that alone does not fit in a bundle is left out and named in
    `too_large` (it stays pending; its files can be carried by `export --media`), so it
    does not hold up the others; NothingFits when nothing else is pending.
    """
    carried = device_sync.carried_by_unacknowledged(store, hq_fingerprint)
    form_sizes: dict[str, int] = {}
    for form_hash in sorted({r["form_hash"] for r in records}):
        (definition,) = store.form_definitions([form_hash])
        form_sizes[form_hash] = len(canonical_bytes(definition)) + 1
    subs = _submissions(store, records, carried)
    limit = min(limit or container.MAX_CONTENT_SIZE, container.MAX_CONTENT_SIZE)
    big = [s for s in subs if not _Bundle(limit=limit).add(s, form_sizes)]
    if big:
        if len(big) == len(subs):
            raise NothingFits(
                _too_large(big[0], form_sizes, "bundle_submission_too_large", limit),
                _too_large(big[0], form_sizes, "bundle_submission_left_out", limit),
            )
        subs = [s for s in subs if all(s is not b for b in big)]
    bundle = _Bundle(limit=limit)
    if all(bundle.add(s, form_sizes) for s in subs):  # everything fits: all, as always
        order = subs
    else:
        # Unsent ones only while there are any, oldest data first (so what a lost bundle
        # carried is not overtaken by newer data for ever); else re-carried, longest on
        # the way first.
        order = sorted((s for s in subs if s.carried is None), key=_oldest)
        order = order or sorted(subs, key=lambda s: s.carried or 0)
    bundle = _Bundle(limit=limit)
    chosen = {id(s) for s in order if bundle.add(s, form_sizes)}
    return Packing(
        records=[r for s in subs if id(s) in chosen for r in s.records],
        pending=len(subs) + len(big),
        left=sum(1 for s in subs if s.carried is None and id(s) not in chosen),
        in_transit=sum(1 for s in subs if s.carried is not None and id(s) not in chosen),
        payload_bound=bundle.json_size,
        content_bound=bundle.content,
        too_large=tuple(
            _too_large(s, form_sizes, "bundle_submission_left_out", limit) for s in big
        ),
    )


def _oldest(s: _Submission) -> str:
    """When the submission's oldest pending revision was finalised (ISO text sorts)."""
    return min(str(r.get("submission_time") or "") for r in s.records)


def _submissions(
    store: Store, records: list[PayloadRecord], carried: dict[device_sync.Carried, int]
) -> list[_Submission]:
    """The records grouped by uuid (pending_records gives each uuid's records together)."""
    from yntymak_cli.forms.media import media_refs
    from yntymak_cli.store.media import get_media

    out: list[_Submission] = []
    costs: dict[str, tuple[int, int]] = {}  # per file: a photo named twice is looked up once
    for record in records:
        if not out or out[-1].records[0]["uuid"] != record["uuid"]:
            out.append(_Submission([], 0, set(), {}, None))
        s = out[-1]
        s.records.append(record)
        # The record in `submissions` and its manifest entry, each followed by a comma.
        s.json_size += len(canonical_bytes(record)) + 1
        entry = {
            "revision": record["revision"],
            "sha256": "0" * 64,
            "status": record["status"],
            "uuid": record["uuid"],
        }
        s.json_size += len(canonical_bytes(entry)) + 1
        s.forms.add(record["form_hash"])
        if record.get("answers") is None:
            continue
        form = store.form_by_hash(record["form_hash"])
        for _name, ref in media_refs(form, record["answers"]):
            if ref.sha256 not in costs:
                row = get_media(store, ref.sha256)
                # A file not on the laptop stops bundle create once it is packed
                # (bundle._media_files): counted here as empty.
                listed = media_section.MediaEntry(
                    ref.sha256,
                    row.size if row is not None else 0,
                    row.media_type if row is not None else "",
                )
                costs[ref.sha256] = (
                    media_section.encrypted_size(listed.size),
                    len(canonical_bytes(listed.doc())) + 1,
                )
            s.files[ref.sha256] = costs[ref.sha256]
    for s in out:
        seqs = [carried.get((r["uuid"], r["revision"], r["status"])) for r in s.records]
        # Carried only when every entry is: a new revision or a void since is unsent data.
        if all(seq is not None for seq in seqs):
            s.carried = max(seq for seq in seqs if seq is not None)
    return out


def _too_large(s: _Submission, form_sizes: dict[str, int], key: str, limit: int) -> str:
    alone = _Bundle()
    alone.add(s, form_sizes, force=True)
    size = alone.content
    if alone.json_size > container.DEFAULT_MAX_PAYLOAD:  # its answers alone: HQ's bound
        size, limit = alone.json_size, container.DEFAULT_MAX_PAYLOAD
    return t(
        key,
        current_lang(),
        uuid=s.records[0]["uuid"][:8],
        mb=megabytes(size),
        n=len(s.files),
        limit=megabytes(limit),
    )
