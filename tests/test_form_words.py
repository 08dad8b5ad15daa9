"""The words of the programme forms (issue 18, section 5): the reviewed corrections, Latin
ID codes typed with Cyrillic look-alike letters, the cities of oblast significance, and the
form-design fixes (training test options, optional ethnicity, decimal comma in notes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from yntymak_cli.cli import app
from yntymak_cli.engine.fill import fill
from yntymak_cli.engine.survey import Engine
from yntymak_cli.forms.loader import load_form, load_form_text
from yntymak_cli.forms.model import Form, text_in

from .conftest import DATA, FORMS
from .helpers import runner

PROGRAMME = (
    "conflict_analysis",
    "grant_monitoring",
    "mediation_case",
    "training_assessment",
    "youth_initiative",
)


def form(name: str) -> Form:
    return load_form(FORMS / f"{name}.yaml").require()


def choice_label(f: Form, list_name: str, name: str, lang: str) -> str:
    return text_in(f.choice_index(list_name)[name].label, lang)


# -- Latin ID codes typed with Cyrillic look-alikes -------------------------------------------

CODE_FORM = """
id: codes
version: "1"
languages: [en]
questions:
  - name: code
    type: text
    label: Code
    latin_lookalikes: true
    constraint: "regex(., '^MC-[0-9]{4}-[0-9]{3}$')"
    constraint_message: "Format: MC-YYYY-NNN"
  - name: plain_code
    type: text
    label: Code without the feature
    constraint: "regex(., '^P-[0-9]{3}$')"
    constraint_message: "Format: P-NNN"
"""


def test_engine_turns_cyrillic_lookalikes_into_latin_before_checking():
    engine = Engine(load_form_text(CODE_FORM).require(), lang="en")
    st = engine.start()
    # М and С typed on a Cyrillic layout (U+041C, U+0421): accepted, stored in Latin.
    assert engine.answer(st, ("code",), "\u041c\u0421-2026-001") is None
    assert st.answers["code"] == "MC-2026-001"
    # Every look-alike letter, upper and lower case.
    assert engine.answer(st, ("code",), "АВЕКМНОРСТУХавекмнорстух") == "Format: MC-YYYY-NNN"
    assert fill(engine, {"code": "АВЕКМНОРСТУХ авекмнорстух"})[1] == ["code: Format: MC-YYYY-NNN"]
    from yntymak_cli.forms.values import parse_value

    q = engine.form.index["code"]
    assert parse_value(engine.form, q, "АВЕКМНОРСТУХавекмнорстух") == ("ABEKMHOPCTYXabekmhopctyx")
    # Other Cyrillic letters are left alone, and so is a question without the key.
    assert parse_value(engine.form, q, "Жүз-Д") == "Жүз-Д"
    assert engine.answer(st, ("plain_code",), "\u0420-017") == "Format: P-NNN"
    assert engine.answer(st, ("plain_code",), "P-017") is None


def test_lookalikes_through_collect_answers(tmp_path):
    text = (DATA / "answers" / "training_assessment.yaml").read_text(encoding="utf-8")
    text = text.replace("P-017", "\u0420-017").replace("TR-2026-07", "\u0422R-2026-07")
    answers = tmp_path / "cyrillic.yaml"
    answers.write_text(text, encoding="utf-8")
    result = runner.invoke(
        app, ["collect", str(FORMS / "training_assessment.yaml"), "--answers", str(answers)]
    )
    assert result.exit_code == 0, result.output
    uuid = result.stdout.strip().splitlines()[-1]
    shown = runner.invoke(app, ["submissions", "show", uuid, "--json"])
    stored = json.loads(shown.stdout)["answers"]
    assert stored["participant_code"] == "P-017"
    assert stored["training_id"] == "TR-2026-07"


def test_lookalikes_only_on_text_questions():
    bad = load_form_text(
        """
id: f
version: "1"
questions:
  - {name: n, type: integer, label: N, latin_lookalikes: true}
"""
    )
    assert any("latin_lookalikes is only for text questions" in str(p) for p in bad.problems)


@pytest.mark.slow
def test_lookalikes_in_schema_and_xlsform_round_trip(tmp_path: Path):
    from yntymak_cli.forms.loader import form_from_dict
    from yntymak_cli.xlsform import export_xlsform, import_xlsform

    schema = runner.invoke(app, ["forms", "schema"])
    assert "latin_lookalikes" in json.loads(schema.stdout)["$defs"]["Question"]["properties"]

    original = load_form_text(CODE_FORM).require()
    out = tmp_path / "codes.xlsx"
    export_xlsform(original, out)
    back = form_from_dict(import_xlsform(out).form_data)
    assert back.index["code"].latin_lookalikes is True
    assert back.index["plain_code"].latin_lookalikes is False


@pytest.mark.parametrize(
    ("form_id", "question", "letters"),
    [
        ("mediation_case", "case_number", "М"),
        ("training_assessment", "training_id", "Т"),
        ("training_assessment", "participant_code", "Р"),
        ("grant_monitoring", "grant_code", "У"),
    ],
)
def test_programme_id_codes_accept_lookalikes_and_say_so(form_id, question, letters):
    q = form(form_id).index[question]
    assert q.latin_lookalikes
    assert isinstance(q.hint, dict)
    assert letters in q.hint["ky"] and "кабыл алынат" in q.hint["ky"]
    assert letters in q.hint["ru"] and "принима" in q.hint["ru"]
    assert "accepted" in q.hint["en"]
    assert isinstance(q.constraint_message, dict)
    assert "латын" in q.constraint_message["ky"] and "латинск" in q.constraint_message["ru"]


# -- cities of oblast significance ------------------------------------------------------------

CITIES = {
    "batken_city": ("batken", "Баткен шаары", "Город Баткен", "Batken City"),
    "kyzyl_kyya_city": ("batken", "Кызыл-Кыя шаары", "Город Кызыл-Кия", "Kyzyl-Kyya City"),
    "sulukta_city": ("batken", "Сүлүктү шаары", "Город Сулюкта", "Sulukta City"),
    "jalal_abad_city": ("jalal_abad", "Жалал-Абад шаары", "Город Джалал-Абад", "Jalal-Abad City"),
    "kara_kul_city": ("jalal_abad", "Кара-Көл шаары", "Город Кара-Куль", "Kara-Kul City"),
    "mailuu_suu_city": ("jalal_abad", "Майлуу-Суу шаары", "Город Майлуу-Суу", "Mailuu-Suu City"),
    "tash_kumyr_city": ("jalal_abad", "Таш-Көмүр шаары", "Город Таш-Кумыр", "Tash-Kumyr City"),
    "karakol_city": ("issyk_kul", "Каракол шаары", "Город Каракол", "Karakol City"),
    "balykchy_city": ("issyk_kul", "Балыкчы шаары", "Город Балыкчи", "Balykchy City"),
    "naryn_city": ("naryn", "Нарын шаары", "Город Нарын", "Naryn City"),
    "talas_city": ("talas", "Талас шаары", "Город Талас", "Talas City"),
    "tokmok_city": ("chuy", "Токмок шаары", "Город Токмок", "Tokmok City"),
}


@pytest.mark.parametrize("form_id", PROGRAMME)
def test_cities_of_oblast_significance_in_every_cascade(form_id):
    f = form(form_id)
    for name, (oblast, ky, ru, en) in CITIES.items():
        choice = f.choice_index("district")[name]
        assert choice.columns()["oblast"] == oblast
        assert choice.label == {"ky": ky, "ru": ru, "en": en}
    # Bishkek and Osh (cities of republican significance) are still there.
    assert {"bishkek_city", "osh_city"} <= set(f.choice_index("oblast"))


def test_cascade_offers_the_city_under_its_oblast():
    f = form("training_assessment")
    engine = Engine(f, lang="ky")
    st = engine.start()
    assert engine.answer(st, ("oblast",), "issyk_kul") is None
    step = next(s for s in engine.steps(st) if s.path == ("district",))
    offered = [c.name for c in step.choices]
    assert "karakol_city" in offered and "balykchy_city" in offered
    assert "tokmok_city" not in offered
    assert engine.answer(st, ("district",), "karakol_city") is None


# -- the reviewed corrections -----------------------------------------------------------------


def test_review_corrections_1_to_6_13_14():
    grant = form("grant_monitoring")
    for name in ("ben_female", "ben_male"):  # 1, 2
        assert grant.index[name].constraint_message["ky"] == "0дөн 100 000ге чейинки сан"
    training = form("training_assessment")  # 3
    assert training.index["score_note"].label["ru"].startswith("Правильных ответов: ${total_score}")
    assert choice_label(training, "conflict_type", "family", "ky") == (  # 4
        "Үй-бүлөлүк же кошуналык чыр-чатак"
    )
    kara_buura = training.choice_index("district")["kara_buura"]  # 5, name kept
    assert kara_buura.label == {
        "ky": "Айтматов району (мурдагы Кара-Буура)",
        "ru": "Айтматовский район (бывший Кара-Бууринский)",
        "en": "Aitmatov District (formerly Kara-Buura)",
    }
    participant = training.index["participant_code"].constraint_message  # 6
    assert participant["ky"] == "Формат: P-NNN (P – латын тамгасы), мисалы P-017"
    assert participant["ru"] == "Формат: P-NNN (P – латинская буква), например P-017"
    conflict = form("conflict_analysis")  # 13
    assert conflict.index["comments"].label["ky"] == "Сурамжылоочунун кошумча эскертүүлөрү"
    mediation = form("mediation_case")  # 14: one NGO pair in both lists
    for f, list_name, name in (
        (mediation, "referral_source", "ngo"),
        (training, "organisation_type", "cso"),
    ):
        assert choice_label(f, list_name, name, "ky") == "Коммерциялык эмес уюм (КЭУ)"
        assert choice_label(f, list_name, name, "ru") == "Некоммерческая организация (НКО)"


def test_review_corrections_polish():
    grant, youth = form("grant_monitoring"), form("youth_initiative")
    training, mediation = form("training_assessment"), form("mediation_case")
    assert grant.index["conflict_concern"].label["ru"] == (  # 7
        "Создаёт ли проект напряжённость в сообществе или усиливает её?"
    )
    assert youth.index["part_18_28"].constraint_message["ru"].startswith("Участников младше")  # 8
    assert " же келечекте" in mediation.index["date_closed"].constraint_message["ky"]  # 9
    assert " же келечекте" in youth.index["end_date"].constraint_message["ky"]  # 10
    assert choice_label(form("conflict_analysis"), "aksakal_access", "used", "ky") == (  # 11
        "Кайрылганмын"
    )
    assert choice_label(training, "age_group", "age_56_plus", "ky") == "56 жаш жана андан улуу"
    assert "сөзүң" not in choice_label(training, "q7_options", "b", "ky")  # 20
    assert "уверен(-а)" in training.index["confidence"].hint["ru"]  # 21
    from yntymak_cli.i18n import t

    assert (
        t("invalid_range", "ky", start=1, end=5, step=1)
        == "1 – 5 аралыгында, кадамы 1 болушу керек"
    )
    assert "түрүндө жазыңыз" in t("invalid_geopoint", "ky")  # 17
    assert t("repeat_count_mismatch", "ky", given=3, count=2).endswith("repeat_count – 2")  # 18


# -- form design ------------------------------------------------------------------------------

ANSWER_KEY = {
    "q1": "b",
    "q2": "a",
    "q3": "c",
    "q4": "c",
    "q5": "d",
    "q6": "a",
    "q7": "b",
    "q8": "d",
}


@pytest.mark.parametrize("lang", ["ky", "ru", "en"])
def test_training_correct_answer_is_rarely_the_longest(lang):
    f = form("training_assessment")
    longest = []
    for question, correct in ANSWER_KEY.items():
        lengths = {
            c.name: len(text_in(c.label, lang)) for c in f.choice_list(f"{question}_options")
        }
        if max(lengths, key=lengths.__getitem__) == correct:
            longest.append(question)
    assert len(longest) <= 2, longest  # about what chance gives (8 questions, 4 options)
    # The scoring still follows the same key.
    for question, correct in ANSWER_KEY.items():
        assert (
            f.index[f"score_{question}"].calculation == f"if(${{{question}}} = '{correct}', 1, 0)"
        )


def test_ethnicity_is_never_required():
    for form_id in PROGRAMME:
        f = form(form_id)
        for q, _ in f.walk():
            if q.list_name == "ethnicity":
                assert q.required is False, (form_id, q.name)
    import yaml

    answers = yaml.safe_load((DATA / "answers" / "youth_initiative.yaml").read_text("utf-8"))
    answers.pop("ethnic_groups", None)
    final, problems = fill(Engine(form("youth_initiative"), lang="en"), answers)
    assert problems == [] and final is not None


@pytest.mark.parametrize(("lang", "shown"), [("ky", "68,9%"), ("ru", "68,9%"), ("en", "68.9%")])
def test_percentages_in_notes_use_the_languages_decimal_mark(lang, shown):
    import yaml

    answers = yaml.safe_load((DATA / "answers" / "grant_monitoring.yaml").read_text("utf-8"))
    answers["activities_done"] = 1  # 17% of activities, 68.9% of the budget: the note shows
    engine = Engine(form("grant_monitoring"), lang=lang)
    final, problems = fill(engine, answers)
    assert problems == []
    assert final["spent_pct"] == 68.9  # stored with a point, whatever the language
    st = engine.start(final)
    note = next(s for s in engine.steps(st) if s.path == ("spending_note",))
    assert shown in note.label and "17%" in note.label


def test_changed_forms_have_a_new_version():
    for form_id in PROGRAMME:
        assert form(form_id).version > "2026-11-01", form_id
