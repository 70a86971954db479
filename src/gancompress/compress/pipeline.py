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
The training stages run in the one training loop (training/loop.py) with the tasks of
compress/tasks.py. Before any stage, `compress.run.preflight` checks everything and describes the
run once (teacher, device, input shape, space, budget, held-out names); the settings are
assembled in compress/settings.py, the held-out images in compress/heldout.py, costs in
compress/costs.py, the scorer in compress/scorers.py, search and report in compress/stages.py.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gancompress.compress.heldout import calibration_batches, needs_calibration
from gancompress.compress.run import RunDescription, preflight

# The settings entry points, with the driver: `compress_config(...)` then `compress(cfg, out)`.
from gancompress.compress.settings import (  # noqa: F401
    compress_config,
    compress_presets,
    folder_config,
    inherited_from_teacher,
)
from gancompress.compress.stages import report_files, search_supernet
from gancompress.compress.supernet import extract_file
from gancompress.config import Config, apply_overrides, validate
from gancompress.errors import UserError
from gancompress.files import atomic_write_text
from gancompress.metrics.cost import format_count
from gancompress.training.run import portable_config, record_inputs
from gancompress import distributed

STAGES = ("mobile", "distill", "supernet", "search", "finetune", "extract", "report")
TRAINING_STAGES = ("mobile", "distill", "supernet", "finetune")
Log = Callable[[str], None]


class Pipeline:
    """One compression in folder `out` (see the module docstring)."""

    def __init__(self, cfg: Config, out: str | Path, log: Log = print):
        self.cfg = validate(cfg.copy())
        self.out = Path(out)
        self._log = log
        self.c = self.cfg.compress
        self.run_description: RunDescription | None = None  # set by check()

    @property
    def described(self) -> RunDescription:
        if self.run_description is None:
            raise RuntimeError("Pipeline.check() (or prepare()) describes the run first")
        return self.run_description

    @property
    def teacher(self) -> Any:
        return self.described.teacher

    @property
    def held_out(self) -> list[str]:
        return list(self.described.held_out)

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
        if sum(self.c.epochs["finetune"]) > 0:
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
        writing nothing (compress.run.preflight); returns the held-out names it would use."""
        # every full run searches (stages() always holds "search"): it needs a budget
        search = stages is None or "search" in stages
        self.run_description = preflight(self.cfg, self.out, search=search)
        return list(self.run_description.held_out)

    def prepare(self, stages: Sequence[str] | None = None) -> None:
        """check(), then write compress.json and held_out.txt (kept from an earlier run)."""
        names = self.check(stages)
        distributed.barrier()  # every rank has checked the folder before rank 0 writes to it
        held = self.out / "held_out.txt"
        if distributed.is_main():
            self.out.mkdir(parents=True, exist_ok=True)
            if not (self.out / "compress.json").is_file():  # paths into OUT kept relative
                atomic_write_text(self.out / "compress.json",
                                  portable_config(self.cfg, self.out).to_json())
                record_inputs(self.out, self.cfg)
            if not held.is_file():
                atomic_write_text(held, "".join(f"{n}\n" for n in names))
        distributed.barrier()
        kept = tuple(line for line in held.read_text().splitlines() if line.strip())
        self.run_description = dataclasses.replace(self.described, held_out=kept)

    # -- training stages ------------------------------------------------------------------------
    def stage_config(self, stage: str) -> Config:
        c = self.c
        epochs = c.epochs[stage]
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
        from gancompress.compress.tasks import train

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
        run = self.described
        search_supernet(self.cfg, self.path("supernet"), self.path("search").parent, run.teacher,
                        run.held_out, run.device, self.log, checked=run.budget,
                        size=run.input_size)

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
                                                                         "cost_unit", "cost_info")},
            "finetuned": source == self.path("finetune")})
        self.log(f"[extract] {config} -> {self.path('extract')} "
                 f"({format_count(info['macs_ref'])} MACs at "
                 f"{'x'.join(map(str, info['macs_size']))})")

    def run_report(self) -> dict[str, Any]:
        best = json.loads(self.path("search").read_text()) if self.path("search").is_file() else {}
        run = self.described
        return report_files(self.cfg, run.teacher, self.path("extract"), run.held_out,
                            self.path("report").parent, run.device, size=run.input_size, meta={
                                "config": self.chosen_config(), "budget": self.c.budget,
                                "pipeline": self.c.pipeline, "teacher_path": self.c.teacher,
                                "compact_path": str(self.path("extract")),
                                "search": {k: best.get(k) for k in ("score", "metric", "cost",
                                                                    "cost_unit", "cost_info",
                                                                    "evaluated")}})

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
            if stage in TRAINING_STAGES:
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

