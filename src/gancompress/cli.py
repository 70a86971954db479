"""The `gancompress` command line.

Each subcommand lives in its own module under `gancompress/commands/` and exposes
`register(subparsers)`, which adds its parser and sets `func=handler(args) -> int | None`.
Modules are discovered, so adding a command never means editing this file. Command modules
import nothing heavy at import time (torch, numpy, onnx load inside their `run`), so `--help`,
`--version` and shell completion answer at once; tests/integration/test_cli_basics.py checks it. Every
command's help ends with the examples of its module docstring (the indented `gancompress ...`
lines), so the docstring is the one place they are written.

Config overrides (`section.field=value`) may stand anywhere on the line, also after options.

torchrun: only the commands of DISTRIBUTED_COMMANDS use several processes; the others refuse
WORLD_SIZE > 1 in one line (run once per process they would compete for the same outputs).
Under torchrun every error line is printed by rank 0 only (every rank checks the same inputs),
except errors a rank raises about itself (a UserError with `every_rank = True`).

Errors: a UserError prints one line and exits 2. An OSError that escaped the commands' own
handling (files.os_error) gets the same treatment, as a last resort: one line naming the path
and the system's reason. Ctrl-C exits 130 (training saves at the next step boundary first).
The error line always starts on a fresh line, even when a progress bar was being drawn.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import pkgutil
import sys

from gancompress.errors import UserError


class HelpFormatter(argparse.HelpFormatter):
    """Wraps one-paragraph texts (descriptions) like argparse does, and keeps texts that hold
    line breaks (examples, preset lists) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def docstring_examples(doc: str | None, command: str | None = None) -> list[str]:
    """The example command lines of a module docstring: indented lines starting with
    `gancompress` and their backslash continuations (only those of `command` when it has any)."""
    blocks: list[list[str]] = []
    lines = (doc or "").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(" ") and line.strip().startswith("gancompress "):
            block = [line.strip()]
            while block[-1].endswith("\\") and i + 1 < len(lines):
                i += 1
                block.append("    " + lines[i].strip())
            blocks.append(block)
        i += 1
    if command is not None:
        own = [b for b in blocks if b[0].split()[1:2] == [command]]
        blocks = own or blocks
    return [line for block in blocks for line in block]


def _add_examples(parser: argparse.ArgumentParser, doc: str | None, command: str) -> None:
    examples = docstring_examples(doc, command)
    parser.formatter_class = HelpFormatter
    if examples:
        text = "examples:\n" + "\n".join(f"  {line}" for line in examples)
        parser.epilog = f"{parser.epilog}\n\n{text}" if parser.epilog else text


class VersionAction(argparse.Action):
    """--version: gancompress and what a bug report needs (computed only when asked: torch is
    imported for its thread count)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print the versions of gancompress, Python, torch, onnxruntime, OpenVINO "
                      "and the thread count, and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def version_text() -> str:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import gancompress

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    import torch

    cuda = (f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s)"
            if torch.cuda.is_available() else "no CUDA device")
    return "\n".join([
        f"gancompress {gancompress.__version__}",
        f"python      {platform.python_version()} ({platform.python_implementation()}, "
        f"{platform.platform()})",
        f"torch       {torch.__version__} ({cuda})",
        f"onnxruntime {installed('onnxruntime')}",
        f"openvino    {installed('openvino')}",
        f"threads     {torch.get_num_threads()} (torch.get_num_threads; set with "
        f"OMP_NUM_THREADS or --threads)",
    ])


def build_parser() -> argparse.ArgumentParser:
    import gancompress.commands as commands

    parser = argparse.ArgumentParser(
        prog="gancompress", formatter_class=HelpFormatter,
        description="Compress image-to-image GAN generators: train, distill, search, export, evaluate.",
        epilog="examples:\n  gancompress demo-data --out demo_data\n"
               "  gancompress train --preset demo --data demo_data --out runs/demo\n"
               "  gancompress compress --teacher runs/demo/generator.pth --data demo_data "
               "--budget 1/10 --out runs/demo-compact\n"
               "  gancompress COMMAND --help       # each command's options and examples",
    )
    parser.add_argument("--version", action=VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"gancompress.commands.{info.name}")
        if hasattr(module, "register"):
            before = set(sub.choices)
            module.register(sub)
            for name in sorted(set(sub.choices) - before):
                _add_examples(sub.choices[name], module.__doc__, name)
    return parser


def _overrides_anywhere(parser: argparse.ArgumentParser, argv: list[str] | None
                        ) -> argparse.Namespace:
    """parse_args, except that `section.field=value` words after an option (which argparse
    cannot give to a positional list it has already filled) join the command's overrides."""
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list):
        overrides = [w for w in extra if "=" in w and not w.startswith("-")]
        if len(overrides) == len(extra):
            args.overrides.extend(overrides)
            return args
    if extra:
        parser.parse_args(argv)  # the same argparse error (and exit 2) as before
    return args


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


# The commands that run under torchrun with several processes (training, the compression
# stages, the search); every other command is one process's work.
DISTRIBUTED_COMMANDS = ("train", "compress", "distill", "supernet", "finetune", "search")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def torchrun_rank() -> int:
    """This process's rank under torchrun (WORLD_SIZE > 1), else 0; read from the environment
    (distributed.py imports torch, which the CLI loads only when a command needs it)."""
    return max(0, _env_int("RANK", 0)) if _env_int("WORLD_SIZE", 1) > 1 else 0


def report_error(command: str, message: str, every_rank: bool = False) -> None:
    rank = torchrun_rank()
    if rank > 0 and not every_rank:
        return  # rank 0 prints it: one copy, not one per process
    close_progress_bars()
    sys.stdout.flush()
    where = f"[rank {rank}] " if every_rank and _env_int("WORLD_SIZE", 1) > 1 else ""
    print(f"gancompress {command}: error: {where}{message}", file=sys.stderr)


def check_processes(command: str) -> None:
    """UserError when a command of one process is started by torchrun with several."""
    world = _env_int("WORLD_SIZE", 1)
    if world > 1 and command not in DISTRIBUTED_COMMANDS:
        raise UserError(f"{command} runs in one process, but WORLD_SIZE={world} (torchrun?): "
                        f"run it without torchrun (gancompress {command} ...); only "
                        f"{', '.join(DISTRIBUTED_COMMANDS)} use several processes")


def _parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    if torchrun_rank() == 0:
        return _overrides_anywhere(parser, argv)
    with contextlib.redirect_stderr(io.StringIO()):  # argparse's error line: rank 0 prints it
        return _overrides_anywhere(parser, argv)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    args.root_parser = parser  # for `completion`, which describes the whole command line
    try:
        check_processes(args.command)
        code = args.func(args)
    except UserError as err:
        report_error(args.command, str(err), getattr(err, "every_rank", False))
        return 2
    except KeyboardInterrupt:
        close_progress_bars()
        if torchrun_rank() == 0:
            print(f"gancompress {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:
        from gancompress.files import os_error
        path = err.filename or "a file"
        report_error(args.command, str(os_error(path, err, doing="use")), every_rank=True)
        return 2
    distributed = sys.modules.get("gancompress.distributed")
    if distributed is not None:  # a torchrun job: every rank leaves the process group together
        distributed.finish()
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
