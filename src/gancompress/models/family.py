"""The family contract: `ElasticGenerator`, the base class of every generator family (docs/design.md,
"A generator family is one registry entry"), the config-string helpers the families' codecs
share, and the width operations on a whole generator: `using_widths` (the only way to set the
active widths), `current_widths`, `crop_state` and `compact` (a standalone generator of the same
class at given widths, `compact(g, w)(x) == g@w(x)`).

A generator family is one subclass plus one registry line in models/__init__.py.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.models.layers import (
    Widths,
    channel_axes,
    elastic_layers,
    elastic_modules,
    part_index,
)

# One position of a config string: the (width group, multiplier) pairs its number sets.
Position = tuple[tuple[str, int], ...]

class ElasticGenerator(nn.Module):
    """Base of every generator family: the family contract (docs/design.md, "A generator family is
    one registry entry").

    A family class owns every fact about its architecture, so pipeline, search, distillation,
    export, profile and the CLI stay generic:
        arch                  its constructor arguments (JSON-serialisable; per-group widest
                              widths under "widths"); `type(g)(**g.arch)` rebuilds it
        config_positions      the published config string's positions: (group, multiplier)
                              pairs per number; widths_from_config / config_from_widths
                              decode and encode it (overridden only for published quirks)
        search_spaces()       named search-space presets of this family (names are local)
        feature_widths        width group of each distillation tap of forward(return_features)
        example_inputs(size)  the inputs of forward (image, label map, style code ...)
        reference_size        the paper's (H, W) for MAC counts
        read_published(state) the reader of its published checkpoint formats
        student_arch(...)     constructor arguments of a student / supernet of this family
        read_input(arch, path, size)   one input file -> forward()'s first input (generate,
                              for checkpoints and exported files alike: a classmethod on arch)
    """

    arch_name: str = ""
    arch: dict
    published_formats: str = ""     # what read_published opens, with example keys (for messages)
    reference_size: tuple[int, int] = (256, 256)
    size_multiple: int = 1          # inputs' H and W must be multiples of this
    # Outputs depend on a sampled code (MUNIT's style): sub-networks are compared with the
    # teacher under the same codes (`scoring_inputs`), never with paired ground truth.
    multimodal: bool = False
    # Names of forward()'s inputs (example_inputs order), e.g. as ONNX input names.
    input_names: tuple[str, ...] = ("input",)
    # forward()'s first input is an image in [-1, 1] (False: e.g. SPADE's one-hot label map):
    # exports verify on `example_inputs` instead of smooth random images, and int8 calibration
    # on photos does not apply.
    image_input: bool = True
    # What the first input holds, recorded in exported files (gancompress.input_range).
    input_description: str = "[-1, 1]: pixel / 127.5 - 1 (RGB, or gray for 1 channel)"
    # The published config string ("c0_c1_..."), the default codec's declaration: per position,
    # the (width group, multiplier) pairs whose width is multiplier x that position's number
    # (see `decode_positions`); `config_label` names the family in messages.
    config_positions: tuple[Position, ...] = ()
    config_label: str = ""
    # The runtime-friendly channel multiple: CPU kernels (oneDNN / OpenVINO blocked layouts,
    # AMX and VNNI tiles) work on blocks of 16 / 32 / 64 channels, so a width that is not a
    # multiple of the block pads to the next one and wastes the difference. A family declares
    # its multiple and a search-space preset `fast-<multiple>` whose every choice gives widths
    # that are multiples of it (`aligned_choices`); 1 = no preference.
    width_multiple: int = 1
    # Student options a family opts in to (compress.student_norm, compress.student_pad):
    # option -> (allowed values, the constructor arguments it sets). A family without an
    # option refuses it (`student_config`); '' always means "as the teacher".
    student_options: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}

    # -- constructor arguments ------------------------------------------------------------------
    @classmethod
    def arch_args(cls, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check `args` against the constructor's signature (unknown names -> UserError)."""
        import inspect

        params = inspect.signature(cls.__init__).parameters
        known = [p for p in params if p != "self"]
        unknown = [k for k in args if k not in known]
        if unknown:
            raise UserError(f"unknown argument(s) {', '.join(map(repr, unknown))} for a "
                            f"{cls.arch_name} generator; valid: {', '.join(known)}")
        return dict(args)

    # -- widths and config strings --------------------------------------------------------------
    @property
    def max_widths(self) -> Widths:
        return dict(self.arch["widths"])

    def check_widths(self, widths: Mapping[str, int]) -> Widths:
        """Validate a (possibly partial) widths mapping; return it complete (missing = widest)."""
        full = self.max_widths
        for group, value in widths.items():
            if group not in full:
                raise UserError(f"unknown width group {group!r}; this {self.arch_name} generator has "
                                f"groups {', '.join(full)}")
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= full[group]:
                raise UserError(f"width {value!r} for group {group!r} must be an integer in "
                                f"1..{full[group]}")
        full.update(widths)
        return full

    def config_layout(self) -> tuple[Position, ...]:
        """The positions of the published config string (see `decode_positions`): the class's
        `config_positions`, unless they depend on the constructor arguments (U-Net's levels)."""
        return self.config_positions

    def widths_from_config(self, config: str | Sequence[int]) -> Widths:
        """The published config string (or its numbers) -> widths per group (the default codec:
        `config_layout()`; families override it only for a published quirk)."""
        if not self.config_layout():
            raise NotImplementedError(f"{type(self).__name__} declares no config_positions")
        return decode_positions(config, self.config_layout(), self.config_label or self.arch_name)

    def config_from_widths(self, widths: Mapping[str, int]) -> str:
        """Widths per group -> the published config string."""
        if not self.config_layout():
            raise NotImplementedError(f"{type(self).__name__} declares no config_positions")
        return encode_positions(widths, self.config_layout())

    def config_length(self) -> int:
        if self.config_layout():
            return len(self.config_layout())
        return len(parse_config_numbers(self.config_from_widths(self.max_widths)))

    def search_spaces(self) -> dict[str, list[list[int]]]:
        """Named search spaces of this family: choices per config position, widest first."""
        return {}

    def default_space(self) -> str:
        """The search space a compression uses when compress.space is not set: the first of
        `search_spaces()` unless the family names another."""
        return next(iter(self.search_spaces()), "")

    # -- inputs ---------------------------------------------------------------------------------
    @property
    def in_channels(self) -> int:
        return int(self.arch["in_channels"])

    @property
    def out_channels(self) -> int:
        return int(self.arch["out_channels"])

    def check_size(self, size: Sequence[int]) -> tuple[int, int]:
        """(H, W) of an input, checked against the family's size rule."""
        h, w = (int(size[0]), int(size[-1]))
        m = self.size_multiple
        if h < m or w < m or h % m or w % m:
            raise UserError(f"input size {h}x{w} does not suit a {self.arch_name} generator: "
                            f"height and width must each be a positive multiple of {m}")
        return h, w

    def example_inputs(self, size: Sequence[int] | None = None, batch: int = 1,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Inputs of forward() at `size` (H, W; default the reference size), values in [-1, 1]."""
        h, w = self.check_size(size or self.reference_size)
        device = next(self.parameters()).device
        x = torch.rand(batch, self.in_channels, h, w, generator=generator) * 2 - 1
        return (x.to(device),)

    def input_picture(self, x: torch.Tensor) -> torch.Tensor:
        """What a person sees of a batch of inputs (B, C, H, W): (B, 1 or 3, H, W) in [-1, 1],
        for sample grids and reports. Image generators: the input itself."""
        return x

    def profile_inputs(self, size: Sequence[int] | None = None, batch: int = 1
                       ) -> tuple[torch.Tensor, ...]:
        """Inputs of the published MAC / latency count (default: example_inputs; MUNIT counts
        forward(x) with its style encoder, not a translation with a given style)."""
        return self.example_inputs(size, batch)

    def mac_variants(self, size: Sequence[int] | None = None) -> dict[str, tuple[torch.Tensor, ...]]:
        """Further published counts of the same model, name -> forward() inputs (profile prints
        them, e.g. MUNIT "without_style_encoder")."""
        return {}

    def scoring_inputs(self, source: torch.Tensor, index: int) -> tuple[torch.Tensor, ...]:
        """forward() inputs for held-out batch `index` when sub-networks are scored against the
        teacher: the same for every model of the family given the same (source, index)."""
        return (source,)

    def input_size(self, size: Sequence[int] | None = None, batch: int = 1) -> tuple[int, ...]:
        """Shape of the first input (B, C, H, W) at `size`."""
        return tuple(self.example_inputs(size, batch)[0].shape)

    # -- input files ----------------------------------------------------------------------------
    def label_map_args(self) -> dict[str, Any] | None:
        """How a label-map dataset must be read for this model (data.segmaps.LabelMapDataset
        arguments: label_nc, no_instance), or None when the model takes images."""
        return None

    @classmethod
    def read_input(cls, arch: Mapping[str, Any], path: Any, size: Sequence[int] | None,
                   instances: Any = None) -> torch.Tensor:
        """One input file -> forward()'s first input (C, H, W) at `size` (H, W): an image,
        resized bicubically, in [-1, 1]. `instances` (a folder) is for label-map families."""
        from gancompress.imaging import read_image

        if instances is not None:
            raise UserError(f"--instances applies to label-map generators (SPADE); this "
                            f"{cls.arch_name} generator takes images")
        return read_image(path, int(arch.get("in_channels", 3)),
                          None if size is None else (int(size[0]), int(size[-1])))

    @classmethod
    def check_input_files(cls, arch: Mapping[str, Any], paths: Sequence[Any],
                          size: Sequence[int] | None, instances: Any = None) -> None:
        """Every input file is usable, checked before anything is written (one UserError)."""
        from gancompress.imaging import check_images

        if instances is not None:
            cls.read_input(arch, paths[0], size, instances)  # the --instances message
        check_images(list(paths), int(arch.get("in_channels", 3)))

    # -- distillation ---------------------------------------------------------------------------
    @property
    def feature_widths(self) -> list[str]:
        """Width group of each distillation tap (forward(..., return_features=True))."""
        raise NotImplementedError

    # -- students -------------------------------------------------------------------------------
    def student_arch(self, conv: str | None = None, widths: Mapping[str, int] | None = None
                     ) -> dict[str, Any]:
        """Constructor arguments of a student of this family: the teacher's, with `conv`
        (dense / separable) and `widths`, and no dropout."""
        arch = {**self.arch}
        if conv is not None and "conv" in arch:
            arch["conv"] = conv
        if "dropout" in arch:
            arch["dropout"] = 0.0
        if widths is not None:
            arch["widths"] = dict(widths)
        return arch

    def student_config(self, conv: str | None = None, widths: Mapping[str, int] | None = None,
                       **options: str) -> dict[str, Any]:
        """`student_arch(conv, widths)` with the student options (`student_options`) applied:
        e.g. norm="batch", pad="zero". An empty or None value keeps the teacher's; an option the
        family does not declare, or a value it does not allow, is a UserError."""
        arch = self.student_arch(conv, widths)
        for option, value in options.items():
            if not value:
                continue
            if option not in self.student_options:
                offered = ", ".join(self.student_options) or "none"
                raise UserError(f"a {self.arch_name} student has no {option} option (compress."
                                f"student_{option}; this family's student options: {offered}); "
                                f"leave it empty to keep the teacher's")
            allowed, keys = self.student_options[option]
            if value not in allowed:
                raise UserError(f"compress.student_{option} = {value!r}: a {self.arch_name} "
                                f"student takes {', '.join(map(repr, allowed))} (or '' for the "
                                f"teacher's)")
            arch.update(dict.fromkeys(keys, value))
        return arch

    # -- published checkpoints ------------------------------------------------------------------
    @classmethod
    def read_published(cls, obj: Any, name: str, **hints: Any
                       ) -> tuple[ElasticGenerator, str] | None:
        """(model, format description) from a loaded published checkpoint object of this family
        (`tensor_dict(obj)` unwraps the usual containers), or None when it is not this family's.
        Raise UserError when it is this family's but unusable (say what is missing)."""
        return None

    # -- deployment -----------------------------------------------------------------------------
    def prepare_deploy(self) -> nn.Module:
        """Module to export (e.g. with spectral norm folded); rewrites in deploy/ are generic."""
        return self


def config_number(widths: Mapping[str, int], group: str, multiplier: int) -> int:
    """The config-string number of width group `group` (its width / `multiplier`); UserError
    when the group is missing or its width is not a multiple (no config-string form)."""
    if group not in widths:
        raise UserError(f"widths lack group {group!r}")
    if widths[group] % multiplier:
        raise UserError(f"width {widths[group]} of group {group!r} is not a multiple of "
                        f"{multiplier}, so it has no config-string form")
    return widths[group] // multiplier


def decode_positions(config: str | Sequence[int], positions: Sequence[Position], what: str
                     ) -> Widths:
    """The default config-string codec: number c at position i gives every (group, multiplier)
    of positions[i] the width multiplier * c. `what` names the family in the message when the
    string has the wrong length."""
    values = parse_config_numbers(config)
    if len(values) != len(positions):
        raise UserError(f"a {what} config string has {len(positions)} numbers, got "
                        f"{len(values)}: {config!r}")
    return {g: m * v for pos, v in zip(positions, values) for g, m in pos}


def encode_positions(widths: Mapping[str, int], positions: Sequence[Position]) -> str:
    """Widths -> the config string of `positions` (inverse of `decode_positions`). A position's
    first group is required; its further groups, where given, must be their multiple of the same
    number, else UserError (these widths have no config-string form)."""
    parts = []
    for (first, m), *rest in positions:
        c = config_number(widths, first, m)
        if any(g in widths and widths[g] != k * c for g, k in rest):
            pairs = ((first, m), *rest)
            names = ", ".join(f"{g}={widths[g]}" for g, _ in pairs if g in widths)
            rule = ", ".join("c" if k == 1 else f"{k}c" for _, k in pairs)
            raise UserError(f"widths {names} are not {rule} of one config number, so they have "
                            f"no config-string form")
        parts.append(str(c))
    return "_".join(parts)


def aligned_choices(choices: Sequence[Sequence[int]], positions: Sequence[Position],
                    multiple: int) -> list[list[int]]:
    """The block-multiple rule of `fast-*` search spaces: per config position keep the numbers c
    whose every width (multiplier * c for each (group, multiplier) of the position) is a multiple
    of `multiple` (e.g. ResNet, multiple 16: stem and up2 (x1) keep 16, 32, 48, 64; down1 and up1
    (x2) multiples of 8; the trunk and residual groups (x4) multiples of 4)."""
    if len(choices) != len(positions):
        raise ValueError(f"{len(choices)} choice lists for {len(positions)} positions")
    kept = [[c for c in pos if all(m * c % multiple == 0 for _, m in position)]
            for pos, position in zip(choices, positions)]
    for i, pos in enumerate(kept):
        if not pos:
            raise ValueError(f"position {i}: no choice of {list(choices[i])} gives widths that are "
                             f"multiples of {multiple}")
    return kept


def parse_config_numbers(config: str | Sequence[int]) -> list[int]:
    """'16_16_32' (or a sequence) -> [16, 16, 32]; every entry a positive integer."""
    if not isinstance(config, str):
        return [int(v) for v in config]
    values = []
    for pos, part in enumerate(config.strip().split("_")):
        if not part.isdigit() or int(part) < 1:
            raise UserError(f"config string {config!r}: position {pos} is {part!r}, expected a "
                            f"positive integer")
        values.append(int(part))
    return values


@contextlib.contextmanager
def using_widths(model: nn.Module, widths: Mapping[str, int] | None) -> Iterator[nn.Module]:
    """Run `model` as the sub-network with these per-group widths inside the block.

    `None` or an empty mapping means the widest network. The previous widths are restored on exit,
    also when the block raises, so no step can leave the supernet narrowed by accident.
    """
    if widths and isinstance(model, ElasticGenerator):
        widths = model.check_widths(widths)
    modules = [m for _, m in elastic_modules(model)]
    saved = [(m, m.widths_state()) for m in modules]
    try:
        for m in modules:
            m.set_widths(widths or None)
        yield model
    finally:
        for m, previous in saved:
            m.restore_widths(previous)


def current_widths(model: ElasticGenerator) -> Widths:
    """The widths the model runs with now (widest for groups that are not narrowed)."""
    widths = model.max_widths
    for _, m in elastic_layers(model):
        if m.active is not None:
            widths[m.group] = m.active
    return widths


def crop_state(model: nn.Module, widths: Mapping[str, int], target: nn.Module
               ) -> dict[str, torch.Tensor]:
    """`model`'s tensors cut to sub-network `widths`, keyed and shaped as `target`'s state dict.

    Each declared part keeps its first k channels (k = widths[group]), so a concatenated input
    keeps the right columns of each part.
    """
    source, axes = model.state_dict(), channel_axes(model)
    out = {}
    for key, ref in target.state_dict().items():
        if key not in source:
            raise UserError(f"cannot crop: tensor {key} of the sub-network is not in the source")
        tensor = source[key]
        for dim, parts in axes.get(key, []):
            index = part_index(parts, widths)
            if index is not None:
                tensor = tensor.index_select(dim, index.to(tensor.device))
        if tuple(tensor.shape) != tuple(ref.shape):
            raise UserError(f"cannot crop tensor {key}: {tuple(tensor.shape)} after cropping, "
                            f"expected {tuple(ref.shape)} (a layer without width declarations?)")
        out[key] = tensor.clone()
    return out


def compact(model: ElasticGenerator, widths: Mapping[str, int]) -> ElasticGenerator:
    """A standalone generator of the same class at `widths`, with the supernet's leading weights.

    Invariants (tested for every registered generator): compact(g, w)(x) == g@w(x) and
    macs(compact(g, w)) == macs(g@w).
    """
    widths = model.check_widths(widths)
    small = type(model)(**{**model.arch, "widths": widths})
    small.load_state_dict(crop_state(model, widths, small))
    small.train(model.training)
    return small.to(next(model.parameters()).device)
