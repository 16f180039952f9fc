"""The typer command `streamdeblur adapt`; cli.py registers it with app.command("adapt")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from streamdeblur.adapt.defaults import DEFAULT_FRAMES, DEFAULT_STEPS, MIN_SHARPNESS
from streamdeblur.cli_options import OverwriteOpt, QuietOpt, VerboseOpt
from streamdeblur.errors import EXIT_INTERRUPTED
from streamdeblur.exit_codes import exit_codes
from streamdeblur.logs import setup_logging

log = logging.getLogger("streamdeblur")


def adapt_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT", help="Footage: video files, folders of videos, folders of images.", show_default=False
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="The adapted weights (.safetensors; the card goes beside them as .json).", show_default=False
        ),
    ],
    init: Annotated[Path | None, typer.Option(help="Weights to start from. Default: the shipped model.")] = None,
    frames: Annotated[
        int, typer.Option(help="How many sharp frames to pick (a fifth are held out to check on).")
    ] = DEFAULT_FRAMES,
    minutes: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="Stop fine-tuning after this many minutes (the weights so far are written; --resume goes on).",
        ),
    ] = None,
    steps: Annotated[
        int, typer.Option(min=1, help="Fine-tuning steps in all (the learning-rate schedule spans them).")
    ] = DEFAULT_STEPS,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --work (no rescan).")] = False,
    work: Annotated[
        Path | None,
        typer.Option(help="Run folder: picked frames, checkpoints, pictures. Default: OUT_NAME.adapt beside --out."),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda. Default: cuda when there is one.")] = None,
    min_sharpness: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Sharpness a frame needs to be learned from (0 smooth, crisp frames about 0.5 to 0.8).",
        ),
    ] = MIN_SHARPNESS,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Adapt the model to your camera from its own footage: no sharp references needed.

    Picks the sharpest frames (spread over shots and time), blurs them synthetically and
    fine-tunes on them; writes the weights with a card, a contact sheet of the picked frames
    and a before/after picture. Use the result with `streamdeblur run --weights OUT`.
    """
    from streamdeblur.adapt.run import adapt

    setup_logging(quiet, verbose)
    with exit_codes():
        result = adapt(
            inputs,
            out,
            init=init,
            frames=frames,
            steps=steps,
            minutes=minutes,
            resume=resume,
            work=work,
            device=device,
            overwrite=overwrite,
            min_sharpness=min_sharpness,
            progress_bar=not quiet,
        )
        if result.interrupted:
            log.warning(
                "stopped at step %d; the weights so far are in %s; continue with --resume", result.step, result.weights
            )
            raise typer.Exit(EXIT_INTERRUPTED)
