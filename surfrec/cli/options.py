"""Command-line options built from the settings' declarations (CLI only).

Every setting with a flag (:func:`surfrec.settings.declare.setting`) becomes an option of
the commands that run its stage: ``fit``, ``batch`` and ``bench`` get the input, fit and
mesh settings, ``mesh`` the mesh settings. An option's type, valid range, choices, help and
default all come from the one declaration; its value is stored under ``stage.field``
(None when not given), so :func:`overrides` hands the runner exactly what was given.
Parsing imports no torch: a bad value stops the command before any work.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field
from typing import Any, Iterable

from ..errors import ParameterError
from ..settings import FitConfig, InputConfig, MeshConfig
from ..settings.declare import Setting, check_value, declared
from ..validation import Range
from . import validate

#: The settings classes of each stage with options, in the order ``--help`` lists them.
STAGE_CLASSES = {"input": InputConfig, "fit": FitConfig, "mesh": MeshConfig}
_PREFIX = "setting:"


def _parser(name: str, s: Setting):
    """The argparse ``type=`` of a declared setting (range, words or a custom parser)."""
    if s.parse is not None:
        def parse(text: str) -> Any:
            try:
                return s.parse(text)
            except ParameterError as exc:
                raise argparse.ArgumentTypeError(exc.problem) from None

        parse.__name__ = name
        return parse
    if s.range is None:
        return str
    number = validate.number(s.range)
    if not s.words:
        return number

    def parse_words(text: str) -> Any:
        word = text.strip().lower()
        if word in s.words:
            return s.words[word]
        try:
            value = int(text) if s.range.integer else float(text)
        except ValueError:
            value = text
        try:
            return check_value(name, value, s) if value not in s.words.values() else _refuse(value, s)
        except ParameterError as exc:
            raise argparse.ArgumentTypeError(exc.problem) from None

    parse_words.__name__ = "integer" if s.range.integer else "number"
    parse_words.valid_range = Range(s.range.lo, s.range.hi, s.range.lo_open, s.range.hi_open, s.range.integer,
                                    note="or " + " or ".join(s.words))
    return parse_words


def _refuse(value: Any, s: Setting) -> Any:
    """A number that only its word may give (``--neighbors 0``: say ``auto``)."""
    raise argparse.ArgumentTypeError(f"got {value}, expected {' or '.join(s.words)} or {s.range.describe()}")


def _default_text(f: Field) -> str:
    value = f.default if f.default is not MISSING else None
    s: Setting = f.metadata["setting"]
    if s.words:
        for word, v in s.words.items():
            if v == value:
                return word
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else str(value)


def add_setting_options(parser: argparse.ArgumentParser, stages: Iterable[str], *,
                        title: str = "{stage} settings", note: str = "") -> None:
    """Add an option for every flagged setting of ``stages`` (one argument group each)."""
    for stage in stages:
        flagged = [(f, s) for f, s in declared(STAGE_CLASSES[stage]) if s.flag]
        if not flagged:
            continue
        group = parser.add_argument_group(title.format(stage=stage), note or None)
        for f, s in flagged:
            dest = f"{_PREFIX}{stage}.{f.name}"
            help_text = f"{s.help} (default: {_default_text(f)})"
            if isinstance(f.default, bool):
                group.add_argument(s.flag, dest=dest, action="store_const", const=not f.default, default=None,
                                   help=help_text)
            elif s.choices:
                group.add_argument(s.flag, dest=dest, choices=s.choices, default=None, help=help_text)
            else:
                group.add_argument(s.flag, dest=dest, type=_parser(s.flag, s), default=None,
                                   metavar=s.metavar or s.flag.lstrip("-").replace("-", "_").upper(),
                                   help=help_text)


def overrides(args: argparse.Namespace, stages: Iterable[str] | None = None) -> dict[str, Any]:
    """The settings given on the command line, as ``{"stage.field": value}`` (given only)."""
    out = {}
    for key, value in vars(args).items():
        if key.startswith(_PREFIX) and value is not None:
            name = key[len(_PREFIX):]
            if stages is None or name.split(".")[0] in stages:
                out[name] = value
    return out


def as_arguments(args: argparse.Namespace, stages: Iterable[str]) -> list[str]:
    """The given settings of ``stages`` as command-line words (a resume command repeats them)."""
    words: list[str] = []
    for name, value in overrides(args, stages).items():
        stage, field = name.split(".", 1)
        f = next(f for f, _ in declared(STAGE_CLASSES[stage]) if f.name == field)
        s: Setting = f.metadata["setting"]
        if isinstance(f.default, bool):
            words.append(s.flag)
            continue
        text = next((w for w, v in (s.words or {}).items() if v == value), str(value))
        words += [s.flag, text]
    return words


__all__ = ["add_setting_options", "overrides", "as_arguments", "STAGE_CLASSES"]
