"""``stdp-pipeline data``: download and check the MNIST-format data sets.

The lead CLI adds this group with ``main.add_command(data)``. Errors leave as one line
(``Error: <message>``, exit status 2), never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from stdp_pipeline.cli.common import one_line
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data as data_lib

__all__ = ["data"]


_DATASET_OPTION = click.option(
    "--dataset",
    type=click.Choice(sorted(data_lib.DATASETS)),
    default="mnist",
    show_default=True,
    help="Which data set.",
)
_DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Folder holding the files, or a root holding <dataset>/ "
    "[default: $STDP_DATA_DIR, else ./data/<dataset>].",
)


@click.group(name="data")
def data() -> None:
    """Download and check the MNIST-format data sets (mnist, fashion-mnist).

    \b
    The four IDX files of a data set (gzipped or not) are looked for in:
      1. --data-dir DIR       DIR/<dataset>/ if that folder exists, else DIR
      2. $STDP_DATA_DIR       the same rule
      3. ./data/<dataset>/    under the current folder

    The stages download a missing data set there on first use, as `fetch` does; set
    STDP_NO_DOWNLOAD=1 to switch that off (a missing file is then an error at once).

    \b
    Examples:
      stdp-pipeline data fetch
      stdp-pipeline data check
      stdp-pipeline data check --data-dir /work/shared/data/mnist
      STDP_DATA_DIR=~/datasets stdp-pipeline data fetch --dataset fashion-mnist
    """


@data.command("fetch")
@_DATASET_OPTION
@_DATA_DIR_OPTION
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Network timeout per mirror.",
)
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def fetch_cmd(dataset: str, data_dir: Path | None, timeout_s: float, quiet: bool) -> None:
    """Download the data set's missing or bad files and verify their MD5 sums.

    Files already present and valid are skipped. Each file is written to a temporary file, checked,
    then renamed: a failed download leaves nothing behind. Mirrors are tried in order; set
    STDP_MIRRORS (comma-separated base URLs) to use others.

    \b
    Offline? Put the four files (gzipped or not) in the data folder by hand:
      train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
      t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz
    then run `stdp-pipeline data check`.

    \b
    Examples:
      stdp-pipeline data fetch                              # MNIST into ./data/mnist/
      stdp-pipeline data fetch --dataset fashion-mnist
      stdp-pipeline data fetch --data-dir ~/datasets        # into ~/datasets/mnist/
      STDP_MIRRORS=http://host/mnist/ stdp-pipeline data fetch
    """
    try:
        folder = data_lib.fetch(dataset, data_dir, timeout_s=timeout_s, progress=not quiet)
    except PipelineError as err:
        raise one_line(err) from None
    click.echo(f"{dataset}: all {len(data_lib.DATASETS[dataset].files)} files ok in {folder}")


def _left(table: pd.DataFrame, columns: list[str]) -> dict[str, object]:
    """``to_string`` formatters that left-align the text ``columns`` of ``table``."""
    out: dict[str, object] = {}
    for col in columns:
        width = max([len(str(col))] + [len(str(v)) for v in table[col]])
        out[col] = lambda v, w=width: str(v).ljust(w)
    return out


def _file_table(report: pd.DataFrame) -> str:
    present = [bool(p) for p in report["path"]]
    table = pd.DataFrame(
        {
            "file": [
                Path(p).name if has else f"{n}(.gz)"
                for p, n, has in zip(report["path"], report["name"], present, strict=True)
            ],
            "split": report["split"],
            "kind": report["kind"],
            "items": [("-" if c is None or pd.isna(c) else str(int(c))) for c in report["count"]],
            "bytes": [
                (str(int(s)) if has else "-")
                for s, has in zip(report["size"], present, strict=True)
            ],
            "check": [("ok" if ok else "BAD") for ok in report["ok"]],
            "detail": report["status"],
        }
    )
    text_cols = ["file", "split", "kind", "check", "detail"]
    return table.to_string(index=False, justify="left", formatters=_left(table, text_cols))


def _summary_table(stats: pd.DataFrame) -> str:
    rows = []
    for key, values in stats.iterrows():
        if key in ("pixel_mean", "pixel_std"):
            cells = [f"{float(v):.3f}" for v in values]
        else:
            cells = [str(int(v)) for v in values]
        rows.append([str(key).replace("_", " ")] + cells)
    table = pd.DataFrame(rows, columns=["label"] + [str(c) for c in stats.columns])
    return table.to_string(index=False, justify="right", formatters=_left(table, ["label"]))


@data.command("check")
@_DATASET_OPTION
@_DATA_DIR_OPTION
def check_cmd(dataset: str, data_dir: Path | None) -> None:
    """Check the data set's files (IDX structure, MD5 sums) and print a summary.

    Prints one line per file (ok), then the number of examples per label in each split and the
    pixel mean and standard deviation (0..255). If a file is missing or bad it prints instead one
    error line naming each such file and what is wrong with it, and exits with status 2.

    \b
    Examples:
      stdp-pipeline data check
      stdp-pipeline data check --data-dir /work/shared/data/mnist
      stdp-pipeline data check --dataset fashion-mnist --data-dir ~/datasets
    """
    try:
        folder = data_lib.resolve_data_dir(dataset, data_dir)
        report = data_lib.verify(dataset, data_dir)
        present = report["path"] != ""
        if not present.any():
            names = ", ".join(f"{n}.gz" for n in report["name"])
            raise PipelineError(
                f"{dataset}: no data files in {folder} (expected {names}, gzipped or not); "
                f"run `stdp-pipeline data fetch --dataset {dataset}`, or set "
                f"{data_lib.ENV_DATA_DIR} to a folder holding them"
            )
        bad = report[~report["ok"]]
        if len(bad):
            problems = "; ".join(
                f"{name}: {str(status).replace(f' in {folder}', '')}"
                for name, status in zip(bad["name"], bad["status"], strict=True)
            )
            raise PipelineError(
                f"{dataset} in {folder}: {len(bad)} of {len(report)} files missing or bad "
                f"({problems}); run `stdp-pipeline data fetch --dataset {dataset}` to replace them"
            )
        stats = data_lib.summary(dataset, data_dir, download=False)
    except PipelineError as err:
        raise one_line(err) from None
    click.echo(f"{dataset} in {folder}\n")
    click.echo(_file_table(report))
    click.echo("")
    click.echo(_summary_table(stats))
