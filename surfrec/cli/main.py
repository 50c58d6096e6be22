"""Entry point of the ``surfrec`` command.

Each sub-command lives in its own module of this package, which provides
``add_arguments(parser)`` and ``run(args) -> int``; its one-line help is in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shlex
import sys
import warnings
from typing import NoReturn

from ..errors import SurfrecError

#: sub-command name -> (module relative to this package, one-line help). Only the module of
#: the command being run is imported, so `surfrec info` does not pay for torch.
COMMANDS: dict[str, tuple[str, str]] = {
    "fit": (".fit_cmd", "fit a neural level set to a scan and write its mesh"),
    "mesh": (".mesh_cmd", "extract a mesh from a model saved with `surfrec fit --save-model`"),
    "info": (".info_cmd", "summarize a point cloud: points, bounding box, normals, mean spacing, duplicates"),
    "eval": (".eval_cmd", "score a mesh against a ground truth (Chamfer, Hausdorff, NC, F-score)"),
    "residuals": (".residuals_cmd", "report residuals |F(p*) - c| of level-set samples after k Newton steps"),
    "baseline": (".baseline_cmd", "reconstruct a scan with screened Poisson or ball pivoting (Open3D)"),
    "bench": (".bench_cmd", "run surfrec and baselines on a folder of cases; write CSV, Markdown, previews"),
    "study": (".study_cmd", "run a study of the method (projection, residuals, activation, seeds, level, losses, curves)"),
    "report": (".report_cmd", "write the report page of a saved model: one offline HTML file to look at the fit"),
    "render": (".render_cmd", "render a mesh or point cloud to a PNG from several sides (no display needed)"),
    "batch": (".batch_cmd", "reconstruct many scans: local worker processes or a Ray cluster, with a manifest"),
}


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``surfrec fit: error: --iters: got -1, ...``),
    exit code 2, without the usage block (``--help`` still shows it)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            message = message[len("argument "):]
        message = " ".join(message.split())
        self.exit(2, f"{self.prog}: error: {message}\n")


def _load(name: str):
    return importlib.import_module(COMMANDS[name][0], __package__)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's arguments are loaded."""
    from .. import __version__

    parser = Parser(
        prog="surfrec",
        description="Reconstruct a mesh from a point cloud by fitting a neural level set.",
    )
    parser.add_argument("--version", action="version", version=f"surfrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only:
            continue
        p.add_argument("-v", "--verbose", action="store_true", help="show debug log messages")
        mod = _load(name)
        mod.add_arguments(p)
        _show_ranges(p)
        p.set_defaults(_run=mod.run)
    return parser


def _show_ranges(parser: argparse.ArgumentParser) -> None:
    """Append the valid range of each numeric option to its help (from surfrec.validation)."""
    for action in parser._actions:
        rng = getattr(action.type, "valid_range", None)
        if rng is not None and action.help:
            each = "each " if getattr(action.type, "__name__", "") == "list" else ""
            action.help += f"; {each}{rng.describe()}".replace("%", "%%")


def _command_in(argv: list[str]) -> str | None:
    for tok in argv:
        if tok in COMMANDS:
            return tok
        if not tok.startswith("-"):
            return None
    return None


class _BarSafeHandler(logging.Handler):
    """Log lines to stderr through ``tqdm.write``: an open progress bar is cleared first and
    drawn again below the line, instead of being left half-drawn above it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 (logging's own contract: never raise from emit)
            self.handleError(record)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (also used by ``sys.exit``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    parser = build_parser(only=command) if command else build_parser(only="")
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse reports these from the top parser ("surfrec: error: ..."): name the command
        print(f"surfrec {args.command}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    args.command_line = shlex.join(["surfrec", *argv])
    quiet = getattr(args, "quiet", False)
    # --quiet: errors only (warnings about the scan too; errors that stop a command are
    # printed by this function whatever the level)
    level = logging.DEBUG if args.verbose else (logging.ERROR if quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(message)s", handlers=[_BarSafeHandler()])
    if quiet and not args.verbose:
        warnings.simplefilter("ignore")  # warnings.warn of the libraries too
    try:
        code = args._run(args)
    except SurfrecError as exc:
        print(f"surfrec {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"surfrec {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
