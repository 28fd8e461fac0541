"""The ``maskwatch`` command line: parses, calls the library, prints.

One module per command group; a new command is a new module and one registration line below.
"""

from __future__ import annotations

import typer

from . import demo, detect, export, hub, models, serve, train, watch
from . import eval as eval_cmds
from ._common import clean_errors

# rich_markup_mode=None: help texts are plain (a "[train]" in them stays as written)
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Find every face in pictures and videos and tell whether it wears a mask.",
)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"maskwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print maskwatch's version and exit."
    ),
) -> None:
    """Find every face in pictures and videos and tell whether it wears a mask."""


# clean_errors: any MaskwatchError ends the command with one line and exit code 1
app.command("detect")(clean_errors(detect.detect))
app.command("demo")(clean_errors(demo.demo))
app.command("eval")(clean_errors(eval_cmds.eval_cmd))
app.command("models")(clean_errors(models.models))
app.command("train")(clean_errors(train.train))
app.command("serve")(clean_errors(serve.serve))
app.command("export")(clean_errors(export.export))
app.command("watch")(clean_errors(watch.watch))
app.add_typer(hub.app, name="hub")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
