"""MUNIT teacher training: multi-scale discriminator, loss terms, step schedule, export of both
translators. (Exact SIGKILL / resume: test_train_resume.py.)"""
from __future__ import annotations

import torch

from gancompress.models.checkpoint import load_generator, safe_load
from gancompress.models.discriminators import MsImageDiscriminator
from gancompress.compress.tasks import train
from helpers import make_domains, make_pairs, tiny_munit


def test_ms_image_discriminator_matches_published_layout():
    d = MsImageDiscriminator(3, ndf=64, n_layers=4, num_scales=3)
    assert sum(p.numel() for p in d.parameters()) == 8_271_171
    assert [tuple(o.shape) for o in d(torch.zeros(1, 3, 256, 256))] == \
        [(1, 1, 16, 16), (1, 1, 8, 8), (1, 1, 4, 4)]
    assert "cnns.2.3.conv.weight" in d.state_dict() and "cnns.0.4.bias" in d.state_dict()


def test_munit_trains_and_exports_both_translators(tmp_path, one_thread):
    run = tmp_path / "run"
    result = train(tiny_munit(make_domains(tmp_path / "data")), run)
    assert result["steps"] == 12
    log = [line for line in (run / "log.jsonl").read_text().splitlines() if '"losses"' in line]
    assert all(k in log[-1] for k in ("recon_x", "recon_c", "recon_s", "G_gan", "cycle", '"D"'))
    ckpt = safe_load(run / "checkpoint.pt")
    lrs = [g["lr"] for g in ckpt["task"]["optimizers"]["generators"]["param_groups"]]
    assert lrs == [1e-4 * 0.5 ** (11 // 3)]  # lr of the last step (index 11), halved every 3
    assert ckpt["task"]["optimizers"]["discs"]["param_groups"][0]["weight_decay"] == 1e-4
    ab, ba = load_generator(run / "generator_AtoB.pth"), load_generator(run / "generator_BtoA.pth")
    gen_a = ckpt["task"]["models"]["gen_a"]
    gen_b = ckpt["task"]["models"]["gen_b"]
    key_c, key_d = "enc_content.model.0.conv.weight", "dec.model.5.conv.weight"
    assert torch.equal(ab.state_dict()[key_c], gen_a[key_c]) and torch.equal(ab.state_dict()[key_d], gen_b[key_d])
    assert torch.equal(ba.state_dict()[key_c], gen_b[key_c]) and torch.equal(ba.state_dict()[key_d], gen_a[key_d])
    x, style = ab.example_inputs((32, 32))
    assert ab(x, style).shape == x.shape
    assert (run / "samples").is_dir()


def test_munit_trains_on_aligned_demo_layout(tmp_path, one_thread):
    cfg = tiny_munit(make_pairs(tmp_path / "data"), "train.epochs=1", "munit.lambda_cycle=0")
    assert train(cfg, tmp_path / "run")["steps"] == 4


def test_constant_images_are_left_out_of_a_step(tmp_path, one_thread):
    from gancompress.training.objectives import TeacherTask
    from gancompress.training.parts import informative

    x = torch.rand(3, 3, 32, 32) * 2 - 1
    x[1] = 1.0  # a blank edge map
    assert informative(x, torch.rand(3, 3, 32, 32)).tolist() == [True, False, True]
    cfg = tiny_munit(make_domains(tmp_path / "data"))
    task = TeacherTask(cfg, torch.device("cpu"))
    blank = torch.ones(1, 3, 32, 32)
    assert task.step({"source": blank, "target": torch.rand(1, 3, 32, 32)}, 0) == {"skipped": 1.0}
    logs = task.step({"source": torch.cat([blank, x[:1]]), "target": torch.rand(2, 3, 32, 32)}, 1)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    assert all(torch.isfinite(p).all() for p in task.gen_a.parameters())
