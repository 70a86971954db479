"""The one vocabulary of the command line (not a command itself: no `register`).

Every command spells a concept the same way; the spellings older versions used stay accepted
as aliases, so scripts keep working. An alias is left out of the usage line and of shell
completion; the help line of the new spelling names it ("old spelling: --force"), so a reader of
an old script finds it:

    MODEL (positional)       alias --model (eval)
    RUN (positional)         alias --out RUN (report, search; --out names a new folder now),
                             --model FILE (report), --supernet FILE (search)
    --overwrite              alias --force
    --widths CONFIG          alias --config (extract)
    --size H W               the input image size everywhere (eval and stats: --load-size N
                             stays, meaning --size N N); eval's --miou-size is H W as well,
                             the one-word WxH still read
    --latency-runs N         alias --runs (profile)
    --latency-warmup N       alias --warmup (profile)
    --device auto            the default wherever a device is chosen
    --no-progress            wherever a progress bar is drawn
    --list-keys              wherever section.field=value overrides are taken
    --config FILE.json       wherever overrides are taken for a run (train, compress, stages):
                             exactly what --dry-run prints, overrides applied on top

Nothing here imports torch.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gancompress.errors import UserError

HIDDEN = argparse.SUPPRESS


def old(*spellings: str) -> str:
    """The help text's note on the old spellings of an option."""
    return f" (old spelling: {', '.join(spellings)})"


def add_overwrite_argument(parser: argparse.ArgumentParser, what: str = "--out") -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help=f"replace {what} if it exists" + old("--force"))
    parser.add_argument("--force", dest="overwrite", action="store_true", help=HIDDEN)


def add_device_argument(parser: argparse.ArgumentParser, config_key: str | None = None) -> None:
    """--device, default auto; with `config_key` it sets that setting (default: the settings')."""
    if config_key:
        parser.add_argument("--device", metavar="DEVICE",
                            help=f"auto, cpu or cuda[:N]: sets {config_key} (default: the "
                                 f"settings', auto unless changed)")
        return
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="auto (default: cuda when available, else cpu), cpu or cuda[:N]")


def add_latency_arguments(parser: argparse.ArgumentParser, runs: int = 10, warmup: int = 3,
                          old_names: bool = False) -> None:
    """--latency-runs / --latency-warmup (profile's --runs / --warmup with old_names)."""
    from gancompress.commands._common import int_range

    parser.add_argument("--latency-runs", type=int_range(1, 10**6), default=runs, metavar="N",
                        help=f"timed runs of the latency measurement (default {runs})"
                        + (old("--runs") if old_names else ""))
    parser.add_argument("--latency-warmup", type=int_range(0, 10**6), default=warmup, metavar="N",
                        help=f"warm-up runs before timing (default {warmup})"
                        + (old("--warmup") if old_names else ""))
    if old_names:
        parser.add_argument("--runs", dest="latency_runs", type=int_range(1, 10**6), help=HIDDEN)
        parser.add_argument("--warmup", dest="latency_warmup", type=int_range(0, 10**6),
                            help=HIDDEN)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_override_arguments(parser: argparse.ArgumentParser, example: str,
                           config_file: bool = True) -> None:
    """The positional overrides, --list-keys and (for runs) --config FILE."""
    parser.add_argument("overrides", nargs="*", metavar="section.field=value",
                        help=f"config overrides, e.g. {example} (--list-keys shows them all)")
    parser.add_argument("--list-keys", action="store_true",
                        help="list every config key with its default and exit")
    if config_file:
        parser.add_argument("--config", metavar="FILE.json",
                            help="settings file: what --dry-run prints (JSON; lines starting "
                                 "with # are skipped); overrides apply on top")


def option_overrides(args: argparse.Namespace) -> list[str]:
    """The typed overrides plus those the options stand for (--device, --no-progress); a key
    given twice is refused."""
    from gancompress.config import unique_overrides

    overrides = unique_overrides(list(args.overrides))
    if getattr(args, "device", None) is not None:
        overrides.append(f"train.device={args.device}")
    if getattr(args, "no_progress", False):
        overrides.append("train.progress=false")
    return unique_overrides(overrides)


def list_keys() -> int:
    from gancompress.config import describe

    print(describe())
    return 0


def take_alias(args: argparse.Namespace, dest: str, alias_dest: str, name: str,
               alias: str) -> Any:
    """The value given by the new spelling (`dest`) or the old one (`alias_dest`); both with
    different values is a mistake."""
    new, old = getattr(args, dest, None), getattr(args, alias_dest, None)
    if new is not None and old is not None and new != old:
        raise UserError(f"{name} and {alias} name the same thing ({alias} is the old spelling); "
                        f"give it once")
    value = new if new is not None else old
    setattr(args, dest, value)
    return value


# ----------------------------------------------------------------------------- config files
def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings saved by `--dry-run > FILE.json`: JSON, with the comment lines the dry run
    prints around it (starting with #) skipped. YAML is not read: PyYAML is not a dependency."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        raise UserError(f"--config {path}: YAML needs PyYAML, which gancompress does not "
                        f"depend on; save the settings as JSON (what --dry-run prints)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--config {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"--config {path} cannot be read: {err}") from None
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise UserError(f"--config {path}: not JSON ({err.msg} at line {err.lineno}); give "
                        f"what --dry-run prints") from None
    except RecursionError:  # found by tests/unit/test_fuzz_parsers.py
        raise UserError(f"--config {path}: nested too deeply to be a settings file; give what "
                        f"--dry-run prints") from None
    if not isinstance(data, dict):
        raise UserError(f"--config {path}: expected a JSON object of sections (what --dry-run "
                        f"prints)")
    return data


def config_from_file(path: str | Path):
    """The Config a settings file describes (unknown sections and keys are errors)."""
    from gancompress.config import Config

    return Config.from_dict(read_config_file(path), source=f"--config {path}")


def run_or_file(args: argparse.Namespace, target: str | None, file_option: str, noun: str,
                folder_use: str, missing: str) -> None:
    """The positional RUN_OR_FILE of `report` / `search`: a file fills --FILE_OPTION (`noun` in
    messages), a folder is the compression run and fills --out (`folder_use` says what the
    command does with it when --out names another); `missing` when neither gives --out."""
    if target and Path(target).is_file():
        given = getattr(args, file_option)
        if given and Path(given) != Path(target):
            raise UserError(f"two {noun}s: {target} and --{file_option} {given}; give one")
        setattr(args, file_option, target)
    elif target:
        if args.out and Path(args.out) != Path(target):
            raise UserError(folder_use)
        args.out = target
    if not args.out:
        raise UserError(missing)
