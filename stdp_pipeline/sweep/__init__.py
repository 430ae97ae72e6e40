"""Parameter sweeps and repeated seeds, run as Ray tasks: ``stdp-pipeline sweep SWEEP_FILE``.

A sweep file (TOML, YAML or JSON, read like a config file) names a base preset or config, the
keys to vary (a grid and/or random samples), the seeds and the stages to run
(:mod:`~stdp_pipeline.sweep.spec`). Each point and seed becomes an ordinary run directory
``<sweep folder>/<point>/seed=<s>/``; each is one Ray task (:mod:`~stdp_pipeline.sweep.engine`,
:mod:`~stdp_pipeline.sweep.worker`). The summary table, its CSV and the plot of accuracy against
each swept key come from :mod:`~stdp_pipeline.sweep.summary`, which ``compare`` also reads.

Only :mod:`~stdp_pipeline.sweep.engine` imports Ray, and only when a sweep starts, so neither
``import stdp_pipeline`` nor the rest of the command line gets slower.
"""

from __future__ import annotations

#: The sweep's record in its folder: the resolved plan (points, seeds, stages, resources).
SWEEP_FILE = "sweep.json"
#: Written into a run directory whose task failed: the one-line error, the stage, the traceback.
FAILED_FILE = "failed.json"
#: Written into a run directory by the task running it: host, process id, start time.
WORKER_FILE = "worker.json"

__all__ = ["FAILED_FILE", "SWEEP_FILE", "WORKER_FILE"]
