"""`gancompress.api.compress(...)`: the `gancompress compress` command as a Python call.

    from gancompress.api import compress
    result = compress(model=my_net, data="datasets/edges2shoes", budget="1/10",
                      out="runs/mynet-compact", args={"ngf": 16})
    small = gancompress.load_generator(result.compact)

(`gancompress.compress` is the package of the pipeline's stages, so the call lives here:
`gancompress.api.compress`, or `from gancompress.api import compress`.)

The same path as the command (commands/compress.py): the teacher becomes a checkpoint file, the
settings come from `compress.settings.folder_config` (teacher's recorded settings, then the
preset, then the arguments and `overrides`) and `compress.pipeline.Pipeline` runs every stage
in `out`, resumable; the model card is written after the report as the command does.

`model` is one of
  * a user's `nn.Module` (with its weights): converted with `models.traced.convert` and saved
    next to `out` as OUT.teacher.pth (the command's place). Its class must be importable
    (defined at module level in a module on the path, not in `__main__`) with the constructor
    arguments `args`: the checkpoints record "pkg.mod:Class" and `args`, and `load_generator`
    imports that class to rebuild them;
  * a generator of ours (a family's model, or `convert(...)`'s result): saved as the teacher;
  * a path: a checkpoint `load_generator` opens, or with `arch="pkg.mod:Class"` the weights of
    that class (a state dict, plain or wrapped);
  * None: resume the compression in `out`.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancompress.errors import UserError


@dataclass(frozen=True)
class Compressed:
    """What `compress` made (paths are in the run folder `out`)."""
    out: Path                 # the run folder: compress(out=...) again resumes it
    compact: Path             # OUT/compact.pth, the standalone compact generator
    teacher: Path             # the teacher checkpoint the pipeline distilled from
    report: dict | None       # OUT/report/report.json (teacher vs compact), once written
    report_md: str | None     # OUT/report/report.md
    model_card: Path | None   # OUT/README.md
    ran: list[str]            # the stages this call ran (finished ones are skipped)
    # what load_generator imports to open the outputs (a user's class): "pkg.mod:Class", and
    # ", pkg.mod:function" after it when a condition hook is recorded; None for our families
    needs_import: str | None

    def load(self, device: str = "cpu") -> Any:
        """The compact generator (eval mode), as `gancompress.load_generator(self.compact)`."""
        from gancompress.models.checkpoint import load_generator

        return load_generator(self.compact, device=device)


def teacher_path(out: str | Path) -> Path:
    """Where a converted teacher is saved: next to OUT, not in it (the pipeline starts only in
    a new or empty folder); the command's place (commands/compress.py)."""
    out = Path(out)
    return out.parent / f"{out.name}.teacher.pth"


def _override_list(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """{"train.max_steps": 2} or ["train.max_steps=2"] -> the command line's override strings."""
    if not overrides:
        return []
    if isinstance(overrides, str):
        raise UserError(f"overrides: give a dict {{'section.key': value}} or a list of "
                        f"'section.key=value' strings, got the string {overrides!r}")
    if isinstance(overrides, Mapping):
        items = []
        for key, value in overrides.items():
            text = value if isinstance(value, str) else \
                str(value).lower() if isinstance(value, bool) else json.dumps(value)
            items.append(f"{key}={text}")
        return items
    return [str(item) for item in overrides]


def _teacher_model(model: Any, *, arch: str | None, args: Mapping[str, Any] | None,
                   example_inputs: Any, pinned: Sequence[str], condition: Any) -> Any:
    """`model` as a generator of ours (ElasticGenerator), or None when it is a checkpoint path."""
    import torch.nn as nn

    from gancompress.models.elastic import ElasticGenerator
    from gancompress.models.traced import convert, function_path, load_traced

    if model is None:  # resume: the folder's settings name the teacher
        if arch or args or pinned or condition or example_inputs is not None:
            raise UserError("arch / args / pinned / condition / example_inputs describe a model "
                            "to convert: give it as model=...")
        return None
    if isinstance(model, ElasticGenerator):
        extra = [name for name, v in (("arch", arch), ("args", args), ("pinned", pinned),
                                      ("example_inputs", example_inputs),
                                      ("condition", condition)) if v]
        if extra:
            raise UserError(f"model is already a gancompress generator ({model.arch_name}); "
                            f"{', '.join(extra)} describe(s) a model to convert: give your own "
                            f"nn.Module instead, or leave them out")
        return model
    if isinstance(model, nn.Module):
        if arch:
            raise UserError("arch names the class of a weights file; with an nn.Module instance "
                            "its class is read from the instance (give args= for its "
                            "constructor arguments)")
        return convert(model, example_inputs, args=args, pinned=pinned, condition=condition)
    if isinstance(model, (str, Path)):
        if not arch:
            if args or pinned or condition or example_inputs is not None:
                raise UserError("args / pinned / condition / example_inputs describe your own "
                                "class: name it with arch='pkg.mod:Class' (model is then its "
                                "weights file)")
            return None
        if ":" not in arch:
            raise UserError(f"arch names your generator class as module.path:ClassName, got "
                            f"{arch!r} (a checkpoint needs no arch)")
        inputs = _shapes(example_inputs)
        cond = function_path(condition) if condition is not None else ""
        return load_traced(arch, args, str(model), inputs, pinned, condition=cond)
    raise UserError(f"model must be an nn.Module, a gancompress generator, a checkpoint path or "
                    f"None (resume), got {type(model).__name__}")


def _shapes(example_inputs: Any) -> list[list[int]] | None:
    import torch

    if example_inputs is None:
        return None
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    return [list(t.shape) for t in example_inputs]


def _same_checkpoint(path: Path, model: Any) -> bool:
    import torch

    from gancompress.models.checkpoint import safe_load

    try:
        saved = safe_load(path)
    except UserError:
        return False
    state = saved.get("state_dict") if isinstance(saved, Mapping) else None
    if not isinstance(state, Mapping) or saved.get("arch") != dict(model.arch):
        return False
    mine = model.state_dict()
    return set(state) == set(mine) and all(
        torch.equal(state[k], mine[k].detach().cpu()) for k in mine)


def _save_teacher(model: Any, out: Path) -> Path:
    from gancompress.models.checkpoint import save_generator

    path = teacher_path(out)
    if path.is_file():
        if _same_checkpoint(path, model):
            return path  # a rerun with the same model: keep the file (the run resumes)
        if (out / "compress.json").is_file():
            raise UserError(f"{out} is a compression of another teacher ({path} differs from "
                            f"the model given); choose another out, or pass model=None to "
                            f"resume it")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(model, path, meta={"source": "gancompress.api.compress(model=...)"})
    return path


def compress(model: Any = None, data: str | Path | None = None, budget: str | float | None = None,
             out: str | Path | None = None, *, args: Mapping[str, Any] | None = None,
             example_inputs: Any = None, arch: str | None = None, pinned: Sequence[str] = (),
             condition: Callable | str | None = None, preset: str | None = None,
             overrides: Mapping[str, Any] | Sequence[str] | None = None,
             device: str | None = None, license: str = "other", dry_run: bool = False,
             log: Callable[[str], None] = print) -> Compressed:
    """Compress `model` on the image pairs (or unpaired folders) in `data` under `budget` into
    the run folder `out`; see the module docstring for what `model` may be.

    budget: MACs (3e9, "3G"), a fraction of the teacher ("1/10", "5%") or a latency ("30ms").
    args: your class's constructor arguments (recorded to rebuild it); example_inputs: forward()
    inputs to trace (default one 1x3x64x64 image); pinned: layer names kept at full width;
    condition: a module-level function making forward()'s further inputs from an image batch
    (generators with more than one input); preset: a compression recipe (e.g. "demo");
    overrides: settings as {"compress.generations": 10} or ["compress.generations=10"];
    device: "cpu", "cuda", "auto" (train.device); dry_run: run every check and train nothing
    (the teacher file is written: the checks read it). Returns a `Compressed`.
    """
    if out is None or not str(out).strip():
        raise UserError("give the run folder: out='runs/my-compact' (a new one, or a "
                        "compression folder to resume)")
    if budget is not None and not str(budget).strip():
        raise UserError("budget is empty; give MACs (3e9, '3G'), a fraction of the teacher "
                        "('1/20', '5%') or a latency ('30ms'), or None for the preset's")
    from gancompress.compress.model_card import write_model_card
    from gancompress.compress.pipeline import Pipeline, folder_config
    from gancompress.distributed import is_main

    out = Path(out)
    teacher = None
    generator = _teacher_model(model, arch=arch, args=args, example_inputs=example_inputs,
                               pinned=pinned, condition=condition)
    if generator is not None:
        module = getattr(generator, "arch", {}).get("module", "")
        if module.startswith("__main__:"):
            log(f"# note: {module.partition(':')[2]} is defined in the script being run "
                f"(__main__): load_generator reopens {out}/compact.pth only where __main__ "
                f"defines it; move the class into a module to reopen the outputs anywhere")
        teacher = str(_save_teacher(generator, out))
    elif model is not None:
        teacher = str(model)
    items = _override_list(overrides)
    if device is not None:
        items.append(f"train.device={device}")
    cfg = folder_config(out, teacher=teacher, data=None if data is None else str(data),
                        budget=None if budget is None else str(budget), preset_name=preset,
                        overrides=items)
    pipeline = Pipeline(cfg, out, log)
    if dry_run:
        pipeline.check()
        result: dict[str, Any] = {}
    else:
        result = pipeline.run()
    card = None
    if "report_md" in result and is_main():
        card = write_model_card(out, license)
    from gancompress.compress.run import open_teacher

    used = open_teacher(cfg.compress.teacher)  # read once per file version (cached)
    return Compressed(out=out, compact=out / "compact.pth", teacher=Path(cfg.compress.teacher),
                      report=result.get("report"), report_md=result.get("report_md"),
                      model_card=card, ran=list(result.get("ran", [])),
                      needs_import=_imports(used.arch) if used.arch_name == "traced" else None)


def _imports(arch: Mapping[str, Any]) -> str:
    return ", ".join(p for p in (arch.get("module"), arch.get("condition")) if p)
