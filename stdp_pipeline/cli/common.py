"""What every command of the CLI shares: the one-line error and the wrapper that produces it (also
for Ctrl-C), the RUN_DIR argument and the ``--data-dir`` and ``--quiet`` options, and the stage
result line."""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.stages.table import stage

if TYPE_CHECKING:
    from stdp_pipeline.io.rundir import RunDir

#: Click settings of every command: ``-h`` too, and help text wrapped at 100 columns.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: Key in ``click.Context.meta`` (shared by a command and its group) set by ``--quiet``.
_QUIET_KEY = "stdp_pipeline.quiet"


class UserError(click.ClickException):
    """A user error as click shows it: ``Error: <one line>``, exit status 2."""

    exit_code = 2


class Interrupted(click.ClickException):
    """Ctrl-C as the CLI shows it: ``Interrupted: <one line>`` (what stopped, how to go on), exit
    status 130 (128 + SIGINT), instead of click's bare ``Aborted!``."""

    exit_code = 130

    def show(self, file: Any = None) -> None:
        click.echo(f"Interrupted: {self.format_message()}", err=True)


def stop_on_signals() -> None:
    """Make ``kill -INT`` and ``kill`` (SIGTERM) stop a command as Ctrl-C does: one
    ``Interrupted`` line saying how to go on, the run's lock released, training resumable from
    its newest checkpoint.

    SIGINT gets Python's handler back where the parent started this process with it ignored (an
    asynchronous command of a shell script, ``nohup``), and SIGTERM (a batch system's stop,
    ``kill PID``) raises :class:`KeyboardInterrupt` too. Called once by the ``stdp-pipeline``
    entry point, in its main thread; the handlers run when control is back in Python (after the
    current compiled presentation or C loop)."""

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


def one_line(err: Exception | str) -> UserError:
    """The error's message (or a message) folded onto one line."""
    return UserError(" ".join(str(err).split()))


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors (:class:`PipelineError`) into one-line click errors, no traceback;
    Ctrl-C into one :class:`Interrupted` line (a command may raise its own, more precise one)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as err:
            raise one_line(err) from None
        except KeyboardInterrupt:
            ctx = click.get_current_context(silent=True)
            name = ctx.info_name if ctx is not None else "the command"
            raise Interrupted(
                f"`stdp-pipeline {name}` stopped before it finished; nothing half-written was "
                "kept: run it again"
            ) from None

    return wrapper


def resume_hint(run_dir: Path, epochs: int | None = None, limit: int | None = None) -> str:
    """How to go on with an interrupted training run: ``--resume`` from the newest checkpoint
    (with the same ``--epochs``/``--limit``), or training again when there is none yet."""
    from stdp_pipeline.io.rundir import RunDir

    options = "".join(
        f" --{name} {value}"
        for name, value in (("epochs", epochs), ("limit", limit))
        if value is not None
    )
    try:
        found = RunDir(run_dir).checkpoints()
    except OSError:
        found = {}
    if found:
        return (
            f"`stdp-pipeline train {run_dir} --resume{options}` continues from the checkpoint at "
            f"digit {max(found):,}"
        )
    return (
        f"no checkpoint was written yet, so run `stdp-pipeline train {run_dir}{options}` again "
        "(it starts from the beginning)"
    )


# --- shared arguments and options ------------------------------------------------------------
def _run_dir(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a RUN_DIR that is a file, as a one-line error (not click's usage message)."""
    if value is not None and value.exists() and not value.is_dir():
        raise UserError(f"{value} is a file, not a folder: give a run directory")
    return value


#: The ``RUN_DIR`` argument of every stage command (a folder; need not exist yet for ``encode``
#: and ``run``). A file gives ``Error: <one line>``, exit status 2.
RUN_DIR = click.argument("run_dir", type=click.Path(path_type=Path), callback=_run_dir)

#: ``--data-dir DIR``: where the data set's IDX files are (passed on to the data loader).
DATA_DIR = click.option(
    "--data-dir",
    default=None,
    metavar="DIR",
    help="Folder with the data set's IDX files [default: $STDP_DATA_DIR, else ./data/<dataset>].",
)


def _remember_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_QUIET_KEY] = True


#: ``--quiet`` / ``-q``: no progress bars. Taken by the group and by every stage command, so
#: ``stdp-pipeline --quiet train X`` and ``stdp-pipeline train X --quiet`` mean the same; read it
#: with :func:`progress_setting`.
QUIET = click.option(
    "--quiet",
    "-q",
    is_flag=True,
    expose_value=False,
    callback=_remember_quiet,
    help="No progress bars.",
)


def progress_setting(ctx: click.Context) -> bool | None:
    """The ``progress`` argument of the stage functions: ``False`` if ``--quiet`` was given (to
    the group or the command), else ``None`` (bars follow ``STDP_PROGRESS``)."""
    return False if ctx.meta.get(_QUIET_KEY) else None


def echo_result(name: str, run: RunDir, result: Any) -> None:
    """Print stage ``name``'s one-line result (:meth:`~stdp_pipeline.stages.table.Stage.describe`)
    from what its library function returned."""
    click.echo(stage(name).describe(run, result))
