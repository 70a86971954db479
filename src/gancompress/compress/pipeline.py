"""The compression pipeline: teacher -> compact generator at a budget, every stage resumable.

    cfg = compress_config(teacher="runs/demo/generator.pth", data="demo_data", budget="1/10",
                          preset_name="demo")
    result = compress(cfg, "runs/demo-compressed")       # again: finished stages are skipped

Stages and what each leaves in the output folder OUT (a stage whose output exists is skipped;
a stage interrupted mid-way resumes from its last checkpoint):
    prepare   OUT/compress.json (the settings; a rerun with other settings is refused),
              OUT/held_out.txt (training images kept out of compression training; they score
              sub-networks and make the report; the test set is never used)
    mobile    OUT/mobile/student.pth     original pipeline, dense teacher: a mobile (separable)
                                         teacher distilled from it
    distill   OUT/distill/student.pth    original pipeline: student of the widest config,
                                         initialised by L1-norm pruning of the mobile teacher
    supernet  OUT/supernet/supernet.pth  once-for-all supernet (fast: from the teacher, fresh
                                         init; original: from the pre-distilled student)
    search    OUT/search/best.json       evolution or exhaustive search under the budget
              (+ results.jsonl cache, pareto.png)
    finetune  OUT/finetune/supernet.pth  the chosen sub-network fine-tuned inside the supernet
    extract   OUT/compact.pth            standalone compact generator (load_generator opens it)
    report    OUT/report/report.{md,json}, grid.png   teacher vs compact
The training stages run in the one training loop (train.py) with the tasks of compress_tasks.py.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gancompress.compress.budget import Budget, LatencyCost, MacCost, check_budget, parse_budget
from gancompress.compress.scoring import ReconstructionScorer, scoring_inputs
from gancompress.compress.search import EvolutionSettings, run_search
from gancompress.compress.space import SearchSpace
from gancompress.compress.supernet import extract_file, load_supernet
from gancompress.compress.tasks import check_data_channels, load_teacher, student_template
from gancompress.config import PRESETS, Config, absolute_paths, apply_overrides, diff, validate
from gancompress.errors import UserError
from gancompress.files import atomic_write_text, file_fingerprint, folder_is_empty
from gancompress.metrics.cost import count_macs, format_count
from gancompress.models import build_generator
from gancompress.models.checkpoint import safe_load
from gancompress.models.elastic import ElasticGenerator, batchnorms
from gancompress import distributed

STAGES = ("mobile", "distill", "supernet", "search", "finetune", "extract", "report")
Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------------
# Configuration

def compress_presets() -> list[str]:
    return [name[len("compress-"):] for name in PRESETS if name.startswith("compress-")]


def _preset_overrides(name: str) -> dict[str, Any]:
    """The overrides of a preset and its bases (base first), without building from defaults."""
    chain = []
    while name is not None:
        chain.append(PRESETS[name])
        name = PRESETS[name].base
    merged: dict[str, Any] = {}
    for p in reversed(chain):
        merged.update(p.overrides)
    return merged


def compress_config(teacher: str | None = None, data: str | None = None,
                    budget: str | None = None, preset_name: str | None = None,
                    overrides: Sequence[str] = (), base: Config | None = None) -> Config:
    """Settings for `compress`: the teacher's own training config (data layout, sizes, model and
    loss settings, read from its checkpoint), then the compress preset, then the arguments."""
    cfg = base.copy() if base is not None else Config()
    if teacher:
        cfg = _teacher_config(teacher, cfg)
        cfg.compress.teacher = str(teacher)
    if preset_name:
        name = f"compress-{preset_name}"
        if name not in PRESETS:
            name = preset_name if preset_name.startswith("compress-") else ""
        if name not in PRESETS:
            raise UserError(f"unknown compress preset {preset_name!r}; available: "
                            f"{', '.join(compress_presets())}")
        cfg = apply_overrides(cfg, _preset_overrides(name), source=f"preset {name}")
    if data:
        cfg.data.root = str(data)
    if budget:
        cfg.compress.budget = str(budget)
    # absolute paths: the folder's compress.json resumes from any working directory, and one
    # teacher given by two relative paths is the same setting
    return validate(absolute_paths(apply_overrides(cfg, list(overrides))))


# Train settings that belong to a stage of the compression recipe, never to the teacher's run:
# a teacher trained with train.max_steps=200 must not cap the supernet at 200 steps.
STAGE_TRAIN_KEYS = ("task", "epochs", "epochs_decay", "max_steps", "checkpoint_every",
                    "eval_every", "log_every", "n_samples")


def inherited_from_teacher(teacher: str) -> list[str]:
    """'key=value' of the settings the teacher's checkpoint passes on (those that differ from
    the defaults), for printing what a compression inherits."""
    inherited = _teacher_config(teacher, Config())
    return [f"{k}={b!r}" for k, _, b in diff(Config(), inherited, include_runtime=True)
            if k.split(".")[0] in ("data", "model", "loss", "train")]


def folder_config(out: str | Path, teacher: str | None = None, data: str | None = None,
                  budget: str | None = None, preset_name: str | None = None,
                  overrides: Sequence[str] = ()) -> Config:
    """Settings of the compression in folder `out`: its saved compress.json is the base when it
    has one and no teacher / preset is given (so `--out DIR` alone resumes)."""
    saved = Path(out) / "compress.json"
    base = None
    if saved.is_file() and not teacher and not preset_name:
        try:
            base = Config.from_dict(json.loads(saved.read_text()), source=str(saved))
        except (OSError, json.JSONDecodeError) as err:
            raise UserError(f"cannot read {saved}: {err}") from None
        if base.data.root and not data and not Path(base.data.root).exists():
            raise UserError(f"dataset folder {base.data.root}, recorded in {saved}, does not "
                            f"exist (moved or deleted?); pass --data DIR to give its new place")
        if base.compress.teacher and not Path(base.compress.teacher).exists():
            raise UserError(f"teacher {base.compress.teacher}, recorded in {saved}, does not "
                            f"exist (moved or deleted?); put it back there to resume this "
                            f"compression")
    elif not teacher:
        raise UserError("give the teacher with --teacher FILE (or --out a compression folder to "
                        "resume)")
    return compress_config(teacher=teacher, data=data, budget=budget, preset_name=preset_name,
                           overrides=list(overrides), base=base)


def _teacher_config(teacher: str, cfg: Config) -> Config:
    """cfg with the data / model / loss / train settings the teacher was trained with, if its
    checkpoint records them (gancompress train does); file lists are not inherited."""
    try:
        obj = safe_load(teacher)
    except UserError:
        return cfg  # load_teacher reports the problem with the file later, with context
    meta = obj.get("meta", {}) if isinstance(obj, dict) else {}
    saved = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(saved, dict):
        return cfg
    try:
        teacher_cfg = Config.from_dict({k: v for k, v in saved.items()
                                        if k in ("data", "model", "loss", "train")})
    except UserError:
        return cfg  # written by another version: fall back to defaults and overrides
    out = cfg.copy()
    out.data, out.model, out.loss, out.train = (teacher_cfg.data, teacher_cfg.model,
                                                teacher_cfg.loss, teacher_cfg.train)
    out.data.root, out.data.file_list, out.data.exclude_list = "", None, None
    for key in STAGE_TRAIN_KEYS:  # the recipe's (or the defaults), not the teacher run's
        setattr(out.train, key, getattr(cfg.train, key))
    return out


# ----------------------------------------------------------------------------------------------
# Checks that run before anything is written


def _device(cfg: Config) -> torch.device:
    from gancompress.training.loop import resolve_device
    return resolve_device(cfg.train.device)


def input_size(cfg: Config) -> tuple[int, int, int, int]:
    """Batch-1 input shape at the data's evaluation size: MACs and latency are counted there
    (the family's `example_inputs` builds the actual inputs from it)."""
    from gancompress.data import input_shape
    return (1, *input_shape(cfg.data))


def check_teacher_and_data(cfg: Config, device: torch.device | str = "cpu") -> ElasticGenerator:
    """The frozen teacher, after checking that the data fits it; raises UserError otherwise."""
    teacher = load_teacher(cfg.compress.teacher, device)
    t = teacher.arch
    d = cfg.data
    if not d.root:
        raise UserError("no dataset folder given: pass --data DIR")
    check_data_channels(cfg, teacher)
    if d.mode == "labels":  # one-hot label maps: nothing to read as colour or grey
        SearchSpace.for_model(student_template(cfg, teacher), cfg.compress.space)
        return teacher
    from gancompress.data import open_dataset
    # Read one pair in colour to see what the files hold (the loader would convert silently).
    dataset = open_dataset(d.root, mode=d.mode, phase="train", direction=d.direction,
                           preprocess=d.preprocess, load_size=d.crop_size, crop_size=d.crop_size,
                           flip=False, in_channels=3, out_channels=3, augment=False)
    item = dataset[0]
    for side, channels in (("source", t["in_channels"]), ("target", t["out_channels"])):
        if side in item and channels == 1 and _is_colour(item[side]):
            which = "input" if side == "source" else "target"
            raise UserError(f"data folder {d.root} holds colour {which} "
                            f"images ({Path(item[side + '_path']).name}) but the teacher "
                            f"{'takes' if side == 'source' else 'makes'} 1-channel images; give "
                            f"the data the teacher was trained on")
    SearchSpace.for_model(student_template(cfg, teacher), cfg.compress.space)
    return teacher


def _is_colour(image: torch.Tensor, tolerance: float = 0.05) -> bool:
    """(3, H, W) image whose channels differ (not a grey image stored as RGB)."""
    return bool((image - image.mean(0, keepdim=True)).abs().max() > tolerance)


def supernet_skeleton(cfg: Config, teacher: ElasticGenerator, space: SearchSpace
                      ) -> ElasticGenerator:
    """An (untrained) supernet of the configured space, of the student's family: for costs
    before training."""
    widths = space.widths(space.largest())
    template = student_template(cfg, teacher)
    return build_generator(template.arch_name,
                           **template.student_arch(cfg.compress.student_conv, widths)).eval()


def make_cost(cfg: Config, model: ElasticGenerator, space: SearchSpace, budget: Budget,
              device: torch.device | str, cache_dir: Path | None) -> MacCost | LatencyCost:
    """MACs, or predicted latency for a budget in ms (latency models are cached by
    gancompress.compress.latency, in its default cache folder when cache_dir is None)."""
    if budget.kind == "latency":
        if not distributed.active():
            return LatencyCost(model, space, input_size(cfg), device=str(device),
                               backend=cfg.compress.latency_backend, cache_dir=cache_dir)
        # torchrun: rank 0 measures alone (concurrent timing runs would disturb each other) and
        # every rank predicts with its fit, since the ranks of a parallel search must agree on
        # which sub-networks fit the budget
        cost = None
        if distributed.is_main():
            cost = LatencyCost(model, space, input_size(cfg), device=str(device),
                               backend=cfg.compress.latency_backend, cache_dir=cache_dir)
        fit = distributed.broadcast(cost.latency.fit if cost is not None else None)
        if cost is None:
            cost = LatencyCost(model, space, input_size(cfg), device=str(device),
                               backend=cfg.compress.latency_backend, fit=fit)
        return cost
    return MacCost(model, space, input_size(cfg))


def teacher_cost(cfg: Config, teacher: ElasticGenerator, budget: Budget,
                 device: torch.device | str) -> float:
    if budget.kind != "latency":
        return float(count_macs(teacher, input_size(cfg)))
    # torchrun: one measurement (rank 0's), the same number on every rank
    ms = _teacher_latency(cfg, teacher, device) if distributed.is_main() else None
    return distributed.broadcast(ms)


def _teacher_latency(cfg: Config, teacher: ElasticGenerator, device: torch.device | str) -> float:
    if cfg.compress.latency_backend != "torch":
        # the teacher on the runtime the budget refers to (the same statistic as the model fit)
        from gancompress.compress.latency import runtime_backend
        from gancompress.deploy.backends import build_backend, measure_side_by_side

        name = runtime_backend(cfg.compress.latency_backend)
        call, _ = build_backend(name, teacher, input_size(cfg), device=str(device))
        return measure_side_by_side({name: call}, warmup=2, runs=5, device=str(device)
                                    )[name]["min_ms"]
    from gancompress.metrics.cost import measure_latency
    return measure_latency(teacher, input_size(cfg), warmup=3, runs=10,
                           device=device)["median_ms"]


@dataclass(frozen=True)
class CheckedBudget:
    """compress.budget parsed, resolved against the teacher and checked against the space, once
    per run (a latency budget measures the teacher once)."""
    budget: Budget
    teacher_cost: float | None


def checked_budget(cfg: Config, teacher: ElasticGenerator | None, model: ElasticGenerator,
                   space: SearchSpace, device: torch.device | str) -> CheckedBudget:
    """Parse, resolve and check compress.budget for a supernet (or its untrained skeleton)."""
    if not cfg.compress.budget:
        raise UserError("no budget given: pass --budget (e.g. 3G, 1/10, 5%, 30ms) or use a "
                        "preset that sets compress.budget")
    budget = parse_budget(cfg.compress.budget)
    budget = budget.resolve(count_macs(teacher, input_size(cfg)) if teacher is not None else None)
    t_cost = teacher_cost(cfg, teacher, budget, device) if teacher is not None else None
    check_budget(budget, make_cost(cfg, model, space, budget, device, None), space, t_cost)
    return CheckedBudget(budget, t_cost)


# ----------------------------------------------------------------------------------------------
# Output folder, held-out slice


def _check_out(out: Path, cfg: Config) -> None:
    """A new/empty folder, or one holding a compression with the same settings."""
    saved_path = out / "compress.json"
    if saved_path.is_file():
        try:
            saved = Config.from_dict(json.loads(saved_path.read_text()), source=str(saved_path))
        except (json.JSONDecodeError, OSError) as err:
            raise UserError(f"cannot read {saved_path}: {err}") from None
        changed = diff(saved, cfg)
        if changed:
            lines = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, a, b in changed[:6])
            hint = ""
            if {k for k, _, _ in changed} == {"compress.budget"}:
                hint = (f" To search its supernet under another budget: gancompress search "
                        f"--supernet {out / 'supernet' / 'supernet.pth'} --budget B --out NEW")
            raise UserError(f"{out} holds a compression with other settings ({lines}); rerun with "
                            f"the same settings to resume, or choose another --out (nothing was "
                            f"changed).{hint}")
    elif out.exists() and (not out.is_dir() or not folder_is_empty(out)):
        raise UserError(f"{out} exists and is not an empty folder nor a compression folder; choose "
                        f"a new --out (nothing was changed)")


def held_out_names(cfg: Config) -> list[str]:
    """compress.held_out training inputs (paths relative to the data folder), chosen at random
    with the run's seed, from the input side."""
    from gancompress.data import label_dataset, resolve_layout
    if cfg.data.mode == "labels":
        files = label_dataset(cfg.data).input_names()
    else:
        layout = resolve_layout(cfg.data.root, cfg.data.mode, "train")
        side = {"aligned": "AB", "single": "A"}.get(layout.mode)
        if side is None:
            side = "A" if cfg.data.direction == "AtoB" else "B"
        files = [p.relative_to(layout.root).as_posix() for p in layout.files[side]]
    n = cfg.compress.held_out
    if n >= len(files):
        raise UserError(f"compress.held_out = {n} leaves no training images ({len(files)} in "
                        f"{cfg.data.root}); hold out fewer, e.g. compress.held_out="
                        f"{max(1, len(files) // 10)}")
    picked = sorted(random.Random(cfg.train.seed).sample(range(len(files)), n))
    return [files[i] for i in picked]


def held_out_batches(cfg: Config, names: Sequence[str] | None,
                     teacher: ElasticGenerator | None = None, batch_size: int = 16,
                     device: torch.device | str = "cpu", phase: str = "train"
                     ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], bool]:
    """(batches of (source, reference), paired) of the `names` images of `phase` (None = all
    of them). Evaluation preprocessing (resize to crop_size, no flip). Paired data: reference =
    ground truth; otherwise the teacher's output."""
    from gancompress.data import label_dataset, open_dataset, resolve_layout
    d = cfg.data
    layout = None if d.mode == "labels" else resolve_layout(d.root, d.mode, phase)
    mode = "labels" if layout is None else layout.mode
    # a multimodal teacher (MUNIT) is the reference under the same style codes, on any data
    paired = mode in ("aligned", "labels") and not getattr(teacher, "multimodal", False)
    file_list = list(names) if names is not None else None
    if mode == "labels":  # label maps -> photos: the photos are the ground truth
        dataset = label_dataset(d, phase, file_list=file_list)
    elif mode == "aligned":
        dataset = open_dataset(d.root, mode="aligned", phase=phase, direction=d.direction,
                               preprocess=d.preprocess, load_size=d.crop_size,
                               crop_size=d.crop_size, flip=False, in_channels=d.in_channels,
                               out_channels=d.out_channels, file_list=file_list, augment=False)
    else:
        if names is not None:
            folder = Path(d.root) / Path(names[0]).parent
            file_list = [Path(n).name for n in names]
        elif layout.mode == "single":
            folder = layout.files["A"][0].parent
        else:  # unaligned: the input domain's folder of the phase
            folder = layout.files["A" if d.direction == "AtoB" else "B"][0].parent
        dataset = open_dataset(folder, mode="single", phase=phase, preprocess=d.preprocess,
                               load_size=d.crop_size, crop_size=d.crop_size, flip=False,
                               in_channels=d.in_channels, out_channels=d.out_channels,
                               file_list=file_list, augment=False)
    batches = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        source = torch.stack([it["source"] for it in items]).to(device)
        if paired:
            reference = torch.stack([it["target"] for it in items]).to(device)
        else:
            if teacher is None:
                raise ValueError("unpaired data: the teacher's output is the reference")
            with torch.no_grad():
                reference = teacher(*scoring_inputs(teacher, source, len(batches)))
        batches.append((source, reference))
    return batches, paired


def held_out_label_batches(cfg: Config, names: Sequence[str], device: torch.device | str = "cpu",
                           batch_size: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(one-hot input, Cityscapes train ids) batches of the held-out label maps: what the mIoU
    search score runs on."""
    from gancompress.data import label_dataset
    from gancompress.data.segmaps import train_ids
    d = cfg.data
    if d.mode != "labels" or d.label_nc not in (0, 35) or (
            d.label_layout not in ("auto", "cityscapes")):
        raise UserError("compress.metric=miou scores Cityscapes label maps (data.mode=labels, "
                        "the cityscapes layout, 35 label ids); use l1, psnr, fid or kid here")
    dataset = label_dataset(d, file_list=list(names))
    if dataset.layout != "cityscapes":
        raise UserError(f"compress.metric=miou scores Cityscapes label maps; {d.root} has the "
                        f"{dataset.layout} layout: use l1, psnr, fid or kid")
    batches = []
    for start in range(0, len(dataset), batch_size):
        items = [dataset[i] for i in range(start, min(len(dataset), start + batch_size))]
        batches.append((torch.stack([it["source"] for it in items]).to(device),
                        torch.stack([train_ids(it["label"][0]) for it in items])))
    return batches


def batches_of_test_split(cfg: Config, teacher: ElasticGenerator,
                          device: torch.device | str = "cpu"
                          ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], bool] | None:
    """held_out_batches over the whole test split (label maps: the layout's test phase, e.g.
    Cityscapes val), or None when the data has none."""
    from gancompress.data import resolve_layout
    from gancompress.data.segmaps import label_layout
    try:
        if cfg.data.mode == "labels":
            label_layout(cfg.data.root, cfg.data.label_layout, "test")
        else:
            resolve_layout(cfg.data.root, cfg.data.mode, "test")
    except UserError:
        return None  # no test split: the report says held-out images only
    return held_out_batches(cfg, None, teacher, device=device, phase="test")


def calibration_batches(cfg: Config, held_out: Sequence[str], count: int = 64,
                        device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """Training inputs (never the held-out slice) for BatchNorm re-calibration."""
    from gancompress.data import training_inputs
    return training_inputs(cfg.data, exclude=held_out, count=count, device=device)


def needs_calibration(model: ElasticGenerator) -> bool:
    return bool(batchnorms(model))


# ----------------------------------------------------------------------------------------------
# Search and report (also used on their own by `gancompress search` / `gancompress report`)


def make_scorer(cfg: Config, supernet: ElasticGenerator, space: SearchSpace,
                teacher: ElasticGenerator | None, held_out: Sequence[str],
                device: torch.device | str) -> Any:
    """Score of a sub-network on the held-out slice: FID / KID against compress.stats, else
    L1 / PSNR to the ground truth (paired) or to the teacher's output (unpaired)."""
    c = cfg.compress
    metric = c.metric
    if metric == "auto":
        metric = "fid" if c.stats else "l1"
    batches, paired = held_out_batches(cfg, held_out, teacher, device=device)
    calibration = (calibration_batches(cfg, held_out, device=device)
                   if needs_calibration(supernet) else None)
    if metric == "miou":
        from gancompress.compress.scoring import SegmentationScorer
        return SegmentationScorer(supernet, space, held_out_label_batches(cfg, held_out, device),
                                  c.drn_weights, calibration=calibration, device=device)
    if metric in ("fid", "kid"):
        if not c.stats:
            raise UserError(f"compress.metric={metric} needs reference statistics: "
                            f"compress.stats=FILE.npz (made by gancompress stats)")
        from gancompress.compress.scoring import DistributionScorer
        return DistributionScorer.from_statistics(supernet, space, [s for s, _ in batches],
                                                  c.stats, kind=metric, device=device,
                                                  calibration=calibration)
    return ReconstructionScorer(supernet, space, batches, metric,
                                reference="target" if paired else "teacher",
                                calibration=calibration, device=device)


def search_supernet(cfg: Config, supernet_path: str | Path, out_dir: str | Path,
                    teacher: ElasticGenerator | None, held_out: Sequence[str],
                    device: torch.device | str = "cpu", log: Log = distributed.print0,
                    checked: CheckedBudget | None = None) -> dict[str, Any]:
    """Search the supernet file under cfg.compress.budget into `out_dir`; returns best.json.
    `checked`: the budget as the pipeline already parsed and checked it. `out_dir` is locked for
    the search (files.output_lock; by rank 0 under torchrun, where every rank calls this: they
    share the scoring, rank 0 writes and logs)."""
    with distributed.output_lock(out_dir, "search"):
        return _search_supernet(cfg, supernet_path, out_dir, teacher, held_out, device, log,
                                checked)


def _search_supernet(cfg: Config, supernet_path: str | Path, out_dir: str | Path,
                     teacher: ElasticGenerator | None, held_out: Sequence[str],
                     device: torch.device | str, log: Log,
                     checked: CheckedBudget | None) -> dict[str, Any]:
    c = cfg.compress
    supernet, space, _ = load_supernet(supernet_path, device)
    if checked is None:
        checked = checked_budget(cfg, teacher, supernet, space, device)
    budget, t_cost = checked.budget, checked.teacher_cost
    cost = make_cost(cfg, supernet, space, budget, device, None)
    scorer = make_scorer(cfg, supernet, space, teacher, held_out, device)
    teacher_score = scorer.evaluate(teacher) if teacher is not None else None
    identity = {"supernet_sha256": file_fingerprint(supernet_path),
                "space": space.to_meta(), "input_size": list(input_size(cfg)),
                **scorer.identity()}
    settings = EvolutionSettings(c.population, c.parents, c.mutants, c.crossovers,
                                 c.mutate_prob, c.generations)
    log(f"[search] {c.search} over {space.name} ({space.size:,} sub-networks), budget "
        f"{budget.describe()}, score {scorer.name} on {len(held_out)} held-out images"
        + (f"; teacher {scorer.name} {teacher_score:.4g}" if teacher_score is not None else ""))
    run_search(space, cost, scorer, budget, out_dir, identity, method=c.search, settings=settings,
               seed=cfg.train.seed, macs=MacCost(supernet, space, input_size(cfg)),
               teacher={"score": teacher_score, "cost": t_cost} if teacher is not None else None,
               log=lambda s: log(f"[search] {s}"), workers=c.search_workers)
    return json.loads((Path(out_dir) / "best.json").read_text())


def report_files(cfg: Config, teacher: ElasticGenerator, compact_path: str | Path,
                 held_out: Sequence[str], out_dir: str | Path, device: torch.device | str = "cpu",
                 meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Teacher vs compact on the held-out slice, and on the test split when the data has one
    -> out_dir/report.{json,md}, grid.png."""
    from gancompress.compress.report import compare, write_report
    from gancompress.models.checkpoint import load_generator

    compact_model = load_generator(compact_path, device)
    batches, paired = held_out_batches(cfg, held_out, teacher, device=device)
    report, grid = compare(teacher, compact_model, batches, paired, input_size(cfg), device,
                           meta={"seed": cfg.train.seed, **(meta or {})},
                           test=batches_of_test_split(cfg, teacher, device))
    write_report(report, grid, out_dir)
    return report


# ----------------------------------------------------------------------------------------------
# Stages


class Pipeline:
    """One compression in folder `out` (see the module docstring)."""

    def __init__(self, cfg: Config, out: str | Path, log: Log = print):
        self.cfg = validate(cfg.copy())
        self.out = Path(out)
        self._log = log
        self.c = self.cfg.compress

    def log(self, message: str) -> None:
        # under torchrun every rank runs the pipeline (training and search use them all): one
        # copy of each message (asked per message: the process group starts in check())
        if distributed.is_main():
            self._log(message)

    # -- paths ------------------------------------------------------------------------------------
    def files(self, stage: str) -> list[Path]:
        """Every file a finished stage leaves; the stage is done only when all exist (its
        marker, `path(stage)`, is written last)."""
        marker = self.path(stage)
        extra = {"search": [marker.parent / "pareto.png"],
                 "report": [marker.parent / "report.md", marker.parent / "grid.png"]}
        return extra.get(stage, []) + [marker]

    def done(self, stage: str) -> bool:
        return all(p.is_file() for p in self.files(stage))

    def path(self, stage: str) -> Path:
        return {"mobile": self.out / "mobile" / "student.pth",
                "distill": self.out / "distill" / "student.pth",
                "supernet": self.out / "supernet" / "supernet.pth",
                "search": self.out / "search" / "best.json",
                "finetune": self.out / "finetune" / "supernet.pth",
                "extract": self.out / "compact.pth",
                "report": self.out / "report" / "report.json"}[stage]

    def stages(self) -> list[str]:
        stages = []
        if self.c.pipeline == "original":
            if self.teacher.arch["conv"] != "separable":
                stages.append("mobile")
            stages.append("distill")
        stages += ["supernet", "search"]
        if self.c.finetune_epochs + self.c.finetune_epochs_decay > 0:
            stages.append("finetune")
        return stages + ["extract", "report"]

    def training_teacher(self) -> str:
        """The teacher the student stages distil from: the mobile teacher in the original
        pipeline (when one was trained), else the given teacher."""
        if self.c.pipeline == "original" and self.teacher.arch["conv"] != "separable":
            return str(self.path("mobile").resolve())
        return str(Path(self.c.teacher).resolve())

    # -- prepare ------------------------------------------------------------------------------
    def check(self, stages: Sequence[str] | None = None) -> list[str]:
        """Every check that can fail on the user's input (teacher, data, budget, output folder),
        writing nothing; returns the held-out names it would use."""
        self.device = _device(self.cfg)
        self.teacher = check_teacher_and_data(self.cfg, self.device)
        self.space = SearchSpace.for_model(student_template(self.cfg, self.teacher),
                                           self.c.space)
        _check_out(self.out, self.cfg)
        self.checked = None
        if self.c.budget:
            skeleton = supernet_skeleton(self.cfg, self.teacher, self.space)
            self.checked = checked_budget(self.cfg, self.teacher, skeleton, self.space,
                                          self.device)
            self.budget = self.checked.budget
        elif "search" in (stages or self.stages()) and not self.c.config:
            raise UserError("no budget given: pass --budget (e.g. 3G, 1/10, 5%, 30ms) or use a "
                            "preset that sets compress.budget")
        names = held_out_names(self.cfg)
        if self.c.metric == "miou":  # the segmenter's file and the label layout, before training
            from gancompress.weights import DRN_D_105_CITYSCAPES, find_weights
            try:
                find_weights(DRN_D_105_CITYSCAPES.name, self.c.drn_weights or None)
            except UserError as err:
                raise UserError(f"compress.metric=miou: {err} (for compress: "
                                f"compress.drn_weights=FILE)") from None
            held_out_label_batches(self.cfg, names[:1])
        return names

    def prepare(self, stages: Sequence[str] | None = None) -> None:
        """check(), then write compress.json and held_out.txt (kept from an earlier run)."""
        names = self.check(stages)
        distributed.barrier()  # every rank has checked the folder before rank 0 writes to it
        held = self.out / "held_out.txt"
        if distributed.is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            if not (self.out / "compress.json").is_file():
                atomic_write_text(self.out / "compress.json", self.cfg.to_json())
            if not held.is_file():
                atomic_write_text(held, "".join(f"{n}\n" for n in names))
        distributed.barrier()
        self.held_out = [line for line in held.read_text().splitlines() if line.strip()]

    # -- training stages ------------------------------------------------------------------------
    def stage_config(self, stage: str) -> Config:
        c = self.c
        epochs = {"mobile": (c.mobile_epochs, c.mobile_epochs_decay),
                  "distill": (c.distill_epochs, c.distill_epochs_decay),
                  "supernet": (c.supernet_epochs, c.supernet_epochs_decay),
                  "finetune": (c.finetune_epochs, c.finetune_epochs_decay)}[stage]
        over: dict[str, Any] = {
            "train.task": "distill" if stage == "mobile" else stage,
            "train.epochs": epochs[0], "train.epochs_decay": epochs[1],
            "data.exclude_list": str((self.out / "held_out.txt").resolve()),
            "compress.teacher": self.training_teacher(), "compress.init_from_run": ""}
        if stage == "mobile":
            over.update({"compress.teacher": str(Path(c.teacher).resolve()),
                         "compress.student_conv": "separable", "compress.student_init": "fresh",
                         "compress.student_widths": self.teacher.config_from_widths(
                             self.teacher.max_widths)})
        elif stage == "distill":
            over.update({"compress.student_init": "prune" if c.pipeline == "original"
                         else c.student_init})
        elif stage == "supernet":
            if c.pipeline == "original":
                over.update({"compress.student_init": str(self.path("distill").resolve()),
                             "compress.init_from_run": str(self.path("distill").parent.resolve())})
        elif stage == "finetune":
            over.update({"compress.student_init": str(self.path("supernet").resolve()),
                         "compress.init_from_run": str(self.path("supernet").parent.resolve()),
                         "compress.config": self.chosen_config()})
        return validate(apply_overrides(self.cfg, over, source=f"stage {stage}"))

    def train_stage(self, stage: str) -> None:
        from gancompress.training.loop import train

        run = self.path(stage).parent
        cfg = self.stage_config(stage)
        resume = (run / "config.json").is_file()
        self.log(f"[{stage}] {'resuming' if resume else 'training'} in {run} "
                 f"({cfg.train.epochs}+{cfg.train.epochs_decay} epochs"
                 + (f", at most {cfg.train.max_steps} steps" if cfg.train.max_steps else "") + ")")
        result = train(cfg, run, resume=resume)
        self.log(f"[{stage}] {result['steps']} steps in {result['elapsed_s']:.0f} s")

    # -- search ---------------------------------------------------------------------------------
    def run_search(self) -> None:
        search_supernet(self.cfg, self.path("supernet"), self.path("search").parent, self.teacher,
                        self.held_out, self.device, self.log, checked=self.checked)

    def chosen_config(self) -> str:
        if self.c.config:
            return self.c.config
        path = self.path("search")
        if not path.is_file():
            raise UserError(f"no search result in {path}: run the search stage first (or set "
                            f"compress.config=16_16_...)")
        return json.loads(path.read_text())["best"]

    # -- extract, report ----------------------------------------------------------------------
    def run_extract(self) -> None:
        source = self.path("finetune") if self.path("finetune").is_file() else self.path("supernet")
        config = self.chosen_config()
        best = json.loads(self.path("search").read_text()) if self.path("search").is_file() else {}
        calibration = None
        if needs_calibration(self.teacher):
            calibration = calibration_batches(self.cfg, self.held_out)
        info = extract_file(source, config, self.path("extract"), calibration=calibration,
                            extra_meta={
            "budget": self.c.budget, "search": {k: best.get(k) for k in ("score", "metric", "cost",
                                                                         "cost_unit")},
            "finetuned": source == self.path("finetune")})
        self.log(f"[extract] {config} -> {self.path('extract')} "
                 f"({format_count(info['macs_ref'])} MACs at "
                 f"{'x'.join(map(str, info['macs_size']))})")

    def run_report(self) -> dict[str, Any]:
        best = json.loads(self.path("search").read_text()) if self.path("search").is_file() else {}
        return report_files(self.cfg, self.teacher, self.path("extract"), self.held_out,
                            self.path("report").parent, self.device, meta={
                                "config": self.chosen_config(), "budget": self.c.budget,
                                "pipeline": self.c.pipeline, "teacher_path": self.c.teacher,
                                "compact_path": str(self.path("extract")),
                                "search": {k: best.get(k) for k in ("score", "metric", "cost",
                                                                    "cost_unit", "evaluated")}})

    # -- driver -----------------------------------------------------------------------------------
    def run(self, only: Sequence[str] | None = None) -> dict[str, Any]:
        """Run the stages under an exclusive lock on the output folder (files.output_lock)."""
        with distributed.output_lock(self.out, "compress"):
            return self._run(only)

    def _run(self, only: Sequence[str] | None = None) -> dict[str, Any]:
        self.prepare(only)
        stages = self.stages() if only is None else list(only)
        done = []
        for stage in stages:
            # torchrun: rank 0 looks and decides for every rank (all must run the same stages)
            finished, partial = distributed.broadcast((self.done(stage),
                                                        self.path(stage).is_file()))
            if finished:
                self.log(f"[{stage}] done already ({self.path(stage)}); skipping")
                continue
            if partial:  # a kill between its files: redo it (marker last)
                missing = ", ".join(p.name for p in self.files(stage) if not p.is_file())
                self.log(f"[{stage}] incomplete ({missing} missing); redoing it")
                if stage in ("search", "report") and distributed.is_main():
                    self.path(stage).unlink()
            if stage in ("mobile", "distill", "supernet", "finetune"):
                self.train_stage(stage)
            elif stage == "search":
                self.run_search()
            elif stage in ("extract", "report"):  # one process's work: rank 0, the others wait
                if distributed.is_main() and stage == "extract":
                    self.run_extract()
                elif distributed.is_main():
                    self.run_report()
                distributed.barrier()
            done.append(stage)
        result: dict[str, Any] = {"out": str(self.out), "ran": done, "stages": stages}
        if self.done("report"):
            result["report"] = json.loads(self.path("report").read_text())
            result["report_md"] = (self.path("report").parent / "report.md").read_text()
        return result


def compress(cfg: Config, out: str | Path, stages: Sequence[str] | None = None,
             log: Log = print) -> dict[str, Any]:
    """Run (or resume) the pipeline; returns {"out", "ran", "stages", "report"?}."""
    return Pipeline(cfg, out, log).run(stages)

