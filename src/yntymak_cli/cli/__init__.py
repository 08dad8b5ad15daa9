"""The `yntymak` command: a thin typer layer over the core.

Only typer is imported at start-up; each command imports the core modules it needs,
so `yntymak --help` stays fast.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import typer
from typer.core import TyperGroup

from yntymak_cli import __version__
from yntymak_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_INVALID

# The command line as given, kept so that a usage error found before any option is parsed
# is still told in the language its `--lang` asks for.
_argv: list[str] = []


_PATH_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError)


class _Group(TyperGroup):
    """Catches the core's errors once, for every subcommand: message + documented exit code."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        if parent is None:  # a new command line: no language chosen yet
            from yntymak_cli.i18n import set_lang

            set_lang(None)
            config_mod = sys.modules.get("yntymak_cli.config")  # not imported for --help
            if config_mod is not None:
                config_mod.reset_warnings()
            _argv[:] = args
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            if not _is_usage_error(exc):
                raise
            typer.echo(_usage_line(exc, "yntymak"), err=True)
            sys.exit(EXIT_INVALID)

    # ctx is click's Context, which has no public name where typer vendors click (typer._click)
    def invoke(self, ctx: Any) -> Any:
        import sqlite3

        from yntymak_cli.errors import YntymakError
        from yntymak_cli.i18n import os_error_text, t

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
                typer.echo(t("error", _message_lang(), message=message), err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # `yntymak submissions list | head -1`: the reader has gone; nothing to report.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_FAILURE)
        except OSError as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            lang = _message_lang()
            where = f": {exc.filename}" if exc.filename else ""
            message = f"{os_error_text(exc, lang)}{where}"
            typer.echo(_plain(t("error", lang, message=message)), err=True)
            # A path the user named that is missing or of the wrong kind is invalid input
            # (2); anything else the system refused (permissions, I/O) is a failure (1).
            invalid = isinstance(exc, _PATH_ERRORS) or exc.errno == errno.ENAMETOOLONG
            ctx.exit(EXIT_INVALID if invalid else EXIT_FAILURE)
        except sqlite3.Error as exc:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            lang = _message_lang()
            detail = t("os_disk_full", lang) if _home_disk_full() else exc
            typer.echo(_plain(t("error_database", lang, detail=detail)), err=True)
            ctx.exit(EXIT_FAILURE)
        except UnicodeEncodeError:
            if os.environ.get("YNTYMAK_DEBUG"):
                raise
            # A lone surrogate (from a non-UTF-8 argument, a JSON "\udcff", a file name):
            # nothing can store or print it, so it is refused before anything is written.
            typer.echo(t("error_surrogate", _message_lang()), err=True)
            ctx.exit(EXIT_INVALID)
        except (RuntimeError, Exception) as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and _is_usage_error(exc, help=True):
                # `yntymak keys`: one line naming the subcommands, not the English help.
                typer.echo(_which_command_line(exc.ctx), err=True)
                ctx.exit(EXIT_INVALID)
            if _is_usage_error(exc):
                # One line instead of click's usage block: volunteers read the last line only.
                where = exc.ctx.command_path if exc.ctx is not None else "yntymak"
                typer.echo(_usage_line(exc, where), err=True)
                ctx.exit(EXIT_INVALID)
            # typer's own exits pass through; anything else is our bug, reported in one
            # line (YNTYMAK_DEBUG=1 shows the traceback).
            if type(exc).__module__.startswith(("typer", "click")) or os.environ.get(
                "YNTYMAK_DEBUG"
            ):
                raise
            message = t("error_internal", _message_lang(), type=type(exc).__name__, detail=exc)
            typer.echo(_plain(message), err=True)
            ctx.exit(EXIT_FAILURE)


def _plain(message: str) -> str:
    from yntymak_cli.plain import plain

    return plain(message, keep_newlines=True)


def _given_lang() -> str | None:
    """The last valid `--lang` on the command line (a command's own `--lang` comes after
    the global one, so it wins), read before the options are parsed: messages raised
    before a command reads its options are already in that language."""
    from yntymak_cli.i18n import LANGUAGES

    given = None
    for i, arg in enumerate(_argv):
        if arg == "--":
            break
        value = _argv[i + 1] if arg == "--lang" and i + 1 < len(_argv) else None
        if arg.startswith("--lang="):
            value = arg.partition("=")[2]
        if value in LANGUAGES:
            given = value
    return given


def _given_home() -> Path | None:
    """The `--home` on the command line, read before the options are parsed (a usage error
    found by then is told in the language that home's config.json asks for)."""
    given = None
    for i, arg in enumerate(_argv):
        if arg == "--":
            break
        if arg == "--home" and i + 1 < len(_argv):
            given = _argv[i + 1]
        elif arg.startswith("--home="):
            given = arg.partition("=")[2]
    return Path(given) if given else None


def _message_lang() -> str:
    from yntymak_cli.i18n import LANGUAGES, chosen_lang, current_lang

    lang = _given_lang() or chosen_lang()
    if lang:
        return lang
    if os.environ.get("YNTYMAK_LANG", "") not in LANGUAGES:
        home = _given_home()
        if home is not None:  # perhaps not parsed yet: its config is read, nothing created
            from yntymak_cli.config import config_lang_at
            from yntymak_cli.i18n import FALLBACK

            return config_lang_at(home) or FALLBACK
    return current_lang()


def _which_command_line(ctx: Any) -> str:
    """`yntymak keys` alone: "Error: no command given: keys show | export | trust-hq"."""
    from yntymak_cli.i18n import t

    lang = _message_lang()
    group = ctx.command
    names = [
        name
        for name in group.list_commands(ctx)
        if (cmd := group.get_command(ctx, name)) is not None and not cmd.hidden
    ]
    commands = f"{ctx.info_name} {' | '.join(names)}"
    message = t("usage_which_command", lang, commands=commands)
    return _plain(t("error_usage", lang, message=message, command=ctx.command_path))


def _usage_line(exc: Any, where: str) -> str:
    """click's usage error as one line in the message language (its English words are
    rebuilt from the exception's fields; an unknown kind keeps click's text)."""
    from yntymak_cli.i18n import t

    lang = _message_lang()
    kind = type(exc).__name__
    message = exc.format_message()
    if kind == "NoSuchOption":
        message = t("usage_no_such_option", lang, name=exc.option_name)
        if exc.possibilities:
            names = ", ".join(sorted(exc.possibilities))
            message += " " + t("usage_did_you_mean", lang, names=names)
    elif kind == "MissingParameter":
        kind_name = exc.param_type or getattr(exc.param, "param_type_name", "")
        key = "usage_missing_option" if kind_name == "option" else "usage_missing_argument"
        message = t(key, lang, name=_param_hint(exc))
    elif match := _CLICK_TEXTS.match(exc.message):
        groups = match.groupdict()
        if groups["command"] is not None:
            message = t("usage_no_such_command", lang, name=groups["command"])
            if groups["near"]:
                message += " " + t("usage_did_you_mean", lang, names=groups["near"])
        elif groups["extra"] is not None:
            message = t("usage_extra_arguments", lang, args=groups["extra"])
        elif groups["needs"] is not None:
            message = t("usage_option_needs_value", lang, name=groups["needs"])
        elif groups["missing_command"] is not None:
            message = t("usage_missing_command", lang)
    elif kind == "BadParameter":
        message = t("usage_bad_value", lang, name=_param_hint(exc), detail=exc.message)
    return _plain(t("error_usage", lang, message=message, command=where))


def _param_hint(exc: Any) -> str:
    """How click names the parameter in its messages: '-o' / '--output', or 'FORM'."""
    hint = exc.param_hint
    if hint is None and exc.param is not None:
        hint = exc.param.get_error_hint()
    if isinstance(hint, list | tuple):
        hint = " / ".join(f"'{h}'" for h in hint)
    return str(hint or "")


# The first line of click's own usage errors that come without fields of their own.
_CLICK_TEXTS = re.compile(
    r"^(?:No such command '(?P<command>.*)'\.(?: Did you mean (?P<near>.*)\?)?"
    r"|Got unexpected extra arguments?(?:\(s\))? \((?P<extra>.*)\)"
    r"|Option '(?P<needs>[^']*)' requires an? (?:argument|arguments|value)\."
    r"|(?P<missing_command>Missing command\.))$",
    re.DOTALL,
)


def _home_disk_full() -> bool:
    """SQLite says "disk I/O error" or "unable to open" when the disk has no room left even
    to open the database: name the real cause when the home's disk is full."""
    from yntymak_cli import home as home_mod
    from yntymak_cli.store.db import disk_full

    try:
        home = home_mod.home_dir(create=False)  # an error path: never create a home here
    except (OSError, ValueError, RuntimeError):
        return False
    return disk_full(home / home_mod.DB_NAME)


class _UsageError(Protocol):
    """click's UsageError, as _is_usage_error recognises it."""

    ctx: Any
    exit_code: int

    def format_message(self) -> str: ...


def _is_usage_error(exc: BaseException, help: bool = False) -> TypeGuard[_UsageError]:
    # typer vendors click, so its UsageError is matched by shape rather than imported.
    return (
        type(exc).__module__.startswith(("typer", "click"))
        # `yntymak` alone shows the help (a group alone is asked for with help=True)
        and (help or type(exc).__name__ != "NoArgsIsHelpError")
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
    lang: str | None = typer.Option(
        None,
        "--lang",
        metavar="LANG",
        help="Language of every message: ky, ru or en (default: $YNTYMAK_LANG, else "
        "'yntymak config set lang', else the form's, else en).",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    from yntymak_cli import home as home_mod
    from yntymak_cli.i18n import LANGUAGES, current_lang, set_lang, t

    home_mod.set_home(home)
    if lang is not None and lang not in LANGUAGES:
        from yntymak_cli.errors import InvalidInput

        langs = ", ".join(LANGUAGES)
        raise InvalidInput(t("lang_unknown", current_lang(), lang=lang, langs=langs))
    set_lang(_given_lang() or lang)


def _register() -> None:
    from yntymak_cli.cli import collect, config, export, forms, review, serve, submissions, sync

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
    from yntymak_cli.cli import http_sync  # `yntymak sync`: bundles over HTTP

    app.command("sync")(http_sync.sync)
    sync.hq_app.command("export")(export.hq_export)  # the same exporter over HQ's merged data
    sync.hq_app.add_typer(review.review_app, name="review")
    from yntymak_cli.cli import targets  # `hq targets`: progress against targets

    sync.hq_app.add_typer(targets.targets_app, name="targets")
    sync.hq_app.command("receipt")(review.hq_receipt)
    sync.hq_app.command("serve")(serve.hq_serve)
    from yntymak_cli.cli import quality  # `hq checks`: data quality

    sync.hq_app.command("checks")(quality.hq_checks)
    app.command()(review.inbox)
    app.add_typer(sync.hq_app, name="hq")
    app.add_typer(config.app, name="config")


_register()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
