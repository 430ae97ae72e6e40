"""``stdp-pipeline``: the command line, a thin shell over the stage functions."""

from stdp_pipeline.cli.common import stop_on_signals
from stdp_pipeline.cli.main import main

__all__ = ["entry", "main"]


def entry() -> None:
    """The ``stdp-pipeline`` command (and ``python -m stdp_pipeline``): :func:`main` with
    SIGINT and SIGTERM stopping it as Ctrl-C does (:func:`stop_on_signals`)."""
    stop_on_signals()
    main(prog_name="stdp-pipeline")
