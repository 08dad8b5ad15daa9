"""The pyxform project's own test XLSForms: import every one pyxform accepts, refuse the rest.

The corpus is read from ../shared/xlsforms/pyxform, beside the repository on every
developer's machine and in CI (shared/README.md: "use them in tests from this folder; do
not copy them into the repository"); a local selection under tests/data/xlsforms/pyxform is
read too if one is ever added. Which kinds of warning each form gives is pinned
in tests/data/xlsform_corpus_warnings.yaml; after a deliberate change, regenerate it with
YNTYMAK_UPDATE_GOLDEN=1 (with the full corpus present).
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from yntymak_cli.errors import InvalidInput
from yntymak_cli.forms.loader import form_from_dict, load_form_text
from yntymak_cli.xlsform import export_xlsform, import_xlsform
from yntymak_cli.yaml_io import load_yaml

pytestmark = pytest.mark.slow  # the whole pyxform corpus, twice

LOCAL = Path(__file__).parent / "data" / "xlsforms" / "pyxform"  # optional local selection
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "xlsforms" / "pyxform"
GOLDEN = Path(__file__).parent / "data" / "xlsform_corpus_warnings.yaml"
SUFFIXES = {".xlsx", ".xlsm", ".xls", ".md", ".csv"}
GENERATED = re.compile(r"^(generated_table_list_label_|reserved_name_for_field_list_labels_)")


def _corpus(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p for p in root.glob("*/*") if p.suffix in SUFFIXES}


LOCAL_FILES = _corpus(LOCAL)
FULL_FILES = _corpus(CORPUS)
# The repository's copy first: the same file from ../shared adds nothing.
FILES = [path for _, path in sorted({**FULL_FILES, **LOCAL_FILES}.items())]


def rel(path: Path) -> str:
    root = LOCAL if path.is_relative_to(LOCAL) else CORPUS
    return path.relative_to(root).as_posix()


@functools.cache
def pyxform_verdict(path: Path) -> tuple[bool, dict[str, Any] | None]:
    """Does pyxform accept the file (validate=False), and its JSON dict if so."""
    import warnings

    from pyxform.xls2xform import convert

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = convert(xlsform=str(path), validate=False)
        except Exception:
            return False, None
    return True, result._pyxform


@functools.cache
def imported(path: Path):
    return import_xlsform(path)


def pyxform_names(node: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Names of the author's elements in pyxform's dict, and names inside legacy loops."""
    names: set[str] = set()
    looped: set[str] = set()

    def walk(children: list[dict[str, Any]], in_loop: bool) -> None:
        counts = {
            str((c.get("control") or {}).get("jr:count", "")).strip("${}")
            for c in children
            if c.get("type") == "repeat"
        }
        for child in children:
            name = str(child.get("name"))
            if (child.get("control") or {}).get("bodyless"):
                continue  # pyxform's meta group (instanceID, instanceName)
            generated_count = (
                name in counts
                and name.endswith("_count")
                and ((child.get("bind") or {}).get("readonly") == "true()")
            )
            if GENERATED.match(name) or generated_count:
                continue
            (looped if in_loop else names).add(name)
            walk(child.get("children") or [], in_loop or child.get("type") == "loop")

    walk(node.get("children") or [], False)
    return names, looped


def our_names(questions: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for q in questions:
        out.add(q["name"])
        out |= our_names(q.get("questions") or [])
    return out


def summary(path: Path) -> str | dict[str, int]:
    accepted, _ = pyxform_verdict(path)
    if not accepted:
        return "rejected"
    return dict(sorted(Counter(w.kind for w in imported(path).warnings).items()))


def load_golden() -> dict[str, Any]:
    if not GOLDEN.exists():
        return {}
    data, _ = load_yaml(GOLDEN.read_text(encoding="utf-8"))
    return {
        k: ({kk: int(vv) for kk, vv in v.items()} if isinstance(v, dict) else v)
        for k, v in (data or {}).items()
    }


def write_golden() -> None:
    lines = [
        "# Warning kinds (and how many) each pyxform corpus form gives on import;",
        "# 'rejected' = pyxform itself refuses the file. Checked by tests/test_xlsform_corpus.py;",
        "# regenerate with YNTYMAK_UPDATE_GOLDEN=1 after a deliberate change.",
    ]
    for path in FILES:
        value = summary(path)
        text = (
            value
            if isinstance(value, str)
            else ("{" + ", ".join(f"{k}: {n}" for k, n in value.items()) + "}")
        )
        lines.append(f"{rel(path)}: {text}")
    GOLDEN.write_text("\n".join(lines) + "\n", encoding="utf-8")


if FULL_FILES and os.environ.get("YNTYMAK_UPDATE_GOLDEN"):  # never from the partial copy
    write_golden()


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_corpus_form(path: Path) -> None:
    accepted, data = pyxform_verdict(path)
    if not accepted:
        with pytest.raises(InvalidInput) as info:
            import_xlsform(path)
        message = info.value.message
        assert message.startswith(f"{path}: pyxform cannot convert this XLSForm: ")
        assert "\n" not in message
        return
    result = imported(path)  # any other exception fails the test: no tracebacks
    loaded = load_form_text(result.yaml_text, rel(path))
    assert loaded.errors == []
    names = our_names(result.form_data["questions"])
    expected, looped = pyxform_names(data)
    assert expected - names == set(), "question names lost"
    for name in looped:  # a loop's questions come back once per choice: name_choice
        assert any(n.startswith(f"{name}_") for n in names)
    assert all(w.startswith(f"{path}: ") for w in result.warnings)


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_corpus_warning_kinds(path: Path) -> None:
    golden = load_golden()
    assert rel(path) in golden, "new corpus file: regenerate the golden summary"
    assert summary(path) == golden[rel(path)]


def test_corpus_counts() -> None:
    golden = load_golden()
    assert FULL_FILES, f"the pyxform corpus is missing: {CORPUS} (shared/ beside the repository)"
    assert sorted(golden) == [rel(p) for p in FILES]
    assert (len(FILES), sum(pyxform_verdict(p)[0] for p in FILES)) == (66, 56)
    totals: Counter[str] = Counter()
    for value in golden.values():
        if isinstance(value, dict):
            totals.update(value)
    assert sum(totals.values()) > 0


@pytest.mark.parametrize("path", FILES, ids=rel)
def test_corpus_round_trip(path: Path, tmp_path: Path) -> None:
    """import(export(import(X))) == import(X), and pyxform compiles what we export."""
    from pyxform.xls2xform import convert

    if not pyxform_verdict(path)[0]:
        with pytest.raises(InvalidInput, match="pyxform cannot convert this XLSForm"):
            import_xlsform(path)  # refused as test_corpus_form pins: nothing to round-trip
        return
    form = form_from_dict(imported(path).form_data)
    out = tmp_path / f"{path.stem}.xlsx"
    export_xlsform(form, out)
    convert(xlsform=str(out), validate=False)
    again = form_from_dict(import_xlsform(out).form_data)
    assert again.definition_dict() == form.definition_dict()
