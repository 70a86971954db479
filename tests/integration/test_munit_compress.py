"""MUNIT compression: the held-out reference is the teacher under fixed styles. (Training a tiny
MUNIT teacher and compressing it from the CLI, with its style losses and random-style search:
test_family_cli.py.)"""
from __future__ import annotations

import torch

from gancompress.compress.heldout import held_out_batches
from gancompress.compress.pipeline import compress_config
from helpers import make_domains


def test_held_out_reference_is_the_teacher_under_fixed_styles(tmp_path):
    from gancompress.models import build_generator

    data = make_domains(tmp_path / "data")
    teacher = build_generator("munit", ngf=4, mlp_dim=8, n_res=2).eval()
    cfg = compress_config(overrides=[f"data.root={data}", "data.crop_size=32",
                                     "data.load_size=36"])
    names = ["trainA/0.png", "trainA/1.png", "trainA/2.png"]
    batches, paired = held_out_batches(cfg, names, teacher, batch_size=2)
    assert not paired and len(batches) == 2
    for index, (source, reference) in enumerate(batches):
        again = teacher(*teacher.scoring_inputs(source, index))
        torch.testing.assert_close(reference, again)
        assert not torch.allclose(reference, teacher(source))  # not x's own style
