"""The one exception type the CLI turns into a single clear line instead of a traceback."""


class NanokwsError(Exception):
    """A user-facing error: bad input, missing file, unsupported model. Message is one line."""

    exit_code = 2
