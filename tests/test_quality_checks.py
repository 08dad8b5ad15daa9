"""`yntymak hq checks` (issue 14): submissions with known problems, made on laptops, carried
in real bundles to HQ (SQLite and PostgreSQL), are flagged; the clean ones are not.

Timed interviews are filled through the collection library the interactive prompts use
(collect.session.Session, which keeps the paradata), with its clock replaced so that an
interview can last 3 minutes or start at 03:00. Everything after that is the real CLI:
`bundle create`, `hq import`, `hq checks`, `hq review list --flagged`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import zipfile
from array import array
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from yntymak_cli.collect import session as session_mod
from yntymak_cli.collect.session import Session
from yntymak_cli.forms.loader import load_form
from yntymak_cli.quality import checks
from yntymak_cli.store import hq_schema
from yntymak_cli.store.db import Store

from .conftest import ROOT
from .helpers import Field, device_id, hq_db, yn

FORM = ROOT / "tests" / "data" / "quality_survey.yaml"
UTC = dt.timezone.utc
CENTRES = {"naryn": (41.43, 75.99), "osh": (40.53, 72.80)}
VILLAGES = {"naryn": ["Ak-Kyya", "Kochkor", "Emgekchil"], "osh": ["Kara-Suu", "Nookat", "Uzgen"]}
ALMATY = (43.2389, 76.8897)
LEVELS = ["low", "medium", "high", "very_high"]
OCCUPATIONS = ["farmer", "teacher", "trader", "student", "official", "other"]
N_QUESTIONS = 23  # questions a full interview with a conflict answers


class Clock:
    """The session's clock: utcnow() as collect.session writes it, moved by the test."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def iso(self) -> str:
        return self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def tick(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def bell(rng: random.Random, low: int, high: int) -> int:
    """A number between low and high, most often near the middle, as counts and ages are
    (a uniform draw of a dozen values can look like it has an outlier by chance)."""
    return round(low + (high - low) * sum(rng.random() for _ in range(3)) / 3)


def clean(rng: random.Random, district: str, k: int, conflict: bool | None = None) -> dict:
    lat, lon = CENTRES[district]
    conflict = rng.random() < 0.5 if conflict is None else conflict
    answers: dict[str, Any] = {
        "district": district,
        "village": rng.choice(VILLAGES[district]),
        "respondent": f"Respondent {district} {k}",
        "age": str(bell(rng, 18, 70)),
        "household": str(bell(rng, 2, 9)),
        "years_here": str(bell(rng, 1, 50)),
        "occupation": rng.choice(OCCUPATIONS),
        **{f"q{j}": rng.choice(LEVELS) for j in range(1, 9)},
        "location": f"{lat + rng.uniform(-0.08, 0.08):.5f} {lon + rng.uniform(-0.08, 0.08):.5f}",
        "has_conflict": "yes" if conflict else "no",
        "comment": f"note {k} {rng.randint(0, 10**6)}",
    }
    if conflict:
        answers.update(
            d_parties=f"parties {k}",
            d_cause=rng.choice(["water", "pasture", "land", "border"]) + f" {k}",
            d_months=str(bell(rng, 1, 12)),
            d_people=str(bell(rng, 2, 40)),
            d_outcome=f"outcome {k}",
        )
    return answers


def interview(
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    answers: dict,
    started: dt.datetime,
    gaps: list[float],
    *,
    enumerator: str,
    finalise_shift: float = 0.0,
) -> str:
    """One interview through the collection library, each answer `gaps[k]` seconds after
    the previous one (cycled); returns its uuid."""
    form = load_form(FORM).require()
    clock = Clock(started)
    monkeypatch.setattr(session_mod, "utcnow", clock.iso)
    with Store(home / "yntymak.db") as store:
        s = Session.start(store, form, lang="en", enumerator=enumerator, device_id=device_id(home))
        step = s.engine.first_step(s.state)
        k = 0
        while step.kind != "end":
            if step.kind == "question":
                assert step.question is not None
                clock.tick(gaps[k % len(gaps)])
                k += 1
                error = s.answer(step, answers.get(step.question.name))
                assert error is None, (step.question.name, error)
            step = s.engine.next_step(s.state, step)
        clock.tick(5 + finalise_shift)
        s.finalise()
        uuid = s.uuid
    monkeypatch.undo()
    return uuid


def local(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A moment in Kyrgyzstan (UTC+6) in November 2026, as UTC."""
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.timezone(dt.timedelta(hours=6)))


def normal_gaps(rng: random.Random) -> list[float]:
    return [rng.uniform(20, 90) for _ in range(N_QUESTIONS)]


@pytest.fixture
def planted(field: Field, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """Clean interviews in two districts plus one of each known problem, imported at HQ.
    {"expected": {uuid: set of codes}, "names": {label: uuid}}."""
    f = field
    rng = random.Random(14)
    expected: dict[str, set[str]] = {}
    names: dict[str, str] = {}

    def add(label: str, codes: set[str], home: Path, answers: dict, started: dt.datetime,
            gaps: list[float], **kw: Any) -> str:  # fmt: skip
        who = "aida" if home == f.a else "bakyt"
        uuid = interview(home, monkeypatch, answers, started, gaps, enumerator=who, **kw)
        expected[uuid], names[label] = codes, uuid
        return uuid

    # The clean set: 13 per district, 15-35 minutes, daytime, points near the centre.
    kept: dict[str, dict] = {}
    for k in range(26):
        district = "naryn" if k % 2 else "osh"
        home = f.a if district == "naryn" else f.b
        answers = clean(rng, district, k, conflict=True if k == 1 else None)
        started = local(10 + k % 9, rng.randint(9, 16), rng.randint(0, 59))
        add(f"clean{k}", set(), home, answers, started, normal_gaps(rng))
        kept[f"clean{k}"] = answers

    # A 3-minute interview (23 answers, 7.5 s each: fast, but not speeding).
    add("fast", {"too_fast"}, f.a, clean(rng, "naryn", 100, conflict=True), local(12, 11), [7.5])
    # Most answers in a second each, a few long pauses: not too fast, but speeding.
    add("speeder", {"speeding"}, f.b, clean(rng, "osh", 101), local(12, 14),
        [1.0, 1.0, 1.0, 200.0])  # fmt: skip
    # A copy of clean1 (a conflict reported: 23 questions answered) under another
    # respondent's name: 22 of 23 answers identical (95.7%).
    copied = {**kept["clean1"], "respondent": "Someone Else"}
    add("copy", {"near_duplicate"}, f.a, copied, local(13, 10), normal_gaps(rng))
    expected[names["clean1"]] = {"near_duplicate"}
    # Same respondent, village and age as clean2, otherwise another interview.
    twin = clean(rng, "osh", 102)
    twin.update({k: kept["clean2"][k] for k in ("respondent", "village", "age")})
    add("twin", {"duplicate"}, f.b, twin, local(13, 11), normal_gaps(rng))
    expected[names["clean2"]] = {"duplicate"}
    # An age of 340.
    add("age340", {"outlier"}, f.a, {**clean(rng, "naryn", 103), "age": "340"},
        local(14, 10), normal_gaps(rng))  # fmt: skip
    # A point in Almaty for a Naryn interview (inside Kyrgyzstan's bounding box, but over
    # 200 km from the district's other points).
    almaty = {**clean(rng, "naryn", 104), "location": f"{ALMATY[0]} {ALMATY[1]}"}
    add("almaty", {"gps_far"}, f.a, almaty, local(14, 11), normal_gaps(rng))
    # Started at 03:00 local time.
    add("night", {"odd_time"}, f.b, clean(rng, "osh", 105), local(15, 3), normal_gaps(rng))
    # The laptop's clock set to before the form version (2026110101) existed.
    add("early", {"odd_time"}, f.b, clean(rng, "osh", 106),
        dt.datetime(2026, 10, 20, 5, 0, tzinfo=UTC), normal_gaps(rng))  # fmt: skip
    # Finalised two hours before it started (the clock was put back during the interview).
    add("backwards", {"odd_time"}, f.b, clean(rng, "osh", 107), local(15, 12),
        normal_gaps(rng), finalise_shift=-3 * 3600)  # fmt: skip
    # A conflict reported, then its five questions and the comment left blank.
    sparse = clean(rng, "naryn", 108, conflict=True)
    for name in ("d_parties", "d_cause", "d_months", "d_people", "d_outcome", "comment"):
        sparse.pop(name)
    add("sparse", {"many_missing"}, f.a, sparse, local(16, 10), normal_gaps(rng))

    # Edited at night in two minutes (a correction): timed as its interview, so clean.
    with Store(f.b / "yntymak.db") as store:
        clock = Clock(local(20, 3))
        monkeypatch.setattr(session_mod, "utcnow", clock.iso)
        edit = Session.edit(store, names["clean4"], lang="en", enumerator="bakyt",
                            device_id=device_id(f.b))  # fmt: skip
        step = edit.engine.first_step(edit.state)
        while step.kind != "end":
            if step.kind == "question" and step.question and step.question.name == "comment":
                clock.tick(60)
                assert edit.answer(step, "corrected after a call") is None
            step = edit.engine.next_step(edit.state, step)
        clock.tick(60)
        assert edit.finalise() == 2
        monkeypatch.undo()

    # Filled from an answers file: no timing paradata, so never a timing flag.
    answers_file = tmp_path / "answers.yaml"
    answers_file.write_text(json.dumps(clean(rng, "osh", 109)), encoding="utf-8")
    yn(f.b, "collect", FORM, "--answers", answers_file, "--enumerator", "bakyt")

    f.import_(f.bundle(f.a), f.bundle(f.b))
    return {"expected": expected, "names": names}


def checks_json(f: Field, *args: Any) -> dict[str, Any]:
    return json.loads(yn(f.hq, "hq", "checks", *args, "--json"))


def flags_by_uuid(form_report: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for flag in form_report["flags"]:
        found.setdefault(flag["uuid"], set()).add(flag["code"])
    return found


def test_each_planted_problem_is_flagged_and_nothing_else(field: Field, planted: dict):
    report = checks_json(field, "quality_survey")
    (form,) = report["forms"]
    expected = {u: c for u, c in planted["expected"].items() if c}
    assert form["submissions"] == len(planted["expected"]) + 1  # + the answers-file one
    assert flags_by_uuid(form) == expected  # every problem, and no false positive
    assert form["flagged"] == len(expected)
    counts = form["checks"]
    assert counts == {
        "too_fast": 1,
        "speeding": 1,
        "duplicate": 2,
        "near_duplicate": 2,
        "outlier": 1,
        "gps_far": 1,
        "odd_time": 3,
        "many_missing": 1,
    }
    names = planted["names"]
    by = {(f["uuid"], f["code"]): f for f in form["flags"]}
    fast = by[(names["fast"], "too_fast")]["values"]
    assert 2.5 < fast["minutes"] < 3.5 and fast["min_minutes"] == 10
    assert "below the form's minimum of 10" in by[(names["fast"], "too_fast")]["reason"]
    outlier = by[(names["age340"], "outlier")]
    assert outlier["values"]["question"] == "age" and outlier["values"]["value"] == 340
    assert outlier["values"]["district"] == "naryn" and outlier["values"]["z"] > 3.5
    far = by[(names["almaty"], "gps_far")]["values"]
    assert far["km"] > 150 and far["limit_km"] == 50
    night = by[(names["night"], "odd_time")]["values"]
    assert night["why"] == "hour" and night["local_start"].startswith("03:0")
    assert by[(names["early"], "odd_time")]["values"]["why"] == "before_version"
    assert by[(names["backwards"], "odd_time")]["values"]["why"] == "ended_before_start"
    near = by[(names["copy"], "near_duplicate")]["values"]
    assert near["with"] == names["clean1"] and near["same"] == 22 and near["compared"] == 23
    dup = by[(names["twin"], "duplicate")]["values"]
    assert dup["with"] == [names["clean2"]]
    missing = by[(names["sparse"], "many_missing")]["values"]
    assert missing == {"missing": 6, "relevant": 8}
    # Per enumerator: the share flagged and the median interview length.
    enumerators = {e["enumerator"]: e for e in form["enumerators"]}
    assert set(enumerators) == {"aida", "bakyt"}
    assert all(15 <= e["median_minutes"] <= 45 for e in enumerators.values())
    assert sum(e["submissions"] for e in enumerators.values()) == form["submissions"]
    assert sum(e["flagged"] for e in enumerators.values()) == len(expected)
    districts = {d["district"]: d for d in form["districts"]}
    assert set(districts) == {"naryn", "osh"}  # from the district question, not enrolment


def test_reading_in_processes_gives_the_same_report(
    field: Field, planted: dict, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(checks, "CHUNK", 5)  # many chunks in flight, answered in order
    serial = checks_json(field, "quality_survey", "--jobs", "1")
    parallel = checks_json(field, "quality_survey", "--jobs", "2")
    assert parallel == serial and serial["forms"][0]["flagged"] > 0


def test_slices_read_each_submission_once_when_an_edit_moves_it(field: Field, planted: dict):
    """Workers read slices fixed by uuid: an edit imported meanwhile changes a submission's
    time (the order the checks read in), yet it is read once, in the slice it was given."""
    s = hq_schema.submissions
    with hq_db(field.hq) as db:
        everyone = [r["uuid"] for r in db.iter_quality_rows("quality_survey")]
        sliced = db.quality_slices("quality_survey")
        slices = list(sliced.bounds(4))
        assert [u for part in slices for u in part] == everyone
        first, last = everyone[0], everyone[-1]
        with db.write() as conn:  # the first moves past every other, the last before them
            conn.execute(sa.update(s).where(s.c.uuid == first).values(submission_time="9999"))
            conn.execute(sa.update(s).where(s.c.uuid == last).values(submission_time="0000"))
    read = [row["uuid"] for part in slices for row in sliced.rows(part)]
    assert read == everyone  # each once, in the order the slices were cut


def test_timings_kept_at_import_give_the_report_paradata_gives(field: Field, planted: dict):
    """HQ times each interview when it imports it (hq_timings); submissions imported
    before it did are timed from their paradata at each run: the same flags either way."""
    kept = checks_json(field, "quality_survey")
    with hq_db(field.hq) as db:
        timings = db.conn.execute(sa.select(sa.func.count()).select_from(hq_schema.hq_timings))
        assert timings.scalar() == kept["forms"][0]["submissions"]
        with db.write() as conn:
            conn.execute(sa.delete(hq_schema.hq_timings))
    from_paradata = checks_json(field, "quality_survey")
    assert from_paradata == kept
    assert {"too_fast", "speeding", "odd_time"} <= {f["code"] for f in kept["forms"][0]["flags"]}


def test_filters_language_and_the_xlsx_report(field: Field, planted: dict, tmp_path: Path):
    f = field
    names = planted["names"]
    naryn = checks_json(f, "quality_survey", "--district", "naryn")["forms"][0]
    assert {d["district"] for d in naryn["districts"]} == {"naryn"}
    assert names["almaty"] in flags_by_uuid(naryn) and names["night"] not in flags_by_uuid(naryn)
    # --since: a local day of finalising (on the laptop's clock, here today's).
    every = checks_json(f, "quality_survey", "--since", "2000-01-01")["forms"][0]
    assert every["submissions"] == len(planted["expected"]) + 1
    assert checks_json(f, "quality_survey", "--since", "2999-01-01")["forms"][0]["flags"] == []
    ru = checks_json(f, "quality_survey", "--lang", "ru")["forms"][0]
    fast = next(fl for fl in ru["flags"] if fl["code"] == "too_fast")
    assert fast["reason"].startswith("активное время интервью")

    out = tmp_path / "checks.xlsx"
    text = yn(f.hq, "hq", "checks", "quality_survey", "-o", out, "--lang", "ky")
    assert "quality_survey" in text and out.exists()
    from openpyxl import load_workbook

    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames[0] == "Жыйынтык"  # the summary, in Kyrgyz
    assert len(wb.sheetnames) == 1 + len(checks.CHECKS)
    fast_sheet = wb[wb.sheetnames[1]]  # too_fast, named in Kyrgyz
    rows = list(fast_sheet.iter_rows(values_only=True))
    assert rows[0][0] == "_uuid" and rows[1][0] == names["fast"]
    assert rows[1][2] == "aida" and rows[1][3] == "naryn" and "мүн" in rows[1][4]
    with zipfile.ZipFile(out) as z:  # no formula anywhere
        assert not any(b"<f>" in z.read(n) for n in z.namelist() if n.endswith(".xml"))


def test_review_list_flagged_puts_flagged_first(field: Field, planted: dict):
    listed = json.loads(yn(field.hq, "hq", "review", "list", "--flagged", "--json"))
    flagged = [r for r in listed if r["flags"]]
    n = len([c for c in planted["expected"].values() if c])
    assert len(flagged) == n and listed[:n] == flagged  # first
    by = {r["uuid"]: r["flags"] for r in listed}
    assert by[planted["names"]["fast"]] == ["too_fast"]
    plain = yn(field.hq, "hq", "review", "list", "--flagged", env={"COLUMNS": "200"})
    assert "too_fast" in plain and "near_duplicate" in plain


def test_a_district_that_matches_nothing_is_said_plainly(field: Field, planted: dict):
    out = yn(field.hq, "hq", "checks", "quality_survey", "--district", "Naryn")
    assert "0 submission(s) checked" in out and "Nothing to check" in out
    assert checks_json(field, "quality_survey", "--district", "Naryn")["forms"][0]["flags"] == []


def test_refusals(field: Field, tmp_path: Path):
    f = field
    out = yn(f.hq, "hq", "checks", "nosuch", code=2)
    assert "nosuch" in out and "Traceback" not in out
    assert "xlsx" in yn(f.hq, "hq", "checks", "-o", tmp_path / "r.csv", code=2)
    assert "--since" in yn(f.hq, "hq", "checks", "--since", "yesterday", code=2)
    assert "--lang" in yn(f.hq, "hq", "checks", "--lang", "de", code=2)
    assert not (tmp_path / "r.csv").exists()


# -- the near-duplicate search against brute force ------------------------------------------


def test_near_duplicate_bands_find_what_brute_force_finds():
    """Every pair at >= 95% is found through the bands, none else (random vectors with
    planted near copies)."""
    rng = random.Random(7)
    n_q = 40
    vectors = []
    subs = []
    for i in range(300):
        if i % 10 == 9:  # a near copy of the previous one: 0-3 answers changed
            base = array("q", vectors[-1][1])
            for q in rng.sample(range(n_q), rng.randint(0, 3)):
                base[q] = rng.randint(1, 2**62)
            values = base
        else:
            values = array("q", (rng.randint(1, 3) if rng.random() < 0.9 else 0
                                 for _ in range(n_q)))  # fmt: skip
        data = values.tobytes()
        answered = sum(1 for v in values if v)
        vectors.append((i, data, answered))
        subs.append(checks.Submission(f"u{i:03d}", "e", "d", None))
    flags, skipped = checks._near_duplicates(subs, vectors, n_q)
    assert skipped == 0
    found = {f.uuid for f in flags}
    brute = _brute_force(subs, vectors)
    assert found == brute and len(brute) >= 20


@pytest.mark.parametrize("n_q", [39, 40, 57])
def test_near_duplicates_in_sparse_answers_are_found(n_q: int):
    """Interviews that answered only some questions (the rest skipped by relevance): a
    band may be blank in both, and the pair must still be found (bands of 19 at most)."""
    rng = random.Random(n_q)
    vectors, subs = [], []
    for i in range(200):
        if i % 8 == 7:  # a copy of the previous one, one answer changed
            values = array("q", vectors[-1][1])
            answered = [q for q in range(n_q) if values[q]]
            values[rng.choice(answered)] = rng.randint(5, 2**62)
        else:
            block = rng.sample(range(n_q), 20)  # 20 answered, in any band
            values = array("q", [0] * n_q)
            for q in block:
                values[q] = rng.randint(1, 4)
        vectors.append((i, values.tobytes(), sum(1 for v in values if v)))
        subs.append(checks.Submission(f"u{i:03d}", "e", "d", None))
    flags, _skipped = checks._near_duplicates(subs, vectors, n_q)
    found = {f.uuid for f in flags}
    brute = _brute_force(subs, vectors)
    assert found == brute and len(brute) >= 40


def _brute_force(subs: list, vectors: list[tuple[int, bytes, int]]) -> set[str]:
    """Every submission in a pair with >= 95% equal answers, comparing all pairs."""
    brute = set()
    for x in range(len(vectors)):
        for y in range(x + 1, len(vectors)):
            same, compared = checks._alike(vectors[x][1], vectors[y][1])
            if compared and same >= 0.95 * compared:
                brute |= {subs[x].uuid, subs[y].uuid}
    return brute


def _rows(answers: list[dict], district: str | None = None) -> list[dict]:
    return [
        {
            "uuid": f"00000000-0000-4000-8000-{k:012d}",
            "enumerator": "e",
            "enrolled_district": district,
            "answers": json.dumps(a),
            "paradata": None,
        }
        for k, a in enumerate(answers)
    ]


def _form(text: str) -> Any:
    from yntymak_cli.forms.loader import load_form_text

    return load_form_text(text, "t.yaml").require()


def test_many_missing_counts_questions_a_required_expression_takes_out():
    """Two questions required by an expression (and answered), four plain optional ones
    with three blank: three of four relevant optional questions are missing."""
    form = _form(
        "id: t\nversion: '1'\nchoices:\n  yn: [{name: 'yes', label: Y}, {name: 'no', label: N}]\n"
        "questions:\n"
        "  - {name: x, type: select_one yn, label: X, required: true}\n"
        "  - {name: r1, type: text, label: R1, required: \"${x} = 'yes'\"}\n"
        "  - {name: r2, type: text, label: R2, required: \"${x} = 'yes'\"}\n"
        + "".join(f"  - {{name: o{k}, type: text, label: O{k}}}\n" for k in range(4))
    )
    answers = {"x": "yes", "r1": "a", "r2": "b", "o0": "c"}
    report = checks.run_checks([form], _rows([answers]))
    assert [(f.code, f.values) for f in report.flags] == [
        ("many_missing", {"missing": 3, "relevant": 4})
    ]
    report = checks.run_checks([form], _rows([{**answers, "o1": "d"}]))
    assert report.flags == []  # two of four: not more than half


def test_points_without_a_district_are_only_checked_against_the_country():
    form = _form("id: t\nversion: '1'\nquestions:\n  - {name: where, type: geopoint, label: W}\n")
    rng = random.Random(3)
    answers = [
        {"where": f"{rng.uniform(39.5, 42.8):.4f} {rng.uniform(70, 79.5):.4f}"} for _ in range(50)
    ]
    answers.append({"where": "48.85 2.35"})  # Paris
    report = checks.run_checks([form], _rows(answers, district=None))
    assert [(f.code, f.values.get("outside")) for f in report.flags] == [("gps_far", True)]
    assert checks.run_checks([form], []).flags == []  # no submissions, no flags, no error
