"""A form as a rich tree: types, conditions and choices (for `forms show`)."""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from yntymak_cli.forms.model import EXPRESSION_KEYS, Form, Question, text_in


def form_tree(form: Form, lang: str | None = None) -> Tree:
    lang = lang or form.language
    title = text_in(form.title, lang, form.language) or form.id
    root = Tree(f"[bold]{escape(title)}[/] [dim]{escape(form.id)} v{escape(form.version)}[/]")
    _add(root, form, form.questions, lang)
    return root


def _add(parent: Tree, form: Form, questions: list[Question], lang: str | None) -> None:
    for q in questions:
        label = text_in(q.label, lang, form.language)
        head = f"[bold cyan]{escape(q.name)}[/] [magenta]{escape(q.type)}[/]"
        if label:
            head += f"  {escape(label)}"
        flags = [
            f
            for f, on in (
                ("required", q.required is True),
                ("sensitive", q.sensitive),
                ("read-only", q.read_only),
            )
            if on
        ]
        if flags:
            head += f" [yellow]({', '.join(flags)})[/]"
        node = parent.add(head)
        for key in EXPRESSION_KEYS:
            value = getattr(q, key)
            if value:
                node.add(f"[dim]{key}:[/] {escape(value)}")
        if isinstance(q.required, str):
            node.add(f"[dim]required:[/] {escape(q.required)}")
        if q.list_name:
            choices = ", ".join(
                f"{c.name}={text_in(c.label, lang, form.language)}"
                for c in form.choice_list(q.list_name)
            )
            node.add(f"[dim]choices ({escape(q.list_name)}):[/] {escape(choices)}")
        if q.questions:
            _add(node, form, q.questions, lang)
