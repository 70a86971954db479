"""Issue 26 items 3-4: keys the program records are refused as overrides (with the key to set
instead), --arch constructor arguments are range-checked before anything is built, and under
torchrun the one-process commands refuse WORLD_SIZE > 1 while every error line comes from rank
0 only."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, make_pairs

from gancompress.cli import DISTRIBUTED_COMMANDS, build_parser, main
from gancompress.commands._common import ARCH_RANGES, registered_arch_options
from gancompress.compress.pipeline import compress_config
from gancompress.config import field_info, keys, unique_overrides
from gancompress.errors import UserError


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse errors
        return int(exit_.code)


@pytest.fixture
def torchrun(monkeypatch):
    """The environment torchrun gives rank `rank` of 2 (no process group is started)."""
    def as_rank(rank: int) -> None:
        for name, value in {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
                            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}.items():
            monkeypatch.setenv(name, value)
    return as_rank


# -- recorded-only keys ---------------------------------------------------------------------

def test_recorded_keys_are_declared_in_the_schema():
    recorded = [k for k in keys() if field_info(k).metadata.get("recorded")]
    assert recorded == ["train.global_batch_size"]


@pytest.mark.parametrize("rank", [None, 0])
def test_global_batch_size_override_is_refused_with_the_key_to_use(tmp_path, torchrun, capsys,
                                                                   rank):
    if rank is not None:
        torchrun(rank)  # 2 processes: the loop would have trained with 2 x batch_size
    out = tmp_path / "run"
    assert cli("train", "--preset", "demo", "--data", str(make_pairs(tmp_path / "d")),
               "--out", str(out), "train.global_batch_size=3") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "train.global_batch_size" in err and "set train.batch_size" in err
    assert not out.exists()


def test_recorded_keys_still_load_from_a_run_config():
    from gancompress.config import Config
    assert Config.from_dict({"train": {"global_batch_size": 4}}).train.global_batch_size == 4
    with pytest.raises(UserError, match="recorded by gancompress"):
        unique_overrides(["train.global_batch_size=4"])


@pytest.mark.parametrize("key, instead", [
    ("train.epochs=3", "compress.epochs.STAGE"), ("train.epochs_decay=3", "compress.epochs"),
    ("train.task=pix2pix", "gancompress distill / supernet / finetune"),
    ("data.exclude_list=x.txt", "compress.held_out"),
    ("compress.init_from_run=somewhere", "previous stage")])
def test_compress_refuses_the_keys_each_stage_sets(workspace, key, instead):
    with pytest.raises(UserError, match="each compression stage sets this key") as err:
        compress_config(teacher=str(workspace / "teacher.pth"), data=str(workspace / "data"),
                        budget="1/3", overrides=[key])
    assert instead in str(err.value)


# -- ranges of the --arch constructor arguments ---------------------------------------------

@pytest.mark.parametrize("argv", [
    ["--arch", "resnet", "--ngf", "0"], ["--arch", "resnet", "--in-channels", "0"],
    ["--arch", "resnet", "--ngf", "100000"], ["--arch", "resnet", "--dropout", "1.5"],
    ["--arch", "munit", "--style-dim", "0"], ["--arch", "unet", "--num-downs", "0"],
    ["--arch", "resnet", "--out-channels", "-1"], ["--arch", "resnet", "--ngf", "nan"]])
def test_arch_options_out_of_range_are_one_line_before_building(argv, capsys):
    assert cli("profile", *argv, "--size", "32", "32") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and ("out of range" in err or "not an integer" in err)


def test_constructor_arguments_in_a_config_have_the_same_ranges():
    from gancompress.config import Config, apply_overrides, preset, validate
    with pytest.raises(UserError, match="model.generator_args.ngf = 0 is out of range"):
        validate(apply_overrides(preset("demo"), ["model.ngf=0"]))
    with pytest.raises(UserError, match="compress.student_args.n_blocks = 0 is out of range"):
        validate(apply_overrides(Config(), ["compress.student_args.n_blocks=0"]))
    validate(apply_overrides(preset("demo"), ["model.ngf=1"]))  # the lowest is allowed


def test_every_numeric_arch_argument_at_its_lowest_value_builds_or_is_one_line(capsys):
    """The lowest value each range allows, for every family taking it: a model, or a UserError
    of the family's own rule (n_blocks >= 3, even n_res), never a traceback."""
    _, options = registered_arch_options()
    for name, (kind, families) in sorted(options.items()):
        if kind not in (int, float):
            continue
        low = ARCH_RANGES.get(name, (0, 0))[0]
        for family in sorted(families):
            code = cli("profile", "--arch", family, f"--{name.replace('_', '-')}", str(low),
                       "--ngf", "4", "--size", "64", "64")
            err = capsys.readouterr().err
            assert code in (0, 2) and "Traceback" not in err, (family, name, err[-500:])
            if code == 2:
                assert err.startswith("gancompress profile: error:"), (family, name, err)


# -- torchrun -------------------------------------------------------------------------------

def test_one_process_commands_are_declared():
    assert set(DISTRIBUTED_COMMANDS) < set(build_parser()._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("argv", [["generate", "m.pth", "--input", "i", "--out", "o"],
                                  ["eval", "--model", "m.pth"],
                                  ["export", "m.pth", "--out", "m.onnx"],
                                  ["profile", "--arch", "resnet"], ["report", "--out", "r"]])
def test_non_distributed_commands_refuse_torchrun_on_rank_0_only(tmp_path, torchrun, capsys,
                                                                 argv):
    torchrun(0)
    assert cli(*argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{argv[0]} runs in one process" in err
    assert "WORLD_SIZE=2" in err
    torchrun(1)
    assert cli(*argv) == 2
    assert capsys.readouterr().err == ""  # rank 0 says it once for the job


def test_user_errors_of_distributed_commands_print_on_rank_0_only(tmp_path, torchrun, capsys):
    for rank, printed in ((0, True), (1, False)):
        torchrun(rank)
        assert cli("train", "--resume") == 2
        assert ("--resume needs --out" in capsys.readouterr().err) is printed
        assert cli("train", "--bogus-option") == 2  # argparse's own error line too
        assert bool(capsys.readouterr().err) is printed


def test_torchrun_environment_in_real_processes(tmp_path):
    """WORLD_SIZE / RANK set as torchrun sets them, in two real processes: one error line for
    the job, both exit 2."""
    results = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1",
               "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank)}
        proc = subprocess.run([sys.executable, "-m", "gancompress", "generate", "m.pth",
                               "--input", "i", "--out", str(tmp_path / "o")], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        results.append((proc.returncode, proc.stderr))
    assert [code for code, _ in results] == [2, 2]
    assert results[0][1].startswith("gancompress generate: error: generate runs in one process")
    assert results[0][1].count("\n") == 1 and results[1][1] == ""
    assert not Path(tmp_path / "o").exists()
