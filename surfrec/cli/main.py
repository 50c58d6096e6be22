"""Entry point of the ``surfrec`` command.

Each sub-command lives in its own module of this package, which provides
``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import SurfrecError

#: sub-command name -> module (relative to this package)
COMMANDS: dict[str, str] = {
    "fit": ".fit_cmd",
    "mesh": ".mesh_cmd",
    "info": ".info_cmd",
    "eval": ".eval_cmd",
    "residuals": ".residuals_cmd",
    "baseline": ".baseline_cmd",
    "bench": ".bench_cmd",
}


def _load(name: str):
    return importlib.import_module(COMMANDS[name], __package__)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (all sub-commands)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="surfrec",
        description="Reconstruct a mesh from a point cloud by fitting a neural level set.",
    )
    parser.add_argument("--version", action="version", version=f"surfrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        mod = _load(name)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        p.add_argument("-v", "--verbose", action="store_true", help="show debug log messages")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (also used by ``sys.exit``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = getattr(args, "quiet", False)
    level = logging.DEBUG if args.verbose else (logging.WARNING if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s")
    try:
        code = args._run(args)
    except SurfrecError as exc:
        print(f"surfrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"surfrec {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
