"""The ``maskwatch`` command line: parses, calls the library, prints.

One module per command group; a new command is a new module and one registration line below.
"""

from __future__ import annotations

import typer

from . import detect, export, models, serve, train
from . import eval as eval_cmds

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Find every face in pictures and videos and tell whether it wears a mask.")

app.command("detect")(detect.detect)
app.command("eval")(eval_cmds.eval_cmd)
app.command("models")(models.models)
app.command("train")(train.train)
app.command("serve")(serve.serve)
app.command("export")(export.export)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
