#!/usr/bin/env python3
"""Put the receptive-field grids (``fields.png``) of several runs side by side in one PNG.

    python scripts/fields_side_by_side.py results/ablation/whole-inh results/ablation/patches-inh \
        --out results/comparison/fields-whole-vs-patches.png

Each panel is titled with the run's folder name and its test accuracies (from metrics.json).
Run ``stdp-pipeline fields RUN`` first for every run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from stdp_pipeline.io.atomic import atomic_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dpi", type=int, default=80)
    args = parser.parse_args()
    missing = [str(r / "fields.png") for r in args.runs if not (r / "fields.png").exists()]
    if missing:
        parser.error(f"no receptive-field grid: {', '.join(missing)} (run `stdp-pipeline fields`)")
    fig, axes = plt.subplots(1, len(args.runs), figsize=(8 * len(args.runs), 8.4), squeeze=False)
    for ax, run in zip(axes[0], args.runs, strict=True):
        ax.imshow(plt.imread(run / "fields.png"))
        ax.axis("off")
        title = run.name
        if (run / "metrics.json").exists():
            acc = json.loads((run / "metrics.json").read_text())["accuracy"]
            title += "\n" + ", ".join(
                f"{k.replace('_', ' ')} {100 * v:.1f} %" for k, v in acc.items()
            )
        ax.set_title(title, fontsize=13)
    fig.tight_layout()
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=args.dpi, format="png")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
