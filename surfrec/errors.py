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


class ParameterError(InputError):
    """A parameter outside its valid range (:mod:`surfrec.validation`), on one line:
    ``"FitConfig.iterations: got -1, expected an integer >= 0"``. A ``ValueError``, and
    a :class:`SurfrecError`, so the CLI reports it as one line with exit code 2."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name, problem)


class EmptyLevelSetError(SurfrecError):
    """The implicit function never crosses the requested level inside the box."""


class FitDivergedError(SurfrecError):
    """The optimization produced non-finite values and could not recover."""


class StageError(SurfrecError):
    """A stage after the fit failed (meshing, refinement, surface step, support map,
    writing). The fitted model was saved first when there was a place to save it, and the
    one-line message names the stage and the command that meshes the saved model again.
    The CLI exits with code 1 (not 2: the input was fine)."""

    exit_code = 1

    def __init__(self, stage: str, cause: BaseException, model: str | None = None, command: str | None = None) -> None:
        self.stage, self.cause, self.model, self.command = stage, cause, model, command
        text = " ".join(str(cause).split()) or type(cause).__name__
        what = text if isinstance(cause, SurfrecError) else f"{type(cause).__name__}: {text}"
        saved = (f"; the fitted model was saved to {model}: mesh it again with `{command}`" if model
                 else "; the fitted model could not be saved")
        super().__init__(f"{stage} failed ({what}){saved}")


class FitInterrupted(SurfrecError):
    """A fit was asked to stop (Ctrl-C, SIGTERM); its state was saved to ``checkpoint``."""

    def __init__(self, step: int, total: int, checkpoint: str | os.PathLike | None) -> None:
        self.step, self.total = step, total
        self.checkpoint = None if checkpoint is None else os.fspath(checkpoint)
        saved = f"; checkpoint saved to {self.checkpoint}" if self.checkpoint else " (no checkpoint path given)"
        super().__init__(f"fit interrupted at step {step} of {total}{saved}")
