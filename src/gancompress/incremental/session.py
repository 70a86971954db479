"""`IncrementalSession`: run a generator on a sequence of edited inputs, recomputing only what
each edit changed.

    session = IncrementalSession(generator, mode="fast")
    y0 = session(x0)          # dense pass; caches what later passes need
    y1 = session(x1)          # only the pixels that x1 changed (and their receptive field)
    session.stats             # what the last call did (changed area, MACs, dense ops, ...)

Modes (stated per model by `modes(model)`):
    exact   changed regions grow by every layer's true receptive field: the output equals a
            dense pass (up to float rounding) for models whose norms do not depend on the whole
            image (BatchNorm with running statistics, SPADE's parameter-free BatchNorm, no
            norm). InstanceNorm layers run densely (their statistics change), which is exact
            but saves little.
    fast    SIGE's trade: one region per resolution (the edit, dilated by `dilation` pixels,
            rounded out to tiles), InstanceNorm with the statistics of the last dense pass.
            After `refresh_every` edits or once the edits since the last dense pass cover
            `refresh_area` of the image, the next call is a dense pass, so drift never builds.
A size change, a model whose forward takes another path, or a call with nothing changed are
handled (dense pass, reason in stats; or the cached output). Batch size is free; inputs are
the forward() inputs of the model (any number; tensors that are not maps count as changed or
not as a whole).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.incremental.engine import Diverged, Engine, Plain, Spatial, is_spatial
from gancompress.incremental.regions import Region, resize_mask

MODES = ("exact", "fast")


def whole_image_norms(model: nn.Module) -> list[str]:
    """Names of the layers whose output depends on the whole image (InstanceNorm, BatchNorm in
    training mode or without running statistics): exact mode runs them densely."""
    names = []
    for name, m in model.named_modules():
        if isinstance(m, nn.InstanceNorm2d) or isinstance(m, nn.GroupNorm) or (
                isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats):
            names.append(name)
    return names


def modes(model: nn.Module) -> dict[str, str]:
    """What each mode gives for this model, in words."""
    norms = whole_image_norms(model)
    exact = ("equals the dense pass" if not norms else
             f"equals the dense pass, but its {len(norms)} InstanceNorm layer(s) (e.g. "
             f"{norms[0]}) run densely, so it saves little")
    fast = ("SIGE-style regions per resolution" + (
        "; InstanceNorm statistics from the last dense pass" if norms else ""))
    return {"exact": exact, "fast": fast}


class IncrementalSession:
    """See the module docstring. `model` is any generator (nn.Module) run in eval mode."""

    def __init__(self, model: nn.Module, mode: str = "fast", block: int = 8, dilation: int = 1,
                 dense_fraction: float = 0.5, refresh_area: float = 0.3, refresh_every: int = 0,
                 coarse_dilation: int | None = 0):
        """Fast-mode regions: the edit dilated by `dilation` pixels on every map, by
        `coarse_dilation` (None: the same) on maps 8x or more smaller than the input."""
        if mode not in MODES:
            raise UserError(f"incremental mode must be 'exact' or 'fast', got {mode!r}")
        coarse_dilation = dilation if coarse_dilation is None else coarse_dilation
        if block < 1 or dilation < 0 or coarse_dilation < 0 or not 0 < dense_fraction <= 1 \
                or refresh_area <= 0 or refresh_every < 0:
            raise UserError("incremental settings: block >= 1, dilation >= 0, 0 < dense_fraction "
                            "<= 1, refresh_area > 0, refresh_every >= 0")
        self.model, self.mode = model, mode
        self.engine = Engine(mode, block, dilation, dense_fraction,
                             coarse_dilation=coarse_dilation)
        self.refresh_area, self.refresh_every = refresh_area, refresh_every
        self.inputs: list[Spatial | Plain] = []
        self.output: Any = None
        self.macs_dense = 0
        self.area = 0.0
        self.edits = 0
        self.stats: dict[str, Any] = {}

    # -- calls --------------------------------------------------------------------------------------
    def __call__(self, *inputs: torch.Tensor) -> Any:
        if not inputs or not all(isinstance(x, torch.Tensor) for x in inputs):
            raise UserError("an incremental session takes the model's input tensors")
        if not self.inputs or [tuple(x.shape) for x in inputs] != \
                [tuple(v.view.shape) for v in self.inputs]:
            return self.refresh(*inputs, reason="first input" if not self.inputs
                                else "input size changed")
        changed = self._load(inputs)
        fraction = self.engine.input_mask.float().mean().item() \
            if self.engine.input_mask is not None else float(changed)
        if not changed:
            self.stats = self._stats(0.0, 0, reason="nothing changed")
            return _copy(self.output)
        if self.mode == "fast" and (self.area + fraction > self.refresh_area or (
                self.refresh_every and self.edits + 1 >= self.refresh_every)):
            return self.refresh(*inputs, reason="refresh after "
                                f"{self.edits + 1} edits covering {self.area + fraction:.1%}",
                                changed_fraction=fraction)
        try:
            out = self._run(recording=False)
        except Diverged as err:
            return self.refresh(*inputs, reason=f"dense: forward took another path ({err})",
                                changed_fraction=fraction)
        self.output = out
        self.area += fraction
        self.edits += 1
        self.stats = self._stats(fraction, self.engine.macs)
        return _copy(out)

    def refresh(self, *inputs: torch.Tensor, reason: str = "refresh",
                changed_fraction: float = 1.0) -> Any:
        """A dense pass that (re)records the caches; its output is exact."""
        if inputs:
            self.inputs = [Spatial(x.detach()) if is_spatial(x) else Plain(x.detach())
                           for x in inputs]
            for value in self.inputs:
                if isinstance(value, Spatial):
                    value.nchw = value.view.contiguous()
        self.output = self._run(recording=True)
        self.macs_dense = self.engine.macs
        self.area, self.edits = 0.0, 0
        self.stats = self._stats(changed_fraction, self.engine.macs, reason=reason, dense=True)
        return _copy(self.output)

    # -- internals -----------------------------------------------------------------------------------
    def _load(self, inputs: tuple[torch.Tensor, ...]) -> bool:
        """Copy the new inputs into the cached ones; set their regions; True if any changed."""
        engine = self.engine
        masks, any_change = [], False
        for value, x in zip(self.inputs, inputs):
            x = x.detach().to(value.view.device, value.view.dtype)
            if isinstance(value, Spatial):
                # compared with a plain copy of the last input (same layout: a fast compare);
                # only the changed pixels are copied into the channels-last buffer
                x = x.contiguous()
                mask = (x != value.nchw).any(1, keepdim=True)
                region = Region(mask, within_base=True)
                rows = region.rows()
                if len(rows):
                    b, c, h, w = x.shape
                    pick = mask.expand(b, c, h, w)
                    value.scatter(rows, x.permute(0, 2, 3, 1)[pick.permute(0, 2, 3, 1)].view(-1, c))
                    value.nchw.copy_(x)
                    any_change = True
                value.region = region
                masks.append(mask)
            else:
                value.changed = not torch.equal(x, value.view)
                value.view.copy_(x)
                any_change |= value.changed
        if masks:
            h, w = masks[0].shape[-2:]
            mask = masks[0]
            for m in masks[1:]:
                mask = mask | resize_mask(m, h, w)
            engine.input_mask = mask
        else:
            engine.input_mask = None
        return any_change

    def _run(self, recording: bool) -> Any:
        engine = self.engine
        was_training = self.model.training
        self.model.eval()
        try:
            engine.begin(recording, self.inputs)  # keeps the regions _load gave the inputs
            with torch.no_grad(), engine:
                out = self.model(*[v.view for v in self.inputs])
            engine._previous = []  # buffers the new recording did not refill are freed
            return out
        except RuntimeError as err:
            if recording:
                raise UserError(f"this model cannot run incrementally: {err}") from err
            raise
        finally:
            self.model.train(was_training)

    def _stats(self, fraction: float, macs: int, reason: str = "", dense: bool = False) -> dict:
        return {"mode": self.mode, "changed_fraction": fraction, "macs_incremental": int(macs),
                "macs_dense": int(self.macs_dense), "dense": dense, "reason": reason,
                "dense_ops": dict(self.engine.dense_ops), "edits_since_dense": self.edits,
                "area_since_dense": self.area}

    @property
    def cache_bytes(self) -> int:
        """Bytes held by the caches (activations, index maps, statistics, inputs)."""
        total = 0
        for slot in self.engine.slots:
            for v in slot.outputs:
                if isinstance(v, Spatial):
                    total += v.flat.numel() * v.flat.element_size()
                elif isinstance(v, Plain):
                    total += v.view.numel() * v.view.element_size()
            if slot.index is not None:
                total += slot.index.numel() * slot.index.element_size()
            if slot.stats is not None:
                total += sum(t.numel() * t.element_size() for t in slot.stats)
        for v in self.inputs:
            t = v.flat if isinstance(v, Spatial) else v.view
            total += t.numel() * t.element_size()
        return total


def _copy(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.clone(memory_format=torch.contiguous_format)
    if isinstance(out, (tuple, list)):
        return type(out)(_copy(o) for o in out)
    return out
