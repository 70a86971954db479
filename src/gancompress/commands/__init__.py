"""CLI subcommands, one module each; every command module defines `register(subparsers)` and
imports its heavy modules (torch, numpy, ...) inside its `run`. Modules starting with `_` are
shared helpers (`_common`: argument types, architecture options; `_options`: the one
vocabulary, with the old spellings as hidden aliases, and --config files)."""
