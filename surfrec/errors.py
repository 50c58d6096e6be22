"""Exceptions raised by surfrec.

Every error that a user can cause with bad input derives from :class:`SurfrecError`;
the CLI turns those into a one-line message and exit code 2.
"""

from __future__ import annotations

import os


class SurfrecError(Exception):
    """Base class of all errors that surfrec reports to users."""


class InputError(SurfrecError, ValueError):
    """A file or array given to surfrec cannot be used.

    The message always names the input (a file path, or ``<array>``) and the problem,
    on one line: ``"scan.ply: contains 3 NaN/inf coordinates"``.
    """

    def __init__(self, source: str | os.PathLike | None, problem: str) -> None:
        self.source = "<array>" if source is None else os.fspath(source)
        self.problem = " ".join(str(problem).split())  # force a single line
        super().__init__(f"{self.source}: {self.problem}")


class EmptyLevelSetError(SurfrecError):
    """The implicit function never crosses the requested level inside the box."""


class FitDivergedError(SurfrecError):
    """The optimization produced non-finite values and could not recover."""


class FitInterrupted(SurfrecError):
    """A fit was asked to stop (Ctrl-C, SIGTERM); its state was saved to ``checkpoint``."""

    def __init__(self, step: int, total: int, checkpoint: str | os.PathLike | None) -> None:
        self.step, self.total = step, total
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        saved = f"; checkpoint saved to {self.checkpoint}" if self.checkpoint else " (no checkpoint path given)"
        super().__init__(f"fit interrupted at step {step} of {total}{saved}")


def check_fields(obj: object, checks: dict[str, bool]) -> None:
    """Raise one ValueError naming every field of a config dataclass whose check failed.

    ``checks`` maps field names to whether their value is valid.
    """
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        raise ValueError(f"invalid {type(obj).__name__} values: "
                         f"{', '.join(f'{k}={getattr(obj, k)!r}' for k in bad)}")
