"""Budgets and their costs: parse once ("3G", "1/20", "5%", "30ms"), MACs or latency per config,
and the up-front check that a budget is reachable and compresses the teacher."""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gancompress.compress.space import Config, SearchSpace
from gancompress.errors import UserError
from gancompress.metrics.cost import count_macs, format_count
from gancompress.models.elastic import ElasticGenerator, using_widths

# ----------------------------------------------------------------------------------------------
# Budgets

_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_NUMBER = r"(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"


@dataclass(frozen=True)
class Budget:
    """A compute budget. kind: 'macs' (absolute), 'fraction' (of the teacher's MACs) or 'latency'
    (milliseconds, predicted by the latency model)."""

    kind: str
    value: float
    text: str

    def resolve(self, teacher_macs: int | None) -> Budget:
        """A fraction becomes absolute MACs of the teacher; other kinds are returned unchanged."""
        if self.kind != "fraction":
            return self
        if not teacher_macs:
            raise UserError(f"budget {self.text!r} is a fraction of the teacher's MACs; give the "
                            f"teacher (--teacher) or an absolute budget such as 3G")
        return Budget("macs", self.value * teacher_macs, self.text)

    @property
    def unit(self) -> str:
        return "ms" if self.kind == "latency" else "MACs"

    def describe(self) -> str:
        if self.kind == "latency":
            return f"{self.value:g} ms"
        if self.kind == "fraction":
            return f"{self.value:.4g} of the teacher's MACs"
        return f"{format_count(self.value)} MACs"


def parse_budget(text: str | float) -> Budget:
    """'3e9', '3G', '2.5GMACs' -> MACs; '1/20', '5%' -> fraction of the teacher; '30ms', '0.03s'
    -> latency. A plain number is absolute MACs, so it must be >= 1."""
    raw = str(text).strip()
    s = raw.replace(" ", "").replace("_", "")
    how = ("write MACs as 3e9 or 3G, a fraction of the teacher as 1/20 or 5%, or a latency "
           "as 30ms")
    if not s:
        raise UserError(f"empty budget; {how}")
    if m := re.fullmatch(_NUMBER + r"/" + _NUMBER, s):
        num, den = float(m.group(1)), float(m.group(2))
        # finite first: 1e999/1e999 is inf/inf = NaN, and every comparison with NaN is False
        if not (math.isfinite(num) and math.isfinite(den)) or den == 0 or num <= 0 or num > den:
            raise UserError(f"budget {raw!r}: a fraction must be in (0, 1]; {how}")
        return Budget("fraction", num / den, raw)
    if m := re.fullmatch(_NUMBER + r"%", s):
        value = float(m.group(1)) / 100
        if not (math.isfinite(value) and 0 < value <= 1):
            raise UserError(f"budget {raw!r}: a percentage must be in (0, 100]; {how}")
        return Budget("fraction", value, raw)
    if m := re.fullmatch(_NUMBER + r"(ms|s)", s, flags=re.IGNORECASE):
        value = float(m.group(1)) * (1.0 if m.group(2).lower() == "ms" else 1000.0)
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"budget {raw!r}: a latency must be a positive, finite number of "
                            f"milliseconds; {how}")
        return Budget("latency", value, raw)
    if m := re.fullmatch(_NUMBER + r"([kKmMgGtT]?)(?:MACs?|macs?|MAC|mac)?", s):
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
        if not math.isfinite(value):
            raise UserError(f"budget {raw!r} is not a finite number of MACs; {how}")
        if value < 1:
            raise UserError(f"budget {raw!r}: a plain number is absolute MACs and must be >= 1; "
                            f"for a fraction of the teacher write 1/20 or 5%")
        return Budget("macs", value, raw)
    raise UserError(f"cannot read budget {raw!r}; {how}")


# ----------------------------------------------------------------------------------------------
# Costs (config -> number to keep under the budget)

class MacCost:
    """MACs (published convention, docs/reference.md sec. 5) of the sub-network at `input_size`.

    Counting hooks run a forward pass; to keep evolution's rejection sampling cheap the pass runs
    on an input k times smaller per side and the count is multiplied by k^2, which is exact for
    convolutional generators (every count is proportional to an output's H*W). The scaling is
    verified once on the widest network and skipped where it does not hold.
    """

    unit = "MACs"
    kind = "macs"
    info: dict[str, Any] = {"measure": "MACs"}

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 input_size: Sequence[int] = (1, 3, 256, 256)):
        self.model, self.space = model, space
        self.input_size = tuple(int(v) for v in input_size)
        self.cache: dict[str, float] = {}
        self.scale, self.small_size = 1, self.input_size
        b, c, h, w = self.input_size
        m = max(4, getattr(model, "size_multiple", 4))  # the reduced input must suit the family
        for k in (32, 16, 8, 4, 2):
            if h % (m * k) == 0 and w % (m * k) == 0 and h // k >= max(8, m) and w // k >= max(8, m):
                small = (1, c, h // k, w // k)
                with using_widths(model, None):
                    full = count_macs(model, (1, c, h, w))
                    reduced = count_macs(model, small)
                if reduced * k * k == full:
                    self.scale, self.small_size = k * k, small
                    self.cache[space.encode(space.largest())] = float(full) * b
                break
        self.batch = b

    def macs(self, config: Sequence[int]) -> int:
        return int(self(config))

    def __call__(self, config: Sequence[int]) -> float:
        key = self.space.encode(config)
        if key not in self.cache:
            with using_widths(self.model, self.space.widths(config)):
                self.cache[key] = float(count_macs(self.model, self.small_size) * self.scale
                                        * self.batch)
        return self.cache[key]

    def cheapest(self) -> tuple[Config, float]:
        """Smallest reachable cost: MACs grow with every width, so the narrowest config."""
        config = self.space.smallest()
        return config, self(config)


class LatencyCost:
    """Predicted latency in ms from `gancompress.compress.latency.LatencyModel` (imported lazily).

    LatencyModel API: load_or_build(model, space, input_size, device, backend, cache_dir),
    .predict(config) -> ms, .measure(config) -> ms, .fastest() -> (config, ms).
    `backend` is the deployment runtime (compress --runtime): torch, onnx, openvino,
    openvino-bf16, openvino-int8; `info` (runtime, precision, held-out error) goes into the
    search's best.json next to its Pareto front.
    """

    unit = "ms"
    kind = "latency"

    def __init__(self, model: ElasticGenerator, space: SearchSpace,
                 input_size: Sequence[int] = (1, 3, 256, 256), device: str = "cpu",
                 backend: str = "torch", cache_dir: str | Path | None = None,
                 fit: dict[str, Any] | None = None):
        """fit: a latency model fitted elsewhere (LatencyModel.fit of rank 0 under torchrun):
        predict with it and measure nothing."""
        try:
            from gancompress.compress.latency import LatencyModel
        except ImportError as err:
            raise UserError(f"latency budgets need gancompress.compress.latency, which cannot be "
                            f"imported here ({err}); give the budget in MACs (e.g. 3G or 1/20)"
                            ) from None
        self.space = space
        if fit is not None:
            self.latency = LatencyModel(model, space, tuple(input_size), device, backend,
                                        int(fit["threads"]), fit)
        else:
            self.latency = LatencyModel.load_or_build(model, space, input_size=tuple(input_size),
                                                      device=device, backend=backend,
                                                      cache_dir=cache_dir)
            if hasattr(self.latency, "describe"):
                from gancompress.distributed import print0
                print0(f"[latency] {self.latency.describe()}")
        self.cache: dict[str, float] = {}
        summary = self.latency.summary() if hasattr(self.latency, "summary") else {}
        self.runtime = getattr(self.latency, "runtime", None) or backend
        self.precision = getattr(self.latency, "precision", None) or "fp32"
        self.info: dict[str, Any] = {
            "measure": "latency (ms)", "runtime": self.runtime, "precision": self.precision,
            **{k: summary[k] for k in ("device_name", "threads", "holdout_mape",
                                       "holdout_configs") if k in summary}}

    def __call__(self, config: Sequence[int]) -> float:
        key = self.space.encode(config)
        if key not in self.cache:
            self.cache[key] = float(self.latency.predict(list(config)))
        return self.cache[key]

    def cheapest(self) -> tuple[Config, float]:
        config, ms = self.latency.fastest()
        return list(config), float(ms)


def check_budget(budget: Budget, cost: MacCost | LatencyCost, space: SearchSpace,
                 teacher_cost: float | None = None) -> None:
    """Fail at once, with the numbers, on a budget that no sub-network meets or that does not
    compress the teacher."""
    config, cheapest = cost.cheapest()
    shown = (lambda v: f"{v:.3g} ms") if budget.kind == "latency" else \
        (lambda v: f"{format_count(v)} MACs" + (f" ({int(v):,})" if v >= 1000 else ""))
    if budget.value < cheapest:
        raise UserError(f"budget {budget.text!r} ({shown(budget.value)}) is below the smallest "
                        f"sub-network of search space {space.name}: {space.encode(config)} needs "
                        f"{shown(cheapest)}; raise the budget to at least that")
    if teacher_cost is not None and budget.value >= teacher_cost:
        raise UserError(f"budget {budget.text!r} ({shown(budget.value)}) is not below the "
                        f"teacher's {shown(teacher_cost)}: nothing to compress; choose a smaller "
                        f"budget, e.g. 1/10")

