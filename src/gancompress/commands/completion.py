"""`gancompress completion`: a shell completion script, generated from the parser itself (shtab),
so every command and option, now and later, completes without a hand-kept list.

    gancompress completion bash > ~/.local/share/bash-completion/completions/gancompress
    gancompress completion zsh > "${fpath[1]}/_gancompress"
    eval "$(gancompress completion bash)"        # this shell only
"""
from __future__ import annotations

import argparse

from gancompress.errors import UserError

SHELLS = ("bash", "zsh")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh)",
                       description="Print the completion script of the gancompress command for "
                                   "a shell; source it, or save it where the shell looks for "
                                   "completions. Hidden old spellings are not completed.")
    p.add_argument("shell", choices=SHELLS, help="the shell the script is for")
    p.set_defaults(func=run)


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    """The completion script of `parser` (the whole gancompress command line) for `shell`."""
    try:
        import shtab
    except ImportError:
        raise UserError("shell completion needs the shtab package (a gancompress dependency): "
                        "pip install shtab") from None
    if shell not in SHELLS:
        raise UserError(f"no completion for {shell!r}; supported: {', '.join(SHELLS)}")
    return shtab.complete(parser, shell=shell)


def run(args: argparse.Namespace) -> int:
    # the root parser comes from cli.main (commands never import cli: no cycle)
    print(completion_script(args.root_parser, args.shell))
    return 0
