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
    from yntymak_cli.errors import EXIT_INVALID
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.i18n import current_lang, t
    from yntymak_cli.plain import plain

    failed = False
    for path in paths:
        loaded = load_form(path)
        for problem in sorted(loaded.problems, key=lambda p: (p.line, p.col)):
            typer.echo(plain(problem, keep_newlines=True), err=True)  # quotes the file's text
        if not loaded.ok:
            failed = True
        elif not loaded.problems:
            typer.echo(t("forms_valid", current_lang(), path=plain(path)))
        else:
            n = len(loaded.warnings)
            typer.echo(t("forms_valid_warnings", current_lang(), path=plain(path), n=n))
    if failed:
        raise typer.Exit(EXIT_INVALID)


@app.command()
def show(
    path: Path = typer.Argument(..., help="A form file, or a form id (see `yntymak forms list`)."),
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en."),
) -> None:
    """Print the question tree with types, conditions and choices."""
    from rich.console import Console

    from yntymak_cli.cli.form_tree import form_tree
    from yntymak_cli.collect.library import resolve_form
    from yntymak_cli.i18n import current_lang

    form = resolve_form(str(path))
    shown = lang or current_lang(form.language)  # --lang > YNTYMAK_LANG > config > form's
    Console().print(form_tree(form, shown, current_lang(form.language)))


@app.command("list")
def list_(
    lang: str | None = typer.Option(None, "--lang", help="ky, ru or en (titles and headers)."),
) -> None:
    """Forms a bare id can name: the forms folder's, then those used on this laptop."""
    from yntymak_cli.collect.library import available_forms, forms_dir
    from yntymak_cli.i18n import LANGUAGES, current_lang, set_lang, t
    from yntymak_cli.plain import plain

    if lang in LANGUAGES:
        set_lang(lang)
    forms = available_forms(lang if lang in LANGUAGES else None)
    words = current_lang()
    if not forms:
        folder, _ = forms_dir()
        typer.echo(t("forms_list_empty", words, folder=plain(folder)))
        return
    rows = [
        (f.id, f.version, f.title, str(f.path) if f.path else t("forms_list_laptop", words))
        for f in forms
    ]
    head = tuple(t(f"forms_list_{k}", words) for k in ("form", "version", "title", "where"))
    widths = [max(len(plain(r[i])) for r in [head, *rows]) for i in range(3)]
    for row in [head, *rows]:
        cells = [
            plain(cell).ljust(widths[i]) if i < 3 else plain(cell) for i, cell in enumerate(row)
        ]
        typer.echo("  ".join(cells).rstrip())


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
    from yntymak_cli.files import write_atomic
    from yntymak_cli.outputs import check_overwrite, ensure_folder, form_id_of
    from yntymak_cli.plain import plain
    from yntymak_cli.xlsform import import_xlsform as run_import

    check_overwrite(output, "yaml-form")
    result = run_import(file)
    # Only a YAML form of the same id may be replaced: never a hand-written form of another.
    check_overwrite(output, "yaml-form", same_id=form_id_of(result.yaml_text) or "")
    ensure_folder(output.parent)  # created if missing; a file there is refused (exit 2)
    from yntymak_cli.i18n import current_lang, t

    for warning in result.warnings:
        typer.echo(t("warning", current_lang(), message=plain(warning)), err=True)
    # A new file of its own, renamed into place: never written through a link left there.
    write_atomic(output, result.yaml_text.encode("utf-8"))
    n = len(result.warnings)
    typer.echo(t("written_warnings", current_lang(), path=plain(output), n=n))


@app.command("export-xlsform")
def export_xlsform(
    form: Path = typer.Argument(..., help="A YAML form file."),
    output: Path = typer.Option(..., "-o", "--output", help="The .xlsx XLSForm to write."),
) -> None:
    """Write a YAML form as an XLSForm that ODK Central and KoboToolbox accept."""
    from yntymak_cli.files import atomic_path
    from yntymak_cli.forms.loader import load_form
    from yntymak_cli.outputs import check_overwrite, ensure_folder
    from yntymak_cli.plain import plain
    from yntymak_cli.xlsform import export_xlsform as run_export

    check_overwrite(output, "xlsform")
    the_form = load_form(form).require()
    ensure_folder(output.parent)
    with atomic_path(output) as tmp:  # no half-written file under the real name
        warnings = run_export(the_form, tmp)
    from yntymak_cli.i18n import current_lang, t

    for warning in warnings:
        typer.echo(t("warning", current_lang(), message=plain(warning)), err=True)
    typer.echo(t("written", current_lang(), path=plain(output)))
