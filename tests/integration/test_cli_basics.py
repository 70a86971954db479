"""The command line's basics: --version, help without torch, completion, examples in every help,
one vocabulary (old spellings as hidden aliases), --config FILE round trips."""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest
import torch
from helpers import REPO, make_pairs

from gancompress.cli import build_parser, docstring_examples, main
from gancompress.errors import UserError

HEAVY = ("torch", "numpy", "onnx", "onnxruntime", "scipy", "PIL", "openvino", "matplotlib")


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse errors, --help, --version
        return int(exit_.code or 0)


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def run_python(code: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)


# ----------------------------------------------------------------------------------------------
# 5. --version, lazy imports, completion, examples


def test_version_names_what_a_bug_report_needs(capsys):
    assert cli("--version") == 0
    out = capsys.readouterr().out
    assert f"gancompress {version('gancompress')}" in out
    assert f"torch       {torch.__version__}" in out
    assert f"onnxruntime {version('onnxruntime')}" in out
    assert "openvino" in out and f"python      {sys.version.split()[0]}" in out
    assert f"threads     {torch.get_num_threads()}" in out


def test_help_of_every_command_and_completion_import_no_heavy_module():
    names = sorted(commands())
    code = f"""
import json, sys, contextlib, io
from gancompress.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    for argv in [["--help"]] + [[name, "--help"] for name in {names!r}] + [["completion", "bash"]]:
        try:
            main(argv)
        except SystemExit:
            pass
import gancompress
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})))
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_python_m_gancompress_help_imports_no_torch():
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gancompress", "--help"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert done.returncode == 0 and "gancompress" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "gancompress.cli" in imported and "torch" not in imported


def test_package_entry_points_load_on_first_use():
    done = run_python("import sys, gancompress\n"
                      "assert 'torch' not in sys.modules\n"
                      "from gancompress import load_generator, compact\n"
                      "assert 'torch' in sys.modules and callable(load_generator)\n"
                      "print(gancompress.__version__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == version("gancompress")


def test_arch_options_read_from_source_match_the_registry():
    from gancompress.commands._common import _source_arch_options, registered_arch_options

    assert _source_arch_options() == registered_arch_options()


def test_eval_lists_the_metrics_it_can_compute():
    from gancompress.commands.eval import METRICS
    from gancompress.metrics import evaluate

    assert METRICS == evaluate.METRICS


def test_every_help_ends_with_examples_of_its_command():
    for name, parser in commands().items():
        text = parser.format_help()
        assert "examples:" in text, name
        examples = text.split("examples:")[-1]
        assert f"gancompress {name} " in examples, name
        for line in examples.splitlines():  # a docstring's lone "\" would join two lines
            assert not re.search(r"\S {3,}[^#\s]", line), (name, line)
    assert "examples:" in build_parser().format_help()


def test_docstring_examples_keep_continuations_and_pick_the_command():
    doc = """x

    gancompress a --x 1 \\
        --y 2
    gancompress b --z
not gancompress c
"""
    assert docstring_examples(doc, "a") == ["gancompress a --x 1 \\", "    --y 2"]
    assert docstring_examples(doc, "b") == ["gancompress b --z"]
    assert len(docstring_examples(doc, "other")) == 3  # none of its own: all of them


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_script_is_generated_from_the_parser(shell, capsys):
    assert cli("completion", shell) == 0
    script = capsys.readouterr().out
    for name in commands():
        assert name in script, name
    assert "--overwrite" in script and "--latency-runs" in script
    # hidden old spellings are not offered (their mention in a help text is no entry)
    assert not re.search(r"""[\s"'{,(]--force[\[\s"',}]""", script)
    assert re.search(r"""[\s"'{,(]--overwrite[\[\s"',}]""", script)
    if shell == "bash" and shutil.which("bash"):
        checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr
    if shell == "zsh":
        assert script.startswith("#compdef gancompress")


# ----------------------------------------------------------------------------------------------
# 6. One vocabulary


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def test_one_vocabulary_across_commands():
    for name, parser in commands().items():
        options = _options(parser)
        help_text = " ".join(parser.format_help().split())
        usage = parser.format_usage()
        for old, new in (("--force", "--overwrite"), ("--runs", "--latency-runs"),
                         ("--warmup", "--latency-warmup"), ("--config", "--widths")):
            if old in options and new in options:  # an old spelling of the same setting
                assert options[old].help == argparse.SUPPRESS, (name, old)
                assert options[new].dest == options[old].dest, (name, old)
                assert f"{old} " not in usage, (name, old)
                # named once, in the help of the new spelling (so an old script can be read)
                assert re.findall(rf"{old}\b", help_text) == [old], (name, old)
                assert re.search(rf"old spelling: [^)]*{old}\b", help_text), (name, old)
        hidden = [flag for flag, action in options.items() if action.help == argparse.SUPPRESS]
        for flag in hidden:  # every hidden option is an old spelling that the help names
            assert re.search(rf"old spelling: [^)]*{flag}\b", help_text), (name, flag)
        if "--device" in options:
            assert options["--device"].default in ("auto", None), name
        dests = {a.dest for a in parser._actions}
        if "overrides" in dests:
            assert "--list-keys" in options and "--no-progress" in options, name
            assert "--device" in options, name
        if "--size" in options:
            assert options["--size"].metavar == ("H", "W"), name
            assert options["--size"].nargs == (2 if name != "demo-data" else "+"), name
        positionals = [a for a in parser._actions if not a.option_strings]
        for action in positionals:
            assert action.metavar is None or "CKPT" not in str(action.metavar)
    for name in ("train", "compress", "distill", "supernet", "finetune"):
        assert "--config" in _options(commands()[name]), name


def test_old_spellings_still_parse():
    parser = build_parser()
    args = parser.parse_args(["extract", "s.pth", "--config", "8_8", "--out", "o", "--force"])
    assert args.widths == "8_8" and args.overwrite
    args = parser.parse_args(["profile", "--latency", "--runs", "4", "--warmup", "1"])
    assert (args.latency_runs, args.latency_warmup) == (4, 1)
    for argv in (["eval", "m.pth"], ["eval", "--model", "m.pth"]):
        args = parser.parse_args(argv)
        assert (args.model or args.model_option) == "m.pth"
    for command in ("stats", "convert", "eval"):
        assert _options(commands()[command])["--force"].dest == "overwrite"


def test_miou_size_takes_h_w_and_the_old_wxh():
    from gancompress.commands.eval import miou_size

    assert miou_size(["1024", "2048"]) == "2048x1024" == miou_size(["2048x1024"])
    with pytest.raises(UserError, match="give H W"):
        miou_size(["big"])


def test_eval_model_given_twice_differently_is_refused(tmp_path, capsys):
    assert cli("eval", "a.pth", "--model", "b.pth", "--metrics", "macs") == 2
    assert "--model" in capsys.readouterr().err
    assert cli("eval", "--metrics", "macs") == 2
    assert "gancompress eval MODEL" in capsys.readouterr().err


def test_eval_size_and_load_size_must_agree(tmp_path, capsys):
    from gancompress.models import build_generator
    from gancompress.models.checkpoint import save_generator

    path = tmp_path / "g.pth"
    save_generator(build_generator("resnet", ngf=4, n_blocks=3), path)
    assert cli("eval", str(path), "--metrics", "macs", "--size", "32", "64") == 2
    assert "square" in capsys.readouterr().err
    assert cli("eval", str(path), "--metrics", "macs", "--size", "32", "32",
               "--load-size", "64") == 2
    assert "disagree" in capsys.readouterr().err
    assert cli("eval", str(path), "--metrics", "macs", "--size", "32", "32", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image_size"]["load_size"] == 32
    assert result["metrics"]["macs"]["protocol"].count("1x3x32x32") == 1


def test_report_and_search_take_the_run_as_a_positional(tmp_path, capsys):
    missing = tmp_path / "nothing"
    for argv in (["report", str(missing)], ["report", "--out", str(missing)]):
        assert cli(*argv) == 2
        assert "is not a compression folder" in capsys.readouterr().err
    model = tmp_path / "m.pth"
    model.write_bytes(b"x")
    assert cli("report", str(model), "--out", str(tmp_path / "r")) == 2
    assert "--teacher" in capsys.readouterr().err
    assert cli("report", str(missing), "--out", str(tmp_path / "elsewhere")) == 2
    assert "--out is for a standalone report" in capsys.readouterr().err
    assert cli("search") == 2
    assert "gancompress search RUN" in capsys.readouterr().err
    assert cli("search", str(model)) == 2  # a supernet file needs an output folder
    assert "--out DIR" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["compress", "distill", "search", "train"])
def test_list_keys_wherever_overrides_are_taken(command, capsys):
    assert cli(command, "--list-keys") == 0
    out = capsys.readouterr().out
    assert "train.lr = " in out and "compress.budget = " in out


def test_overrides_may_follow_options_and_options_map_to_keys(tmp_path, capsys):
    data = make_pairs(tmp_path / "data")
    assert cli("train", "train.batch_size=2", "--preset", "demo", "--data", str(data),
               "--dry-run", "train.lr=0.001", "--device", "cpu", "--no-progress") == 0
    cfg = json.loads(capsys.readouterr().out.split("\n# data")[0])
    assert cfg["train"]["batch_size"] == 2 and cfg["train"]["lr"] == 0.001
    assert cfg["train"]["device"] == "cpu" and cfg["train"]["progress"] is False
    assert cli("train", "--preset", "demo", "--dry-run", "--device", "cpu",
               "train.device=cuda") == 2
    assert "given twice" in capsys.readouterr().err
    assert cli("train", "--preset", "demo", "--dry-run", "--bogus") == 2  # still argparse's


# ----------------------------------------------------------------------------------------------
# --config FILE: what --dry-run prints, read back


def test_train_dry_run_output_read_back_with_config_gives_the_same(tmp_path, capsys):
    data = make_pairs(tmp_path / "data")
    assert cli("train", "--preset", "demo", "--data", str(data), "--dry-run",
               "train.batch_size=2", "model.ngf=8") == 0
    first = capsys.readouterr().out
    saved = tmp_path / "settings.json"
    saved.write_text(first)
    assert cli("train", "--config", str(saved), "--dry-run") == 0
    assert capsys.readouterr().out == first
    assert cli("train", "--config", str(saved), "--dry-run", "train.lr=0.5") == 0
    changed = json.loads(capsys.readouterr().out.split("\n# data")[0])
    assert changed["train"]["lr"] == 0.5 and changed["model"]["generator_args"]["ngf"] == 8
    assert cli("train", "--config", str(saved), "--preset", "demo", "--dry-run") == 2
    assert "not both" in capsys.readouterr().err


def test_config_file_mistakes_are_one_line(tmp_path, capsys):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("train: {}\n")
    assert cli("train", "--config", str(yaml_file), "--dry-run") == 2
    assert "PyYAML" in capsys.readouterr().err
    bad = tmp_path / "c.json"
    bad.write_text('{"train": {"bogus": 1}}')
    assert cli("train", "--config", str(bad), "--dry-run") == 2
    assert "bogus" in capsys.readouterr().err
    bad.write_text("not json")
    assert cli("compress", "--config", str(bad), "--out", str(tmp_path / "c"), "--dry-run") == 2
    assert "not JSON" in capsys.readouterr().err
    assert cli("train", "--config", str(tmp_path / "missing.json"), "--dry-run") == 2
    assert "does not exist" in capsys.readouterr().err


def test_compress_dry_run_output_read_back_with_config_gives_the_same(tmp_path, capsys):
    from gancompress.models import build_generator
    from gancompress.models.checkpoint import save_generator

    data = make_pairs(tmp_path / "data")
    teacher = tmp_path / "g.pth"
    save_generator(build_generator("resnet", ngf=8, n_blocks=3), teacher,
                   meta={"config": {"data": {"crop_size": 32, "load_size": 32}}})
    out = tmp_path / "c"
    assert cli("compress", "--teacher", str(teacher), "--data", str(data), "--budget", "1/3",
               "--out", str(out), "--dry-run", "compress.space=8,4", "compress.held_out=4",
               "compress.generations=2") == 0
    first = capsys.readouterr().out
    saved = tmp_path / "c.json"
    saved.write_text(first)
    assert cli("compress", "--config", str(saved), "--out", str(out), "--dry-run") == 0
    assert capsys.readouterr().out == first
    assert cli("distill", "--config", str(saved), "--out", str(out), "--dry-run") == 0
    assert "stages: distill" in capsys.readouterr().out
    assert not out.exists()
