"""`yntymak forms ...`: validate, show and describe form definitions."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Check and inspect YAML form definitions.", no_args_is_help=True)


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="Form files (YAML)."),
) -> None:
    """Check forms: exit 0 when all are valid, else 2 with one FILE:LINE:COL line per problem."""
    from yntymak_cli.forms.loader import load_form

    failed = False
    for path in paths:
        loaded = load_form(path)
        for problem in sorted(loaded.problems, key=lambda p: (p.line, p.col)):
            typer.echo(str(problem), err=True)
        if not loaded.ok:
            failed = True
        elif not loaded.problems:
            typer.echo(f"{path}: ok")
        else:
            typer.echo(f"{path}: ok ({len(loaded.warnings)} warning(s))")
    if failed:
        raise typer.Exit(2)


@app.command()
def show(
    path: Path = typer.Argument(..., help="A form file or the id of a registered form."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en."),
) -> None:
    """Print the question tree with types, conditions and choices."""
    from rich.console import Console

    from yntymak_cli.cli.form_tree import form_tree
    from yntymak_cli.forms.library import resolve_form

    form = resolve_form(str(path))
    Console().print(form_tree(form, lang))


@app.command()
def schema() -> None:
    """Print the JSON Schema of the YAML form format (for editor autocompletion)."""
    import json

    from yntymak_cli.forms.model import Form

    typer.echo(json.dumps(Form.model_json_schema(), indent=2, ensure_ascii=False))
