"""Compression tasks (distill / supernet / finetune) and the compress pipeline end to end."""
from __future__ import annotations

import random

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gancompress.compress.pipeline import compress, compress_config
from gancompress.compress.space import SearchSpace
from gancompress.compress.supernet import load_supernet
from gancompress.compress.tasks import DistillTask
from gancompress.config import apply_overrides
from gancompress.errors import UserError
from gancompress.models.checkpoint import load_generator, save_generator
from gancompress.models.elastic import using_widths
from gancompress.models.resnet import ResnetGenerator, decode_config
from helpers import TINY
from helpers import compress_test_config as _config

def _task(ws: Path, stage: str, *extra: str):
    cfg = apply_overrides(_config(ws, *extra), {"train.task": stage})
    return DistillTask(cfg, torch.device("cpu"))


def _batch(n: int = 2) -> dict:
    x = torch.rand(n, 3, 32, 32) * 2 - 1
    return {"source": x, "target": -x}


def test_teacher_frozen_and_student_trained(workspace):
    task = _task(workspace, "distill")
    teacher_before = {k: v.clone() for k, v in task.teacher.state_dict().items()}
    student_before = task.student.stem.conv.weight.clone()
    mapping_before = task.mappings.convs[0].weight.clone()
    task.train(True)  # what the loop does: must not wake the teacher
    for step in range(2):
        logs = task.step(_batch(), step)
    assert set(logs) == {"D", "G_gan", "G_recon", "G_output", "G_distill"}  # paired: + teacher L1
    assert not task.teacher.training
    assert all(not p.requires_grad for p in task.teacher.parameters())
    assert all(torch.equal(v, teacher_before[k]) for k, v in task.teacher.state_dict().items())
    assert "teacher" not in task.state_dict()["models"]  # never saved
    assert not torch.equal(task.student.stem.conv.weight, student_before)
    assert not torch.equal(task.mappings.convs[0].weight, mapping_before)


def test_kernel_alignment_and_output_terms(workspace):
    task = _task(workspace, "distill", "compress.distill_loss=ka", "compress.lambda_output=0.5",
                 "compress.lambda_gan=0")
    batch = _batch()
    with torch.no_grad():
        teacher_out, t_feats = task.teacher(batch["source"], return_features=True)
        out, s_feats = task.student(batch["source"], return_features=True)
    from gancompress.compress.distill import alignment_loss
    expected_distill = alignment_loss(s_feats, t_feats, task.mappings.pairs).item()
    expected_output = (out - teacher_out).abs().mean().item()
    logs = task.step(batch, 0)  # the logs are the losses before this step's update
    assert logs["G_distill"] == pytest.approx(expected_distill, rel=1e-4)
    assert logs["G_output"] == pytest.approx(expected_output, rel=1e-4)
    assert logs["G_recon"] == pytest.approx((out - batch["target"]).abs().mean().item(), rel=1e-4)
    # with the option off (the published losses) no output term is computed
    assert "G_output" not in _task(workspace, "distill", "compress.lambda_output=0").step(
        _batch(), 0)


def test_target_weight_drops_the_ground_truth_term(workspace):
    """compress.lambda_target scales the L1 to the ground truth (paired data); at 0 the loss no
    longer depends on the target (GauGAN: the student follows the teacher, not the photo)."""
    def total(target_weight: str, target: torch.Tensor) -> tuple[float, dict]:
        torch.manual_seed(0)
        task = _task(workspace, "distill", f"compress.lambda_target={target_weight}",
                     "compress.lambda_gan=0")
        batch = {"source": source, "target": target}
        out = DistillTask.distill_forward(task, batch, 0, task.step_widths(0))
        loss, logs = DistillTask.distill_g_loss(task, batch, out)
        return loss.item(), logs

    source = torch.rand(2, 3, 32, 32) * 2 - 1
    one, other = -source, torch.zeros_like(source)
    assert total("0", one)[0] == pytest.approx(total("0", other)[0], rel=1e-6)
    full, logs = total("1", one)
    half, _ = total("0.5", one)
    zero, _ = total("0", one)
    # the term is lambda_recon (the fixture's) x lambda_target x L1(student, target)
    assert full - zero == pytest.approx(2 * (half - zero), rel=1e-4)
    assert full - zero > 0 and logs["G_recon"] > 0


def test_identity_term_on_unpaired_data(workspace, tmp_path):
    from helpers import make_domains

    data = make_domains(tmp_path / "domains")

    def task(*extra):
        cfg = compress_config(teacher=str(workspace / "teacher.pth"), data=str(data),
                              budget="1/3", overrides=TINY + ["compress.lambda_gan=0", *extra])
        return DistillTask(apply_overrides(cfg, {"train.task": "distill"}), torch.device("cpu"))

    t = task("compress.lambda_identity=0.5")
    assert t.kind == "unpaired" and t.identity
    batch = _batch()  # "target": a real image of the target domain, unpaired with the source
    with torch.no_grad():
        expected_identity = (t.student(batch["target"]) - batch["target"]).abs().mean().item()
        expected_recon = (t.student(batch["source"]) - t.teacher(batch["source"])).abs().mean()
    logs = t.step(batch, 0)
    assert logs["G_identity"] == pytest.approx(expected_identity, rel=1e-4)
    assert logs["G_recon"] == pytest.approx(expected_recon.item(), rel=1e-4)  # to the teacher
    assert "G_identity" in task().step(_batch(), 0)  # on by default (bench_quality's winner)
    assert "G_identity" not in task("compress.lambda_identity=0").step(_batch(), 0)
    # paired data has the ground truth: no identity term there
    assert "G_identity" not in _task(workspace, "distill", "compress.lambda_identity=0.5",
                                     "compress.lambda_gan=0").step(_batch(), 0)


def test_uniform_sampling_stays_in_space(workspace):
    task = _task(workspace, "supernet")
    space = SearchSpace.for_model(ResnetGenerator(), "8,4")
    allowed = [space.widths(c) for c in space.all()]
    state = random.getstate()
    drawn = [task.step_widths(step) for step in range(50)]
    assert random.getstate() == state  # no global RNG: a pure function of (seed, step)
    assert drawn == [task.step_widths(step) for step in range(50)]
    assert all(len(w) == 1 and w[0] in allowed for w in drawn)
    assert len({tuple(sorted(w[0].items())) for w in drawn}) > 20  # not stuck on a few configs
    for group in ("stem", "trunk", "up2"):  # every choice of a position shows up
        assert {w[0][group] for w in drawn} == {space.widths(space.largest())[group],
                                               space.widths(space.smallest())[group]}


def test_sandwich_rule(workspace):
    task = _task(workspace, "supernet", "compress.sampling=sandwich")
    space = task.space
    for step in range(5):
        widest, narrowest, sampled = task.step_widths(step)
        assert widest == space.widths(space.largest())
        assert narrowest == space.widths(space.smallest())
        assert sampled in [space.widths(c) for c in space.all()]
    logs = task.step(_batch(), 0)
    assert np.isfinite(list(logs.values())).all()


@pytest.mark.slow  # a full compression
def test_compress_end_to_end_and_resume(workspace, tmp_path):
    out = tmp_path / "fast"
    cfg = _config(workspace, "compress.sampling=sandwich")
    lines: list[str] = []
    result = compress(cfg, out, log=lines.append)
    assert result["ran"] == ["supernet", "search", "finetune", "extract", "report"]
    best = json.loads((out / "search" / "best.json").read_text())
    teacher = load_generator(workspace / "teacher.pth")
    from gancompress.metrics.cost import count_macs
    assert best["macs"] <= count_macs(teacher, (1, 3, 32, 32)) / 3
    compact_model = load_generator(out / "compact.pth")  # no flags needed
    supernet, space, meta = load_supernet(out / "finetune" / "supernet.pth")
    assert meta["finetuned_config"] == best["best"]
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(), using_widths(supernet, space.widths(space.decode(best["best"]))):
        assert (compact_model(x) - supernet(x)).abs().max() < 1e-5
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["models"]["compact"]["macs"] == best["macs"]
    assert report["ratios"]["macs"] <= 1 / 3
    # the test split (2 pairs, never trained on nor searched on) is scored against ground truth
    assert report["test_images"] == 2 and report["test_reference"] == "ground truth"
    pairs = [np.asarray(Image.open(workspace / "data" / "test" / f"{i}.png"), np.float32)
             for i in range(2)]
    x_test = torch.stack([torch.from_numpy(p[:, :32]).permute(2, 0, 1) for p in pairs]) / 127.5 - 1
    y_test = torch.stack([torch.from_numpy(p[:, 32:]).permute(2, 0, 1) for p in pairs]) / 127.5 - 1
    with torch.no_grad():
        expected = (compact_model.eval()(x_test) - y_test).abs().mean().item()
    assert report["models"]["compact"]["test_quality"]["l1"] == pytest.approx(expected, rel=1e-4)
    assert "test L1 to ground truth" in (out / "report" / "report.md").read_text()
    # the distribution rows and the run's seed (metrics/swd.py, metrics/colour.py)
    assert report["models"]["compact"]["test_quality"]["swd"] > 0
    assert report["seed"] == cfg.train.seed and "Seed of the run" in \
        (out / "report" / "report.md").read_text()
    assert (out / "report" / "grid.png").is_file() and (out / "search" / "pareto.png").is_file()
    held_out = (out / "held_out.txt").read_text().split()
    assert len(held_out) == 4
    excluded = json.loads((out / "supernet" / "config.json").read_text())["data"]["exclude_list"]
    assert excluded == "../held_out.txt"  # relative: the folder may move (issue 26)
    assert (out / "supernet" / excluded).read_text().split() == held_out  # never trained on
    # resume: the same command again skips every stage and changes nothing
    stamp = (out / "compact.pth").stat().st_mtime_ns
    again = compress(_config(workspace, "compress.sampling=sandwich"), out, log=lines.append)
    assert again["ran"] == [] and (out / "compact.pth").stat().st_mtime_ns == stamp
    # other settings in the same folder: refused, nothing touched
    with pytest.raises(UserError, match="other settings"):
        compress(_config(workspace, "compress.lambda_distill=2"), out, log=lines.append)


@pytest.mark.slow  # a full compression
def test_original_pipeline(workspace, tmp_path):
    """Mobile teacher -> pruned, pre-distilled student -> supernet (exhaustive search)."""
    out = tmp_path / "original"
    cfg = _config(workspace, "compress.pipeline=original", "compress.search=exhaustive",
                  "compress.finetune_epochs=0")
    result = compress(cfg, out, log=lambda s: None)
    assert result["ran"] == ["mobile", "distill", "supernet", "search", "extract", "report"]
    mobile = load_generator(out / "mobile" / "student.pth")
    assert mobile.arch["conv"] == "separable" and mobile.max_widths["stem"] == 8
    student = load_generator(out / "distill" / "student.pth")
    assert student.max_widths == SearchSpace.for_model(ResnetGenerator(), "8,4").widths([8] * 8)
    supernet_cfg = json.loads((out / "supernet" / "config.json").read_text())["compress"]
    # paths into the compression folder are relative to the stage's folder (it may move)
    assert supernet_cfg["teacher"] == "../mobile/student.pth"
    assert supernet_cfg["init_from_run"] == "../distill"
    assert supernet_cfg["student_init"] == "../distill/student.pth"
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["method"] == "exhaustive" and best["evaluated"] == sum(
        1 for line in (out / "search" / "results.jsonl").read_text().splitlines())


@pytest.mark.slow  # a full compression
def test_search_by_a_distribution_metric(workspace, tmp_path):
    """compress.metric=swd: the search ranks sub-networks by the SWD of their held-out outputs
    to the ground truth (metrics/swd.py), no downloaded weights needed."""
    out = tmp_path / "swd"
    compress(_config(workspace, "compress.metric=swd", "compress.finetune_epochs=0"), out,
             log=lambda s: None)
    best = json.loads((out / "search" / "best.json").read_text())
    assert best["metric"] == "swd-to-target" and best["score"] > 0


def test_bad_inputs_fail_before_writing(workspace, tmp_path):
    out = tmp_path / "bad"
    with pytest.raises(UserError, match="below the smallest sub-network"):
        compress(_config(workspace, budget="1/1000"), out, log=lambda s: None)
    with pytest.raises(UserError, match="not below the teacher"):
        compress(_config(workspace, "compress.space=16,8", budget="1/1"), out, log=lambda s: None)
    with pytest.raises(UserError, match="cannot read budget"):
        compress(_config(workspace, budget="fast"), out, log=lambda s: None)
    with pytest.raises(UserError, match="no budget given"):
        compress(_config(workspace, budget=""), out, log=lambda s: None)
    # a teacher of another architecture
    torch.save({"format": "gancompress-generator", "version": 1, "arch_name": "nosuchnet",
                "arch": {}, "state_dict": {}, "meta": {}}, tmp_path / "nosuchnet.pth")
    with pytest.raises(UserError, match="unknown generator architecture 'nosuchnet'"):
        compress(compress_config(teacher=str(tmp_path / "nosuchnet.pth"),
                                 data=str(workspace / "data"), budget="1/3", overrides=TINY),
                 out, log=lambda s: None)
    # data whose channels do not match the teacher's
    save_generator(ResnetGenerator(in_channels=1, ngf=8, n_blocks=3), tmp_path / "gray.pth")
    with pytest.raises(UserError, match="colour input images"):
        compress(compress_config(teacher=str(tmp_path / "gray.pth"), data=str(workspace / "data"),
                                 budget="1/3", overrides=TINY + ["data.in_channels=1"]), out,
                 log=lambda s: None)
    with pytest.raises(UserError, match="teacher maps 1 -> 3"):
        compress(compress_config(teacher=str(tmp_path / "gray.pth"), data=str(workspace / "data"),
                                 budget="1/3", overrides=TINY), out, log=lambda s: None)
    assert not out.exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        compress(_config(workspace), tmp_path / "mine", log=lambda s: None)
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == ["notes.txt"]


def test_discriminator_from_teacher_run(workspace, tmp_path):
    """compress.disc_init=teacher starts D from the teacher run's checkpoint.pt."""
    run = tmp_path / "teacher_run"
    run.mkdir()
    (run / "generator.pth").write_bytes((workspace / "teacher.pth").read_bytes())
    fresh = _task(workspace, "distill")
    state = {k: torch.randn_like(v) for k, v in fresh.disc.state_dict().items()}
    torch.save({"format": "gancompress-run", "task": {"models": {"disc": state}}},
               run / "checkpoint.pt")
    cfg = apply_overrides(_config(workspace, "compress.disc_init=teacher"),
                          {"train.task": "distill", "compress.teacher": str(run / "generator.pth")})
    task = DistillTask(cfg, torch.device("cpu"))
    assert all(torch.equal(v, state[k]) for k, v in task.disc.state_dict().items())
    (run / "checkpoint.pt").unlink()
    with pytest.raises(UserError, match="disc_init=fresh"):
        DistillTask(cfg, torch.device("cpu"))


def test_distribution_scorer_hook():
    """FID / KID plug in through the metrics helper's scorer API: .score(images) -> float."""
    from gancompress.compress.scoring import DistributionScorer
    from gancompress.compress.space import SearchSpace

    class MeanMetric:  # stands in for metrics.fid.FIDScorer
        def score(self, images):
            return float(torch.cat(list(images)).mean())

    space = SearchSpace("tiny", ((8, 4),) * 8, decode_config)
    supernet = ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()
    sources = [torch.rand(2, 3, 32, 32) * 2 - 1]
    scorer = DistributionScorer(supernet, space, sources, MeanMetric(), name="fid")
    with torch.no_grad(), using_widths(supernet, space.widths([4] * 8)):
        expected = float(supernet(sources[0]).mean())
    assert scorer([4] * 8) == pytest.approx(expected, abs=1e-6)
    assert not scorer.higher_is_better and scorer.identity()["metric"] == "fid"
