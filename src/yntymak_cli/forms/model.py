"""Pydantic models of the YAML form format (XLSForm semantics, readable by hand).

The models describe structure only; `forms.validate` checks meaning (names, lists,
expressions, translations) so that all problems of a file are reported together.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

LangText = str | dict[str, str]

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")

# Questions answered with a file the volunteer has on the laptop (forms/media.py).
MEDIA_TYPES = frozenset({"image", "audio", "video", "file"})
INPUT_TYPES = frozenset(
    {"text", "integer", "decimal", "date", "time", "datetime", "acknowledge", "range"}
    | {"geopoint", "geotrace", "geoshape"}
    | MEDIA_TYPES
)
SELECT_TYPES = frozenset({"select_one", "select_multiple"})
METADATA_TYPES = frozenset({"start", "end", "today", "deviceid", "username"})
DISPLAY_TYPES = frozenset({"note"})
STRUCTURE_TYPES = frozenset({"group", "repeat"})
BASE_TYPES = (
    INPUT_TYPES
    | SELECT_TYPES
    | METADATA_TYPES
    | DISPLAY_TYPES
    | STRUCTURE_TYPES
    | {"calculate", "unsupported"}
)
# Questions that hold a value in the answers (notes, groups and unsupported ones do not).
VALUE_TYPES = INPUT_TYPES | SELECT_TYPES | METADATA_TYPES | {"calculate"}
# Question keys holding an expression, and keys holding text per language.
EXPRESSION_KEYS = ("relevant", "constraint", "calculation", "choice_filter", "repeat_count")
TRANSLATED_KEYS = ("label", "hint", "required_message", "constraint_message")


def _text_or_none(value: Any) -> Any:
    """Numbers and booleans written where text is expected are kept as text."""
    if isinstance(value, bool):
        return "true()" if value else "false()"
    if isinstance(value, int | float):
        return str(value)
    return value


class Choice(BaseModel):
    """One choice; keys other than name/label are columns usable in choice_filter."""

    model_config = ConfigDict(extra="allow")

    name: str
    label: LangText | None = None

    _name_text = field_validator("name", mode="before")(_text_or_none)

    def columns(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # Described in the JSON Schema (`forms schema`) for editors; forms.validate checks it.
    type: str = Field(
        description="the question type: "
        + " ".join(sorted(INPUT_TYPES | METADATA_TYPES))
        + ", note, calculate, group, repeat, or `select_one LIST` / `select_multiple LIST`;"
        " geopoint, geotrace and geoshape are typed as `lat lon[ alt acc]` points, a"
        " geotrace/geoshape as points joined by `;`; image, audio, video and file are"
        " answered with the path of a file on the laptop"
    )
    label: LangText | None = None
    hint: LangText | None = None
    required: bool | str = False
    required_message: LangText | None = None
    relevant: str | None = None
    constraint: str | None = None
    constraint_message: LangText | None = None
    default: str | None = None
    calculation: str | None = None
    choice_filter: str | None = None
    read_only: bool = False
    sensitive: bool = False
    # For Latin ID codes (P-017, MC-2026-001) typed on a Cyrillic keyboard: the look-alike
    # letters А В Е К М Н О Р С Т У Х (and lower case) become Latin before any check.
    latin_lookalikes: bool = Field(
        default=False,
        description="text questions only: Cyrillic letters that look like Latin ones "
        "(А В Е К М Н О Р С Т У Х, and lower case) are turned into those Latin letters "
        "before the answer is checked and stored",
    )
    # Media questions (image, audio, video, file): forms/media.py.
    accept: str | None = Field(
        default=None,
        description="media questions only: the files accepted, comma-separated extensions"
        " (.pdf) and MIME patterns (image/*, application/pdf), as XLSForm's body::accept;"
        " by default image/* for image, audio/* for audio, video/* for video, any for file",
    )
    max_pixels: int | None = Field(
        default=None,
        gt=0,
        description="image questions only: a photo whose longer side is larger is scaled"
        " down to this many pixels (XLSForm's max-pixels parameter)",
    )
    keep_gps: bool = Field(
        default=False,
        description="image questions only: keep the photo's EXIF GPS position when it is"
        " scaled down for max_pixels (by default the position is removed)",
    )
    appearance: str | None = None
    parameters: dict[str, str] | None = None
    repeat_count: str | None = None
    questions: list[Question] = Field(default_factory=list)
    # What an imported XLSForm had that we cannot run: original type, untranslated
    # expressions. Kept so nothing is silently dropped; never evaluated.
    xlsform: dict[str, Any] | None = None

    _coerce_text = field_validator(
        "name",
        "type",
        "relevant",
        "constraint",
        "default",
        "calculation",
        "choice_filter",
        "repeat_count",
        mode="before",
    )(_text_or_none)

    @field_validator("parameters", mode="before")
    @classmethod
    def _params_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: _text_or_none(v) for k, v in value.items()}
        return value

    @field_validator("required", mode="before")
    @classmethod
    def _required(cls, value: Any) -> Any:
        # XLSForm writes yes/no/true/false; anything else is an expression.
        if isinstance(value, str) and value.strip().lower() in {"yes", "true", "true()"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"no", "false", "false()", ""}:
            return False
        return value

    @property
    def base_type(self) -> str:
        return self.type.split()[0] if self.type.strip() else ""

    @property
    def list_name(self) -> str | None:
        parts = self.type.split()
        return parts[1] if len(parts) > 1 and parts[0] in SELECT_TYPES else None

    @property
    def holds_value(self) -> bool:
        return self.base_type in VALUE_TYPES

    @property
    def is_media(self) -> bool:
        return self.base_type in MEDIA_TYPES

    @property
    def is_repeat(self) -> bool:
        return self.base_type == "repeat"

    @property
    def is_group(self) -> bool:
        return self.base_type == "group"


class Quality(BaseModel):
    """HQ's data-quality checks for this form (`yntymak hq checks`; docs/quality.md)."""

    model_config = ConfigDict(extra="forbid")

    # Shorter active interview time is flagged `too_fast` (a third of the form's median
    # is flagged whatever this says).
    min_minutes: float | None = Field(default=None, ge=0)
    # `speeding`: more than half of the answered questions each took less than this.
    min_seconds_per_question: float = Field(default=2.0, ge=0)
    # `duplicate`: two submissions with equal answers to all of these top-level questions.
    duplicate_keys: list[str] = Field(default_factory=list)
    # `gps_far`: a geopoint farther than this from the median point of its district's
    # other submissions.
    max_km_from_district: float = Field(default=50.0, gt=0)
    # The question whose answer is a submission's district (checks, targets, progress);
    # without it, the district HQ enrolled the laptop with.
    district_by: str | None = None


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: str
    title: LangText | None = None
    languages: list[str] = Field(default_factory=list)
    default_language: str | None = None
    instance_name: str | None = None
    summary_by: str | None = None
    quality: Quality | None = None
    # The largest file a media question accepts: bytes, or text such as "20 MB", "500 kB".
    max_size: int | str | None = Field(
        default=None,
        description="the largest file a media question accepts: a number of bytes or text"
        " such as `20 MB` or `500 kB` (default 20 MB)",
    )
    include: list[str] = Field(default_factory=list)
    choices: dict[str, list[Choice]] = Field(default_factory=dict)
    questions: list[Question] = Field(default_factory=list)
    # Tables pulldata() reads: file name (without .csv) -> rows (column -> text). The
    # loader fills it from NAME.csv beside the form, so the rows are part of the
    # definition: hashed, stored and sent to HQ with it, and every laptop computes alike.
    pulldata: dict[str, list[dict[str, str]]] = Field(default_factory=dict)

    _index: dict[str, Question] = PrivateAttr(default_factory=dict)
    _ancestors: dict[str, tuple[Question, ...]] = PrivateAttr(default_factory=dict)
    # Per choice list, built on first use: name -> choice, and the columns of its rows.
    # A 100,000-choice list is looked up by name, never scanned, once per answer.
    _choice_index: dict[str, dict[str, Choice]] = PrivateAttr(default_factory=dict)
    _choice_columns: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)
    _hash: str | None = PrivateAttr(default=None)
    # (file, key column) -> key -> the first row with that key, built on first use.
    _lookups: dict[tuple[str, str], dict[str, dict[str, str]]] = PrivateAttr(default_factory=dict)
    # Names of the questions answered with a file (image, audio, video, file).
    _media: frozenset[str] = PrivateAttr(default=frozenset())

    _coerce_text = field_validator("id", "version", "instance_name", mode="before")(_text_or_none)

    def model_post_init(self, __context: Any) -> None:
        for question, ancestors in self.walk():
            self._index.setdefault(question.name, question)
            self._ancestors.setdefault(question.name, ancestors)
        self._media = frozenset(n for n, q in self._index.items() if q.is_media)

    # -- navigation -------------------------------------------------------------------

    def walk(
        self, questions: list[Question] | None = None, ancestors: tuple[Question, ...] = ()
    ) -> Iterator[tuple[Question, tuple[Question, ...]]]:
        """Every question, depth first, with its enclosing groups/repeats."""
        for question in self.questions if questions is None else questions:
            yield question, ancestors
            if question.questions:
                yield from self.walk(question.questions, (*ancestors, question))

    @property
    def index(self) -> dict[str, Question]:
        return self._index

    @property
    def media_names(self) -> frozenset[str]:
        """The questions answered with a file; empty for most forms, whose answers then
        name no file (forms.media.media_refs need not walk them)."""
        return self._media

    def ancestors(self, name: str) -> tuple[Question, ...]:
        return self._ancestors.get(name, ())

    def repeat_path(self, name: str) -> tuple[str, ...]:
        """Names of the repeats enclosing a question, outermost first."""
        return tuple(a.name for a in self.ancestors(name) if a.is_repeat)

    def group_path(self, name: str) -> str:
        """Kobo-style header path: enclosing groups and repeats joined by '/'."""
        return "/".join([*(a.name for a in self.ancestors(name)), name])

    def choice_list(self, name: str | None) -> list[Choice]:
        return self.choices.get(name or "", [])

    def choice_index(self, name: str | None) -> dict[str, Choice]:
        """A choice list by choice name (the first of duplicates, which validation reports)."""
        index = self._choice_index.get(name or "")
        if index is None:
            index = {}
            for choice in self.choice_list(name):
                index.setdefault(choice.name, choice)
            self._choice_index[name or ""] = index
        return index

    def choice_columns(self, name: str | None) -> frozenset[str]:
        """Columns a choice_filter may use on a list: name, label and every extra key."""
        columns = self._choice_columns.get(name or "")
        if columns is None:
            found = {"name", "label"}
            for choice in self.choice_list(name):
                if choice.model_extra:
                    found.update(choice.model_extra)
            columns = self._choice_columns[name or ""] = frozenset(found)
        return columns

    def pulldata_row(self, file: str, key_column: str, key: str) -> dict[str, str] | None:
        """The first row of a pulldata table whose `key_column` is `key` (None: no such row).

        KeyError when the form has no table `file`. Indexed once per (table, column), so a
        lookup in a 100,000-row table costs one dict access per evaluation.
        """
        rows = self.pulldata[file]
        index = self._lookups.get((file, key_column))
        if index is None:
            index = self._lookups[(file, key_column)] = rows_by_key(rows, key_column)
        return index.get(key)

    @property
    def language(self) -> str | None:
        return self.default_language or (self.languages[0] if self.languages else None)

    # -- identity ---------------------------------------------------------------------

    def definition_dict(self) -> dict[str, Any]:
        """Plain, JSON-safe definition with included lists resolved (what the store keeps)."""
        data = self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        data.pop("include", None)
        data["id"], data["version"] = self.id, self.version
        return data

    def definition_hash(self) -> str:
        """SHA-256 of the definition, worked out once: a Form is not changed once built (the
        caches above and the store, which keys definitions by this hash, rely on it)."""
        if self._hash is None:
            from yntymak_cli.canonical import sha256_hex

            self._hash = sha256_hex(self.definition_dict())
        return self._hash


def rows_by_key(rows: list[dict[str, str]], key_column: str) -> dict[str, dict[str, str]]:
    """A pulldata table by the values of one column; the first row with a key wins."""
    index: dict[str, dict[str, str]] = {}
    for row in rows:
        index.setdefault(row.get(key_column, ""), row)
    return index


def text_in(value: LangText | None, lang: str | None, fallback: str | None = None) -> str:
    """A label/hint in a language, falling back to the form's default, then to any."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    for key in (lang, fallback):
        if key and value.get(key):
            return value[key]
    return next((v for v in value.values() if v), "")
