"""Errors a user can act on. Stages print their message as one line and exit non-zero."""


class AeganError(Exception):
    """Base class: the message says what is wrong, where, and what would be right."""


class DataError(AeganError):
    """A dataset could not be fetched, verified, extracted or read."""


class TrainingError(AeganError):
    """Training cannot go on (a non-finite loss, a checkpoint that does not fit)."""


def first_line(error: BaseException) -> str:
    """An error's message cut to its first line (160 characters at most), or its class name: for one-line reports."""
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else error.__class__.__name__
