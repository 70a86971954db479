"""What a compression run folder holds for the demo: its models, quality figures, size and data
(read from the files compress/pipeline.py writes)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancompress.errors import UserError


def read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"cannot read {path}: {err}") from None


def resolve_recorded(path_text: str, run: Path, folder: bool = False) -> Path | None:
    """A path recorded in a run's files: as written (relative to where compress ran), or
    relative to the run folder or its parent."""
    for candidate in (Path(path_text), run / path_text, run.parent / path_text):
        if candidate.is_dir() if folder else candidate.is_file():
            return candidate
    return None


@dataclass
class RunInfo:
    """What a compression run folder holds for the demo (compress/pipeline.py layout)."""

    folder: Path
    compact: Path
    teacher: Path
    report: dict[str, Any]
    settings: dict[str, Any]
    held_out: list[str]
    pareto: list[dict[str, Any]]
    metric: str | None
    config: str | None
    supernet: Path | None

    @classmethod
    def read(cls, folder: Path, teacher: str | Path | None = None) -> RunInfo:
        compact = folder / "compact.pth"
        if not compact.is_file():
            raise UserError(f"{folder} has no compact.pth: not a finished compression run (run "
                            f"`gancompress compress --out {folder}` to the end, or give model "
                            f"files)")
        report = read_json(folder / "report" / "report.json") or {}
        settings = read_json(folder / "compress.json") or {}
        from gancompress.models.checkpoint import safe_load

        obj = safe_load(compact)
        meta = obj.get("meta", {}) if isinstance(obj, dict) else {}
        if teacher is not None:
            teacher_path = Path(teacher)
            if not teacher_path.is_file():
                raise UserError(f"--teacher {teacher_path} not found")
        else:
            recorded = [report.get("teacher_path"), settings.get("compress", {}).get("teacher"),
                        meta.get("teacher") if isinstance(meta.get("teacher"), str) else None]
            found = [p for p in (resolve_recorded(t, folder) for t in recorded if t) if p]
            if not found:
                raise UserError(f"cannot find the teacher of {folder} (recorded as "
                                f"{next((t for t in recorded if t), 'nothing')}); pass "
                                f"--teacher FILE")
            teacher_path = found[0]
        held = folder / "held_out.txt"
        held_out = [line.strip() for line in held.read_text().splitlines() if line.strip()] \
            if held.is_file() else []
        best = read_json(folder / "search" / "best.json") or {}
        pareto_doc = read_json(folder / "search" / "pareto.json")
        if isinstance(pareto_doc, dict):
            pareto_doc = pareto_doc.get("pareto")
        pareto = [p for p in (pareto_doc or best.get("pareto") or [])
                  if isinstance(p, dict) and p.get("config")]
        supernet = folder / "supernet" / "supernet.pth"
        config = report.get("config") or meta.get("config") or best.get("best")
        return cls(folder, compact, teacher_path, report, settings, held_out,
                   sorted(pareto, key=lambda p: p.get("macs") or p.get("cost") or 0),
                   best.get("metric"), config, supernet if supernet.is_file() else None)

    def quality(self, who: str) -> dict[str, Any]:
        models = self.report.get("models", {})
        values = dict(models.get(who, {}).get("quality", {}))
        if not values:
            return {}
        return {"values": values, "reference": self.report.get("reference"),
                "images": self.report.get("held_out_images"),
                "macs_256": models.get(who, {}).get("macs_256"),
                "report_latency_ms": models.get(who, {}).get("latency_ms")}

    def data_config(self) -> Any:
        """The run's recorded data settings as a DataConfig (None when not recorded)."""
        from gancompress.config import Config

        if not self.settings.get("data"):
            return None
        try:
            return Config.from_dict({"data": self.settings["data"]}).data
        except (UserError, TypeError, ValueError):
            return None

    def input_size(self) -> tuple[int, int] | None:
        """(H, W) the run was trained and scored at (label maps: crop_size wide at the
        recorded aspect ratio)."""
        from gancompress.data import input_shape

        data = self.data_config()
        if data is None or not data.crop_size:
            return None
        try:
            return tuple(input_shape(data)[1:])
        except UserError:  # e.g. a label layout that can no longer be read: square crop
            return (int(data.crop_size), int(data.crop_size))
