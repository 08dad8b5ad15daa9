"""pulldata() from a CSV beside the form, last() and indexed-repeat() inside repeats:
through the loader, the engine, `forms validate` and `collect --answers`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from yntymak_cli.engine.fill import fill
from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms.loader import load_form

from .helpers import rows, yn

PD = "pulldata('villages', '{}', 'village', ${{village}})"
FORM = """\
id: pd
version: '1'
questions:
  - {name: village, type: text, label: Village}
  - {name: district, type: calculate, calculation: "PD_district"}
  - {name: population, type: calculate, calculation: "PD_population"}
  - name: people
    type: repeat
    label: People
    questions:
      - {name: person, type: text, label: Name}
      - {name: pos, type: calculate, calculation: "concat(position(..), '/', last())"}
      - {name: first_person, type: calculate, calculation: "IR(1)"}
  - {name: second, type: calculate, calculation: "IR(2)"}
  - {name: tenth, type: calculate, calculation: "IR(10)"}
"""
FORM = (
    FORM.replace("PD_district", PD.format("district"))
    .replace("PD_population", PD.format("population"))
    .replace("IR(", "indexed-repeat(${person}, ${people}, ")
)

CSV = "village,district,population\nКара-Суу,kara_suu,23000\nНарын,naryn,41000\nКара-Суу,other,1\n"


def _form_dir(tmp: Path, csv_in: str = ".") -> Path:
    folder = tmp / "forms"
    (folder / csv_in).mkdir(parents=True, exist_ok=True)
    (folder / csv_in / "villages.csv").write_text(CSV, encoding="utf-8")
    path = folder / "pd.yaml"
    path.write_text(FORM, encoding="utf-8")
    return path


def _filled(path: Path, answers: dict) -> dict:
    form = load_form(path).require()
    record, problems = fill(Engine(form), answers)
    assert not problems, problems
    assert record is not None
    return record


def test_pulldata_reads_the_csv_beside_the_form_first_row_wins(tmp_path: Path) -> None:
    answers = {"village": "Кара-Суу", "people": [{"person": "Aida"}]}
    record = _filled(_form_dir(tmp_path), answers)
    assert record["district"] == "kara_suu"  # the first row with that key
    assert record["population"] == "23000"
    record = _filled(_form_dir(tmp_path), {**answers, "village": "Ош"})
    assert "district" not in record and "population" not in record  # no row: empty


def test_the_table_is_part_of_the_definition(tmp_path: Path) -> None:
    path = _form_dir(tmp_path, "choices")  # also found in choices/ beside the form
    form = load_form(path).require()
    assert form.pulldata["villages"][1] == {
        "village": "Нарын",
        "district": "naryn",
        "population": "41000",
    }
    before = form.definition_hash()
    (path.parent / "choices" / "villages.csv").write_text(CSV + "Ош,osh,1\n", encoding="utf-8")
    assert load_form(path).require().definition_hash() != before


def test_last_position_and_indexed_repeat(tmp_path: Path) -> None:
    people = [{"person": "Aida"}, {"person": "Bakyt"}, {"person": "Cholpon"}]
    record = _filled(_form_dir(tmp_path), {"village": "Нарын", "people": people})
    assert [p["pos"] for p in record["people"]] == ["1/3", "2/3", "3/3"]
    assert {p["first_person"] for p in record["people"]} == {"Aida"}
    assert record["second"] == "Bakyt"
    assert "tenth" not in record  # no tenth person: empty, not an error


def test_a_missing_or_bad_table_is_a_located_form_error(tmp_path: Path) -> None:
    path = tmp_path / "pd.yaml"
    path.write_text(FORM, encoding="utf-8")
    out = yn(tmp_path, "forms", "validate", path, code=2)
    assert f"{path}:5:" in out and "villages.csv" in out, out
    assert out.count("villages.csv") == 1, out  # once per table, not per call
    (tmp_path / "villages.csv").write_text(",district\nx,y\n", encoding="utf-8")
    out = yn(tmp_path, "forms", "validate", path, code=2)
    assert "villages.csv" in out and "first row" in out, out
    (tmp_path / "villages.csv").write_bytes(b"village,district\n\xff\xfe,x\n")
    out = yn(tmp_path, "forms", "validate", path, code=2)
    assert "villages.csv" in out and "Traceback" not in out, out


def test_a_table_name_cannot_leave_the_forms_folder(tmp_path: Path, make_form) -> None:
    text = FORM.replace("pulldata('villages'", "pulldata('../secret'")
    path = make_form(text)
    out = yn(tmp_path, "forms", "validate", path, code=2)
    assert "../secret" in out, out


def test_collect_with_pulldata_saves_the_looked_up_value(tmp_path: Path) -> None:
    path = _form_dir(tmp_path)
    answers = tmp_path / "a.json"
    answers.write_text(
        json.dumps({"village": "Нарын", "people": [{"person": "Aida"}]}), encoding="utf-8"
    )
    home = tmp_path / "home"
    yn(home, "collect", path, "--answers", answers, "--enumerator", "aida")
    saved = json.loads(rows(home, "SELECT answers FROM submissions")[0]["answers"])
    assert saved["district"] == "naryn" and saved["population"] == "41000"
    assert saved["people"][0]["pos"] == "1/1"


def test_inline_tables_need_no_file(make_form) -> None:
    text = FORM + textwrap.dedent(
        """\
        pulldata:
          villages:
            - {village: Ош, district: osh, population: '1'}
        """
    )
    form = load_form(make_form(text)).require()
    record, problems = fill(Engine(form), {"village": "Ош", "people": [{"person": "A"}]})
    assert not problems and record is not None
    assert record["district"] == "osh"


def test_forms_validate_knows_the_new_functions_arity(tmp_path: Path, make_form) -> None:
    path = make_form(
        """\
        id: ar
        version: '1'
        questions:
          - {name: a, type: text, label: A}
          - {name: b, type: calculate, calculation: "digest(${a})"}
          - {name: c, type: calculate, calculation: "indexed-repeat(${a}, 2)"}
          - {name: d, type: calculate, calculation: "weighted-checklist(1, 2, ${a})"}
          - {name: e, type: calculate, calculation: "indexed-repeat('a', ${a}, 1)"}
          - {name: f, type: calculate, calculation: "translate(${a}, 'abc', 'ABC')"}
        """
    )
    out = yn(tmp_path, "forms", "validate", path, code=2)
    lines = out.strip().splitlines()
    assert [line.split(":")[1] for line in lines] == ["5", "6", "7", "8"], out
    assert "digest() takes 2 to 3 arguments, got 1" in lines[0]
    assert "indexed-repeat() takes 3 to 7 arguments, got 2" in lines[1]
    assert "even number of arguments" in lines[2]
    assert "${name}" in lines[3]
