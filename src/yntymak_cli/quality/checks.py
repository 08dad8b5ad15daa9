"""HQ's data-quality checks: flags per submission, from its answers and its paradata.

`run_checks(forms, rows)` reads each submission once (rows as `HqDb.iter_quality_rows`
yields them), keeps a few numbers per submission, and works out the flags that need the
whole form's data (medians, duplicates, districts' points) at the end. docs/quality.md
describes every check and its thresholds.

A flag is a code and the values that triggered it; the one-line reason is written from
them in the reader's language (`reason`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import statistics
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable
from zlib import adler32, crc32

from yntymak_cli.forms.model import METADATA_TYPES, Form, Quality, Question
from yntymak_cli.quality.district import answers_object, district_by, district_of
from yntymak_cli.quality.paradata import from_stored, quick_timing

CHECKS = (
    "too_fast",
    "speeding",
    "duplicate",
    "near_duplicate",
    "outlier",
    "gps_far",
    "odd_time",
    "many_missing",
)
TIMING_CHECKS = frozenset({"too_fast", "speeding", "odd_time"})

# too_fast: below a third of the form's median active time (with at least this many timed
# submissions to take a median of).
MEDIAN_SHARE = 1 / 3
MIN_FOR_MEDIAN = 5
# speeding: more than half of the timed answers faster than the threshold, out of at least
# this many.
MIN_TIMED_ANSWERS = 5
# near_duplicate: identical answers on this share of the questions either answered, with
# each having answered at least NEAR_MIN_ANSWERED.
NEAR_SHARE = 0.95
NEAR_MIN_ANSWERED = 10
# Candidate groups larger than this (thousands of interviews alike on a whole band of
# questions) are not compared pair by pair: they are counted in `skipped_groups`.
NEAR_MAX_GROUP = 500
MAX_BAND = 19  # questions in one band at most (see _band_bounds)
# outlier: robust z-score (median and MAD) beyond this, within a district holding at least
# OUTLIER_MIN values of the question.
OUTLIER_Z = 3.5
OUTLIER_MIN = 10
# gps_far: needs this many other points in the district to take their median.
GPS_MIN_PEERS = 5
KYRGYZSTAN = (39.1, 43.3, 69.2, 80.3)  # latitude min, max; longitude min, max
EARTH_KM = 6371.0088
# odd_time: local hours of an interview's start that are normal.
DAY_START, DAY_END = 6, 23
LOCAL_UTC_OFFSET = dt.timedelta(hours=6)  # Kyrgyzstan: UTC+6 all year since 2005
# many_missing: only with at least this many relevant optional questions.
MIN_OPTIONAL = 4

WIDTH = array("q").itemsize  # bytes of one answer's hash in a packed vector
_VERSION_DATE = re.compile(r"(20\d\d)-?(\d\d)-?(\d\d)")
_SPACES = re.compile(r"\s+")
_NOT_COMPARED = METADATA_TYPES | {"calculate", "note", "acknowledge", "unsupported"}


@dataclass(frozen=True)
class Flag:
    uuid: str
    code: str
    values: dict[str, Any]  # JSON-safe: what triggered it


class _Values:
    """Numbers, each with the index of the submission it came from: packed (12 bytes a
    value), as a form's numbers over 100,000 submissions are millions of them."""

    __slots__ = ("subs", "values")

    def __init__(self) -> None:
        self.values = array("d")
        self.subs = array("I")

    def add(self, value: float, i: int) -> None:
        self.values.append(value)
        self.subs.append(i)

    def __len__(self) -> int:
        return len(self.subs)


class _Points:
    """Geopoints (latitude, longitude) with their submissions' indices, packed."""

    __slots__ = ("lat", "lon", "subs")

    def __init__(self) -> None:
        self.lat = array("d")
        self.lon = array("d")
        self.subs = array("I")

    def add(self, lat: float, lon: float, i: int) -> None:
        self.lat.append(lat)
        self.lon.append(lon)
        self.subs.append(i)

    def __len__(self) -> int:
        return len(self.subs)


@dataclass(slots=True)
class Submission:
    """What the report keeps of one submission (a few fields, never its answers)."""

    uuid: str
    enumerator: str
    district: str
    minutes: float | None  # active interview time; None: not timed
    flags: list[str] = field(default_factory=list)


@dataclass
class Report:
    form_id: str
    submissions: list[Submission]
    flags: list[Flag]
    skipped_groups: int = 0  # near_duplicate candidate groups too large to compare

    def flagged(self) -> list[Submission]:
        return [s for s in self.submissions if s.flags]

    def counts(self) -> dict[str, int]:
        found = Counter(f.code for f in self.flags)
        return {code: found.get(code, 0) for code in CHECKS}

    def by(self, key: str) -> list[dict[str, Any]]:
        """Per enumerator (key "enumerator") or district: submissions, flagged, share
        flagged, median active minutes; most flagged share first."""
        groups: dict[str, list[Submission]] = defaultdict(list)
        for s in self.submissions:
            groups[getattr(s, key)].append(s)
        out: list[dict[str, Any]] = []
        for name, subs in groups.items():
            flagged = sum(1 for s in subs if s.flags)
            minutes = [s.minutes for s in subs if s.minutes is not None]
            out.append(
                {
                    key: name,
                    "submissions": len(subs),
                    "flagged": flagged,
                    "share_flagged": round(flagged / len(subs), 4),
                    "median_minutes": round(statistics.median(minutes), 1) if minutes else None,
                }
            )
        out.sort(key=lambda r: (-r["share_flagged"], -r["flagged"], r[key]))
        return out


def reason(flag: Flag, lang: str | None) -> str:
    """The flag's one-line reason in `lang` (ky, ru, en)."""
    from yntymak_cli.i18n import t

    v = flag.values
    if flag.code == "too_fast":
        if v.get("min_minutes") is not None and v["minutes"] < v["min_minutes"]:
            return t("check_too_fast_min", lang, minutes=v["minutes"], limit=v["min_minutes"])
        return t("check_too_fast_median", lang, minutes=v["minutes"], median=v["median_minutes"])
    if flag.code == "speeding":
        return t("check_speeding", lang, fast=v["fast"], timed=v["timed"], seconds=v["seconds"])
    if flag.code == "duplicate":
        keys = ", ".join(f"{k}={v['keys'][k]}" for k in v["keys"])
        return t("check_duplicate", lang, keys=keys, others=_uuids(v["with"]))
    if flag.code == "near_duplicate":
        return t(
            "check_near_duplicate",
            lang,
            percent=v["percent"],
            same=v["same"],
            compared=v["compared"],
            other=v["with"][:8],
        )
    if flag.code == "outlier":
        return t(
            "check_outlier",
            lang,
            question=v["question"],
            value=v["value"],
            z=v["z"],
            median=v["median"],
            district=v["district"] or "-",
        )
    if flag.code == "gps_far":
        if v.get("outside"):
            return t("check_gps_outside", lang, question=v["question"], lat=v["lat"], lon=v["lon"])
        return t(
            "check_gps_far",
            lang,
            question=v["question"],
            km=v["km"],
            limit=v["limit_km"],
            district=v["district"] or "-",
        )
    if flag.code == "odd_time":
        if v.get("why") == "hour":
            return t("check_odd_hour", lang, time=v["local_start"])
        if v.get("why") == "ended_before_start":
            return t("check_ended_before", lang, start=v["start"], end=v["end"])
        return t("check_before_version", lang, start=v["start"], version=v["version"])
    if flag.code == "many_missing":
        return t("check_many_missing", lang, missing=v["missing"], relevant=v["relevant"])
    return flag.code


def _uuids(uuids: list[str]) -> str:
    return ", ".join(u[:8] for u in uuids)


# -- the run -----------------------------------------------------------------------------


@dataclass
class _Setup:
    form: Form
    quality: Quality
    district_question: str | None
    compared: list[str]  # near_duplicate: top-level questions compared, in band order
    numeric: list[str]  # outlier
    geopoints: list[str]  # gps_far
    optional: list[Question]  # many_missing: top-level optional questions


def _setup(form: Form) -> _Setup:
    quality = form.quality or Quality()
    compared, numeric, geopoints, optional = [], [], [], []
    for q, ancestors in form.walk():
        if any(a.is_repeat for a in ancestors) or not q.holds_value:
            continue
        base = q.base_type
        if base in _NOT_COMPARED:
            continue
        compared.append(q.name)
        if base in ("integer", "decimal", "range"):
            numeric.append(q.name)
        elif base == "geopoint":
            geopoints.append(q.name)
        if q.required is not True and not q.read_only:
            optional.append(q)
    by_name = form.index
    ordered = _band_order([by_name[name] for name in compared])
    return _Setup(form, quality, district_by(form), ordered, numeric, geopoints, optional)


class _Read(NamedTuple):
    """What the checks keep of one submission after reading it (see _Reader)."""

    uuid: str
    enumerator: str
    district: str
    minutes: float | None
    flags: list[Flag]  # the ones a submission earns on its own
    dup_key: tuple[str, ...] | None
    vector: bytes | None
    answered: int
    numbers: list[tuple[str, float]]
    points: list[tuple[str, float, float]]  # inside Kyrgyzstan


class _Reader:
    """Reads one submission row: decodes it, times it, and keeps what the checks across
    submissions need. The costly part of a run; a worker process holds one."""

    def __init__(
        self, forms: Sequence[Form], district: str | None, setup: _Setup | None = None
    ) -> None:
        self.setup = setup or _setup(forms[0])
        self.versions = {f.definition_hash(): f for f in forms}
        self.district = district
        self.relevance = _Relevance(self.setup)

    def __call__(self, row: Mapping[str, Any]) -> _Read | None:
        setup, quality = self.setup, self.setup.quality
        answers = answers_object(row.get("answers"))
        where = district_of(setup.district_question, answers, row.get("enrolled_district"))
        if self.district is not None and where != self.district:
            return None
        uuid = str(row["uuid"])
        flags: list[Flag] = []
        if row.get("timing_revision") is not None:  # worked out at import
            timed = from_stored(row["started"], row["ended"], row["active_seconds"],
                                row["sessions"], row["seconds"])  # fmt: skip
        else:
            timed = quick_timing(row.get("paradata"))
        minutes = None
        if timed.timed and timed.active_seconds is not None:
            minutes = timed.active_seconds / 60
            flags.extend(_speeding(uuid, timed.seconds, quality.min_seconds_per_question))
            flags.extend(_odd_time(uuid, timed.started, timed.ended, row, self.versions))
        dup_key = None
        if quality.duplicate_keys:
            key = tuple(_normal(answers.get(k)) for k in quality.duplicate_keys)
            dup_key = key if all(key) else None
        hashes, answered = _vector(answers, setup.compared)
        numbers = []
        for name in setup.numeric:
            value = _number(answers.get(name))
            if value is not None:
                numbers.append((name, value))
        points = []
        for name in setup.geopoints:
            point = _point(answers.get(name))
            if point is None:
                continue
            lat, lon = point
            if _in_kyrgyzstan(lat, lon):
                points.append((name, lat, lon))
            else:
                values = {"question": name, "lat": lat, "lon": lon, "outside": True}
                flags.append(Flag(uuid, "gps_far", values))
        missing = self.relevance.missing(answers)
        if missing is not None:
            flags.append(Flag(uuid, "many_missing", {"missing": missing[0],
                                                     "relevant": missing[1]}))  # fmt: skip
        return _Read(
            uuid,
            str(row.get("enumerator") or ""),
            where,
            minutes,
            flags,
            dup_key,
            hashes if answered >= NEAR_MIN_ANSWERED else None,
            answered,
            numbers,
            points,
        )


def run_checks(
    forms: Sequence[Form],
    rows: Iterable[Mapping[str, Any]] | Sliced,
    *,
    district: str | None = None,
    workers: int = 1,
) -> Report:
    """Every check over a form's submissions. `forms`: the form's versions, newest first
    (its `quality:` settings and questions are the newest's); `rows`: as
    HqDb.iter_quality_rows yields them, or Sliced (HqDb.quality_slices) to read them in
    `workers` > 1 processes (their order is kept); `district`: only that district's."""
    setup = _setup(forms[0])
    quality = setup.quality
    subs: list[Submission] = []
    flags: list[Flag] = []
    minutes_timed = _Values()
    dup_keys: dict[tuple[str, ...], list[int]] = defaultdict(list)
    vectors: list[tuple[int, bytes, int]] = []  # (submission, answer hashes, answered)
    numbers: dict[tuple[str, str], _Values] = defaultdict(_Values)
    points: dict[tuple[str, str], _Points] = defaultdict(_Points)

    reads: Iterator[_Read | None]
    if isinstance(rows, Sliced):
        if workers > 1:
            reads = _read_in_processes(forms, rows, district, workers)
        else:
            sliced = rows
            whole = (row for b in sliced.bounds(CHUNK) for row in sliced.rows(b))
            reads = map(_Reader(forms, district, setup), whole)
    else:
        reads = map(_Reader(forms, district, setup), rows)
    for read in reads:
        if read is None:
            continue
        i = len(subs)
        subs.append(Submission(read.uuid, read.enumerator, read.district, read.minutes))
        flags.extend(read.flags)
        if read.minutes is not None:
            minutes_timed.add(read.minutes, i)
        if read.dup_key is not None:
            dup_keys[read.dup_key].append(i)
        if read.vector is not None:
            vectors.append((i, read.vector, read.answered))
        for name, value in read.numbers:
            numbers[(read.district, name)].add(value, i)
        for name, lat, lon in read.points:
            points[(read.district, name)].add(lat, lon, i)

    flags.extend(_too_fast(subs, minutes_timed, quality))
    flags.extend(_duplicates(subs, dup_keys, quality.duplicate_keys))
    near, skipped = _near_duplicates(subs, vectors, len(setup.compared))
    flags.extend(near)
    flags.extend(_outliers(subs, numbers))
    flags.extend(_gps_far(subs, points, quality.max_km_from_district))
    order = {code: k for k, code in enumerate(CHECKS)}
    by_uuid = {s.uuid: s for s in subs}
    flags.sort(key=lambda f: (order[f.code], f.uuid))
    for f in flags:
        if f.code not in by_uuid[f.uuid].flags:
            by_uuid[f.uuid].flags.append(f.code)
    for s in subs:
        s.flags.sort(key=order.__getitem__)
    return Report(forms[0].id, subs, flags, skipped)


def _normal(value: Any) -> str:
    """A duplicate key's value: text case-folded with spaces collapsed; "" if unanswered."""
    if value is None or isinstance(value, dict):
        return ""
    if isinstance(value, list):
        value = " ".join(sorted(str(v) for v in value))
    return _SPACES.sub(" ", str(value)).strip().casefold()


def _vector(answers: dict[str, Any], names: list[str]) -> tuple[bytes, int]:
    """The answers to the compared questions as 64-bit digests (0: unanswered), packed.

    CRC-32 and Adler-32 side by side: fast, and the same in every process (Python's own
    hash is salted per process, and rows are read in several). Values are compared as
    stored: a copied interview is a copy."""
    out = []
    answered = 0
    for name in names:
        value = answers.get(name)
        if value is None or value == "" or value == []:
            out.append(0)
            continue
        answered += 1
        if value.__class__ is str:
            data = value.encode("utf-8", "surrogatepass")
        elif value.__class__ is int or value.__class__ is float:
            data = repr(value).encode()
        else:  # lists (select_multiple), odd shapes from a device
            data = json.dumps(value, sort_keys=True, default=repr).encode("utf-8", "replace")
        out.append((crc32(data) << 31 | adler32(data)) or 1)
    return array("q", out).tobytes(), answered


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _point(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) < 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _in_kyrgyzstan(lat: float, lon: float) -> bool:
    lat_min, lat_max, lon_min, lon_max = KYRGYZSTAN
    return lat_min <= lat <= lat_max and lon_min <= lon <= lon_max


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


# -- timing -------------------------------------------------------------------------------


def _speeding(uuid: str, seconds: Sequence[float], threshold: float) -> Iterator[Flag]:
    if len(seconds) < MIN_TIMED_ANSWERS:
        return
    fast = sum(1 for s in seconds if s < threshold)
    if fast * 2 > len(seconds):
        yield Flag(uuid, "speeding", {"fast": fast, "timed": len(seconds), "seconds": threshold})


def _odd_time(
    uuid: str,
    started: dt.datetime | None,
    ended: dt.datetime | None,
    row: Mapping[str, Any],
    versions: dict[str, Form],
) -> Iterator[Flag]:
    if started is None:
        return
    local = started.astimezone(dt.timezone(LOCAL_UTC_OFFSET))
    if not DAY_START <= local.hour < DAY_END:
        yield Flag(uuid, "odd_time", {"why": "hour", "local_start": local.strftime("%H:%M")})
    if ended is not None and ended < started:
        yield Flag(
            uuid,
            "odd_time",
            {"why": "ended_before_start", "start": _iso(started), "end": _iso(ended)},
        )
    form = versions.get(str(row.get("form_hash") or ""))
    version = str(row.get("form_version") or (form.version if form else ""))
    first_day = _version_date(version)
    if first_day is not None and local.date() < first_day:
        yield Flag(
            uuid,
            "odd_time",
            {"why": "before_version", "start": local.date().isoformat(), "version": version},
        )


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version_date(version: str) -> dt.date | None:
    """The day a form version was made, when its version is a date the XLSForm way
    (2026110101, 20261101, 2026-11-01); None for other versions ("3", "v2")."""
    found = _VERSION_DATE.match(version.strip())
    if not found:
        return None
    try:
        return dt.date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return None


def _too_fast(subs: list[Submission], minutes: _Values, quality: Quality) -> Iterator[Flag]:
    values = minutes.values
    median = statistics.median(values) if len(values) >= MIN_FOR_MEDIAN else None
    for m, i in zip(values, minutes.subs, strict=True):
        below_min = quality.min_minutes is not None and m < quality.min_minutes
        below_median = median is not None and m < median * MEDIAN_SHARE
        if below_min or below_median:
            yield Flag(
                subs[i].uuid,
                "too_fast",
                {
                    "minutes": round(m, 1),
                    "min_minutes": quality.min_minutes,
                    "median_minutes": round(median, 1) if median is not None else None,
                },
            )


# -- across submissions --------------------------------------------------------------------


def _duplicates(
    subs: list[Submission], groups: dict[tuple[str, ...], list[int]], names: list[str]
) -> Iterator[Flag]:
    for key, members in groups.items():
        if len(members) < 2:
            continue
        shown = [subs[j].uuid for j in members[:21]]  # each names at most 20 others
        keys = dict(zip(names, key, strict=True))
        for i in members:
            uuid = subs[i].uuid
            yield Flag(
                uuid, "duplicate", {"keys": keys, "with": [u for u in shown if u != uuid][:20]}
            )


def _band_bounds(n_questions: int) -> list[int]:
    """Where the near-duplicate bands start and end in a packed vector.

    Two submissions at NEAR_SHARE or more differ on at most m = floor((1 - NEAR_SHARE) * c)
    of the c questions either answered. With bands of at most MAX_BAND (19) questions,
    at least ceil(c / 19) bands hold an answer of one of them, more than m: so at least
    one such band is identical in both. So only submissions sharing a band are compared,
    and a band left wholly unanswered can be ignored. At least m + 1 bands, too."""
    m = math.floor((1 - NEAR_SHARE) * n_questions + 1e-9)
    n_bands = max(m + 1, math.ceil(n_questions / MAX_BAND), 1)
    sizes = [n_questions // n_bands + (1 if b < n_questions % n_bands else 0)
             for b in range(n_bands)]  # fmt: skip
    bounds = [0]
    for size in sizes:
        bounds.append(bounds[-1] + size)
    return bounds


def _band_order(questions: list[Question]) -> list[str]:
    """The compared questions in band order: dealt round-robin into the bands, answers
    that vary most (text, numbers, dates, points) first, so that no band is only yes/no
    questions that thousands of interviews share."""
    rank = {"select_one": 2, "select_multiple": 1}
    ordered = sorted(questions, key=lambda q: rank.get(q.base_type, 0))
    bounds = _band_bounds(len(ordered))
    bands: list[list[str]] = [[] for _ in range(len(bounds) - 1)]
    for j, q in enumerate(ordered):
        bands[j % len(bands)].append(q.name)
    return [name for band in bands for name in band]


def _near_duplicates(
    subs: list[Submission], vectors: list[tuple[int, bytes, int]], n_questions: int
) -> tuple[list[Flag], int]:
    """Pairs identical on at least NEAR_SHARE of the questions either answered (vectors in
    band order, see _band_bounds). Identical vectors are compared once; a pair is compared
    in the first band it shares only."""
    if not vectors:
        return [], 0
    bounds = _band_bounds(n_questions)
    n_bands = len(bounds) - 1
    first_of: dict[bytes, int] = {}
    copies: dict[int, list[int]] = defaultdict(list)  # a vector -> its identical copies
    keys: dict[int, list[bytes | None]] = {}
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for k, (_i, hashes, _answered) in enumerate(vectors):
        first = first_of.setdefault(hashes, k)
        if first != k:
            copies[first].append(k)
            continue
        own: list[bytes | None] = []
        for b in range(n_bands):
            band = hashes[WIDTH * bounds[b] : WIDTH * bounds[b + 1]]
            if band.count(0) < len(band):  # a band left wholly unanswered says nothing
                buckets[(b, band)].append(k)
                own.append(band)
            else:
                own.append(None)
        keys[k] = own
    best: dict[int, tuple[float, int, int, int]] = {}  # vector -> (share, same, compared, other)

    def note(a: int, b: int, same: int, compared: int) -> None:
        share = same / compared
        for x, y in ((a, b), (b, a)):
            if share > best.get(x, (-1.0, 0, 0, 0))[0]:
                best[x] = (share, same, compared, y)

    skipped = 0
    for (band_no, _band), members in buckets.items():
        if len(members) < 2:
            continue
        if len(members) > NEAR_MAX_GROUP:
            skipped += 1
            continue
        for x in range(len(members)):
            kx = keys[members[x]]
            for y in range(x + 1, len(members)):
                ky = keys[members[y]]
                if any(kx[e] is not None and kx[e] == ky[e] for e in range(band_no)):
                    continue  # compared in an earlier band they share
                same, compared = _alike(vectors[members[x]][1], vectors[members[y]][1])
                if compared and same >= NEAR_SHARE * compared - 1e-9:
                    note(members[x], members[y], same, compared)
    for first, others in copies.items():  # identical answers: 100% alike
        answered = vectors[first][2]
        for k in others:
            note(first, k, answered, answered)
    flags = []
    for k, (share, same, compared, other) in best.items():
        flags.append(
            Flag(
                subs[vectors[k][0]].uuid,
                "near_duplicate",
                {
                    "with": subs[vectors[other][0]].uuid,
                    "percent": math.floor(share * 1000) / 10,
                    "same": same,
                    "compared": compared,
                },
            )
        )
    return flags, skipped


def _alike(a: bytes, b: bytes) -> tuple[int, int]:
    """(questions answered alike, questions either answered)."""
    same = compared = 0
    for x, y in zip(array("q", a), array("q", b), strict=True):
        if x or y:
            compared += 1
            if x == y:
                same += 1
    return same, compared


def _outliers(subs: list[Submission], numbers: dict[tuple[str, str], _Values]) -> Iterator[Flag]:
    for (where, name), found in numbers.items():
        if len(found) < OUTLIER_MIN:
            continue
        xs = found.values
        median = statistics.median(xs)
        mad = statistics.median(abs(x - median) for x in xs)
        if mad > 0:
            scale = mad / 0.6745
        else:  # over half the values equal: the mean absolute deviation instead
            mean_ad = statistics.fmean(abs(x - median) for x in xs)
            scale = 1.253314 * mean_ad
        if scale <= 0:
            continue
        for value, i in zip(xs, found.subs, strict=True):
            z = (value - median) / scale
            if abs(z) > OUTLIER_Z:
                yield Flag(
                    subs[i].uuid,
                    "outlier",
                    {
                        "question": name,
                        "value": int(value) if value.is_integer() else value,
                        "z": round(z, 1),
                        "median": int(median) if float(median).is_integer() else median,
                        "district": where,
                    },
                )


def _gps_far(
    subs: list[Submission], points: dict[tuple[str, str], _Points], limit_km: float
) -> Iterator[Flag]:
    for (where, name), found in points.items():
        # Without a district, one median over the whole country means nothing.
        if not where or len(found) < GPS_MIN_PEERS + 1:
            continue
        lats, lons = sorted(found.lat), sorted(found.lon)
        for lat, lon, i in zip(found.lat, found.lon, found.subs, strict=True):
            centre = (_median_without(lats, lat), _median_without(lons, lon))
            km = _km((lat, lon), centre)
            if km > limit_km:
                yield Flag(
                    subs[i].uuid,
                    "gps_far",
                    {
                        "question": name,
                        "km": round(km, 1),
                        "limit_km": limit_km,
                        "district": where,
                        "lat": lat,
                        "lon": lon,
                    },
                )


def _median_without(ordered: list[float], value: float) -> float:
    """The median of `ordered` (sorted) with one occurrence of `value` left out."""
    import bisect

    at = bisect.bisect_left(ordered, value)
    n = len(ordered) - 1

    def nth(k: int) -> float:
        return ordered[k if k < at else k + 1]

    if n % 2:
        return nth(n // 2)
    return (nth(n // 2 - 1) + nth(n // 2)) / 2


# -- reading in processes ------------------------------------------------------------------

CHUNK = 2000  # rows a worker reads at once
_reader: _Reader | None = None  # a worker process's own
_rows: Sliced | None = None


@runtime_checkable
class Sliced(Protocol):
    """Rows that worker processes read for themselves, a slice each, in order (HqDb's
    `quality_slices`): only a slice's bounds pass between processes, never the rows.
    Picklable; `rows` runs in the worker, `bounds` in the parent."""

    def bounds(self, size: int) -> Iterator[Any]: ...
    def rows(self, bounds: Any) -> Iterable[Mapping[str, Any]]: ...


def _read_in_processes(
    forms: Sequence[Form], rows: Sliced, district: str | None, workers: int
) -> Iterator[_Read | None]:
    """_Reader over the rows in `workers` processes, slice by slice and in order, with at
    most two slices a worker in flight (the rows are streamed, never all held)."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    slices = rows.bounds(CHUNK)
    context = multiprocessing.get_context("spawn")  # a fork would share the database
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_reader,
                             initargs=(list(forms), district, rows)) as pool:  # fmt: skip
        pending: deque[Future[list[_Read | None]]] = deque()

        def submit() -> bool:
            bounds = next(slices, None)
            if bounds is not None:
                pending.append(pool.submit(_read_slice, bounds))
            return bounds is not None

        while len(pending) < 2 * workers and submit():
            pass
        while pending:
            done = pending.popleft().result()
            submit()
            yield from done


def _start_reader(forms: list[Form], district: str | None, rows: Sliced) -> None:
    global _reader, _rows
    _reader, _rows = _Reader(forms, district), rows


def _read_slice(bounds: Any) -> list[_Read | None]:
    assert _reader is not None and _rows is not None
    return [_reader(row) for row in _rows.rows(bounds)]


# -- relevance ----------------------------------------------------------------------------


class _Relevance:
    """many_missing: how many relevant optional questions a submission left unanswered.

    Relevance is worked out by the form engine from the submission's answers, once per
    distinct combination of the answers it depends on (few, in most forms)."""

    def __init__(self, setup: _Setup) -> None:
        self.setup = setup
        self.optional = setup.optional
        self.static = all(q.required is False or q.required is None for q in self.optional)
        self.engine: Any = None
        self.inputs: list[str] | None = None
        self.cache: dict[tuple[str, ...], frozenset[str]] = {}

    def missing(self, answers: dict[str, Any]) -> tuple[int, int] | None:
        """(unanswered, relevant) when more than half are unanswered; else None."""
        optional = self.optional
        if len(optional) < MIN_OPTIONAL:
            return None
        unanswered = [q.name for q in optional if _blank(answers.get(q.name))]
        # Questions that are not relevant are unanswered too: leaving k of them out of
        # both counts can only lower the share, so below half here is below half after.
        # Not so when `required:` expressions may take answered questions out as well.
        if self.static and 2 * len(unanswered) <= len(optional):
            return None
        relevant = self._relevant(answers)
        n_relevant = len(relevant)
        n_missing = sum(1 for name in unanswered if name in relevant)
        if n_relevant >= MIN_OPTIONAL and 2 * n_missing > n_relevant:
            return n_missing, n_relevant
        return None

    def _relevant(self, answers: dict[str, Any]) -> frozenset[str]:
        if self.engine is None:
            from yntymak_cli.engine.survey import Engine

            self.engine = Engine(self.setup.form)
            self.inputs = sorted(self._inputs())
        assert self.inputs is not None
        key = tuple(json.dumps(answers.get(n), sort_keys=True, default=str) for n in self.inputs)
        found = self.cache.get(key)
        if found is None:
            found = frozenset(self._evaluate(answers))
            if len(self.cache) < 100_000:
                self.cache[key] = found
        return found

    def _inputs(self) -> set[str]:
        """The answers the optional questions' relevance and requiredness depend on."""
        plan = self.engine.plan
        todo = [q.name for q in self.optional]
        seen: set[str] = set()
        for q in self.optional:
            expr = plan.exprs.get((q.name, "required"))
            if expr is not None:
                refs = {r for r in expr.refs() if r in plan.pos} - {q.name}
                seen |= refs
                todo.extend(refs)
        while todo:
            name = todo.pop()
            for dep in plan.deps.get(name, ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    def _evaluate(self, answers: dict[str, Any]) -> Iterator[str]:
        engine = self.engine
        try:
            state = engine.start(dict(answers))
        except Exception:  # an answer an old version allowed: count nothing rather than fail
            return
        for q in self.optional:
            try:
                if engine.is_relevant(state, q.name, ()) and not engine.is_required(
                    state, q.name, ()
                ):
                    yield q.name
            except Exception:
                continue


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []
