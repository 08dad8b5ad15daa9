"""Progress against targets at HQ (issue 14): `hq targets set|show`, `hq status --form`,
the export's summary sheet, and `hq migrate` carrying the targets.

Submissions reach HQ through real bundles from two enrolled laptops (Aida's in kara_suu,
Bakyt's in at_bashy), on SQLite and on PostgreSQL. A targets file is hostile input: every
refusal exits 2 with FILE:LINE:COL and writes nothing.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from yntymak_cli.store import hq_schema

from .helpers import CONTRACT, Field, collect_in, rows, write_answers, yn

FORM = "village_safety"


def targets_of(f: Field) -> list[tuple[str, str, int]]:
    return [
        (r["kind"], r["name"], r["target"])
        for r in rows(f.hq, "SELECT * FROM hq_targets ORDER BY kind, name")
    ]


def csv_file(tmp: Path, content: str | bytes, name: str = "targets.csv") -> Path:
    path = tmp / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def progress(f: Field) -> dict[str, Any]:
    data = json.loads(yn(f.hq, "hq", "status", "--form", FORM, "--json"))
    return data["progress"]


def numbers(items: list[dict[str, Any]], key: str) -> list[tuple[Any, ...]]:
    return [(i[key], i["done"], i["target"], i["percent"]) for i in items]


@pytest.fixture
def collected(field: Field) -> Field:
    """Aida (kara_suu): three submissions, one voided; Bakyt (at_bashy): one. At HQ."""
    f = field
    uuids = [collect_in(f.a, f.tmp, village) for village in ("Кара-Суу", "Ош", "Ноокат")]
    yn(f.a, "submissions", "void", uuids[2], "--reason", "эки жолу жазылган")
    answers = write_answers(f.tmp / "answers-b.yaml", "Ат-Башы")
    yn(f.b, "collect", CONTRACT, "--answers", answers, "--enumerator", "bakyt")
    f.import_(f.bundle(f.a), f.bundle(f.b))
    return f


def test_targets_progress_and_replace(collected: Field) -> None:
    f = collected
    districts = csv_file(f.tmp, "district,target\nkara_suu,04\nat_bashy,1\nnaryn,3\n")
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", districts)
    assert "Set 3 district target(s) for form village_safety" in out
    # Excel's way: a BOM and `;`.
    staff = csv_file(f.tmp, "\ufeffenumerator;target\r\naida;4\r\nbakyt;1\r\nnurlan;2\r\n", "s.csv")
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", staff)
    assert "Set 3 enumerator target(s)" in out
    assert targets_of(f) == [
        ("district", "at_bashy", 1),
        ("district", "kara_suu", 4),
        ("district", "naryn", 3),
        ("enumerator", "aida", 4),
        ("enumerator", "bakyt", 1),
        ("enumerator", "nurlan", 2),
    ]
    shown = json.loads(yn(f.hq, "hq", "targets", "show", FORM, "--json"))
    assert shown["form"] == FORM and len(shown["targets"]) == 6
    assert set(shown["targets"][0]) == {"kind", "name", "target", "set_at"}

    # Done = final submissions (the void one is not); furthest behind first.
    p = progress(f)
    assert p["form"] == FORM
    assert numbers(p["districts"], "district") == [
        ("naryn", 0, 3, 0.0),
        ("kara_suu", 2, 4, 50.0),
        ("at_bashy", 1, 1, 100.0),
    ]
    assert numbers(p["enumerators"], "enumerator") == [
        ("nurlan", 0, 2, 0.0),
        ("aida", 2, 4, 50.0),
        ("bakyt", 1, 1, 100.0),
    ]
    # The rest of `hq status --json` is unchanged by --form.
    plain = json.loads(yn(f.hq, "hq", "status", "--json"))
    with_form = json.loads(yn(f.hq, "hq", "status", "--form", FORM, "--json"))
    assert "progress" not in plain and {**plain, "progress": with_form["progress"]} == with_form

    text = yn(f.hq, "hq", "status", "--form", FORM)
    assert "Progress of village_safety by district" in text
    lines = [line.split() for line in text.splitlines()]
    table = [cells for cells in lines if cells and cells[0] in ("naryn", "kara_suu", "at_bashy")]
    assert table[-3:] == [
        ["naryn", "0", "3", "0.0%"],
        ["kara_suu", "2", "4", "50.0%"],
        ["at_bashy", "1", "1", "100.0%"],
    ]
    assert ["nurlan", "0", "2", "0.0%"] in lines
    ru = yn(f.hq, "--lang", "ru", "hq", "status", "--form", FORM)
    assert "по районам" in ru and "сделано" in ru

    # A new district file replaces the district targets only; at_bashy, done without a
    # target now, comes after, without a percent.
    yn(
        f.hq,
        "hq",
        "targets",
        "set",
        FORM,
        "--file",
        csv_file(f.tmp, "district,target\nkara_suu,2\n"),
    )
    assert [t for t in targets_of(f) if t[0] == "district"] == [("district", "kara_suu", 2)]
    assert len(targets_of(f)) == 4
    p = progress(f)
    assert numbers(p["districts"], "district") == [
        ("kara_suu", 2, 2, 100.0),
        ("at_bashy", 1, None, None),
    ]
    text = yn(f.hq, "hq", "status", "--form", FORM)
    assert ["at_bashy", "1", "-", "-"] in [line.split() for line in text.splitlines()]


def test_the_summary_sheet_shows_progress_with_a_chart(collected: Field) -> None:
    from yntymak_cli.export import ExportOptions
    from yntymak_cli.export import export as run_export
    from yntymak_cli.quality.progress import export_targets

    from .helpers import hq_db

    f = collected
    yn(
        f.hq,
        "hq",
        "targets",
        "set",
        FORM,
        "--file",
        csv_file(f.tmp, "district,target\nkara_suu,4\nnaryn,3\n"),
    )
    staff = csv_file(f.tmp, "enumerator,target\naida,2\n", "staff.csv")
    yn(f.hq, "hq", "targets", "set", FORM, "--file", staff)
    out = f.tmp / "progress.xlsx"
    # As `hq export --summary` does (cli/export.py passes the targets through ExportOptions).
    with hq_db(f.hq) as db:
        targets = export_targets(db, FORM)
        assert targets is not None
        options = ExportOptions(fmt="xlsx", lang="en", summary=True, targets=targets)
        records = db.iter_records(FORM, include_void=True)
        run_export(db.form_versions(FORM), records, out, options)

    sheet = openpyxl.load_workbook(out)["summary"]
    cells = [tuple(c for c in r if c is not None) for r in sheet.iter_rows(values_only=True)]
    start = cells.index(("district", "done", "target", "percent"))
    assert cells[start + 1 : start + 4] == [
        ("naryn", 0, 3, 0),
        ("kara_suu", 2, 4, 50),
        ("at_bashy", 1),  # no target: no percent
    ]
    start = cells.index(("enumerator", "done", "target", "percent"))
    assert cells[start + 1 : start + 3] == [("aida", 2, 2, 100), ("bakyt", 1)]
    with zipfile.ZipFile(out) as z:
        charts = [n for n in z.namelist() if re.fullmatch(r"xl/charts/chart\d+\.xml", n)]
        # Element names without their namespace prefix (XlsxWriter writes <c:barChart>).
        xml = [re.sub(r"<(/?)\w+:", r"<\1", z.read(n).decode("utf-8")) for n in charts]
    progress_charts = [x for x in xml if "percent of target" in x]
    assert len(progress_charts) == 2  # districts and enumerators
    districts = progress_charts[0]
    # A bar per district with a target, its percent (column D) named in column A.
    assert "<barChart>" in districts and "percent of target by district" in districts
    assert "<f>'summary'!$D$9:$D$10</f>" in districts
    assert "<f>'summary'!$A$9:$A$10</f>" in districts

    # Without enumerator targets, no enumerator progress table.
    yn(f.hq, "hq", "targets", "set", FORM, "--file", csv_file(f.tmp, "enumerator,target\n"))
    districts_only = f.tmp / "districts.xlsx"
    with hq_db(f.hq) as db:
        options = ExportOptions(
            fmt="xlsx", lang="en", summary=True, targets=export_targets(db, FORM)
        )
        run_export(db.form_versions(FORM), db.iter_records(FORM), districts_only, options)
    sheet = openpyxl.load_workbook(districts_only)["summary"]
    heads = [tuple(c for c in r if c is not None) for r in sheet.iter_rows(values_only=True)]
    assert ("district", "done", "target", "percent") in heads
    assert ("enumerator", "done", "target", "percent") not in heads

    # Without targets, the summary sheet is as before: no progress table.
    plain = f.tmp / "plain.xlsx"
    with hq_db(f.hq) as db:
        options = ExportOptions(fmt="xlsx", lang="en", summary=True)
        run_export(db.form_versions(FORM), db.iter_records(FORM), plain, options)
    values = [
        v for r in openpyxl.load_workbook(plain)["summary"].iter_rows(values_only=True) for v in r
    ]
    assert "percent" not in values


@pytest.mark.parametrize(
    ("content", "where", "words"),
    [
        ("name,target\nkara_suu,1\n", ":1:1: ", "`district,target`"),
        ("district,goal\nkara_suu,1\n", ":1:2: ", "`district,target`"),
        ("district,target,extra\nkara_suu,1,2\n", ":1:", "header"),
        ("", ":1:1: ", "header"),
        ("district,target\nkara_suu,-1\n", ":2:2: ", "'-1' is not a whole number"),
        ("district,target\nkara_suu,1\nat_bashy,2.5\n", ":3:2: ", "'2.5'"),
        ("district,target\nkara_suu,\n", ":2:2: ", "whole number"),
        ("district,target\nkara_suu,1e3\n", ":2:2: ", "whole number"),
        ("district,target\nkara_suu,99999999999\n", ":2:2: ", "whole number"),
        ("district,target\nkara_suu," + "9" * 5000 + "\n", ":2:2: ", "whole number"),
        ("district,target\nkara_suu,1\n\nkara_suu,2\n", ":4:1: ", "first on line 2"),
        ("district,target\n ,3\n", ":2:1: ", "empty"),
        ("district,target\nkara\x1b[31msuu,3\n", ":2:1: ", "control characters"),
        ("district,target\nkara\u202esuu,3\n", ":2:1: ", "control characters"),
        ("district,target\nkara_suu,1,9\n", ":2:3: ", "two columns"),
        ('district,target\n"kara_suu,1\n', ":", "CSV"),
        (b"district,target\nkara\xff,1\n", ":2:5: ", "UTF-8"),
        ("district,target\nkara\u2028suu,3\n", ":2:1: ", "control characters"),
    ],
    ids=[
        "header-name",
        "header-goal",
        "header-3-columns",
        "empty-file",
        "negative",
        "decimal",
        "no-target",
        "exponent",
        "too-big",
        "thousands-of-digits",
        "duplicate",
        "no-name",
        "ansi-escape",
        "bidi",
        "extra-cell",
        "open-quote",
        "not-utf8",
        "line-separator",
    ],
)
def test_a_bad_file_is_refused_with_its_place_and_nothing_written(
    collected: Field, content: str | bytes, where: str, words: str
) -> None:
    f = collected
    yn(
        f.hq,
        "hq",
        "targets",
        "set",
        FORM,
        "--file",
        csv_file(f.tmp, "district,target\nosh,5\n", "ok.csv"),
    )
    bad = csv_file(f.tmp, content)
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", bad, code=2)
    assert len(out.strip().splitlines()) == 1, out
    assert out.startswith(f"{bad}{where}") and words in out, out
    assert "Traceback" not in out
    assert targets_of(f) == [("district", "osh", 5)]


def test_size_rows_and_form_are_bounded(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Кара-Суу")
    f.import_(f.bundle(f.a))
    big = csv_file(f.tmp, "district,target\n" + "x,1\n" * 300_000)
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", big, code=2)
    assert f"{big}:1:1: " in out and "1024 KiB" in out
    many = csv_file(f.tmp, "district,target\n" + "".join(f"d{i},1\n" for i in range(10_001)))
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", many, code=2)
    assert f"{many}:10002:1: " in out and "more than 10000" in out
    good = csv_file(f.tmp, "district,target\nkara_suu,1\n", "good.csv")
    out = yn(f.hq, "hq", "targets", "set", "no_such_form", "--file", good, code=2)
    assert "no form 'no_such_form' at HQ (known: village_safety)" in out
    out = yn(f.hq, "hq", "status", "--form", "no_such_form", code=2)
    assert "known: village_safety" in out
    out = yn(f.hq, "hq", "targets", "set", FORM, "--file", f.tmp / "missing.csv", code=2)
    assert "missing.csv" in out and "Traceback" not in out
    assert targets_of(f) == []
    # A header alone clears that kind's targets.
    yn(f.hq, "hq", "targets", "set", FORM, "--file", good)
    yn(f.hq, "hq", "targets", "set", FORM, "--file", csv_file(f.tmp, "district,target\n", "e.csv"))
    assert targets_of(f) == []
    assert "No targets set" in yn(f.hq, "hq", "targets", "show", FORM)


def test_names_are_printed_as_text_not_markup(field: Field) -> None:
    f = field
    collect_in(f.a, f.tmp, "Кара-Суу")
    f.import_(f.bundle(f.a))
    yn(
        f.hq,
        "hq",
        "targets",
        "set",
        FORM,
        "--file",
        csv_file(f.tmp, "district,target\n[red]x[/red],2\n"),
    )
    assert "[red]x[/red]" in yn(f.hq, "hq", "status", "--form", FORM)
    assert "[red]x[/red]" in yn(f.hq, "hq", "targets", "show", FORM)


def test_the_district_question_of_the_newest_version_wins() -> None:
    from yntymak_cli.quality.progress import Tally, Targets

    targets = Targets(FORM, "district", {"dev-a": "kara_suu"}, {"at_bashy": 2}, {})
    tally = Tally(targets)
    tally.add("aida", "dev-a", {"district": "at_bashy"})
    tally.add("aida", "dev-a", {})  # unanswered: the laptop's enrolled district
    tally.add("aida", "dev-x", None)  # an unknown device: no district
    result = tally.progress()
    assert [(r.name, r.done, r.target, r.percent) for r in result.districts] == [
        ("at_bashy", 1, 2, 50.0),
        ("", 1, None, None),
        ("kara_suu", 1, None, None),
    ]


# -- the schema on both engines -------------------------------------------------------------

sqlite_field = pytest.mark.parametrize("hq_backend", ["sqlite"], indirect=True)


@sqlite_field
def test_hq_migrate_carries_the_targets(field: Field, pg_server: Any) -> None:
    f = field
    collect_in(f.a, f.tmp, "Кара-Суу")
    f.import_(f.bundle(f.a))
    yn(
        f.hq,
        "hq",
        "targets",
        "set",
        FORM,
        "--file",
        csv_file(f.tmp, "district,target\nkara_suu,4\n"),
    )
    before = progress(f)
    url = pg_server.new_database()
    out = yn(f.hq, "hq", "migrate", "--to", url)
    assert "hq_targets: 1 row(s)" in out
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            got = conn.execute(sa.select(hq_schema.hq_targets)).all()
    finally:
        engine.dispose()
    assert [(r.kind, r.name, r.target) for r in got] == [("district", "kara_suu", 4)]
    after = json.loads(
        yn(f.hq, "hq", "status", "--form", FORM, "--json", env={"YNTYMAK_HQ_DB": url})
    )
    assert (
        after["progress"]
        == before
        == {
            "form": FORM,
            "districts": [{"district": "kara_suu", "done": 1, "target": 4, "percent": 25.0}],
            "enumerators": [{"enumerator": "aida", "done": 1, "target": None, "percent": None}],
        }
    )


def test_a_postgresql_hq_from_before_targets_gets_the_table(pg_server: Any) -> None:
    from yntymak_cli.store import hqdb
    from yntymak_cli.store.hqdb import HqDb

    url = hqdb.check_url(pg_server.new_database())
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:  # as pg_001_hq left a database before this change
            conn.exec_driver_sql(
                "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            hq_schema._pg_001_hq(conn)
            conn.exec_driver_sql("INSERT INTO _migrations VALUES ('pg_001_hq', now())")
            assert not sa.inspect(conn).has_table("hq_targets")
        with HqDb.postgres(url) as db:
            assert (
                db.conn.execute(
                    sa.select(sa.func.count()).select_from(hq_schema.hq_targets)
                ).scalar()
                == 0
            )
        with engine.connect() as conn:
            done = set(conn.exec_driver_sql("SELECT name FROM _migrations").scalars())
            steps = ("pg_001_hq", "pg_002_targets", "pg_003_timings", "pg_004_submission_ids",
                     "pg_005_hq_media")  # fmt: skip
            assert done == set(steps)
    finally:
        engine.dispose()
        for pooled in hqdb._ENGINES.values():
            pooled.dispose()
        hqdb._ENGINES.clear()


def test_a_postgresql_hq_from_before_ids_numbers_its_submissions(pg_server: Any) -> None:
    """pg_004_submission_ids on a database whose pg_001 made no id column: existing
    submissions are numbered in the order they were finalised, new ones go on after."""
    from yntymak_cli.store import hqdb
    from yntymak_cli.store.hqdb import HqDb

    url = hqdb.check_url(pg_server.new_database())
    engine = sa.create_engine(url)
    s = hq_schema.submissions
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            hq_schema._pg_001_hq(conn)
            conn.exec_driver_sql("ALTER TABLE submissions DROP COLUMN id")  # as it was
            for step in ("pg_001_hq", "pg_002_targets", "pg_003_timings"):
                conn.exec_driver_sql(f"INSERT INTO _migrations VALUES ('{step}', now())")
            hq_schema.hq_targets.create(conn)
            hq_schema.hq_timings.create(conn)
            form = {"hash": "h", "form_id": "f", "version": "1", "definition": "{}"}
            conn.execute(sa.insert(hq_schema.forms).values(**form, registered_at="t"))
            rows = [("u3", "2026-11-03"), ("u1", "2026-11-01"), ("u2", "2026-11-02")]
            for uuid, when in rows:  # inserted out of order, then updated (moved on disk)
                conn.execute(sa.insert(s).values(
                    uuid=uuid, form_id="f", form_version="1", form_hash="h", status="final",
                    created_at="t", updated_at="t", submission_time=when))  # fmt: skip
            conn.execute(sa.update(s).where(s.c.uuid == "u1").values(updated_at="t2"))
        with HqDb.postgres(url) as db, db.write() as conn:
            conn.execute(sa.insert(s).values(
                uuid="u4", form_id="f", form_version="1", form_hash="h", status="final",
                created_at="t", updated_at="t", submission_time="2026-11-04"))  # fmt: skip
        with engine.connect() as conn:
            got = list(conn.execute(sa.select(s.c.uuid, s.c.id).order_by(s.c.id)))
        assert [tuple(r) for r in got] == [("u1", 1), ("u2", 2), ("u3", 3), ("u4", 4)]
    finally:
        engine.dispose()
        for pooled in hqdb._ENGINES.values():
            pooled.dispose()
        hqdb._ENGINES.clear()
