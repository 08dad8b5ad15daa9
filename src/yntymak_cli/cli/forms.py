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
    from yntymak_cli.plain import plain

    failed = False
    for path in paths:
        loaded = load_form(path)
        for problem in sorted(loaded.problems, key=lambda p: (p.line, p.col)):
            typer.echo(plain(problem, keep_newlines=True), err=True)  # quotes the file's text
        if not loaded.ok:
            failed = True
        elif not loaded.problems:
            typer.echo(f"{plain(path)}: ok")
        else:
            typer.echo(f"{plain(path)}: ok ({len(loaded.warnings)} warning(s))")
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


@app.command("import-xlsform")
def import_xlsform(
    file: Path = typer.Argument(..., help="An XLSForm: .xlsx, .xlsm, .xls, .md or .csv."),
    output: Path = typer.Option(..., "-o", "--output", help="The YAML form to write."),
) -> None:
    """Convert an ODK/KoboToolbox XLSForm (read by pyxform) into a YAML form."""
    from yntymak_cli.export.output import temp_file
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.plain import plain
    from yntymak_cli.xlsform import import_xlsform as run_import

    check_overwrite(output, "yaml-form")
    result = run_import(file)
    for warning in result.warnings:
        typer.echo(f"warning: {plain(warning)}", err=True)
    tmp = temp_file(output)  # a new file of its own: never through a link left there
    try:
        tmp.write_text(result.yaml_text, encoding="utf-8")
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    typer.echo(f"{plain(output)}: written ({len(result.warnings)} warning(s))")


@app.command("export-xlsform")
def export_xlsform(
    form: Path = typer.Argument(..., help="A YAML form file."),
    output: Path = typer.Option(..., "-o", "--output", help="The .xlsx XLSForm to write."),
) -> None:
    """Write a YAML form as an XLSForm that ODK Central and KoboToolbox accept."""
    from yntymak_cli.export.output import temp_file
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.outputs import check_overwrite
    from yntymak_cli.plain import plain
    from yntymak_cli.xlsform import export_xlsform as run_export

    check_overwrite(output, "xlsform")
    the_form = load_form(form).require()
    tmp = temp_file(output)  # no half-written file under the real name
    try:
        warnings = run_export(the_form, tmp)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    for warning in warnings:
        typer.echo(f"warning: {plain(warning)}", err=True)
    typer.echo(f"{plain(output)}: written")
