"""`quantdesk` command line: the same engine as the window, for scripts and power users.

Each sub-command lives in its own module with `register(subparsers)`; the parser sets
`func(args) -> int` on the namespace. Bad input raises `UserError`: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# Modules that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "quantdesk.core.cli.inspect_cmd",
    "quantdesk.core.cli.chat_cmd",
    "quantdesk.core.cli.quantize_cmd",
    "quantdesk.core.cli.plan_cmd",
    "quantdesk.core.cli.hardware_cmd",
    "quantdesk.core.cli.hub_cmd",
    "quantdesk.core.cli.eval_cmd",
    "quantdesk.core.cli.imatrix_cmd",
    "quantdesk.core.cli.serve_cmd",
    "quantdesk.core.cli.worker_cmd",
    "quantdesk.core.cli.model_settings_cmd",
]


class UserError(Exception):
    """A problem with the user's input, reported as one line and exit status 2."""


def positive(kind=int):
    """argparse type: a number of `kind` (int or float) above zero."""
    def parse(value: str):
        try:
            n = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}") from None
        if n <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
        return n
    return parse


def fixed_gpu_layers(value: str) -> int:
    """argparse type for commands that load without the planner (eval, imatrix): N or "all"
    (-1 also means all), as llama.cpp's integer. The chat command also takes "auto"."""
    from quantdesk.core.runtime.gpu_layers import AUTO, llama_gpu_layers, parse_gpu_layers
    try:
        layers = parse_gpu_layers(value)
        if layers == AUTO:
            raise ValueError(value)
        return llama_gpu_layers(layers)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number of layers or 'all' "
                                         "(-1 also means all)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quantdesk", description="Run quantized LLMs locally.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The engine's host is a multiprocessing "spawn" child: in a frozen (PyInstaller) build the
    # child re-runs this executable, and freeze_support() turns it into the host there.
    import multiprocessing
    multiprocessing.freeze_support()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    late = getattr(args, "late_positional", None)
    # argparse takes an optional positional only together with the one before it: in
    # `chat MODEL --image X "question"` the question comes after the options, so it is left
    # over here; a command that names such a positional takes one plain word.
    if (extra and late and getattr(args, late) is None and len(extra) == 1
            and not extra[0].startswith("-")):
        setattr(args, late, extra[0])
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()   # here, not at exit: a reader that went away is seen below
        return code
    except BrokenPipeError:
        return _reader_gone()
    except UserError as exc:
        print(f"quantdesk: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("quantdesk: interrupted", file=sys.stderr)
        return 130


def _reader_gone() -> int:
    """stdout's reader closed the pipe (`quantdesk inspect --json | head`): end quietly, as a
    command killed by SIGPIPE would (exit 141). Python's own flush at exit would raise again, so
    stdout is pointed at devnull first (the recipe in Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13   # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
