"""A model card for a compression run: RUN/README.md, so the folder can be uploaded to a model
hub as it is (the Hugging Face Hub reads the YAML front matter: license, library_name, tags;
the other keys are kept as metadata and shown in the text).

    write_model_card(run_dir)          -> RUN/README.md from RUN/report/report.json + compress.json

Everything comes from what the pipeline already wrote: the report (params, MACs, latency with
its conditions, quality), the settings (budget, recipe, family, task) and the files themselves
(SHA-256 of the teacher and the compact model). No value is measured again here.

The front matter is written in the subset of YAML that is also JSON per value (strings in
double quotes, flow lists), so no YAML library is needed to write or read it.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gancompress.errors import UserError
from gancompress.files import atomic_write_text, sha256_file

CARD = "README.md"
DEFAULT_LICENSE = "other"  # the weights inherit the teacher's and the data's terms: the user's call


def _installed(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _sha256(path: str | Path | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return sha256_file(path)


def _yaml(data: Mapping[str, Any], indent: int = 0) -> list[str]:
    """Block mappings, JSON scalars and JSON flow lists (valid YAML 1.2)."""
    lines = []
    for key, value in data.items():
        pad = " " * indent
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key}:")
            lines += _yaml(value, indent + 2)
        else:
            lines.append(f"{pad}{key}: {json.dumps(value)}")
    return lines


def _family(compact_path: str | Path | None) -> dict[str, Any]:
    """arch_name / arch / config string recorded in the compact checkpoint (empty if unreadable)."""
    if not compact_path or not Path(compact_path).is_file():
        return {}
    from gancompress.models.checkpoint import safe_load

    try:
        obj = safe_load(compact_path)
    except UserError:
        return {}
    return obj if isinstance(obj, dict) else {}


def card_metadata(report: Mapping[str, Any], settings: Mapping[str, Any],
                  run_dir: str | Path, license_id: str = DEFAULT_LICENSE) -> dict[str, Any]:
    """The front matter of the card, from report.json and compress.json."""
    run_dir = Path(run_dir)
    teacher, compact = report["models"]["teacher"], report["models"]["compact"]
    compact_path = report.get("compact_path") or run_dir / "compact.pth"
    saved = _family(compact_path)
    family = saved.get("arch_name") or settings.get("model", {}).get("generator") or None
    task = settings.get("train", {}).get("task")
    tags = ["gancompress", "gan-compression", "image-to-image", "generator", "compressed"]
    tags += [t for t in (family, task) if t and t not in tags]
    size = "x".join(map(str, report["input_size"]))
    conditions = teacher.get("latency", {})

    def quality(model: Mapping[str, Any]) -> dict[str, Any]:
        out = {f"held_out_{k}": v for k, v in model.get("quality", {}).items()}
        out.update({f"test_{k}": v for k, v in model.get("test_quality", {}).items()})
        return out

    return {
        "license": license_id,
        "library_name": "gancompress",
        "pipeline_tag": "image-to-image",
        "tags": tags,
        "teacher": {"file": Path(report.get("teacher_path") or "").name or None,
                    "sha256": _sha256(report.get("teacher_path"))},
        "compact": {"file": Path(compact_path).name, "sha256": _sha256(compact_path),
                    "family": family, "config": report.get("config")},
        "budget": report.get("budget"),
        "pipeline": report.get("pipeline"),
        "metrics": {"reference": report.get("reference"),
                    "held_out_images": report.get("held_out_images"),
                    "test_images": report.get("test_images"),
                    "teacher": quality(teacher), "compact": quality(compact)},
        "macs": {"input_size": size, "convention": "published (torchprofile 0.0.1 rules)",
                 "teacher": teacher["macs"], "compact": compact["macs"],
                 "compact_true": compact.get("macs_true"),
                 "ratio": compact["macs"] / teacher["macs"] if teacher["macs"] else None},
        "params": {"teacher": teacher["params"], "compact": compact["params"]},
        "latency": {"teacher_ms": teacher.get("latency_ms"),
                    "compact_ms": compact.get("latency_ms"),
                    "batch": 1, "input_size": size,
                    "device": conditions.get("device"),
                    "device_name": conditions.get("device_name"),
                    "threads": conditions.get("threads"),
                    "runs": conditions.get("runs"), "warmup": conditions.get("warmup"),
                    "versions": {"gancompress": _installed("gancompress"),
                                 "torch": conditions.get("torch"),
                                 "python": conditions.get("python"),
                                 "onnxruntime": _installed("onnxruntime")}},
    }


def model_card(report: Mapping[str, Any], settings: Mapping[str, Any], run_dir: str | Path,
               license_id: str = DEFAULT_LICENSE, report_md: str | None = None) -> str:
    """The card's text: front matter, how to use the model, the report, how it was made."""
    from gancompress.compress.report import markdown

    meta = card_metadata(report, settings, run_dir, license_id)
    compact = meta["compact"]
    table = (report_md or markdown(report)).replace("# gancompress report\n", "", 1).strip()
    if table.startswith("Compact sub-network"):  # said in the card's first paragraph already
        table = table.split("\n\n", 1)[-1]
    table = table.replace("](grid.png)", "](report/grid.png)")
    teacher_sha = meta["teacher"]["sha256"] or "not found (the teacher file moved)"
    lines = ["---", *_yaml(meta), "---", "",
             f"# {compact['family'] or 'GAN'} generator compressed with gancompress", "",
             f"A compact image-to-image generator (sub-network `{compact['config']}`) distilled "
             f"from a teacher by GAN Compression (Li et al., CVPR 2020) under the budget "
             f"`{meta['budget']}` ({meta['pipeline']} pipeline).", "",
             "## Use", "", "```python", "import gancompress", "",
             f'model = gancompress.load_generator("{compact["file"]}")  # eval mode', "```", "",
             f"or `gancompress generate {compact['file']} --input IMAGES --out DIR`; "
             f"`gancompress export {compact['file']} --out model.onnx` for ONNX / OpenVINO.", "",
             "## Teacher vs compact", "", table, "",
             "## Provenance", "",
             f"- teacher: `{meta['teacher']['file']}`, SHA-256 `{teacher_sha}`",
             f"- compact: `{compact['file']}`, SHA-256 `{compact['sha256']}`",
             "- settings: `compress.json` (the same compression again: `gancompress compress "
             "--config compress.json --out NEW_FOLDER`); search results in `search/`",
             f"- license: `{license_id}`: the weights carry the terms of the teacher and of its "
             f"training data; set the right identifier before publishing", "",
             "## Citation", "", "```bibtex",
             "@inproceedings{li2020gan,",
             "  title={GAN Compression: Efficient Architectures for Interactive Conditional GANs},",
             "  author={Li, Muyang and Lin, Ji and Ding, Yaoyao and Liu, Zhijian and Zhu, "
             "Jun-Yan and Han, Song},",
             "  booktitle={CVPR}, year={2020}}", "```", ""]
    return "\n".join(lines)


def write_model_card(run_dir: str | Path, license_id: str = DEFAULT_LICENSE) -> Path:
    """RUN/README.md from the run's report (written by the report stage) and settings."""
    run_dir = Path(run_dir)
    report_path = run_dir / "report" / "report.json"
    if not report_path.is_file():
        raise UserError(f"{run_dir} has no report yet (report/report.json); run the report "
                        f"stage first: gancompress report {run_dir}")
    report = json.loads(report_path.read_text())
    settings_path = run_dir / "compress.json"
    settings = json.loads(settings_path.read_text()) if settings_path.is_file() else {}
    md_path = report_path.parent / "report.md"
    text = model_card(report, settings, run_dir, license_id,
                      md_path.read_text() if md_path.is_file() else None)
    path = run_dir / CARD
    atomic_write_text(path, text)
    return path
