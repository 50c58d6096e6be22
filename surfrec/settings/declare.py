"""How a setting is declared: once, as a dataclass field with its default, range, help
text and command-line flag.

:func:`setting` returns a :func:`dataclasses.field` whose metadata holds a :class:`Setting`.
Everything else reads that one declaration:

* :func:`check_settings` (called by each config's ``__post_init__``) checks the values
  against the range or the choices, with the same one-line words as the command line::

      FitConfig(iterations=-1)         FitConfig.iterations: got -1, expected an integer >= 0
      surfrec fit scan.xyz --iters -1  surfrec fit: error: --iters: got -1, expected an integer >= 0

* :func:`document` appends an ``Attributes`` section (help, default, range, flag) to the
  class docstring, which the API reference shows;
* the command line builds its options from the flags (:mod:`surfrec.cli.options`).

Importing this module is cheap (no numpy, no torch).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import MISSING, dataclass, fields
from typing import Any, Callable, Mapping

from ..errors import ParameterError
from ..validation import Range, check_choice, format_value


@dataclass(frozen=True)
class Setting:
    """What a config field declares besides its default (see :func:`setting`)."""

    help: str
    """What the setting does and its range, in words (the ``--help`` text)."""
    range: Range | None = None
    """Valid numbers (None: not a number, or any value of the field's type)."""
    choices: tuple[str, ...] | None = None
    """Valid words (None: not a choice)."""
    flag: str | None = None
    """The command-line option (``--fill``); a bool's flag sets the opposite of its
    default (``--no-refine``, ``--remove-stray``). None: no option."""
    metavar: str | None = None
    """The option's placeholder in ``--help`` (``S``, ``K``)."""
    words: Mapping[str, Any] | None = None
    """Words the option also accepts, and the value each stands for (``{"auto": 0}``)."""
    parse: Callable[[str], Any] | None = None
    """Parses and checks the option's text when neither a range nor choices describe it
    (``--device``); raises :class:`~surfrec.errors.ParameterError`."""


def setting(default: Any = MISSING, *, help: str, range: Range | None = None,
            choices: tuple[str, ...] | None = None, flag: str | None = None, metavar: str | None = None,
            words: Mapping[str, Any] | None = None, parse: Callable[[str], Any] | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """Declare a config field: its default and :class:`Setting` (help, range, flag).

    Parameters
    ----------
    default
        The default value (immutable), or use ``factory``.
    help : str
        What the setting does (shown by ``--help`` and the API reference).
    range : Range, optional
    choices : tuple of str, optional
    flag : str, optional
        The command-line option; None: the setting has none.
    metavar : str, optional
    words : mapping, optional
        Words the option accepts besides numbers (``{"auto": 0}``).
    parse : callable, optional
        The option's parser when neither ``range`` nor ``choices`` describe it.
    factory : callable, optional
        A default factory (nested configs).
    """
    meta = {"setting": Setting(help=" ".join(help.split()), range=range, choices=choices, flag=flag,
                               metavar=metavar, words=words, parse=parse)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(cls_or_obj: Any) -> list[tuple[dataclasses.Field, Setting]]:
    """The fields of a config class (or instance) that declare a :class:`Setting`."""
    return [(f, f.metadata["setting"]) for f in fields(cls_or_obj) if "setting" in f.metadata]


def check_value(name: str, value: Any, s: Setting) -> Any:
    """``value`` when valid for ``s`` (its range, choices or words), else :class:`ParameterError`."""
    if s.words and any(value == w for w in s.words.values()) and not isinstance(value, bool):
        return value
    if s.choices is not None:
        return check_choice(name, value, s.choices)
    if s.range is not None and not s.range.contains(value):
        extra = "".join(f"{w} or " for w in (s.words or {}))
        raise ParameterError(name, f"got {format_value(value, s.range.integer)}, expected {extra}{s.range.describe()}")
    return value


def check_settings(obj: Any) -> None:
    """Check every declared field of a config instance (``Owner.field: got ..., expected ...``)."""
    owner = type(obj).__name__
    for f, s in declared(obj):
        check_value(f"{owner}.{f.name}", getattr(obj, f.name), s)


def nested_from_dict(obj: Any) -> None:
    """Replace dict values of nested-config fields by instances (``__post_init__`` helper):
    a field whose default factory is a dataclass takes ``Factory(**value)`` or
    ``Factory.from_dict(value)``."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        factory = f.default_factory
        if not isinstance(value, dict) or factory is MISSING:
            continue
        cls = factory if isinstance(factory, type) else type(factory())  # a class, or a function making one
        if dataclasses.is_dataclass(cls):
            build = getattr(cls, "from_dict", None)
            object.__setattr__(obj, f.name, build(value) if build else from_dict(cls, value))


def from_dict(cls: type, d: Mapping[str, Any]) -> Any:
    """``cls(**d)`` for a config class; unknown keys are an error (missing ones keep their
    defaults, so files written before a setting existed still load)."""
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**d)


def to_dict(obj: Any) -> dict:
    """Plain-Python form of a config (tuples as lists), for model files and JSON."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        return v
    return plain(obj)


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not MISSING:
        return repr(f.default)
    return f"{f.default_factory.__name__}()" if dataclasses.is_dataclass(f.default_factory) else "(factory)"


def document(cls: type) -> type:
    """Class decorator: append an ``Attributes`` section built from the declarations to
    ``cls.__doc__`` (numpydoc; the API reference and ``help()`` show it)."""
    rows = []
    for f, s in declared(cls):
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        valid = (f"one of {', '.join(s.choices)}" if s.choices else s.range.describe() if s.range else "")
        tail = "; ".join(x for x in (f"default {_default_text(f)}", valid,
                                     f"option ``{s.flag}``" if s.flag else "") if x)
        rows.append(f"{f.name} : {kind}\n    {s.help} ({tail}).")
    if rows:
        cls.__doc__ = inspect.cleandoc(cls.__doc__ or "") + "\n\nAttributes\n----------\n" + "\n".join(rows) + "\n"
    return cls


__all__ = ["Setting", "setting", "declared", "check_value", "check_settings", "nested_from_dict", "from_dict",
           "to_dict", "document"]
