"""Bring your own generator: any image-to-image nn.Module as an elastic generator family.

`convert(module, example_inputs)` (or `TracedGenerator(module="pkg.mod:Class", args={...})`)
traces the user's model once (models/channel_trace.py, channel_groups.py), replaces its convs,
transposed convs, linears and norms in place by elastic twins (models/traced_layers.py) and keeps
the user's forward() unchanged. The result follows the family contract of models/elastic.py:
`using_widths`, `compact(g, w)(x) == g@w(x)`, `channel_axes` / `crop_state`, MACs that follow
the active widths, taps for distillation, a config string and default search spaces.

arch = {"module": "pkg.mod:Class", "args": {...}, "inputs": [[1, 3, 64, 64]], "pinned": [...],
        "widths": {...}} rebuilds it while the module is importable. Width groups are named
after the first layer writing their channels. Config string: the groups' widths in order
("32_16_64"). Search spaces: "fractions" (each group at 1, 3/4, 1/2, 1/4 of its width, in
multiples of 8 from 64 channels up, of 4 from 16, else of 1) and "halves" (1, 1/2).
"""
from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from gancompress.errors import UserError
from gancompress.models.channel_groups import Analysis, analyze
from gancompress.models.elastic import ElasticGenerator, Widths, parse_config_numbers
from gancompress.models.traced_layers import build_layer, narrow_in_place, slice_tensors

DEFAULT_INPUT = (1, 3, 64, 64)
ARCH_KEYS = ("module", "args", "inputs", "pinned", "strict", "widths", "in_channels",
             "out_channels", "condition")


def import_class(path: str) -> type:
    """'pkg.mod:Class' (or 'pkg.mod.Class') -> the class; UserError naming what to import."""
    cls = _import_object(path, "an architecture", "architecture", "module.path:ClassName")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)) and not callable(cls):
        raise UserError(f"{path!r} is not an nn.Module class")
    return cls


def import_function(path: str) -> Any:
    """'pkg.mod:function' of a condition hook -> the function."""
    fn = _import_object(path, "a condition function", "condition", "module.path:function")
    if not callable(fn):
        raise UserError(f"condition {path!r} is not a function")
    return fn


def _import_object(path: str, what: str, role: str, form: str) -> Any:
    if not isinstance(path, str) or not path.strip():
        raise UserError(f"{what} is named as {form}, got {path!r}")
    mod_name, _, obj_name = path.partition(":") if ":" in path else path.rpartition(".")
    if not mod_name or not obj_name:
        raise UserError(f"{what} is named as {form}, got {path!r}")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as err:
        raise UserError(f"cannot import module {mod_name!r} for {role} {path!r} ({err}); "
                        f"make it importable (install it, or add its folder to PYTHONPATH)"
                        ) from None
    obj = module
    for part in obj_name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UserError(f"module {mod_name!r} has no {obj_name!r} ({role} {path!r})")
    return obj


def function_path(fn: Any) -> str:
    """The import path recorded for a condition hook (a module-level function)."""
    if isinstance(fn, str):
        import_function(fn)  # importable now, or a UserError naming the module
        return fn
    name = getattr(fn, "__qualname__", "")
    if not callable(fn) or not name or "<" in name:
        raise UserError(f"condition {fn!r}: give a function defined at module level (not a "
                        f"lambda or a local function), so that it can be imported to rebuild "
                        f"the model")
    return f"{fn.__module__}:{name}"


def class_path(module: nn.Module) -> str:
    cls = type(module)
    if "<locals>" in cls.__qualname__:
        raise UserError(f"class {cls.__qualname__} is defined inside a function: define it at "
                        f"module level so that it can be imported to rebuild the model")
    return f"{cls.__module__}:{cls.__qualname__}"


def build_user_module(path: str, args: Mapping[str, Any] | None) -> nn.Module:
    cls = import_class(path)
    try:
        net = cls(**dict(args or {}))
    except TypeError as err:
        raise UserError(f"cannot build {path} with arguments {json.dumps(dict(args or {}))}: "
                        f"{err}; pass its constructor arguments (--arch-args JSON)") from None
    if not isinstance(net, nn.Module):
        raise UserError(f"{path} did not build an nn.Module")
    return net


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new) if not attr.isdigit() or not isinstance(parent, (
        nn.Sequential, nn.ModuleList)) else parent.__setitem__(int(attr), new)


def make_elastic(net: nn.Module, analysis: Analysis) -> nn.Module:
    """Replace the analysed layers of `net` (in place) by elastic twins; slice free tensors."""
    for name, spec in analysis.layers.items():
        _set_module(net, name, build_layer(net.get_submodule(name), spec))
    by_module: dict[str, dict[str, list]] = {}
    for (mname, attr), axes in analysis.free.items():
        by_module.setdefault(mname, {})[attr] = axes
    for mname, axes in by_module.items():
        slice_tensors(net.get_submodule(mname) if mname else net, axes)
    return net


def fraction_choices(width: int, fractions: Sequence[float]) -> list[int]:
    step = 8 if width >= 64 else 4 if width >= 16 else 1
    return sorted({max(step, round(width * f / step) * step) for f in fractions} | {width},
                  reverse=True)


class TracedGenerator(ElasticGenerator):
    """A user's generator made elastic automatically (see the module docstring)."""

    arch_name = "traced"
    published_formats = ""
    # its constructor arguments are not --options: the CLI's --arch pkg.mod:Class, --arch-args
    # and --pin set them (commands/_common.py)
    arch_options_on_cli = False

    # The constructor takes keywords only (ARCH_KEYS) and declares them as **arch: readers of
    # family signatures (the CLI's per-family --options) then list none for this family.
    def __init__(self, **arch: Any):
        unknown = sorted(set(arch) - set(ARCH_KEYS) - {"_net"})
        if unknown:
            raise UserError(f"unknown argument(s) {', '.join(map(repr, unknown))} for a traced "
                            f"generator; valid: {', '.join(ARCH_KEYS)}")
        self._build(**arch)

    def _build(self, module: str = "", args: Mapping[str, Any] | None = None,
               inputs: Sequence[Sequence[int]] | None = None, pinned: Sequence[str] = (),
               strict: bool = True, widths: Mapping[str, int] | str | None = None,
               in_channels: int | None = None, out_channels: int | None = None,
               condition: str = "", _net: nn.Module | None = None) -> None:
        super().__init__()
        if not module:
            raise UserError("a traced generator needs the user's class: module='pkg.mod:Class' "
                            "(--arch pkg.mod:Class)")
        try:
            json.dumps(dict(args or {}))
        except (TypeError, ValueError):
            raise UserError(f"{module}: constructor arguments must be JSON values (numbers, "
                            f"strings, lists, dicts) to be recorded, got {args!r}; wrap the "
                            f"class in one whose arguments are") from None
        net = _net if _net is not None else build_user_module(module, args)
        inputs = [list(map(int, s)) for s in (inputs or [DEFAULT_INPUT])]
        self._condition = import_function(condition) if condition else None
        examples = self._examples(inputs)
        if self._condition is not None:
            # the further inputs come from the hook: traced with what it makes (shapes recorded)
            examples = (examples[0], *self._conditioned(examples[0], condition))
            inputs = [inputs[0]] + [list(t.shape) for t in examples[1:]]
        if not 1 <= len(inputs) <= 4:
            raise UserError(f"a traced generator takes 1 to 4 inputs, got {len(inputs)}")
        # forward()'s own parameter names, for messages
        self._input_labels = _check_input_count(net, module, len(inputs)) or \
            ["input"] + [f"input{i}" for i in range(1, len(inputs))]
        analysis = analyze(net, examples, pinned, strict)
        if not analysis.groups:
            raise UserError(f"{module}: no layer of this model can change its width (every "
                            f"channel is pinned: {sorted(set(analysis.pinned.values()))[:3]})")
        self.net = make_elastic(net, analysis)
        self.analysis = analysis
        self.size_multiple = max(1, analysis.size_multiple)
        self.reference_size = (inputs[0][-2], inputs[0][-1]) if len(inputs[0]) == 4 else (1, 1)
        # with a condition hook the model is image-to-image: exports and runners feed the image
        self.input_names = ("input",) if self._condition is not None else \
            tuple(["input"] + [f"input{i}" for i in range(1, len(inputs))])
        full = dict(analysis.groups)
        # recorded (image channels in and out, as every family's arch has them), checked on rebuild
        found = {"in_channels": inputs[0][1], "out_channels": analysis.out_channels}
        for key, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if value is not None and int(value) != found[key]:
                raise UserError(f"{module}: {key}={value} was recorded, but the model has "
                                f"{found[key]}; rebuild it with the same constructor arguments")
        self.arch = {"module": module, "args": dict(args or {}), "inputs": inputs,
                     "pinned": list(pinned), "strict": bool(strict), **found, "widths": full}
        if condition:
            self.arch["condition"] = condition
        if isinstance(widths, str):
            widths = self.widths_from_config(widths)
        if widths:
            try:
                widths = self.check_widths(dict(widths))
            except UserError as err:
                raise UserError(f"{err} (a search space of absolute widths, such as a preset's "
                                f"compress.space=16,12,8, is made for a family's widths; for "
                                f"this model use compress.space=fractions or halves)") from None
            narrow_in_place(self.net, widths)
            self.arch["widths"] = dict(widths)
        self._taps = analysis.taps
        self._features: dict[str, torch.Tensor] | None = None
        for name, _ in self._taps:
            self.net.get_submodule(name).register_forward_hook(self._tap(name))

    @staticmethod
    def _examples(shapes: Sequence[Sequence[int]], batch: int | None = None,
                  size: Sequence[int] | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        gen = generator or torch.Generator().manual_seed(0)
        out = []
        for i, shape in enumerate(shapes):
            shape = list(shape)
            if batch is not None:
                shape[0] = batch
            if i == 0 and size is not None and len(shape) == 4:
                shape[-2:] = [int(size[0]), int(size[-1])]
            out.append(torch.rand(shape, generator=gen) * 2 - 1)
        return tuple(out)

    def _conditioned(self, image: torch.Tensor, module: str = "") -> tuple[torch.Tensor, ...]:
        """The further inputs the condition hook makes for `image` (checked)."""
        name = self.arch["condition"] if hasattr(self, "arch") else module
        extra = self._condition(image)
        extra = (extra,) if isinstance(extra, torch.Tensor) else tuple(extra or ())
        if not extra or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 and
                                t.shape[0] == image.shape[0] for t in extra):
            raise UserError(f"condition {name}: must return the further input(s) of forward() "
                            f"for a batch of images, a tensor or a tuple of tensors with the "
                            f"batch size first ({image.shape[0]}); it returned "
                            f"{_describe(extra)}")
        return extra

    def check_image_only(self) -> None:
        """UserError unless the model runs on an image alone (one input, or a condition hook
        making the others): what the pipeline, generate and the demo feed."""
        if len(self.arch["inputs"]) > 1 and self._condition is None:
            raise self._missing_inputs()

    def _missing_inputs(self) -> UserError:
        names = ", ".join(self._input_labels[:len(self.arch["inputs"])])
        return UserError(
            f"{self.arch['module']}.forward takes {len(self.arch['inputs'])} inputs ({names}) "
            f"but is given the image only (the compress pipeline, generate and demo feed "
            f"images): record a condition function that makes the further inputs from the image "
            f"batch, e.g. a fixed target label (convert(..., condition=fn), "
            f"gancompress.compress(..., condition=fn), --condition pkg.mod:function)")

    def _tap(self, name: str):
        def hook(module, args, out):
            if self._features is not None:
                self._features[name] = out
        return hook

    @classmethod
    def arch_args(cls, args: Mapping[str, Any]) -> dict[str, Any]:
        known = list(ARCH_KEYS)
        unknown = [k for k in args if k not in known]
        if unknown:
            raise UserError(f"unknown argument(s) {', '.join(map(repr, unknown))} for a traced "
                            f"generator; valid: {', '.join(known)}")
        return dict(args)

    # -- the family contract --------------------------------------------------------------------
    def widths_from_config(self, config: str | Sequence[int]) -> Widths:
        values = parse_config_numbers(config)
        groups = list(self.analysis.groups)
        if len(values) != len(groups):
            raise UserError(f"this traced generator's config string has one width per group "
                            f"({len(groups)}: {', '.join(groups)}), got {len(values)}")
        return dict(zip(groups, values))

    def config_from_widths(self, widths: Mapping[str, int]) -> str:
        return "_".join(str(int(widths[g])) for g in self.analysis.groups)

    def config_length(self) -> int:
        return len(self.analysis.groups)

    def search_spaces(self) -> dict[str, list[list[int]]]:
        full = self.max_widths
        return {"fractions": [fraction_choices(full[g], (1, .75, .5, .25)) for g in full],
                "halves": [fraction_choices(full[g], (1, .5)) for g in full]}

    @property
    def feature_widths(self) -> list[str]:
        return [g for _, g in self._taps]

    def example_inputs(self, size: Sequence[int] | None = None, batch: int = 1,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        if size is not None:
            self.check_size(size)
        device = next(self.parameters()).device
        gen = generator or torch.Generator()
        if generator is None:
            gen.seed()
        examples = tuple(t.to(device) for t in self._examples(self.arch["inputs"], batch, size,
                                                                 gen))
        if self._condition is not None:
            return (examples[0], *self._conditioned(examples[0]))
        return examples

    def student_arch(self, conv: str | None = None, widths: Mapping[str, int] | None = None
                     ) -> dict[str, Any]:
        self.check_image_only()  # the pipeline trains and scores on images alone
        arch = {**self.arch}
        if widths is not None:
            arch["widths"] = dict(widths)
        return arch

    def _run(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(inputs) < len(self.arch["inputs"]):
            if self._condition is None or len(inputs) != 1:
                raise self._missing_inputs()
            inputs = (inputs[0], *self._conditioned(inputs[0]))
        out = self.net(*inputs)
        # generators that also return side outputs (U-GAT-IT: CAM logits, heatmap): the image
        return out[0] if isinstance(out, (tuple, list)) else out

    # Named inputs, not *args: exporters (torch.export, ONNX) map them one to one.
    def forward(self, input: torch.Tensor, input1: torch.Tensor | None = None,
                input2: torch.Tensor | None = None, input3: torch.Tensor | None = None,
                return_features: bool = False):
        inputs = [t for t in (input, input1, input2, input3) if t is not None]
        if not return_features:
            return self._run(inputs)
        self._features = {}
        try:
            out = self._run(inputs)
            feats = [self._features[name] for name, _ in self._taps]
        finally:
            self._features = None
        return out, feats

    def __reduce__(self):
        # Pickled (e.g. to the search's worker processes) as arch + state: the converted module
        # holds generated classes and hooks that pickle cannot name; the rebuild re-imports
        # the user's class, which the workers can (spawn passes sys.path on).
        return _rebuild, (dict(self.arch), self.state_dict(), self.training)

    def __deepcopy__(self, memo):
        # forward hooks are bound to this instance: rebuild them on the copy
        cls = type(self)
        new = cls.__new__(cls)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            new.__dict__[k] = copy.deepcopy(v, memo)
        for name, _ in new._taps:
            sub = new.net.get_submodule(name)
            sub._forward_hooks.clear()
            sub.register_forward_hook(new._tap(name))
        return new


def _shapes_of(path: str, args: Mapping[str, Any] | None) -> nn.Module:
    """The class built with `args` for its tensor shapes: on the meta device (no allocation, no
    init: seconds for a large generator) unless its constructor needs real tensors."""
    try:
        with torch.device("meta"):
            return build_user_module(path, args)
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - e.g. a constructor reading values: build it for real
        return build_user_module(path, args)


def _describe(values: Sequence[Any]) -> str:
    return ", ".join(f"shape {tuple(v.shape)}" if isinstance(v, torch.Tensor) else
                     type(v).__name__ for v in values) or "nothing"


def _check_input_count(net: nn.Module, module: str, given: int) -> list[str]:
    """forward()'s positional parameter names; UserError when it needs more inputs than the
    example inputs give."""
    import inspect

    try:
        params = inspect.signature(net.forward).parameters.values()
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p.name for p in params if p.kind in positional and p.default is p.empty]
    if len(required) > given:
        raise UserError(
            f"{module}.forward takes {len(required)} inputs ({', '.join(required)}) but "
            f"{given} example input(s) were given: in Python give them all "
            f"(convert(net, (image, {', '.join(required[1:])}))), or a condition function that "
            f"makes the further inputs from the image batch (condition='pkg.mod:function', "
            f"--condition pkg.mod:function), as the compress pipeline, generate and demo need")
    return [p.name for p in params if p.kind in positional]


def _rebuild(arch: dict, state: Mapping[str, torch.Tensor], training: bool) -> TracedGenerator:
    model = TracedGenerator(**arch)
    model.load_state_dict(state)
    device = next(iter(state.values())).device if state else torch.device("cpu")
    return model.train(training).to(device)


def convert(module: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor] | None = None,
            *, args: Mapping[str, Any] | None = None, pinned: Sequence[str] = (),
            strict: bool = True, condition: Any = None) -> TracedGenerator:
    """A user's nn.Module (with its weights) as an elastic generator.

    `example_inputs`: a tensor or tuple of forward() inputs (their shapes are recorded; default
    one (1, 3, 64, 64) image); `args`: the module's constructor arguments, needed to rebuild it
    (compact models, checkpoints) when they are not the defaults; `pinned`: layer names kept at
    full width; `condition`: a module-level function (or 'pkg.mod:function') making forward()'s
    further inputs from an image batch, for generators with more than one input that the
    pipeline, `generate` and the demo (which feed images) must run. The module itself is not
    changed (a copy is converted).
    """
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    shapes = [list(t.shape) for t in example_inputs] if example_inputs else [list(DEFAULT_INPUT)]
    path = class_path(module)
    try:
        fresh = _shapes_of(path, args)
    except UserError as err:
        raise UserError(f"{err} (convert needs the class importable and its constructor "
                        f"arguments: convert(module, inputs, args={{...}}))") from None
    mine, theirs = module.state_dict(), fresh.state_dict()
    shapes_differ = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
    if shapes_differ or set(theirs) - set(mine):
        first = (shapes_differ or sorted(set(theirs) - set(mine)))[0]
        raise UserError(f"{path}(**{json.dumps(dict(args or {}))}) builds a different model than "
                        f"the one given (tensor {first}); pass its constructor arguments: "
                        f"convert(module, inputs, args={{...}})")
    net = copy.deepcopy(module)
    cond = function_path(condition) if condition is not None else ""
    return TracedGenerator(module=path, args=args, inputs=shapes, pinned=pinned, strict=strict,
                           condition=cond, _net=net)


def load_traced(module: str, args: Mapping[str, Any] | None = None, weights: Any = None,
                inputs: Sequence[Sequence[int]] | None = None, pinned: Sequence[str] = (),
                strict: bool = True, condition: str = "") -> TracedGenerator:
    """The user's class `module` ('pkg.mod:Class') built with `args`, with `weights` (a path or
    a loaded object: a plain state dict, or one under 'state_dict' / 'model' / 'netG' /
    'generator', 'module.' prefixes stripped) loaded, converted to an elastic generator."""
    from gancompress.models.checkpoint import safe_load
    from gancompress.models.elastic import load_state_checked, tensor_dict

    net = build_user_module(module, args)
    if weights is not None:
        name = str(weights) if not isinstance(weights, Mapping) else "the weights"
        obj = safe_load(weights) if not isinstance(weights, Mapping) else weights
        state = tensor_dict(obj)
        if state is None:
            raise UserError(f"{name} holds no state dict (a mapping of tensor names to tensors, "
                            f"plain or under 'state_dict' / 'model')")
        load_state_checked(net, state, f"{name} (for {module})")
    return TracedGenerator(module=module, args=args, inputs=inputs, pinned=pinned,
                           strict=strict, condition=condition, _net=net)


def parse_arch_args(text: str | None) -> dict[str, Any]:
    """--arch-args: a JSON object (None: no arguments)."""
    try:
        ctor = json.loads(text) if text else {}
    except json.JSONDecodeError as err:
        raise UserError(f"--arch-args is not valid JSON ({err.msg}): {text!r}") from None
    if not isinstance(ctor, dict):
        raise UserError(f"--arch-args must be a JSON object, got {text!r}")
    return ctor


def cli_traced(args: Any) -> TracedGenerator:
    """--arch pkg.mod:Class [--arch-args JSON] [--pin LAYERS] [--size H W] [MODEL weights]."""
    ctor = parse_arch_args(getattr(args, "arch_args", None))
    given = {k[5:]: v for k, v in vars(args).items() if k.startswith("arch_")
             and k != "arch_args" and v is not None}
    if given or getattr(args, "widths", None):
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "--widths"
        raise UserError(f"{flags}: family options do not apply to --arch {args.arch}; give its "
                        f"constructor arguments with --arch-args JSON")
    size = getattr(args, "size", None) or (DEFAULT_INPUT[2], DEFAULT_INPUT[3])
    inputs = [[1, DEFAULT_INPUT[1], int(size[0]), int(size[-1])]]
    pinned = [p.strip() for p in (getattr(args, "pin", None) or "").split(",") if p.strip()]
    return load_traced(args.arch, ctor, getattr(args, "model", None), inputs, pinned,
                       condition=getattr(args, "condition", None) or "")
