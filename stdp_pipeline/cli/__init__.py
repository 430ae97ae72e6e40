"""``stdp-pipeline``: the command line, a thin shell over the stage functions."""

from stdp_pipeline.cli.main import main

__all__ = ["main"]
