"""The one exception type a user sees: one line saying what is wrong and what would be right."""


class PipelineError(Exception):
    """A user-facing error.

    The message is one line naming the bad value and what would be right, e.g.
    ``model.tau_mem_ms = -5.0: must be > 0``. The CLI prints it as ``Error: <message>`` and exits
    with status 2, without a traceback.
    """
