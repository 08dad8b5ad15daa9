"""The loader never crashes: any YAML document gives a Form or located problems."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yntymak_cli.forms.loader import load_form_text

KEYS = [
    "id",
    "version",
    "questions",
    "choices",
    "name",
    "type",
    "label",
    "relevant",
    "constraint",
    "calculation",
    "choice_filter",
    "repeat_count",
    "parameters",
    "required",
    "languages",
    "default_language",
    "include",
    "default",
    "ky",
    "ru",
    "instance_name",
    "summary_by",
    "select_one l",
    "l",
    "group",
    "repeat",
    "start",
    "end",
    "step",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(KEYS),
    st.sampled_from(
        [
            "${a}",
            ". > 1",
            "integer",
            "select_one l",
            "text",
            "group",
            "repeat",
            "range",
            "bad(",
            "${",
            "select_multiple",
        ]
    ),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)
forms = st.fixed_dictionaries(
    {"id": scalars, "version": scalars},
    optional={
        "questions": st.lists(
            st.dictionaries(st.sampled_from(KEYS), values, max_size=6), max_size=5
        ),
        "choices": st.dictionaries(st.sampled_from(KEYS), values, max_size=3),
        "languages": values,
        "title": values,
    },
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(forms)
def test_any_document_gives_a_form_or_problems(data):
    loaded = load_form_text(json.dumps(data), "fuzz.yaml")  # JSON is YAML 1.2
    assert loaded.ok or loaded.errors
    for problem in loaded.problems:
        assert problem.line >= 1 and problem.col >= 1 and problem.message
