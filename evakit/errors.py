"""The mistakes a user can make, each reported as one sentence.

Every error here names the argument or the file, what was wrong with it and the fix. The CLI
prints the sentence and exits with status 2; the Python API raises the same exception. They
derive from ``ValueError``, so code that already catches bad values keeps working.
"""

from __future__ import annotations


class EvakitError(ValueError):
    """A user mistake or a bad file, described in one sentence (CLI exit status 2)."""


class ArgumentError(EvakitError):
    """An argument out of range or of the wrong kind (a device, a seed, an epoch count)."""


class DataError(EvakitError):
    """A dataset that cannot be found, or a cache file that is unreadable or inconsistent."""


class CheckpointError(EvakitError):
    """A checkpoint that is unreadable or was written by another recipe or configuration."""


class RecordError(EvakitError):
    """A record file that is unreadable, incomplete, or would pin no code."""
