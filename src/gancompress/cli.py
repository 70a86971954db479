"""The `gancompress` command line.

Each subcommand lives in its own module under `gancompress/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func=handler(args) -> int | None`.
Modules are discovered, so adding a command never means editing this file.
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except UserError as err:
        print(f"gancompress {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gancompress {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
