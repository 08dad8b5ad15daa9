"""A form as a rich tree: types, conditions and choices (for `forms show`)."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from yntymak_cli.forms.model import EXPRESSION_KEYS, Form, Question, text_in
from yntymak_cli.i18n import t
from yntymak_cli.plain import plain

# Every name, label and expression is the form author's text: Text objects, never markup.


def form_tree(form: Form, lang: str | None = None, words: str | None = None) -> Tree:
    """`lang`: the language of the form's labels; `words`: of the tool's own (flags,
    "choices"). YAML keys (relevant, constraint, ...) stay as the author writes them."""
    lang = lang or form.language
    words = words or lang or "en"
    title = text_in(form.title, lang, form.language) or form.id
    root = Tree(
        Text.assemble(
            (plain(title, keep_newlines=True), "bold"),
            " ",
            (f"{plain(form.id)} v{plain(form.version)}", "dim"),
        )
    )
    _add(root, form, form.questions, lang, words)
    return root


def _add(parent: Tree, form: Form, questions: list[Question], lang: str | None, words: str) -> None:
    for q in questions:
        label = text_in(q.label, lang, form.language)
        head = Text.assemble((plain(q.name), "bold cyan"), " ", (plain(q.type), "magenta"))
        if label:
            head.append(f"  {plain(label, keep_newlines=True)}")
        flags = [
            t(key, words)
            for key, on in (
                ("required_mark", q.required is True),
                ("tree_sensitive", q.sensitive),
                ("tree_read_only", q.read_only),
            )
            if on
        ]
        if flags:
            head.append(f" ({', '.join(flags)})", style="yellow")
        node = parent.add(head)
        for key in EXPRESSION_KEYS:
            value = getattr(q, key)
            if value:
                node.add(_keyed(key, value))
        if isinstance(q.required, str):
            node.add(_keyed("required", q.required))
        if q.list_name:
            choices = ", ".join(
                f"{c.name}={text_in(c.label, lang, form.language)}"
                for c in form.choice_list(q.list_name)
            )
            node.add(_keyed(f"{t('tree_choices', words)} ({q.list_name})", choices))
        if q.questions:
            _add(node, form, q.questions, lang, words)


def _keyed(key: str, value: str) -> Text:
    return Text.assemble((f"{plain(key)}:", "dim"), f" {plain(value, keep_newlines=True)}")
