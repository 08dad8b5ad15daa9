"""Submission counts for the xlsx `summary` sheet, counted while rows stream past."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yntymak_cli.export.cells import plain, xml_safe
from yntymak_cli.forms.model import Form, text_in
from yntymak_cli.i18n import LANGUAGES, t

if TYPE_CHECKING:
    from yntymak_cli.quality.progress import Progress, Row, Tally, Targets

SUMMARY_SHEET = "summary"
BLANK = "(blank)"
CHART_COLUMN = "F"  # right of the widest table (progress: name, done, target, percent)
_PROGRESS_COLUMNS = ("progress_col_done", "progress_col_target", "progress_col_percent")


@dataclass
class CountTable:
    title: str  # first column header
    rows: list[tuple[str, int]]


class SummaryCounter:
    """Counts submissions by enumerator and by the form's `summary_by` question, and (at HQ,
    when the form has targets) final submissions done per district and enumerator.

    Holds one counter per distinct value (enumerators, districts), never the records.
    """

    def __init__(
        self,
        forms: Sequence[Form],
        lang: str | None,
        dropped: frozenset[str] = frozenset(),
        targets: Targets | None = None,
    ) -> None:
        newest = forms[0]
        self.tally: Tally | None = None
        if targets is not None:
            from yntymak_cli.quality.progress import Tally

            self.tally = Tally(targets)
        # A sheet for people, not scripts: in --lang, else in the form's default language
        # (its words in English when the catalogs lack that language).
        lang = lang or newest.language
        self.lang = lang if lang in LANGUAGES else "en"
        self.title = text_in(newest.title, lang, newest.language) or newest.id
        self.total = 0
        self.by_enumerator: Counter[str] = Counter()
        self.by_field: Counter[str] = Counter()
        self.field: str | None = None
        self.field_header = ""
        self._order: list[str] = []  # choice order, so districts read as in the form
        self._labels: dict[str, str] = {}
        name = newest.summary_by
        question = newest.index.get(name) if name else None
        # A sensitive grouping question is left out with --no-sensitive, like its column.
        if question is None or name in dropped or newest.repeat_path(question.name):
            return
        self.field = question.name
        self.field_header = text_in(question.label, lang, newest.language) or question.name
        for form in forms:
            q = form.index.get(question.name)
            for choice in form.choice_list(q.list_name if q else None):
                if choice.name not in self._labels:
                    self._order.append(choice.name)
                    shown = text_in(choice.label, lang, form.language)
                    self._labels[choice.name] = shown or choice.name

    def add(self, record: dict[str, Any]) -> None:
        self.total += 1
        self.by_enumerator[str(record.get("enumerator") or BLANK)] += 1
        if self.tally is not None and record.get("status") == "final":  # done: final only
            answers = record.get("answers")
            self.tally.add(
                str(record.get("enumerator") or ""),
                str(record.get("device_id") or ""),
                answers if isinstance(answers, dict) else None,
            )
        if self.field is None:
            return
        answers = record.get("answers")
        value = answers.get(self.field) if isinstance(answers, dict) else None
        if value is None or value == "" or value == []:
            self.by_field[BLANK] += 1
        elif isinstance(value, list):  # select_multiple: one count per choice selected
            for v in value:
                self.by_field[v if v.__class__ is str else str(plain(v))] += 1
        else:
            self.by_field[value if value.__class__ is str else str(plain(value))] += 1

    def progress(self) -> Progress | None:
        """Done / target / percent, when the export was given targets."""
        return self.tally.progress() if self.tally is not None else None

    def tables(self) -> list[CountTable]:
        enumerators = sorted(self.by_enumerator.items(), key=lambda kv: (kv[0] == BLANK, kv[0]))
        enumerators = [
            (t("summary_blank", self.lang) if k == BLANK else k, n) for k, n in enumerators
        ]
        result = [CountTable(t("summary_enumerator", self.lang), enumerators)]
        if self.field is not None:
            rank = {name: i for i, name in enumerate(self._order)}
            keys = sorted(
                self.by_field,
                key=lambda k: (k == BLANK, rank.get(k, len(rank)), k),
            )
            blank = t("summary_blank", self.lang)
            rows = [
                (blank if k == BLANK else self._labels.get(k, k), self.by_field[k]) for k in keys
            ]
            result.append(CountTable(self.field_header, rows))
        return result


# Chart sizes in centimetres (as earlier exports had them), for XlsxWriter in pixels.
_CHART_WIDTH_CM = 18
_PX_PER_CM = 96 / 2.54


def write_summary(workbook: Any, ws: Any, counter: SummaryCounter) -> None:
    """Fill the summary sheet (an XlsxWriter worksheet in constant_memory mode, so rows
    are written top down): totals, count tables and a bar chart for each."""
    bold = workbook.add_format({"bold": True})
    row = 0  # next row to write (0-based)
    anchor_row = 1  # where the next chart goes (1-based)

    def put(values: Sequence[Any], head: bool = False) -> None:
        nonlocal row
        for col, value in enumerate(values):
            if isinstance(value, str):  # a label or enumerator name is never a formula
                ws.write_string(row, col, xml_safe(value), bold if head else None)
            elif value is not None:
                ws.write_number(row, col, value)
        row += 1

    def ref(col: str, first: int, last: int) -> str:
        """A range of this sheet's column `col`, rows `first`..`last` (1-based)."""
        return f"='{SUMMARY_SHEET}'!${col}${first}:${col}${last}"

    def chart(title: str, axis: str, col: str, first: int, bars: int, top_down: bool) -> None:
        """A bar chart of `bars` rows under the header row `first` (1-based): the
        values in column `col`, named in column A."""
        nonlocal anchor_row
        bar = workbook.add_chart({"type": "bar"})
        bar.add_series(
            {
                "name": f"='{SUMMARY_SHEET}'!${col}${first}",
                "values": ref(col, first + 1, first + bars),
                "categories": ref("A", first + 1, first + bars),
            }
        )
        bar.set_title({"name": title})
        bar.set_legend({"none": True})
        bar.set_x_axis({"name": axis})  # a bar chart's x axis is its value axis
        if top_down:  # bars top down, as the table reads
            bar.set_y_axis({"reverse": True})
        height = max(7.5, 0.5 * bars + 3)
        size = {"width": round(_CHART_WIDTH_CM * _PX_PER_CM), "height": round(height * _PX_PER_CM)}
        bar.set_size(size)
        ws.insert_chart(f"{CHART_COLUMN}{anchor_row}", bar)
        anchor_row += int(height * 2) + 2

    ws.set_column(0, 0, 32)
    ws.set_column(1, 1, 14)
    ws.set_column(2, 3, 10)
    put([counter.title], head=True)
    submissions = t("summary_submissions", counter.lang)
    put([submissions, counter.total])
    for table in counter.tables():
        row += 1  # a blank row
        first = row + 1  # the header row, 1-based
        put([table.title, submissions], head=True)
        for name, count in table.rows:
            put([name, count])
        if table.rows:
            title = t("summary_by", counter.lang, field=table.title)
            chart(title, submissions, "B", first, len(table.rows), top_down=False)
    progress = counter.progress()
    if progress is None or counter.tally is None:
        return
    targets = counter.tally.targets
    done, target, percent = (t(k, counter.lang) for k in _PROGRESS_COLUMNS)
    for key, rows, wanted in (
        ("district", progress.districts, targets.districts),
        ("enumerator", progress.enumerators, targets.enumerators),
    ):
        if not wanted:  # a table per kind of target set
            continue
        title = t(f"progress_col_{key}", counter.lang)
        blank = t("summary_blank", counter.lang)
        row += 1
        first = row + 1
        put([title, done, target, percent], head=True)
        for r in rows:
            put([r.name or blank, r.done, r.target, r.percent])
        with_target = _with_target(rows)
        if with_target:
            # Rows with a target come first, furthest behind first.
            chart_title = t("progress_chart", counter.lang, field=title)
            chart(chart_title, percent, "D", first, with_target, top_down=True)


def _with_target(rows: Sequence[Row]) -> int:
    return sum(1 for r in rows if r.target is not None)
