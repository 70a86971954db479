"""The `gancompress` command line.

Each subcommand lives in its own module under `gancompress/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func=handler(args) -> int | None`.
Modules are discovered, so adding a command never means editing this file.

Errors: a UserError prints one line and exits 2. An OSError that escaped the commands' own
handling (files.os_error) gets the same treatment, as a last resort: one line naming the path
and the system's reason. Ctrl-C exits 130 (training saves at the next step boundary first).
The error line always starts on a fresh line, even when a progress bar was being drawn.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from gancompress.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    import gancompress.commands as commands

    parser = argparse.ArgumentParser(
        prog="gancompress",
        description="Compress image-to-image GAN generators: train, distill, search, export, evaluate.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"gancompress.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return parser


def close_progress_bars() -> None:
    """Finish any open tqdm bar, so the next line printed starts on a line of its own."""
    tqdm_module = sys.modules.get("tqdm")
    if tqdm_module is None:
        return
    try:
        bars = list(getattr(tqdm_module.tqdm, "_instances", []))
    except TypeError:
        bars = []
    for bar in bars:
        try:
            bar.leave = True  # a cleared bar would leave the cursor mid-line on some terminals
            bar.close()
        except Exception:  # noqa: BLE001 - a broken bar must not hide the real error
            pass
    sys.stderr.flush()


def report_error(command: str, message: str) -> None:
    close_progress_bars()
    sys.stdout.flush()
    print(f"gancompress {command}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except UserError as err:
        report_error(args.command, str(err))
        return 2
    except KeyboardInterrupt:
        close_progress_bars()
        print(f"gancompress {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        from gancompress.files import os_error
        path = err.filename or "a file"
        report_error(args.command, str(os_error(path, err, doing="use")))
        return 2
    distributed = sys.modules.get("gancompress.distributed")
    if distributed is not None:  # a torchrun job: every rank leaves the process group together
        distributed.finish()
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
