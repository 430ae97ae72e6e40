#!/usr/bin/env python3
"""Accuracy against training progress: score every checkpoint of a run on a few digits.

For each checkpoint (every ``train.checkpoint_every`` digits and the end of training) the
network's learned state is set from it, the first ``--digits`` assignment and test digits are
presented with learning off, labels and the linear read-out are fitted on the former and the
latter are scored (see :mod:`stdp_pipeline.stages.checkpoint_scores`). Prints the table and
writes ``RUN/accuracy_curve.csv`` and ``RUN/accuracy_curve.png``; nothing else in the run
changes. It may run while the run is still training (checkpoints are written atomically). The
CSV keeps the rows of earlier runs of the script (a ``digits`` column tells which count each row
was scored on): a checkpoint scored again on as many digits replaces its row, so ``--positions``
adds to a curve, and a curve on another digit count stays beside it. The PNG draws the curve of
the ``--digits`` just scored.

    python scripts/accuracy_curve.py results/dc1600 --digits 1000
    python scripts/accuracy_curve.py results/dc6400 --digits 500 --positions 5000,10000
    python scripts/accuracy_curve.py results/dc6400 --digits 10000 --positions 180000
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.artefacts import read_csv
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.checkpoint_scores import plot_accuracy_curve, score_checkpoints


def _positions(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(item) for item in text.split(",")]
    except ValueError:
        raise PipelineError(
            f"--positions {text}: must be digit counts separated by commas, e.g. 5000,10000"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="an encoded run directory with training checkpoints")
    parser.add_argument("--digits", type=int, default=1000, help="assignment and test digits")
    parser.add_argument("--positions", default=None, help="only these checkpoints (comma list)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        run = RunDir(args.run)
        table = score_checkpoints(
            run,
            digits=args.digits,
            positions=_positions(args.positions),
            progress=False if args.quiet else None,
        )
        merged = _with_earlier(run, table)
        run.write_text("accuracy_curve.csv", merged.to_csv(index=False))
        curve = merged[merged["digits"] == args.digits].reset_index(drop=True)
        title = f"{run.name}: {run.config().name}, accuracy at each checkpoint"
        plot_accuracy_curve(curve, run.file("accuracy_curve.png"), title, args.digits)
    except PipelineError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    print(curve.to_string(index=False))
    kept = len(curve) - len(table)
    also = f" ({kept} row(s) kept from the earlier scores on {args.digits} digits)" if kept else ""
    others = sorted(int(d) for d in set(merged["digits"]) - {args.digits})
    if others:
        counts = ", ".join(f"{d:,}" for d in others)
        also += f"; the CSV also holds the curve(s) scored on {counts} digits"
    print(f"wrote {run.file('accuracy_curve.csv')} and accuracy_curve.png{also}")
    return 0


def _with_earlier(run: RunDir, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the rows of the run's earlier ``accuracy_curve.csv`` that it does not score
    again (another checkpoint, or the same one on another digit count: scoring a checkpoint takes
    minutes at 6,400 neurons, so no earlier score is thrown away), ordered by digit count, then
    position. An unreadable earlier file is replaced."""
    key = ["digits", "position"]
    try:  # missing, unparseable or without the key columns: PipelineError
        old = read_csv(run.file("accuracy_curve.csv"), "accuracy_curve.csv", key, "")
        again = pd.MultiIndex.from_frame(old[key].astype(int)).isin(
            pd.MultiIndex.from_frame(table[key].astype(int))
        )
    except (PipelineError, ValueError, TypeError):  # or keys that are not whole numbers
        return table
    keep = old[~again].reindex(columns=table.columns)
    merged = pd.concat([keep, table]) if len(keep) else table
    return merged.sort_values(key).reset_index(drop=True)


if __name__ == "__main__":
    sys.exit(main())
