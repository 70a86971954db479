"""Several processes (torch.distributed, gloo on CPU): the same training as one process with the
global batch, exact resume after a rank is SIGKILLed, identical supernet widths on every rank,
synchronized elastic BatchNorm, parallel search == serial search.

The processes are started by distributed.run_local, which sets the environment torchrun sets
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and, like torchrun, stops the job when
one process dies. Every process runs with one torch thread.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import warnings
from pathlib import Path

import pytest
import torch
from helpers import SPACE, make_pairs, tiny_config
from helpers import compress_test_config as _config

from gancompress.compress.budget import Budget, MacCost
from gancompress.compress.scoring import ReconstructionScorer
from gancompress.compress.search import EvolutionSettings, SearchInterrupted, run_search
from gancompress.compress.space import SearchSpace
from gancompress.compress.tasks import DistillTask
from gancompress.config import Config, apply_overrides
from gancompress.data.sampling import EpochBatchSampler, epoch_order
from gancompress.errors import UserError
from gancompress.models.checkpoint import safe_load
from gancompress.models.elastic import ElasticBatchNorm2d, synchronize_batchnorm
from gancompress.models.resnet import ResnetGenerator
from gancompress import distributed
from gancompress.compress.tasks import train
from gancompress.training.objectives import TeacherTask

TIMEOUT = 240  # a hung collective fails the test instead of the CI job

# pix2pix with BatchNorm in G (elastic) and D (plain, converted): the hardest case for exact
# equivalence, since normalisation couples the images of a batch across processes.
BN = ["model.norm=batch", "model.disc_norm=batch", "train.max_steps=6", "train.checkpoint_every=2",
      "train.eval_every=100", "train.log_every=2", "train.amp=false", "train.device=cpu"]


CLI_TINY = ["data.load_size=36", "data.crop_size=32", "data.num_workers=0", "model.ngf=4",
            "model.n_blocks=3", "model.ndf=8", "model.disc_layers=2", "train.batch_size=1",
            "train.max_steps=2", "train.eval_every=100", "train.n_samples=1",
            "train.progress=false", "train.threads=1", "train.device=cpu"]


def _two_rank_config(root: Path) -> Config:
    return tiny_config(root, "pix2pix", *BN)  # 8 images, batch 2 per process: global batch 4


# ----------------------------------------------------------------------------------------------
# workers (module level: the spawned processes import them by name)

def _train_worker(cfg_dict: dict, out: str, resume: bool) -> None:
    train(Config.from_dict(cfg_dict), out, resume=resume)


class _KillRank1(TeacherTask):
    """pix2pix whose rank 1 SIGKILLs itself half-way through step 5 (after D's update)."""

    def optimize(self, name, loss):
        super().optimize(name, loss)
        if distributed.rank() == 1 and self._step == 5 and name == "disc":
            os.kill(os.getpid(), signal.SIGKILL)

    def step(self, batch, step):
        self._step = step
        return super().step(batch, step)


def _cli_worker(data: str, out: str) -> None:
    """`gancompress train` as torchrun starts it on every rank; records how the command ended."""
    import torch.distributed as dist

    from gancompress.cli import main

    code = main(["train", "--preset", "demo", "--data", data, "--out", out, *CLI_TINY])
    record = {"code": code, "in_group_after": dist.is_initialized()}
    (Path(out).parent / f"cli_{os.environ['RANK']}.json").write_text(json.dumps(record))


def _abort_worker(folder: str, times: int) -> None:
    """Rank 1 aborts (SIGABRT) on its first `times` starts; records every start."""
    starts = Path(folder) / f"starts_{os.environ['RANK']}"
    with open(starts, "a") as f:
        f.write("x")
    if os.environ["RANK"] == "1" and len(starts.read_text()) <= times:
        os.abort()


def _killed_worker(cfg_dict: dict, out: str) -> None:
    train(Config.from_dict(cfg_dict), out, task=_KillRank1)


class _CtrlCOnRank1(TeacherTask):
    """pix2pix whose rank 1 alone gets a Ctrl-C (SIGINT) during step 3 (index 2)."""

    def step(self, batch, step):
        if distributed.rank() == 1 and step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return super().step(batch, step)


def _ctrl_c_worker(cfg_dict: dict, out: str) -> None:
    train(Config.from_dict(cfg_dict), out, task=_CtrlCOnRank1)


def _informative_worker(out: str) -> None:
    from gancompress.training.parts import informative_batch

    distributed.init("cpu")
    rank = distributed.rank()
    x = torch.rand(2, 3, 8, 8)
    if rank == 1:
        x[:] = 0.5  # nothing usable on this rank
    else:
        x[1] = -1.0  # one usable sample of two
    task = TeacherTask.__new__(TeacherTask)
    task.batch_share = 0.5
    kept = informative_batch(task, x, torch.rand(2, 3, 8, 8))
    skipped = informative_batch(task, torch.zeros(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.full((3,), float("nan")) if rank == 1 else torch.full((3,), 2.0)
    distributed.reduce_gradients([p], task.batch_share)
    torch.save({"kept": len(kept[0]), "share": task.batch_share, "skipped": skipped is None,
                "grad": p.grad}, Path(out) / f"informative_{rank}.pt")


class _RecordWidths(DistillTask):
    """The supernet task, writing the widths each rank trains at each step."""

    def step_widths(self, step):
        widths = super().step_widths(step)
        folder = Path(self.config.data.exclude_list or ".").parent  # the test's tmp folder
        with open(folder / f"widths_{distributed.rank()}.jsonl", "a") as f:
            f.write(json.dumps([step, widths]) + "\n")
        return widths


def _supernet_worker(cfg_dict: dict, out: str) -> None:
    train(Config.from_dict(cfg_dict), out, task=_RecordWidths)


def _batchnorm_worker(x: torch.Tensor, out: str) -> None:
    distributed.init("cpu")
    torch.set_num_threads(1)
    rank, world = distributed.rank(), distributed.world_size()
    part = x.chunk(world)[rank].clone().requires_grad_(True)
    results = {}
    for width in (6, 3):  # full width and a narrow elastic width
        torch.manual_seed(0)
        bn = ElasticBatchNorm2d(6)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        y = bn(part[:, :width])
        # a loss that is a mean over images, as the training losses are
        (y * torch.arange(1.0, width + 1).view(1, -1, 1, 1)).pow(2).mean().backward()
        grads = [bn.weight.grad.clone(), bn.bias.grad.clone()]
        distributed.reduce_gradients([bn.weight, bn.bias], 1 / world)
        results[width] = {"y": y.detach(), "x_grad": part.grad.clone(), "w_grad": bn.weight.grad,
                          "b_grad": bn.bias.grad, "mean": bn.running_mean.clone(),
                          "var": bn.running_var.clone(), "local_w_grad": grads[0]}
        part.grad = None
    torch.save(results, Path(out) / f"bn_{rank}.pt")


def _search_worker(out: str, max_evaluations: int | None) -> None:
    distributed.init("cpu")
    try:
        _search(out, workers=1, max_evaluations=max_evaluations)
    except SearchInterrupted:
        pass


# ----------------------------------------------------------------------------------------------
# helpers

def _models(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return safe_load(run / "checkpoint.pt")["task"]["models"]


def _max_difference(a: dict, b: dict) -> float:
    return max((value.float() - b[model][key].float()).abs().max().item()
               for model in a for key, value in a[model].items())


def _run_two(fn, fresh: Path | None, *args) -> None:
    """Two ranks through run_local; once more if a rank died of SIGABRT (a rare gloo abort CI
    saw once, in no run here, that is not a result of the work), after wiping `fresh`, the
    folder the run creates. Any other failure, or a second abort, fails the test."""
    try:
        distributed.run_local(fn, 2, *args, timeout_s=TIMEOUT)
    except torch.multiprocessing.ProcessExitedException as err:
        if err.signal_name != "SIGABRT":
            raise
        warnings.warn(f"retrying once after {err}", RuntimeWarning, stacklevel=2)
        if fresh is not None:
            shutil.rmtree(fresh, ignore_errors=True)
        distributed.run_local(fn, 2, *args, timeout_s=TIMEOUT)


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> tuple[Path, Config]:
    """An uninterrupted 2-process run (6 steps of global batch 4)."""
    root = tmp_path_factory.mktemp("dist")
    cfg = _two_rank_config(make_pairs(root / "data"))
    run = root / "two"
    _run_two(_train_worker, run, cfg.to_dict(), str(run), False)
    return run, cfg


# ----------------------------------------------------------------------------------------------
# tests

def test_rank_slices_cover_the_global_batch():
    n, seed = 11, 5
    for world in (1, 2, 3):
        for epoch in (0, 1):
            parts = [list(EpochBatchSampler(n, 4, seed, epoch, rank=r, world=world))
                     for r in range(world)]
            steps = EpochBatchSampler.batches_per_epoch(n, 4, world)
            assert all(len(p) == steps for p in parts)
            order = epoch_order(n, seed, epoch)
            for b in range(steps):  # the ranks' slices, in rank order, are global batch b
                joined = [i for p in parts for i, _ in p[b]]
                assert joined == order[b * 4:(b + 1) * 4].tolist()
    # 11 images, global batch 4 on 3 processes: the last batch (3 images) is kept, one each;
    # global batch 5 on 3 processes leaves 1 image for 3 ranks: that batch is dropped
    assert EpochBatchSampler.batches_per_epoch(11, 4, 3) == 3
    assert EpochBatchSampler.batches_per_epoch(11, 5, 3) == 2
    assert EpochBatchSampler.batches_per_epoch(11, 5, 1) == 3


def test_two_ranks_train_like_one_process_with_the_global_batch(two_rank_run, tmp_path):
    run, cfg = two_rank_run
    single = tmp_path / "one"
    train(apply_overrides(cfg, ["train.batch_size=4"]), single)
    difference = _max_difference(_models(run), _models(single))
    # Same data, order, BatchNorm statistics and gradients; only float summation order differs.
    assert difference < 2e-5, difference
    # ... and the comparison can fail: one process at batch 2 (other data per step) is far off
    other = tmp_path / "other"
    train(apply_overrides(cfg, ["train.batch_size=2"]), other)
    assert _max_difference(_models(run), _models(other)) > 100 * max(difference, 1e-6)

    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start = records[0]
    assert start["processes"] == 2 and start["global_batch_size"] == 4
    assert json.loads((run / "config.json").read_text())["train"]["global_batch_size"] == 4
    losses_two = [r["losses"] for r in records if "losses" in r]
    losses_one = [json.loads(line)["losses"] for line in (single / "log.jsonl").read_text()
                  .splitlines() if "losses" in json.loads(line)]
    for a, b in zip(losses_two, losses_one, strict=True):  # logged: the mean over the ranks
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    ckpt = safe_load(run / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["ranks"]) == 2
    assert not torch.equal(ckpt["ranks"][0]["rng"]["torch"], ckpt["ranks"][1]["rng"]["torch"])


def test_one_abort_is_retried_and_a_second_fails(tmp_path):
    (tmp_path / "once").mkdir()
    with pytest.warns(RuntimeWarning, match="retrying once"):
        _run_two(_abort_worker, None, str(tmp_path / "once"), 1)
    assert (tmp_path / "once" / "starts_1").read_text() == "xx"
    (tmp_path / "always").mkdir()
    with pytest.raises(torch.multiprocessing.ProcessExitedException, match="SIGABRT"), \
            pytest.warns(RuntimeWarning):
        _run_two(_abort_worker, None, str(tmp_path / "always"), 2)


def test_cli_command_leaves_the_process_group_on_every_rank(tmp_path):
    # the CLI ends a torchrun job with distributed.finish(): a barrier, then every rank leaves
    data = make_pairs(tmp_path / "data")
    _run_two(_cli_worker, tmp_path / "run", str(data), str(tmp_path / "run"))
    records = [json.loads((tmp_path / f"cli_{r}.json").read_text()) for r in (0, 1)]
    assert records == [{"code": 0, "in_group_after": False}] * 2
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["processes"] == 2 and log[-1]["event"] == "done" and log[-1]["step"] == 2


@pytest.mark.slow  # > 20 s on a busy 2-core machine (3 and 4 process groups)
def test_killed_rank_resumes_exactly(two_rank_run, tmp_path):
    run, cfg = two_rank_run
    killed = tmp_path / "killed"
    with pytest.raises(Exception, match="signal|SIGKILL"):
        distributed.run_local(_killed_worker, 2, cfg.to_dict(), str(killed), timeout_s=TIMEOUT)
    assert safe_load(killed / "checkpoint.pt")["step"] == 4  # the job stopped inside step 6
    spare = tmp_path / "spare"
    shutil.copytree(killed, spare)

    distributed.run_local(_train_worker, 2, cfg.to_dict(), str(killed), True, timeout_s=TIMEOUT)
    resumed, reference = _models(killed), _models(run)
    for model in reference:
        for key, value in reference[model].items():
            assert torch.equal(resumed[model][key], value), (model, key)  # bitwise

    # another process count: the same global batch is required, and a note is logged
    with pytest.raises(UserError, match="global batch is 4.*train.batch_size=4"):
        train(cfg, spare, resume=True)
    train(apply_overrides(cfg, ["train.batch_size=4"]), spare, resume=True)
    log = (spare / "log.jsonl").read_text()
    assert "not promised to be bitwise equal" in log
    assert safe_load(spare / "checkpoint.pt")["step"] == 6


@pytest.mark.slow  # two 2-process runs
def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step(two_rank_run, tmp_path):
    run, cfg = two_rank_run
    stopped = tmp_path / "stopped"
    # (each rank ends in KeyboardInterrupt, which torch's process launcher treats as a clean exit)
    distributed.run_local(_ctrl_c_worker, 2, cfg.to_dict(), str(stopped), timeout_s=TIMEOUT)
    # both ranks stopped after step 3 and saved it together (not a periodic checkpoint: every 2)
    assert safe_load(stopped / "checkpoint.pt")["step"] == 3
    events = [json.loads(line) for line in (stopped / "log.jsonl").read_text().splitlines()]
    assert {"event": "interrupted", "step": 3, "saved": True} in events
    distributed.run_local(_train_worker, 2, cfg.to_dict(), str(stopped), True, timeout_s=TIMEOUT)
    resumed, reference = _models(stopped), _models(run)
    for model in reference:
        for key, value in reference[model].items():
            assert torch.equal(resumed[model][key], value), (model, key)  # bitwise


@pytest.mark.slow  # one 2-process and one 1-process GauGAN run
def test_gaugan_two_ranks_train_like_one_process(tmp_path):
    # SPADE's parameter-free BatchNorm is an elastic one: synchronized over the ranks
    from helpers import tiny_gaugan, write_cityscapes as _write_cityscapes

    cfg = apply_overrides(tiny_gaugan(_write_cityscapes(tmp_path / "cs", n=4), run_steps=2),
                          ["train.batch_size=1", "train.device=cpu"])
    _run_two(_train_worker, tmp_path / "two", cfg.to_dict(), str(tmp_path / "two"), False)
    train(apply_overrides(cfg, ["train.batch_size=2"]), tmp_path / "one")
    train(apply_overrides(cfg, ["train.batch_size=1"]), tmp_path / "other")
    # Biases are left out: here every one that differs has an exactly zero gradient in exact
    # arithmetic (fc / conv biases feeding a BatchNorm, D's last bias under a hinge loss whose
    # outputs all lie in (-1, 1) at init), and Adam turns float noise there into +-lr steps.
    two, one, other = (_weights(_models(tmp_path / n)) for n in ("two", "one", "other"))
    difference = _max_difference(two, one)
    assert difference < 2e-5, difference
    assert _max_difference(two, other) > 100 * max(difference, 1e-6)  # the comparison can fail


def _weights(models: dict) -> dict:
    return {m: {k: v for k, v in state.items() if not k.endswith(".bias")}
            for m, state in models.items()}


def test_munit_constant_images_are_dropped_together(tmp_path):
    _run_two(_informative_worker, None, str(tmp_path))  # its files are rewritten
    zero, one = (torch.load(tmp_path / f"informative_{r}.pt") for r in range(2))
    # rank 0 keeps its one usable sample and carries the whole gradient; rank 1 runs its batch
    # with share 0, so its NaN gradients become zeros in the all-reduce
    assert (zero["kept"], zero["share"], one["kept"], one["share"]) == (1, 1.0, 2, 0.0)
    assert zero["skipped"] and one["skipped"]  # nothing usable anywhere: every rank skips
    for r in (zero, one):
        assert torch.equal(r["grad"], torch.full((3,), 2.0))


def test_munit_supernet_widths_depend_on_seed_and_step_only():
    import random

    from gancompress.compress.sampling import UniformSampler
    from gancompress.models import build_generator

    model = build_generator("munit", ngf=4, mlp_dim=8, n_res=2)
    space = SearchSpace.for_model(model, next(iter(model.search_spaces())))
    sampler = UniformSampler(space, seed=7)  # the sampler of every family's supernet stage
    random.seed(1)
    first = [sampler.widths(s)[0] for s in range(4)]
    random.seed(2)  # another rank's (or a resumed run's) global stream
    assert [sampler.widths(s)[0] for s in range(4)] == first
    assert len({json.dumps(w, sort_keys=True) for w in first}) > 1


def test_supernet_ranks_train_the_same_widths(workspace, tmp_path):
    (tmp_path / "held_out.txt").write_text("0.png\n")
    cfg = apply_overrides(_config(workspace), {
        "train.task": "supernet", "train.batch_size": 2, "train.max_steps": 3,
        "data.exclude_list": str(tmp_path / "held_out.txt"), "train.threads": 1,
        "train.checkpoint_every": 100, "train.eval_every": 100})
    distributed.run_local(_supernet_worker, 2, cfg.to_dict(), str(tmp_path / "two"),
                          timeout_s=TIMEOUT)
    logs = [[json.loads(line) for line in (tmp_path / f"widths_{r}.jsonl").read_text()
             .splitlines()] for r in range(2)]
    assert [step for step, _ in logs[0]] == [0, 1, 2]
    assert logs[0] == logs[1]  # every rank ran the same sub-network at every step
    assert len({json.dumps(w) for _, w in logs[0]}) > 1  # and they were sampled, not fixed
    # the elastic supernet (gradients all-reduced by hand: unused channels get zeros on every
    # rank) trains like one process at the global batch
    one = tmp_path / "one"
    train(apply_overrides(cfg, {"train.batch_size": 4}), one, task=_RecordWidths)
    # Biases of convs that feed an InstanceNorm have an exactly zero gradient; Adam turns its
    # ~1e-10 float noise into steps of about +-lr, so those are left out of the comparison.
    task = DistillTask(apply_overrides(cfg, {"data.exclude_list": None}), torch.device("cpu"))
    x = torch.zeros(1, 3, 32, 32)
    skip = {"student": _biases_before_instance_norm(task.student, x),
            "disc": _biases_before_instance_norm(task.disc, torch.cat([x, x], 1))}
    assert len(skip["student"]) > 10 and "head.bias" not in skip["student"]
    two, single = _models(tmp_path / "two"), _models(one)
    for model in two:
        for key in skip.get(model, ()):
            del two[model][key]
    assert _max_difference(two, single) < 2e-5


def _biases_before_instance_norm(model: torch.nn.Module, x: torch.Tensor) -> set[str]:
    """Names of conv biases whose output goes (through padding only) into an InstanceNorm."""
    order: list[tuple[str, torch.nn.Module]] = []
    hooks = [m.register_forward_hook(lambda m, i, o, name=name: order.append((name, m)))
             for name, m in model.named_modules() if not list(m.children())]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    found, last_conv = set(), None
    for name, module in order:
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            last_conv = (name, module)
        elif isinstance(module, torch.nn.InstanceNorm2d) and last_conv is not None:
            if last_conv[1].bias is not None:
                found.add(f"{last_conv[0]}.bias")
            last_conv = None
        elif not isinstance(module, (torch.nn.ReflectionPad2d, torch.nn.ZeroPad2d)):
            last_conv = None
    return found


def test_synchronized_elastic_batchnorm_matches_one_process(tmp_path):
    torch.manual_seed(1)
    x = torch.randn(6, 6, 5, 5) * 3 + 1
    _run_two(_batchnorm_worker, None, x, str(tmp_path))  # its files are rewritten
    ranks = [torch.load(tmp_path / f"bn_{r}.pt") for r in range(2)]
    for width in (6, 3):
        torch.manual_seed(0)
        bn = ElasticBatchNorm2d(6)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
        full = x.clone().requires_grad_(True)
        y = bn(full[:, :width])
        (y * torch.arange(1.0, width + 1).view(1, -1, 1, 1)).pow(2).mean().backward()
        got = [r[width] for r in ranks]
        close = {"rtol": 1e-5, "atol": 1e-5}
        torch.testing.assert_close(torch.cat([g["y"] for g in got]), y.detach(), **close)
        torch.testing.assert_close(torch.cat([g["x_grad"] for g in got]) / 2, full.grad, **close)
        for g in got:  # after the all-reduce: the one-process gradient on every rank
            torch.testing.assert_close(g["w_grad"], bn.weight.grad, **close)
            torch.testing.assert_close(g["b_grad"], bn.bias.grad, **close)
            torch.testing.assert_close(g["mean"], bn.running_mean, **close)
            torch.testing.assert_close(g["var"], bn.running_var, **close)
        assert not torch.allclose(got[0]["local_w_grad"], got[1]["local_w_grad"])


def test_synchronize_batchnorm_keeps_state():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    model[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    synchronize_batchnorm(model)
    assert type(model[1]) is ElasticBatchNorm2d
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    reference.load_state_dict(before)
    assert torch.equal(model(x), reference(x))


def _search(out: str, workers: int, max_evaluations: int | None = None):
    """Evolution over the 256 configs of a tiny real supernet, scored by L1 on 2 held-out
    images (the scorer, model included, is sent to the worker processes)."""
    torch.manual_seed(0)
    supernet = ResnetGenerator(ngf=8, n_blocks=3, conv="separable").eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    scorer = ReconstructionScorer(supernet, SPACE, [(x, -x)])
    macs = MacCost(supernet, SPACE, (1, 3, 32, 32))
    budget = Budget("macs", 0.6 * macs(SPACE.largest()), "60%")
    settings = EvolutionSettings(population=12, parents=4, mutants=6, crossovers=6,
                                 generations=4)
    return run_search(SPACE, macs, scorer, budget, out, scorer.identity(), settings=settings,
                      seed=3, workers=workers, log=_quiet, max_evaluations=max_evaluations)


def _quiet(message: str) -> None:
    pass


def _results(out: Path) -> dict[str, float]:
    return {r["config"]: r["score"] for r in map(json.loads, (out / "results.jsonl").read_text()
                                                 .splitlines())}


@pytest.mark.slow  # > 20 s on a busy 2-core machine (3 and 4 process groups)
def test_parallel_search_equals_serial_and_resumes(tmp_path):
    serial = _search(str(tmp_path / "serial"), workers=1)
    # two local worker processes, killed (simulated) after 7 scores, then resumed
    with pytest.raises(SearchInterrupted):
        _search(str(tmp_path / "local"), workers=2, max_evaluations=7)
    assert len(_results(tmp_path / "local")) == 7
    resumed = _search(str(tmp_path / "local"), workers=2)
    assert resumed.cached == 7 and resumed.evaluated == serial.evaluated - 7  # nothing rescored
    assert (resumed.best, resumed.score) == (serial.best, serial.score)
    assert _results(tmp_path / "local") == pytest.approx(_results(tmp_path / "serial"),
                                                        rel=1e-6)

    # torchrun-style: 2 ranks score, rank 0 writes; killed after 5, resumed
    ranks = tmp_path / "ranks"
    distributed.run_local(_search_worker, 2, str(ranks), 5, timeout_s=TIMEOUT)
    assert len(_results(ranks)) == 5
    distributed.run_local(_search_worker, 2, str(ranks), None, timeout_s=TIMEOUT)
    assert _results(ranks) == pytest.approx(_results(tmp_path / "serial"), rel=1e-6)
    best = json.loads((ranks / "best.json").read_text())
    assert (best["best"], best["processes"]) == (serial.best, 2)
    assert best["evaluated"] == serial.evaluated - 5 and best["from_cache"] == 5


def test_single_process_is_untouched():
    assert not distributed.active() and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.mean_scalars({"a": 2.0}) == {"a": 2.0}
    t = torch.ones(2, requires_grad=True)
    assert distributed.all_reduce_sum(t) is t
    assert distributed.gather({"x": 1}) == [{"x": 1}]
    assert distributed.broadcast("x") == "x" and distributed.all_gather(3) == [3]
