"""User-facing errors: one clear paragraph, a CLI exit code, never a traceback."""
from __future__ import annotations


class RadioflowError(Exception):
    """A problem the user can fix (bad input, missing file, ...).

    ``exit_code`` is what the CLI exits with: 2 for usage/load errors, 1 for validation or
    step failures.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(RadioflowError):
    """Bad command-line input, unreadable files, unknown names."""

    exit_code = 2


class ValidationError(RadioflowError):
    """A recipe or parameter set that fails validation."""

    exit_code = 1


class StepError(RadioflowError):
    """A step that ran and failed."""

    exit_code = 1
