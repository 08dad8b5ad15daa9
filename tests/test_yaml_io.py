from __future__ import annotations

import pytest

from yntymak_cli.yaml_io import YamlSyntaxError, load_yaml


def test_scalars_stay_as_written():
    data, _ = load_yaml("a: 01\nb: 2026-10-01\nc: yes\nd: 'x'\ne:\nf: [0555, no, ~, true, 1.50]\n")
    assert data == {
        "a": "01",
        "b": "2026-10-01",
        "c": "yes",
        "d": "x",
        "e": None,
        "f": ["0555", "no", None, True, "1.50"],
    }


def test_folded_and_literal_blocks_keep_their_text():
    data, _ = load_yaml("a: >-\n  ${x} +\n  ${y}\nb: |\n  p\n  q\n")
    assert data == {"a": "${x} + ${y}", "b": "p\nq\n"}


def test_positions_are_one_based_line_and_column():
    _, pos = load_yaml("id: x\nquestions:\n  - {name: a, type: text}\n")
    assert pos.values[("questions", 0, "type")] == (3, 21)
    assert pos.keys[("questions",)] == (2, 1)


@pytest.mark.parametrize(("text", "line"), [("a: 1\na: 2\n", 2), ("a: [1,\n", 2), ("a: b: c\n", 1)])
def test_syntax_errors_are_located(text, line):
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml(text)
    assert info.value.line == line
