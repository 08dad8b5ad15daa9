"""The `yntymak` command: a thin typer layer over the core.

Only typer is imported at start-up; each command imports the core modules it needs,
so `yntymak --help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from yntymak_cli import __version__


class _Group(TyperGroup):
    """Catches the core's errors once, for every subcommand: message + documented exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        from yntymak_cli.errors import YntymakError

        try:
            return super().invoke(ctx)
        except YntymakError as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            message = exc.message
            if "\n" in message or message.startswith(("Error", "<", "/")) or ":" in message[:1]:
                typer.echo(message, err=True)
            else:
                typer.echo(f"Error: {message}", err=True)
            ctx.exit(exc.exit_code)


app = typer.Typer(
    cls=_Group,
    name="yntymak",
    help="Offline-first field data collection: YAML forms, local SQLite, Excel export, "
    "signed and encrypted sync bundles.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"yntymak {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    home: Path | None = typer.Option(
        None,
        "--home",
        metavar="DIR",
        help="Folder holding the database and keys (default: $YNTYMAK_HOME, else the user "
        "data dir).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    from yntymak_cli import home as home_mod

    home_mod.set_home(home)


def _register() -> None:
    from yntymak_cli.cli import forms

    app.add_typer(forms.app, name="forms")


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
