"""What every command of the CLI shares: the one-line error and the wrapper that produces it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from .errors import PipelineError

#: Click settings of every command: ``-h`` too, and help text wrapped at 100 columns.
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class UserError(click.ClickException):
    """A user error as click shows it: ``Error: <one line>``, exit status 2."""

    exit_code = 2


def one_line(err: Exception) -> UserError:
    """The error's message folded onto one line."""
    return UserError(" ".join(str(err).split()))


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors (:class:`PipelineError`) into one-line click errors, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as err:
            raise one_line(err) from None

    return wrapper
