"""Loss equality across refactors of the training tasks: for every objective (pix2pix, CycleGAN,
GauGAN, MUNIT) and every stage (teacher training; compression distill / supernet (uniform and
sandwich sampling) / finetune), the loss dicts of 2 steps on a fixed seed, tiny widths, CPU, one
thread, must equal the records in tests/fixtures/loss_records/records.json bit for bit.

The records were written from the code before the objectives x samplers refactor (issue 21) and
the refactored tasks reproduce them; MUNIT under sandwich sampling did not exist before and was
recorded after it (its key says so). Regenerate (only when a loss is meant to change) with
    GANCOMPRESS_RECORD_LOSSES=1 pytest tests/contract/test_objectives_equality.py
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from helpers import FIXTURES, make_domains, make_pairs, tiny_config, write_cityscapes

from gancompress.compress.pipeline import compress_config
from gancompress.config import Config, apply_overrides, preset
from gancompress.data.segmaps import semantic_channels
from gancompress.compress.tasks import get_task
from gancompress.training.run import seed_everything

RECORDS = FIXTURES / "loss_records" / "records.json"
RECORDING = os.environ.get("GANCOMPRESS_RECORD_LOSSES") == "1"

TEACHERS = ("pix2pix", "cyclegan", "gaugan", "munit")
# (stage task, sampling, finetune?) per compression case; MUNIT's stages had their own names
STAGES = {"distill": ("distill", "uniform"), "supernet": ("supernet", "uniform"),
          "sandwich": ("supernet", "sandwich"), "finetune": ("finetune", "uniform")}
MUNIT_STAGES = {"distill": "munit-distill", "supernet": "munit-supernet",
                "sandwich": "munit-supernet", "finetune": "munit-finetune"}
# recorded after the refactor: new behaviour, not reproduced from the old code
NEW_AFTER_REFACTOR = {"munit/sandwich"}


def _munit_config(root: Path, *extra: str) -> Config:
    return apply_overrides(preset("munit-demo"), [
        f"data.root={root}", "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
        "model.generator_args.ngf=4", "model.disc_args.ndf=4", "model.disc_args.n_layers=2",
        "model.generator_args.mlp_dim=8", "model.generator_args.n_res=2",
        "model.disc_args.num_scales=2", "munit.lr_step=1", "munit.style_every=2",
        "train.batch_size=2", "train.threads=1", *extra])


def _gaugan_config(root: Path, *extra: str) -> Config:
    return apply_overrides(preset("gaugan-demo"), [
        f"data.root={root}", "data.label_layout=cityscapes", "data.label_nc=0",
        "data.crop_size=64", "model.generator_args.ngf=2", "model.disc_args.ndf=4",
        "model.disc_args.n_layers=2", "train.batch_size=2", "train.threads=1", *extra])


def _images(gen: torch.Generator, channels: int, size=(32, 32), n: int = 2) -> torch.Tensor:
    return torch.rand(n, channels, *size, generator=gen) * 2 - 1


def _batches(kind: str, config: Config) -> list[dict]:
    gen = torch.Generator().manual_seed(1234)
    out = []
    for _ in range(2):
        if kind == "labels":
            nc, _, _ = semantic_channels(config.data)
            ids = torch.randint(nc - 1, (2, 1, 32, 64), generator=gen)
            source = torch.zeros(2, nc, 32, 64).scatter_(1, ids, 1.0)
            source[:, -1] = (torch.rand(2, 32, 64, generator=gen) > 0.8).float()  # edges
            out.append({"source": source, "target": _images(gen, 3, (32, 64)),
                        "label": ids})
        else:
            out.append({"source": _images(gen, 3), "target": _images(gen, 3)})
    return out


def _losses(config: Config, kind: str) -> list[dict[str, str]]:
    """Two steps of the task config.train.task names: its loss dicts, then a sum of each
    trained model's weights; floats as hex."""
    seed_everything(config.train.seed)
    task = get_task(config.train.task)(config, torch.device("cpu"))
    task.train(True)
    batches = _batches(kind, config)
    steps = [{k: float(v).hex() for k, v in sorted(task.step(b, i).items())}
             for i, b in enumerate(batches)]
    # and the weights after both updates (a sum per trained model, in float64)
    weights = {name: float(sum(v.double().sum() for v in m.state_dict().values()
                               if v.is_floating_point())).hex()
               for name, m in sorted(task.models.items())}
    return [*steps, weights]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Data of each kind and a freshly initialised (seeded) teacher of each objective."""
    root = tmp_path_factory.mktemp("objectives")
    torch.set_num_threads(1)
    data = {"paired": make_pairs(root / "paired"), "unpaired": make_domains(root / "unpaired"),
            "labels": write_cityscapes(root / "labels", n=2)}
    teachers = {}
    configs = {"pix2pix": tiny_config(data["paired"], "pix2pix"),
               "cyclegan": tiny_config(data["unpaired"], "cyclegan"),
               "gaugan": _gaugan_config(data["labels"]),
               "munit": _munit_config(data["unpaired"])}
    for name, cfg in configs.items():
        seed_everything(0)
        task = get_task(cfg.train.task)(cfg, torch.device("cpu"))
        files = task.export(root / f"teacher-{name}")
        teachers[name] = str(files[0])
    return data, configs, teachers


KIND = {"pix2pix": "paired", "cyclegan": "unpaired", "gaugan": "labels", "munit": "unpaired"}
SPACE = {"pix2pix": "4,2", "cyclegan": "4,2", "gaugan": "2,1", "munit": "4,2"}


def _compress_config(world, name: str, stage: str) -> Config:
    data, configs, teachers = world
    task, sampling = STAGES[stage]
    if name == "munit":
        task = MUNIT_STAGES[stage]
    cfg = compress_config(teacher=teachers[name], data=str(data[KIND[name]]), budget="1/2",
                          overrides=[f"compress.space={SPACE[name]}", "compress.held_out=1",
                                     f"compress.sampling={sampling}", "train.threads=1",
                                     "train.batch_size=2", "train.device=cpu"])
    over = {"train.task": task}
    if stage == "finetune":
        over["compress.config"] = {"pix2pix": "4_2_4_2_4_2_4_2", "cyclegan": "2_4_2_4_2_4_2_4",
                                   "gaugan": None, "munit": "4_2_4_2_4_2_4_2_4_2"}[name]
        if over["compress.config"] is None:  # a mixed sub-network of the GauGAN space
            from gancompress.compress.space import SearchSpace
            from gancompress.models.checkpoint import load_generator
            teacher = load_generator(teachers[name])
            space = SearchSpace.for_model(teacher, SPACE[name])
            widest, narrowest = space.largest(), space.smallest()
            over["compress.config"] = space.encode(
                [w if i % 2 else n for i, (w, n) in enumerate(zip(widest, narrowest))])
    return apply_overrides(cfg, over)


def _cases():
    cases = [(name, "teacher") for name in TEACHERS]
    cases += [(name, stage) for name in TEACHERS for stage in STAGES]
    return cases


def _record(world, name: str, stage: str) -> list[dict[str, str]]:
    _, configs, _ = world
    if stage == "teacher":
        return _losses(configs[name], KIND[name])
    return _losses(_compress_config(world, name, stage), KIND[name])


@pytest.mark.parametrize("name,stage", _cases())
def test_losses_equal_the_records(world, name, stage, one_thread):
    key = f"{name}/{stage}"
    records = json.loads(RECORDS.read_text()) if RECORDS.is_file() else {}
    got = _record(world, name, stage)
    if RECORDING:
        records[key] = got
        RECORDS.parent.mkdir(parents=True, exist_ok=True)
        RECORDS.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    assert key in records, f"no record for {key}"
    assert got == records[key]
    assert all(len(step) >= 2 for step in got[:2])  # a D and a G term at least were logged
