#!/usr/bin/env python3
"""Accuracy of a trained run against the lateral inhibition of inference, without retraining.

Training needs strong inhibition (each digit wins few neurons, so neurons learn different
fields); at inference a weaker one lets several neurons of a group answer, a graded code that the
linear read-out uses better. For each weight this presents the run's assignment and test digits
again with ``evaluate.inh_to_exc_weight`` set to it (learned state untouched, nothing written into
the run) and prints the voting and read-out accuracies; ``trained`` is the weight the network
trained with (``network.inh_to_exc_weight``; what ``evaluate`` recorded unless the run sets
``evaluate.inh_to_exc_weight`` itself).

    python scripts/inference_inhibition.py results/esp1600 --weights trained,8,4,2,1
    python scripts/inference_inhibition.py results/esp1600 --weights 4 --out scan.csv

A run made with ``--set evaluate.inh_to_exc_weight=W`` uses W in its own assign and evaluate.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.evaluate import rescore


def _weights(text: str) -> list[float | None]:
    out: list[float | None] = []
    for item in text.split(","):
        item = item.strip()
        if item == "trained":
            out.append(None)
            continue
        try:
            value = float(item)
        except ValueError:
            value = -1.0
        if not value >= 0:
            raise PipelineError(f"--weights {text}: '{item}' must be a number >= 0 or 'trained'")
        out.append(value)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a trained, encoded run directory")
    parser.add_argument("--weights", default="trained,8,4,2,1", help="comma-separated")
    parser.add_argument("--out", default=None, help="also write the table as CSV")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        weights = _weights(args.weights)
        run = RunDir(args.run)
        trained = run.config().network.inh_to_exc_weight
        rows = []
        for w in weights:
            w = trained if w is None else w
            t0 = time.perf_counter()
            scores = rescore(
                run, [f"evaluate.inh_to_exc_weight={w}"], progress=False if args.quiet else None
            )
            rows.append(
                {
                    "inh_to_exc_weight": w,
                    "trained": w == trained,
                    **{k: round(100 * v, 2) for k, v in scores.items() if k != "spikes_per_digit"},
                    "spikes_per_digit": round(scores["spikes_per_digit"], 1),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            )
    except PipelineError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if args.out:
        atomic.write_text(args.out, table.to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
