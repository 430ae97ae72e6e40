"""``python -m stdp_pipeline`` is the ``stdp-pipeline`` command."""

from stdp_pipeline.cli.main import main

main(prog_name="stdp-pipeline")
