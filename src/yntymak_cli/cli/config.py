"""`yntymak config set|show|unset`: settings a volunteer gives once (see yntymak_cli.config)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Settings given once: lang (ky, ru or en), enumerator, forms_dir, hq_url. Kept in the "
    "home.",
    no_args_is_help=True,
)


@app.command("set")
def set_(
    key: str = typer.Argument(..., help="lang, enumerator, forms_dir, hq_url or hq_db."),
    value: str = typer.Argument(
        ..., help="ky/ru/en for lang; a name; a folder of forms; HQ's http(s):// address."
    ),
) -> None:
    """Remember a setting: `yntymak config set lang ky`."""
    from yntymak_cli.config import set_value
    from yntymak_cli.i18n import current_lang, set_lang, t
    from yntymak_cli.plain import plain

    stored = set_value(key, value)
    if key == "lang" and not _lang_given():
        set_lang(stored)  # the confirmation already in the new language
    typer.echo(t("config_set", current_lang(), key=key, value=plain(stored)))


@app.command()
def unset(
    key: str = typer.Argument(..., help="lang, enumerator, forms_dir, hq_url or hq_db."),
) -> None:
    """Forget a setting (back to the default)."""
    from yntymak_cli.config import unset_value
    from yntymak_cli.i18n import current_lang, t

    unset_value(key)
    typer.echo(t("config_unset", current_lang(), key=key))


@app.command()
def show() -> None:
    """List the settings, their values and where each comes from."""
    from yntymak_cli.config import config_path, settings
    from yntymak_cli.i18n import current_lang, t
    from yntymak_cli.plain import plain

    lang = current_lang()
    rows = settings()
    width = max(len(s.key) for s in rows)
    for s in rows:
        if s.value is None:
            shown = t("config_not_set", lang)
        else:
            source = t(f"config_source_{s.source}", lang) if s.source[:1].islower() else s.source
            shown = f"{plain(s.value)}  ({source})"
        typer.echo(f"{s.key.ljust(width)}  {shown}")
    typer.echo(t("config_file", lang, path=plain(config_path())))


def _lang_given() -> bool:
    from yntymak_cli.i18n import chosen_lang

    return chosen_lang() is not None
