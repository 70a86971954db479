"""Teacher training: discriminator, losses, lr schedule, the loop end to end, run-folder safety."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import REPO, make_domains, make_pairs, tiny_config
from PIL import Image

from gancompress.config import Config, apply_overrides
from gancompress.errors import UserError
from gancompress.models.checkpoint import load_generator, safe_load
from gancompress.models.discriminators import PatchDiscriminator
from gancompress.compress.tasks import TASKS
from gancompress.compress.tasks import train
from gancompress.training.loop import Task, lr_factor
from gancompress.training.losses import disc_loss, gen_loss



def test_patchgan_matches_published_shape_and_size():
    # 70x70 PatchGAN: 256 px -> 30x30 logits; CycleGAN's D (instance norm, 3 -> 1) has 2,764,737
    # parameters, pix2pix's (batch norm, 6 input channels) 2,768,705.
    disc = PatchDiscriminator(3, ndf=64, n_layers=3, norm="instance")
    assert sum(p.numel() for p in disc.parameters()) == 2_764_737
    pix = PatchDiscriminator(6, ndf=64, n_layers=3, norm="batch")
    assert sum(p.numel() for p in pix.parameters()) == 2_768_705
    small = PatchDiscriminator(3, ndf=4, n_layers=3)
    assert small(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_gan_losses_follow_the_formulas():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-0.5, 0.3])
    # hinge: D = 0.5 * (mean relu(1 - real) + mean relu(1 + fake)), G = -mean(fake)
    assert disc_loss("hinge", real, fake).item() == pytest.approx(0.5 * (0.25 + 0.9))
    assert gen_loss("hinge", fake).item() == pytest.approx(0.1)
    # lsgan: MSE to 1 / 0
    assert disc_loss("lsgan", real, fake).item() == pytest.approx(0.5 * (0.625 + 0.17))
    assert gen_loss("lsgan", fake).item() == pytest.approx((2.25 + 0.49) / 2)
    softplus = lambda v: np.log1p(np.exp(v))  # noqa: E731
    expected = 0.5 * (np.mean(softplus(-real.numpy())) + np.mean(softplus(fake.numpy())))
    assert disc_loss("vanilla", real, fake).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(UserError, match="wgan"):
        gen_loss("wgan", fake)


def test_lr_schedule_is_constant_then_linear():
    # pytorch-CycleGAN-and-pix2pix 'linear' policy, 100 + 100 epochs
    factors = [lr_factor(e * 10, 10, 100, 100) for e in range(200)]
    assert factors[:100] == [1.0] * 100
    assert factors[100] == pytest.approx(1 - 1 / 101) and factors[199] == pytest.approx(1 / 101)
    assert lr_factor(1999, 10, 100, 100, per="step") == pytest.approx(1 / 101)
    assert lr_factor(1004, 10, 100, 100, per="step") == pytest.approx(1 - 0.5 / 101)


def test_pix2pix_run_folder_and_export(tmp_path, monkeypatch):
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "train.amp=true")
    run = tmp_path / "run"
    threads = torch.get_num_threads()
    # the loop's timer is a fake clock, 0.25 s a reading (the fake-timer pattern of
    # test_latency.py): loading and stepping each take one tick, the speeds logged are exact
    from gancompress.training import loop
    ticks = iter(range(10**6))
    clock = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if k[0] != "_"})
    clock.perf_counter = lambda: next(ticks) * 0.25
    monkeypatch.setattr(loop, "time", clock)
    result = train(cfg, run)
    assert torch.get_num_threads() == threads  # train.threads=1 applied only inside train()
    assert result["steps"] == 16 and result["exported"] == [str(run / "generator.pth")]
    saved = Config.from_dict(json.loads((run / "config.json").read_text()))
    assert saved.train.global_batch_size == 2  # recorded: batch_size x 1 process
    saved.train.global_batch_size = 0
    assert saved == cfg
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "losses" in r]
    assert [r["step"] for r in steps] == list(range(2, 17, 2))
    assert set(steps[0]["losses"]) == {"D", "G_gan", "G_recon"}
    # 2 steps a record, batch 2: 4 images over 4 ticks (load + step, twice)
    assert steps[0]["time"] == {"data_s": 0.25, "step_s": 0.25, "images_per_s": 4.0}
    assert steps[-1]["lr"] == pytest.approx(2e-4 / 3)  # last decay epoch: 1/(epochs_decay + 1)
    assert any("amp ignored" in r.get("message", "") for r in records)  # CPU run
    assert [r["step"] for r in records if r.get("event") == "checkpoint"] == [4, 8, 12, 16]
    grids = sorted(p.name for p in (run / "samples").iterdir())
    assert grids == ["step_0000008.png", "step_0000016.png"]
    with Image.open(run / "samples" / grids[0]) as grid:  # 2 rows x (input | output | target)
        assert grid.size == (3 * 34 + 2, 2 * 34 + 2)
    ckpt = safe_load(run / "checkpoint.pt")  # plain tensors/containers only
    assert ckpt["step"] == 16 and ckpt["config"] == saved.to_dict() | {"train": {
            **saved.to_dict()["train"], "global_batch_size": 2}}
    gen = load_generator(run / "generator.pth")  # no flags needed
    assert gen.arch["ngf"] == 4 and gen.arch["n_blocks"] == 3
    trained = ckpt["task"]["models"]["generator"]
    assert all(torch.equal(v, trained[k]) for k, v in gen.state_dict().items())
    x = torch.zeros(1, 3, 32, 32)
    assert gen(x).shape == (1, 3, 32, 32)


def test_cyclegan_exports_both_directions(tmp_path):
    cfg = tiny_config(make_domains(tmp_path / "data"), "cyclegan", "train.epochs=1",
                      "train.epochs_decay=0")
    result = train(cfg, tmp_path / "run")
    assert result["steps"] == 4  # max(8, 6) images / batch 2
    names = sorted(Path(p).name for p in result["exported"])
    assert names == ["generator_AtoB.pth", "generator_BtoA.pth"]
    ckpt = safe_load(tmp_path / "run" / "checkpoint.pt")
    pool = ckpt["task"]["extra"]["pool_target"]["images"]
    assert pool.shape == (3, 3, 32, 32)  # pool of 3 filled by 8 fakes
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    losses = [json.loads(line) for line in lines]
    assert {"cycle_source", "identity_target", "D_target"} <= set(losses[1]["losses"])
    for name in names:
        assert load_generator(tmp_path / "run" / name).arch["ngf"] == 4


def test_run_folder_is_never_overwritten_and_resume_checks_config(tmp_path):
    cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "train.max_steps=4")
    run = tmp_path / "run"
    train(cfg, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="not empty.*--resume"):
        train(cfg, run)
    with pytest.raises(UserError, match="model.generator_args: run has .*ngf.*4.*given.*8"):
        train(apply_overrides(cfg, ["model.ngf=8"]), run, resume=True)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    with pytest.raises(UserError, match="no config.json"):
        train(cfg, tmp_path / "elsewhere", resume=True)
    with pytest.raises(UserError, match="unknown task 'nope'"):
        train(apply_overrides(cfg, ["train.task=nope"]), tmp_path / "r2")
    assert not (tmp_path / "r2").exists()


def test_corrupt_image_mid_run_keeps_progress(tmp_path):
    root = make_pairs(tmp_path / "data")
    bad = root / "train" / "5.png"
    bad.write_bytes(bad.read_bytes()[:100])
    cfg = tiny_config(root, "pix2pix", "train.batch_size=1", "train.checkpoint_every=100")
    with pytest.raises(UserError, match=r"5\.png.*--resume to continue from step (\d+)") as err:
        train(cfg, tmp_path / "run")
    step = int(str(err.value).rsplit("step ", 1)[1].rstrip("]"))
    if step:  # progress since the last checkpoint was saved before stopping
        assert safe_load(tmp_path / "run" / "checkpoint.pt")["step"] == step


def test_custom_task_plugs_into_the_loop(tmp_path):
    class Identity(Task):
        def __init__(self, config, device):
            super().__init__(config, device)
            self.net = self.add_model("net", torch.nn.Conv2d(3, 3, 1))
            self.add_optimizer("net", self.net.parameters())
            self.seen = 0

        def step(self, batch, step):
            loss = (self.net(batch["source"]) - batch["source"]).abs().mean()
            self.optimize("net", loss)
            self.seen += 1
            return {"l1": loss.item()}

        def sample(self, batch):
            return [[s, self.net(s[None])[0]] for s in batch["source"]]

        def extra_state(self):
            return {"seen": self.seen}

    TASKS["identity-test"] = Identity
    try:
        cfg = tiny_config(make_pairs(tmp_path / "data"), "pix2pix", "train.task=identity-test")
        train(cfg, tmp_path / "run")
        ckpt = safe_load(tmp_path / "run" / "checkpoint.pt")
        assert ckpt["task"]["extra"] == {"seen": 16}
        assert set(ckpt["task"]["optimizers"]) == {"net"}
    finally:
        TASKS.pop("identity-test")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gancompress", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_cli_dry_run_and_errors(tmp_path):
    data = make_pairs(tmp_path / "data")
    dry = _cli("train", "--preset", "demo", "--data", str(data), "--out", str(tmp_path / "run"),
               "--dry-run", "train.batch_size=2")
    assert dry.returncode == 0, dry.stderr
    printed = json.loads(dry.stdout.split("\n# data")[0])
    assert printed["train"]["batch_size"] == 2 and printed["data"]["root"] == str(data)
    assert "4 steps per epoch" in dry.stdout and not (tmp_path / "run").exists()
    bad = _cli("train", "--preset", "demo", "--data", str(data), "--out", str(tmp_path / "run"),
               "train.bacth_size=2")
    assert bad.returncode == 2 and "train.bacth_size" in bad.stderr and "batch_size" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
    wrong = _cli("train", "--preset", "cyclegan-horse2zebra", "--data", str(data), "--out",
                 str(tmp_path / "run"))
    assert wrong.returncode == 2 and "aligned layout" in wrong.stderr


def test_cli_resume_continues_in_chunks(tmp_path):
    data = make_pairs(tmp_path / "data")
    run = tmp_path / "run"
    cfg = tiny_config(data, "pix2pix", "train.max_steps=4")
    train(cfg, run)
    # --resume with no preset takes the run's config; max_steps is a runtime key (chunks).
    more = _cli("train", "--out", str(run), "--resume", "train.max_steps=6")
    assert more.returncode == 0, more.stderr
    assert safe_load(run / "checkpoint.pt")["step"] == 6
    events = [json.loads(line).get("event") for line in (run / "log.jsonl").read_text().splitlines()]
    assert events.count("resume") == 1 and events.count("done") == 2
    other = _cli("train", "--out", str(run), "--resume", "loss.lambda_recon=1")
    assert other.returncode == 2 and "loss.lambda_recon: run has 100.0, given 1.0" in other.stderr


def test_resume_accepts_the_munit_stage_names_of_earlier_versions(tmp_path):
    from gancompress.training.run import check_folder

    run = tmp_path / "run"
    run.mkdir()
    cfg = tiny_config(tmp_path / "data", "pix2pix")
    (run / "config.json").write_text(apply_overrides(cfg, ["train.task=munit-supernet"]).to_json())
    assert check_folder(run, apply_overrides(cfg, ["train.task=supernet"]), resume=True) is None
    with pytest.raises(UserError, match="train.task: run has 'munit-supernet', given 'distill'"):
        check_folder(run, apply_overrides(cfg, ["train.task=distill"]), resume=True)
