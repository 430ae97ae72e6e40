"""``python -m stdp_pipeline`` is the ``stdp-pipeline`` command."""

from .cli import main

main(prog_name="stdp-pipeline")
