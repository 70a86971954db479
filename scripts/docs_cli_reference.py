"""mkdocs hook: the command-line reference page (docs/cli.md) generated from the argparse parser
at build time, so it can never disagree with `gancompress COMMAND --help`.

docs/cli.md holds the marker line `<!-- cli-reference -->`; this hook replaces it with one section
per subcommand (its one-line summary and its full --help text)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MARKER = "<!-- cli-reference -->"


def _parser(src: Path) -> argparse.ArgumentParser:
    if str(src) not in sys.path:  # the checkout's sources, installed or not
        sys.path.insert(0, str(src))
    from gancompress.cli import build_parser
    return build_parser()


def render(src: Path) -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width
    parser = _parser(src)
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    summaries = {a.dest: a.help or "" for a in sub._choices_actions}
    parts = ["## Overview", "", "| command | what it does |", "|---|---|"]
    parts += [f"| [`{name}`](#{name}) | {summaries.get(name, '')} |" for name in sub.choices]
    parts += ["", "```text", parser.format_help().rstrip(), "```", ""]
    for name, command in sub.choices.items():
        parts += [f"## `gancompress {name}` {{#{name}}}", "", summaries.get(name, ""), "",
                  "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    root = Path(config["config_file_path"]).resolve().parent
    return markdown.replace(MARKER, render(root / "src"))
