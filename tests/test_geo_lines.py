"""geotrace and geoshape questions (issue 16): typed points with geopoint's decimal-comma
rules, shapes closed automatically, ODK's stored text, HQ's check of incoming answers,
and the exports (text columns, SPSS/Stata strings, `--format geojson`)."""

from __future__ import annotations

import csv
import json
import re
import sys
import uuid as uuid_mod
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yntymak_cli.cli import app
from yntymak_cli.forms.geo import BadGeo, read_points
from yntymak_cli.forms.odk_functions import area
from yntymak_cli.forms.values import InvalidValue, read_geo_line

from .helpers import UUID, Field, collect, open_genuine, resign, rows, runner, show, yn

FORM = """\
id: plots
version: "1"
title: {ky: Жер тилкелери, ru: Участки, en: Plots}
languages: [ky, ru, en]
default_language: en
questions:
  - {name: village, type: text, label: {ky: Айыл, ru: Село, en: Village}}
  - {name: well, type: geopoint, label: {ky: Кудук, ru: Колодец, en: Well}}
  - {name: road, type: geotrace, label: {ky: Жол, ru: Дорога, en: Road}}
  - {name: plot, type: geoshape, label: {ky: Тилке, ru: Участок, en: Plot}, required: true}
  - {name: plot_m2, type: calculate, calculation: "area(${plot})"}
  - name: visits
    type: repeat
    label: {ky: Баруу, ru: Посещение, en: Visit}
    questions:
      - {name: where, type: geoshape, label: {ky: Кайда, ru: Где, en: Where}}
"""

ANSWERS = """\
village: Ак-Суу
well: 42,87 74,59
road: 42,87 74,59 1200 5; 42,88 74,60 1210 4;
plot: 42.87 74.59; 42.88 74.59; 42.88 74.60
visits:
  - where: [[42.1, 74.1], "42,2 74,1", "42.2 74.2", [42.1, 74.1]]
"""
PLOT = "42.87 74.59;42.88 74.59;42.88 74.6;42.87 74.59"  # closed: the first point added
WHERE = "42.1 74.1;42.2 74.1;42.2 74.2;42.1 74.1"


def write(tmp_path: Path, text: str, name: str = "answers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def plots(tmp_path: Path) -> Path:
    return write(tmp_path, FORM, "plots.yaml")


def collect_plots(plots: Path, tmp_path: Path, answers: str = ANSWERS) -> str:
    result = collect(plots, "--answers", write(tmp_path, answers), "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


# -- reading what was typed ------------------------------------------------------------


def test_collect_answers_stores_odk_text_and_feeds_area(plots: Path, tmp_path: Path) -> None:
    answers = show(collect_plots(plots, tmp_path))["answers"]
    assert answers["well"] == "42.87 74.59"
    assert answers["road"] == "42.87 74.59 1200 5;42.88 74.6 1210 4"
    assert answers["plot"] == PLOT
    assert answers["visits"] == [{"where": WHERE}]  # given closed: kept as is
    # The calculate reads the stored shape as ODK's area() does (about 453,000 m²).
    assert answers["plot_m2"] == pytest.approx(area(PLOT))
    assert 400_000 < answers["plot_m2"] < 500_000


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("road: 42.87 74.59", "road: a line needs at least 2 points"),
        ("plot: 42.87 74.59; 42.88 74.60", "plot: a shape needs at least 3 different points"),
        # closed, but only two distinct points
        ("plot: 42.87 74.59; 42.88 74.60; 42.87 74.59", "plot: a shape needs at least 3"),
        ("road: 42.87 74.59; 91 74.60", "road: point 2: latitude must be between -90 and 90"),
        ("road: 42.87 181; 42 74", "road: point 1: longitude must be between -180 and 180"),
        ("road: 42,87,74,59; 42.88 74.60", "road: point 1: can be read more than one way"),
        ("road: 42,87 74,59 1 200; 42 74", "road: point 1: can be read more than one way"),
        ("road: 42.87 74.59;; 42.88 74.60", "road: point 2: must be 'latitude longitude"),
        # one point's numbers, not a list of points (YAML scalars are read as typed)
        ("road: [42.87, 74.59]", "road: point 1: must be 'latitude longitude"),
        ('road: ["42 74; 43 75"]', "road: must be points 'latitude longitude' separated"),
    ],
)
def test_refused_traces_and_shapes_name_file_line_and_question(
    plots: Path, tmp_path: Path, line: str, expected: str
) -> None:
    key = line.split(":")[0]
    kept = [x for x in ANSWERS.splitlines() if not x.startswith(f"{key}:")]
    path = write(tmp_path, "\n".join([*kept, line]) + "\n")
    result = collect(plots, "--answers", path, "--lang", "en", "--enumerator", "Aida")
    assert result.exit_code == 2, result.output
    first = result.stderr.strip().splitlines()[0].removeprefix("Error: ")
    assert first.startswith(f"{path}:{len(kept) + 1}: {expected}"), result.stderr
    assert "Traceback" not in result.output
    assert json.loads(runner.invoke(app, ["submissions", "list", "--json"]).stdout) == []


def test_refusals_are_worded_in_kyrgyz_and_russian() -> None:
    with pytest.raises(InvalidValue) as caught:
        read_geo_line("geoshape", "42.87 74.59; 91 74.60; 42 75")
    assert caught.value.message("ru") == "точка 2: широта должна быть от -90 до 90"
    assert caught.value.message("ky") == "2-чекит: кеңдик -90дон 90го чейин болушу керек"


def test_too_many_points_are_refused_before_they_are_read() -> None:
    text = "; ".join(f"42.{i:05d} 74.5" for i in range(10_001))
    with pytest.raises(InvalidValue) as caught:
        read_geo_line("geotrace", text)
    assert caught.value.key == "too_many_points"
    assert read_geo_line("geotrace", text.rsplit(";", 1)[0]).text.count(";") == 9_999


coordinates = st.tuples(
    st.decimals(-90, 90, places=5, allow_nan=False),
    st.decimals(-180, 180, places=5, allow_nan=False),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(coordinates, min_size=3, max_size=8, unique=True), st.booleans())
def test_typed_with_decimal_commas_reads_back_as_the_stored_shape(
    points: list[tuple[Any, Any]], comma: bool
) -> None:
    """Typed the Kyrgyz/Russian way or with points, a shape stores the same text, which
    HQ's strict reader (forms/geo.py) reads back as those points, closed."""
    typed = "; ".join(f"{lat:f} {lon:f}" for lat, lon in points)
    if comma:
        typed = typed.replace(".", ",")
    stored = read_geo_line("geoshape", typed)
    assert stored.closed_here
    back = read_points("geoshape", stored.text)
    expected = [(float(lat), float(lon)) for lat, lon in points]
    if len({p for p in expected}) < 3:
        return
    assert back == [*expected, expected[0]]
    assert read_geo_line("geoshape", stored.text) == type(stored)(stored.text, False)


@pytest.mark.parametrize(
    ("base", "text", "why"),
    [
        ("geotrace", "42.87 74.59", "at least 2 points"),
        ("geoshape", "42 74;43 74;43 75", "must end with its first point"),
        ("geoshape", "42 74;43 74;42 74", "at least 3 distinct points"),
        ("geotrace", "42 74; 43 75", "2 to 4 numbers"),  # not the stored form
        ("geotrace", "42 74;nan 75", "2 to 4 numbers"),
        ("geotrace", "42 74;4_3 75", "2 to 4 numbers"),
        ("geotrace", "42 74;1e+999 75", "out of range"),
        ("geotrace", "42 74;43 75 1 -2", "out of range"),
        ("geotrace", ";".join(["42 74"] * 10_001), "more than 10000 points"),
        ("geotrace", "4" * 1_000_001, "above the limit of 1000000"),
    ],
)
def test_strict_reading_of_stored_text(base: str, text: str, why: str) -> None:
    with pytest.raises(BadGeo, match=why):
        read_points(base, text)


# -- a real terminal -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_interactive_geoshape_is_closed_with_a_notice(plots: Path, yntymak_home: Path) -> None:
    pytest.importorskip("pexpect")
    from .helpers import ENTER, Term

    t = Term(yntymak_home, "collect", str(plots), "--lang", "ru", "--enumerator", "Aida")
    uuid = t.expect(rf"({UUID})")[1]
    t.answer("Село", "Ак-Суу" + ENTER)
    t.answer("Колодец", ENTER)  # optional
    t.answer("Дорога", ENTER)
    t.prompt("Участок")
    assert "широта долгота; … (от 3 точек)" in t.text  # the format hint, in Russian
    t.child.send("42,87 74,59; 42,88 74,59" + ENTER)  # two points: refused, asked again
    t.expect("в контуре должно быть не меньше 3 разных точек")
    t.child.send("; 42,88 74,60" + ENTER)  # the typed text stays: a third point added
    t.expect("Контур замкнут автоматически: первая точка добавлена в конец")
    t.answer("Посещение", "\x1b[B" + ENTER)  # no visit
    t.expect("Завершить")
    t.child.send(ENTER)
    assert t.finish() == 0
    assert show(uuid)["answers"]["plot"] == PLOT


# -- exports ---------------------------------------------------------------------------


def test_xlsx_and_csv_hold_the_text(plots: Path, tmp_path: Path) -> None:
    import openpyxl

    collect_plots(plots, tmp_path)
    out = tmp_path / "out"
    assert runner.invoke(app, ["export", "plots", "-o", f"{out}/"]).exit_code == 0
    with (out / "plots.csv").open(encoding="utf-8-sig", newline="") as f:
        [row] = list(csv.DictReader(f))
    assert row["road"] == "42.87 74.59 1200 5;42.88 74.6 1210 4"
    assert row["plot"] == PLOT
    assert "_plot_latitude" not in row  # one column: lines have no parts
    with (out / "visits.csv").open(encoding="utf-8-sig", newline="") as f:
        assert [r["visits/where"] for r in csv.DictReader(f)] == [WHERE]
    assert runner.invoke(app, ["export", "plots", "-o", str(tmp_path / "p.xlsx")]).exit_code == 0
    sheet = openpyxl.load_workbook(tmp_path / "p.xlsx", read_only=True).worksheets[0]
    header, values = list(sheet.iter_rows(min_row=1, max_row=2, values_only=True))
    assert values[header.index("plot")] == PLOT


def test_json_export_writes_geometry_that_reads_back_exactly(plots: Path, tmp_path: Path) -> None:
    """JSON holds a trace or shape as GeoJSON geometry, every altitude and accuracy kept
    (accuracies in a foreign member), and an answers file made of it stores the same text."""
    collect_plots(plots, tmp_path)
    out = tmp_path / "p.json"
    assert runner.invoke(app, ["export", "plots", "-o", str(out)]).exit_code == 0
    [item] = json.loads(out.read_text(encoding="utf-8"))["submissions"]
    answers = item["answers"]
    assert answers["plot"] == {
        "type": "Polygon",
        "coordinates": [[[74.59, 42.87], [74.59, 42.88], [74.6, 42.88], [74.59, 42.87]]],
    }
    assert answers["road"] == {
        "type": "LineString",
        "coordinates": [[74.59, 42.87, 1200.0], [74.6, 42.88, 1210.0]],
        "accuracy": [5.0, 4.0],
    }
    assert answers["visits"][0]["where"]["type"] == "Polygon"
    assert answers["well"] == "42.87 74.59"  # a geopoint stays text, as in every export
    geojson = pytest.importorskip("geojson")
    for geometry in (answers["plot"], answers["road"]):
        assert geojson.GeoJSON.to_instance(geometry, strict=True).is_valid
    typed = {k: v for k, v in answers.items() if k != "plot_m2"}  # calculated
    back = show(collect_plots(plots, tmp_path, json.dumps(typed, ensure_ascii=False)))
    first = show(item["uuid"])
    assert back["answers"] == first["answers"]  # the stored text, altitudes and accuracies
    # JSON Lines the same.
    assert runner.invoke(app, ["export", "plots", "-o", str(tmp_path / "p.jsonl")]).exit_code == 0
    lines = (tmp_path / "p.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0])["answers"]["road"] == answers["road"]


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "LineString", "coordinates": [[74.59, 42.87], [74.6, 42.88]]},  # not a shape
        {"type": "Polygon", "coordinates": [[[74, 42], [74, 43], [75, 43], [74, 42]]] * 2},
        {"type": "Polygon", "coordinates": [[[74, 42], [74, 43], [75, 43]]], "extra": 1},
        {"type": "Polygon", "coordinates": [[[74, 42], [74, 43], [75]]]},
        {"type": "Polygon", "coordinates": [[[74, 42], [74, 43], [75, 43]]], "accuracy": [1]},
        {"type": "Polygon", "coordinates": [[[74, 42], [74, 43], [75, 43]]], "accuracy": 5},
        {"type": "Polygon", "coordinates": "74 42"},
    ],
)
def test_a_geometry_that_is_not_the_questions_is_refused(
    plots: Path, tmp_path: Path, geometry: dict[str, Any]
) -> None:
    text = json.dumps({"village": "x", "plot": geometry})
    result = collect(plots, "--answers", write(tmp_path, text, "a.json"), "--enumerator", "A")
    assert result.exit_code == 2
    assert "a.json" in result.stderr and "plot" in result.stderr
    assert "GeoJSON Polygon" in result.stderr or "too many" in result.stderr
    assert json.loads(runner.invoke(app, ["submissions", "list", "--json"]).stdout) == []


def test_a_geometry_with_too_many_points_is_refused_before_it_is_walked() -> None:
    ring = [[74.0, 42.0]] * 10_002
    with pytest.raises(InvalidValue) as refused:
        read_geo_line("geoshape", {"type": "Polygon", "coordinates": [ring]})
    assert refused.value.key == "too_many_points"


@pytest.mark.parametrize("fmt", ["sav", "dta"])
def test_spss_and_stata_keep_lines_as_strings(plots: Path, tmp_path: Path, fmt: str) -> None:
    pyreadstat = pytest.importorskip("pyreadstat")
    collect_plots(plots, tmp_path)
    out = tmp_path / "stats"
    result = runner.invoke(app, ["export", "plots", "--format", fmt, "-o", f"{out}/"])
    assert result.exit_code == 0, result.output
    read = pyreadstat.read_sav if fmt == "sav" else pyreadstat.read_dta
    df, _ = read(out / f"plots.{fmt}")
    assert list(df["plot"]) == [PLOT] and list(df["road"]) == [
        "42.87 74.59 1200 5;42.88 74.6 1210 4"
    ]
    with (out / "_variables.csv").open(encoding="utf-8-sig", newline="") as f:
        kinds = {r["name"]: r["type"] for r in csv.DictReader(f)}
    assert (kinds["road"], kinds["plot"], kinds["where"]) == ("string", "string", "string")


def validated(path: Path) -> dict[str, Any]:
    """The file read by the `geojson` library, which checks it against RFC 7946."""
    geojson = pytest.importorskip("geojson")
    collection = geojson.loads(path.read_text(encoding="utf-8"))
    assert isinstance(collection, geojson.FeatureCollection)
    assert collection.is_valid, collection.errors()
    for feature in collection["features"]:
        assert feature.is_valid and feature["geometry"].is_valid, feature.errors()
    return json.loads(path.read_text(encoding="utf-8"))


def test_geojson_export_one_feature_per_geo_answer(plots: Path, tmp_path: Path) -> None:
    first = collect_plots(plots, tmp_path)
    second = collect_plots(plots, tmp_path, ANSWERS.replace("well: 42,87 74,59\n", ""))
    out = tmp_path / "plots.geojson"
    result = runner.invoke(app, ["--lang", "en", "export", "plots", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 submission(s)" in result.stdout
    data = validated(out)
    assert data["type"] == "FeatureCollection"
    features = {
        (f["properties"]["_uuid"], f["properties"]["question"]): f for f in data["features"]
    }
    assert sorted(q for u, q in features if u == first) == [
        "plot",
        "road",
        "visits[1]/where",
        "well",
    ]
    assert sorted(q for u, q in features if u == second) == ["plot", "road", "visits[1]/where"]
    well = features[first, "well"]
    assert well["geometry"] == {"type": "Point", "coordinates": [74.59, 42.87]}
    road = features[first, "road"]["geometry"]  # [lon, lat, alt]: a position has no accuracy
    assert road == {
        "type": "LineString",
        "coordinates": [[74.59, 42.87, 1200], [74.6, 42.88, 1210]],
    }
    ring = features[first, "plot"]["geometry"]["coordinates"][0]
    assert features[first, "plot"]["geometry"]["type"] == "Polygon"
    assert ring[0] == ring[-1] == [74.59, 42.87] and len(ring) == 4
    props = features[first, "visits[1]/where"]["properties"]
    record = show(first)
    assert props == {
        "_uuid": first,
        "_id": props["_id"],
        "question": "visits[1]/where",
        "_submission_time": record["submission_time"],
        "_enumerator": "Aida",
        "_form_version": "1",
    }
    assert isinstance(props["_id"], int)
    # A re-export replaces its own earlier file; --paradata has nothing to add here.
    assert runner.invoke(app, ["export", "plots", "-o", str(out)]).exit_code == 0
    again = runner.invoke(app, ["--lang", "en", "export", "plots", "-o", str(out), "--paradata"])
    assert again.exit_code == 2 and "--format geojson" in again.stderr


def test_geojson_leaves_out_sensitive_and_unreadable_answers(load, tmp_path: Path) -> None:
    from yntymak_cli.export import ExportOptions, export

    form = load(
        """
        id: p
        version: "1"
        title: P
        questions:
          - {name: home, type: geopoint, label: Home, sensitive: true}
          - {name: road, type: geotrace, label: Road}
        """
    )
    records = [
        {"uuid": "a", "answers": {"home": "42 74", "road": "42 74;43 75"}},
        {"uuid": "b", "answers": {"road": "hand-edited"}},  # an old or edited record
        {"uuid": "c", "answers": ["odd"]},
    ]
    out = tmp_path / "p.geojson"
    result = export([form], records, out, ExportOptions("geojson", no_sensitive=True))
    assert (result.submissions, result.rows) == (3, {"p": 1})
    assert result.warnings and "1 geo answers" in result.warnings[0]
    [feature] = validated(out)["features"]
    assert feature["properties"]["question"] == "road" and "_id" not in feature["properties"]
    assert not list(tmp_path.glob("*.part"))


def test_geojson_refuses_to_overwrite_what_it_did_not_write(plots: Path, tmp_path: Path) -> None:
    collect_plots(plots, tmp_path)
    out = tmp_path / "map.geojson"
    out.write_text('{"type": "FeatureCollection", "features": []}\n', encoding="utf-8")
    result = runner.invoke(app, ["--lang", "en", "export", "plots", "-o", str(out)])
    assert result.exit_code == 2 and "GeoJSON export" in result.stderr
    assert out.read_text(encoding="utf-8").startswith('{"type": "FeatureCollection", "features"')


# -- HQ --------------------------------------------------------------------------------


def _hq_collect(f: Field, plots: Path) -> str:
    answers = write(f.tmp, ANSWERS, "plots-answers.yaml")
    out = yn(f.a, "collect", plots, "--answers", answers, "--enumerator", "Aida")
    return out.strip().splitlines()[-1]


@pytest.mark.slow
def test_hq_imports_a_geoshape_and_exports_it(field: Field, plots: Path) -> None:
    uid = _hq_collect(field, plots)
    assert "1 new" in field.import_(field.bundle(field.a))
    [stored] = rows(field.hq, "SELECT uuid FROM submissions")
    assert stored["uuid"] == uid
    out = field.tmp / "hq.geojson"
    yn(field.hq, "hq", "export", "plots", "-o", str(out))
    shapes = [f for f in validated(out)["features"] if f["properties"]["question"] == "plot"]
    assert [s["geometry"]["coordinates"][0][0] for s in shapes] == [[74.59, 42.87]]


HOSTILE = {
    "open_shape": ("plot", "42 74;43 74;43 75"),
    "two_corners": ("plot", "42 74;43 74;42 74"),
    "not_text": ("plot", [[42, 74], [43, 74], [43, 75], [42, 74]]),
    "spaced": ("road", "42 74; 43 75"),
    "nan": ("road", "42 74;nan 75"),
    "too_many": ("road", ";".join(["42 74"] * 10_001)),
    "out_of_range": ("visits", [{"where": "42 74;43 74;43 200;42 74"}]),
}


@pytest.mark.slow
def test_hq_refuses_hostile_geo_answers(field: Field, plots: Path) -> None:
    from yntymak_cli.sync.hq import revision_hash

    _hq_collect(field, plots)
    assert open_genuine(field, field.a)[1]["submissions"][0]["answers"]["plot"] == PLOT

    def poison(records: list[dict]) -> None:
        good = records[0]
        for name, (key, value) in HOSTILE.items():
            rec = json.loads(json.dumps(good))
            rec["uuid"] = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, f"geo-{name}"))
            rec["answers"][key] = value
            rec["hash"] = revision_hash(rec)
            records.append(rec)

    bundle = resign(field, field.a, poison, "poison.ykb")
    out = field.import_(bundle, code=2)
    assert f"1 new, 0 updated, 0 unchanged, {len(HOSTILE)} refused" in out
    reasons = {
        "open_shape": "answer plot: a geoshape must end with its first point",
        "two_corners": "answer plot: a geoshape needs at least 3 distinct points",
        "not_text": "answer plot: a geoshape answer must be text",
        "spaced": "answer road: a point must be 2 to 4 numbers separated by one space",
        "nan": "answer road: a point must be 2 to 4 numbers",
        "too_many": "answer road: more than 10000 points",
        "out_of_range": "answer visits[0]/where: a point is out of range",
    }
    for name, reason in reasons.items():
        uid = str(uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, f"geo-{name}"))
        line = next((x for x in out.splitlines() if f"refused {uid} revision 1:" in x), "")
        assert reason in line, (name, out)
    assert len(rows(field.hq, "SELECT uuid FROM submissions")) == 1
    assert "Traceback" not in out
    # A reader in Russian sees the reason in Russian (sync/reasons.py).
    ru = yn(field.hq, "--lang", "ru", "hq", "import", bundle, "--receipts", field.receipts, code=2)
    assert re.search(r"контур \(geoshape\) должен заканчиваться своей первой точкой", ru), ru


def test_programme_form_asks_the_disputed_area_of_a_land_incident() -> None:
    from .conftest import DATA, FORMS

    result = collect(
        FORMS / "conflict_analysis.yaml",
        "--answers",
        DATA / "answers" / "conflict_analysis.yaml",
        "--enumerator",
        "Bakyt",
    )
    assert result.exit_code == 0, result.output
    record = show(result.stdout.strip().splitlines()[-1])
    assert record["form_version"] == "2026-11-30.2"
    water, land = record["answers"]["incidents"]
    assert "disputed_area" not in water  # optional: not answered for that incident
    assert land["disputed_area"] == (
        "40.631 72.812;40.634 72.812;40.634 72.818;40.631 72.818;40.631 72.812"
    )


def test_csv_export_reads_back_through_bulk_answers(make_form, tmp_path: Path) -> None:
    """collect/bulk.py takes a geotrace/geoshape column as the export writes it, one text
    cell; typed by hand with decimal commas in a sheet, it is read as a prompt reads it."""
    form = make_form(
        """
        id: fields
        version: "1"
        questions:
          - {name: road, type: geotrace, label: Road}
          - {name: plot, type: geoshape, label: Plot}
        """
    )
    sheet = tmp_path / "typed.csv"
    sheet.write_text(
        'road,plot\n"42,87 74,59; 42,88 74,60","42.87 74.59; 42.88 74.59; 42.88 74.60"\n',
        encoding="utf-8",
    )
    result = collect(form, "--answers", sheet, "--enumerator", "Aida")
    assert result.exit_code == 0, result.output
    out = tmp_path / "fields.csv"
    assert runner.invoke(app, ["export", "fields", "-o", str(out)]).exit_code == 0
    again = collect(form, "--answers", out, "--enumerator", "Aida")
    assert again.exit_code == 0, again.output
    first, second = (
        show(line)["answers"] for line in (result.stdout.split()[-1], again.stdout.split()[-1])
    )
    assert first == second == {"road": "42.87 74.59;42.88 74.6", "plot": PLOT}
