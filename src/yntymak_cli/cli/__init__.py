"""The `yntymak` command: a thin typer layer over the core.

Only typer is imported at start-up; each command imports the core modules it needs,
so `yntymak --help` stays fast.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from yntymak_cli import __version__


class _Group(TyperGroup):
    """Catches the core's errors once, for every subcommand: message + documented exit code."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            typer.echo(f"Error: {_plain(exc.format_message())} (see 'yntymak --help')", err=True)
            sys.exit(2)

    def invoke(self, ctx: typer.Context) -> Any:
        import sqlite3

        from yntymak_cli.errors import YntymakError

        try:
            return super().invoke(ctx)
        except YntymakError as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            # Messages quote names and values from forms, answers and bundles: shown as
            # text, control characters visible, line breaks kept.
            message = _plain(exc.message)
            # Located problems (FILE:LINE:COL: ...) and multi-line lists print as they are.
            if "\n" in message or _LOCATED.match(message):
                typer.echo(message, err=True)
            else:
                typer.echo(f"Error: {message}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            where = f": {exc.filename}" if exc.filename else ""
            typer.echo(_plain(f"Error: {exc.strerror or exc}{where}"), err=True)
            ctx.exit(1)
        except sqlite3.Error as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            typer.echo(_plain(f"Error: database: {exc}"), err=True)
            ctx.exit(1)
        except UnicodeEncodeError:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            # A lone surrogate (from a non-UTF-8 argument, a JSON "\udcff", a file name):
            # nothing can store or print it, so it is refused before anything is written.
            typer.echo(
                "Error: an argument or a value is not valid Unicode text (a lone surrogate); "
                "retype it or fix the file's encoding",
                err=True,
            )
            ctx.exit(2)
        except (RuntimeError, Exception) as exc:
            if _is_usage_error(exc):
                # One line instead of click's usage block: volunteers read the last line only.
                where = exc.ctx.command_path if exc.ctx is not None else "yntymak"
                typer.echo(
                    _plain(f"Error: {exc.format_message()} (see '{where} --help')"), err=True
                )
                ctx.exit(2)
            # typer's own exits pass through; anything else is our bug, reported in one
            # line (YNTYMAK_DEBUG=1 shows the traceback).
            if type(exc).__module__.startswith(("typer", "click")) or os.environ.get(
                "YNTYMAK_DEBUG"
            ):
                raise
            typer.echo(
                _plain(
                    f"Internal error: {type(exc).__name__}: {exc} (run with YNTYMAK_DEBUG=1"
                    " for details and please report it)"
                ),
                err=True,
            )
            ctx.exit(1)


def _plain(message: str) -> str:
    from yntymak_cli.plain import plain

    return plain(message, keep_newlines=True)


def _is_usage_error(exc: BaseException) -> bool:
    # typer vendors click, so its UsageError is matched by shape rather than imported.
    return (
        type(exc).__module__.startswith(("typer", "click"))
        and type(exc).__name__ != "NoArgsIsHelpError"  # `yntymak` alone shows the help
        and getattr(exc, "exit_code", None) == 2
        and hasattr(exc, "format_message")
        and hasattr(exc, "ctx")
    )


_LOCATED = re.compile(r"^[^\s:]+:\d+:\d+: ")


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
    from yntymak_cli.cli import collect, export, forms, submissions, sync

    app.add_typer(forms.app, name="forms")
    app.command()(collect.collect)
    app.command()(collect.drafts)
    app.command()(collect.resume)
    submissions.app.command()(collect.edit)
    submissions.app.command("purge")(sync.purge_command)
    app.add_typer(submissions.app, name="submissions")
    app.command()(export.export)
    app.add_typer(sync.keys_app, name="keys")
    app.add_typer(sync.bundle_app, name="bundle")
    sync.hq_app.command("export")(export.export)  # the same exporter over HQ's merged data
    app.add_typer(sync.hq_app, name="hq")


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
