"""``maskwatch hub``: the commands PaddleHub users type, in maskwatch's spelling.

``maskwatch hub run pyramidbox_lite_mobile_mask --input_path X`` prints PaddleHub's result list;
``maskwatch hub serving start -m pyramidbox_lite_mobile_mask [-p 8866]`` starts the HTTP service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors, fail_usage

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="PaddleHub-style commands (hub run, hub serving start).",
)
serving = typer.Typer(
    add_completion=False, no_args_is_help=True, rich_markup_mode=None, help="PaddleHub Serving: start the HTTP service."
)
app.add_typer(serving, name="serving")


def _module_model(name: str) -> str:
    from ..hub import MODULES

    if name not in MODULES:
        fail_usage(f"{name}: unknown module; maskwatch provides {', '.join(MODULES)}")
    return MODULES[name]


@app.command("run")
@clean_errors
def run(
    module: str = typer.Argument(..., help="pyramidbox_lite_mobile_mask or pyramidbox_lite_server_mask."),
    input_path: Path = typer.Option(..., "--input_path", "--input-path", help="The picture to run on."),
    confs_threshold: float = typer.Option(0.6, "--confs_threshold", help="Face score threshold (PaddleHub's default)."),
    use_multi_scale: bool = typer.Option(False, "--use_multi_scale", help="Add a pass at twice the input size."),
) -> None:
    """Run a PaddleHub module on one picture and print PaddleHub's result: [{'path': ..., 'data': [...]}]."""
    from ..hub import Module

    _module_model(module)
    res = Module(name=module).face_detection(
        paths=[str(input_path)], confs_threshold=confs_threshold, use_multi_scale=use_multi_scale
    )
    print(json.dumps(res))


@serving.command("start")
@clean_errors
def start(
    module: str = typer.Option(
        ..., "--modules", "-m", help="pyramidbox_lite_mobile_mask or pyramidbox_lite_server_mask."
    ),
    port: int = typer.Option(8866, "--port", "-p", help="Port (PaddleHub Serving's default 8866)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="MASKWATCH_API_KEY", help="Require this X-API-Key header."
    ),
) -> None:
    """Start the HTTP service with this module's model: POST /predict/<module> as PaddleHub Serving."""
    from . import app as main_app

    args = ["serve", "--model", _module_model(module), "--port", str(port), "--host", host]
    if api_key:
        args += ["--api-key", api_key]
    main_app(args)  # the `maskwatch serve` command, as it stands
