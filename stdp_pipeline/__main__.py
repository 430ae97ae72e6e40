"""``python -m stdp_pipeline`` is the ``stdp-pipeline`` command."""

from stdp_pipeline.cli import entry

entry()
