"""argparse types built from the ranges of :mod:`surfrec.validation` (CLI only).

Each factory returns a ``type=`` callable that converts the text and checks it against the
same :class:`~surfrec.validation.Range` the library checks, so a bad value stops the
command while the arguments are parsed: before the scan is read, before torch is imported
(except to ask torch whether CUDA works when a CUDA device is requested and a driver exists),
and before any output is written. argparse prefixes the option, and
:meth:`surfrec.cli.main.Parser.error` prints it as one line::

    surfrec fit: error: --iters: got -1, expected an integer >= 0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from ..errors import ParameterError
from ..validation import Range, check_device


def _parse_number(text: str, rng: Range) -> int | float:
    t = text.strip()
    try:
        return int(t) if rng.integer else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected {rng.describe()}") from None


def number(rng: Range) -> Callable[[str], int | float]:
    """``type=number(FIT["iterations"])``: an int or float inside ``rng``."""

    def parse(text: str) -> int | float:
        value = _parse_number(text, rng)
        if not rng.contains(value):
            raise argparse.ArgumentTypeError(rng.problem(value))  # the library's words
        return value

    parse.__name__ = "integer" if rng.integer else "number"  # argparse names it in some errors
    parse.valid_range = rng  # shown in --help by surfrec.cli.main.build_parser
    return parse


def number_list(rng: Range) -> Callable[[str], list]:
    """Comma-separated numbers, each inside ``rng`` (``--steps 10,20``, ``--radii 0.1,0.2``)."""
    example = "10,20" if rng.integer else "0.005,0.01"

    def parse(text: str) -> list:
        items = [t for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected comma-separated values like {example}, "
                                             f"each {rng.describe()}")
        values = []
        for t in items:
            try:
                v = int(t) if rng.integer else float(t)
            except ValueError:
                raise argparse.ArgumentTypeError(f"got {text!r}, expected comma-separated values like {example}, "
                                                 f"each {rng.describe()}") from None
            if not rng.contains(v):
                raise argparse.ArgumentTypeError(f"got {t.strip()} in {text!r}, expected each to be {rng.describe()}")
            values.append(v)
        return values

    parse.__name__ = "list"
    parse.valid_range = rng
    return parse


def device(text: str) -> str:
    """``--device``: auto, cpu, cuda or cuda:N; a CUDA request needs CUDA."""
    try:
        return check_device(text, name="device")
    except ParameterError as exc:  # "got 'cuda', ..." (argparse prefixes the option)
        raise argparse.ArgumentTypeError(exc.problem) from None


def preset(text: str) -> str:
    """``--preset``: a name of :data:`surfrec.settings.PRESETS`."""
    from ..settings import PRESETS

    if text not in PRESETS:
        raise argparse.ArgumentTypeError(f"got {text!r}, expected one of {', '.join(sorted(PRESETS))}")
    return text


def names(valid: tuple[str, ...] | list[str], what: str = "names") -> Callable[[str], list[str]]:
    """Comma-separated names from ``valid`` (``--methods surfrec,poisson``)."""

    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in valid]
        if not items or bad:
            shown = ", ".join(bad) if bad else repr(text)
            raise argparse.ArgumentTypeError(f"got {shown}, expected comma-separated {what} from: "
                                             f"{', '.join(valid)}")
        return items

    parse.__name__ = "list"
    return parse


def out_path(suffixes: tuple[str, ...] | None = None, folder_must_exist: bool = True) -> Callable[[str], Path]:
    """An output file: its folder must exist (unless the command creates it) and its
    extension be one of ``suffixes``."""

    def parse(text: str) -> Path:
        path = Path(text)
        if suffixes is not None and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"got {text!r}, expected a file ending in {' or '.join(suffixes)}")
        if folder_must_exist and path.parent != Path("") and not path.parent.is_dir():
            raise argparse.ArgumentTypeError(f"got {text!r}, but the folder {str(path.parent)!r} does not exist")
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"got {text!r}, which is a folder; expected a file")
        return path

    parse.__name__ = "path"
    return parse


def existing_file(text: str) -> Path:
    """An input file that must exist (``--resume``)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"got {text!r}, expected an existing file"
                                         + (" (it is a folder)" if path.is_dir() else ""))
    return path

