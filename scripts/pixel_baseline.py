#!/usr/bin/env python3
"""The raw-pixel baseline: logistic regression on the 784 pixels, fitted on a slice of the
training digits, tested on the test digits. A run's linear read-out is worth as much as it beats
this figure on the same digits (``evaluate`` records it per run as ``pixels_linear``).

    python scripts/pixel_baseline.py                          # fit on all 60,000, test 10,000
    python scripts/pixel_baseline.py --fit 50000:60000 --fit 10000:20000
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from stdp_pipeline.io import data
from stdp_pipeline.stages.readout import pixel_baseline


def _slice(text: str) -> slice:
    start, _, stop = text.partition(":")
    return slice(int(start or 0), int(stop) if stop else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--fit", action="append", default=None, help="START:STOP of the training digits"
    )
    args = parser.parse_args()
    train = data.load_split(args.dataset, "train", args.data_dir)
    test = data.load_split(args.dataset, "test", args.data_dir)
    rows = []
    for text in args.fit or ["0:"]:
        sl = _slice(text)
        t0 = time.perf_counter()
        acc = pixel_baseline(train.images[sl], train.labels[sl], test.images, test.labels)
        rows.append(
            {
                "fitting digits": f"{sl.start}:{sl.stop if sl.stop is not None else len(train)}",
                "test digits": len(test),
                "accuracy %": round(100 * acc, 2),
                "fit s": round(time.perf_counter() - t0, 1),
            }
        )
    print(f"{args.dataset}: logistic regression on the raw pixels")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
