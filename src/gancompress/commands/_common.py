"""Argument helpers shared by several subcommands (not a command itself: no `register`)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from gancompress.config import check_number
from gancompress.config.values import ARG_RANGES
from gancompress.errors import UserError

if TYPE_CHECKING:
    from gancompress.models.elastic import ElasticGenerator

ArchOptions = dict[str, tuple[type, set[str]]]


def _add_option(options: ArchOptions, family: str, name: str, default: Any) -> None:
    kind = type(default) if isinstance(default, (bool, int, float, str)) else str
    options.setdefault(name, (kind, set()))[1].add(family)


def registered_arch_options() -> tuple[list[str], ArchOptions]:
    """(families in registry order, constructor argument name -> (type, families taking it)),
    read from the registered classes themselves (imports torch)."""
    import inspect

    from gancompress.models import GENERATORS

    options: ArchOptions = {}
    for family, cls in GENERATORS.items():
        if not getattr(cls, "arch_options_on_cli", True):  # e.g. traced: --arch pkg.mod:Class
            continue
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if name in ("self", "widths") or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            _add_option(options, family, name, param.default)
    return [f for f, cls in GENERATORS.items() if getattr(cls, "arch_options_on_cli", True)], \
        options


def _source_arch_options() -> tuple[list[str], ArchOptions] | None:
    """The same table read from the source of models/ without importing it (torch takes over a
    second to import, and `profile --help` must be instant): the registry's class names from
    models/__init__.py, each class's `arch_name` and `__init__` signature from its module.
    None when the source does not have that shape (then the registry is imported);
    tests/integration/test_cli_basics.py checks that both readings agree."""
    import ast
    from importlib.util import find_spec

    spec = find_spec("gancompress.models")
    if spec is None or not spec.origin or not spec.submodule_search_locations:
        return None
    from pathlib import Path

    try:
        init = ast.parse(Path(spec.origin).read_text())
        folder = Path(list(spec.submodule_search_locations)[0])
        modules = {alias.asname or alias.name: node.module for node in init.body
                   if isinstance(node, ast.ImportFrom) and node.module
                   for alias in node.names}
        registry = next(node.value for node in init.body
                        if isinstance(node, ast.Assign) and "GENERATORS" in
                        ast.unparse(node.targets[0]) or isinstance(node, ast.AnnAssign)
                        and "GENERATORS" in ast.unparse(node.target))
        classes = [value.id for value in registry.values]  # {Cls.arch_name: Cls, ...}
        families: list[str] = []
        options: ArchOptions = {}
        for cls_name in classes:
            module = modules[cls_name].rsplit(".", 1)[-1]
            tree = ast.parse((folder / f"{module}.py").read_text())
            cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name)
            family = next(ast.literal_eval(n.value) for n in cls.body if isinstance(n, ast.Assign)
                          and any(getattr(t, "id", "") == "arch_name" for t in n.targets))
            if any(isinstance(n, ast.Assign) and ast.unparse(n) == "arch_options_on_cli = False"
                   for n in cls.body):
                continue  # e.g. traced: --arch module.path:ClassName instead
            init_def = next(n for n in cls.body
                            if isinstance(n, ast.FunctionDef) and n.name == "__init__")
            args = init_def.args
            if args.vararg or args.kwonlyargs or args.posonlyargs:
                return None
            names = [a.arg for a in args.args]
            defaults = [None] * (len(names) - len(args.defaults)) + \
                [ast.literal_eval(d) for d in args.defaults]
            families.append(family)
            for name, default in zip(names, defaults):
                if name not in ("self", "widths"):
                    _add_option(options, family, name, default)
        return families, options
    except (OSError, SyntaxError, ValueError, KeyError, StopIteration, AttributeError,
            TypeError, IndexError):
        return None


def _arch_options() -> tuple[list[str], ArchOptions]:
    return _source_arch_options() or registered_arch_options()


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# Range-checked argparse types: every numeric option of every command uses one of these, so NaN,
# inf, 0 and negative counts are refused at parse time with the allowed range (one line, exit 2).
# tests/integration/test_reliability.py checks that no option is left with a bare int / float type.

def int_range(minimum: int, maximum: int = 10**9) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        try:
            check_number("value", value, minimum, maximum)
        except UserError:
            raise argparse.ArgumentTypeError(f"{value} is out of range: allowed "
                                             f"{minimum}..{maximum}") from None
        return value
    parse.__name__ = f"integer in {minimum}..{maximum}"
    parse.bounded = True
    return parse


def float_range(minimum: float, maximum: float) -> Any:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        try:
            check_number("value", value, minimum, maximum)
        except UserError:
            raise argparse.ArgumentTypeError(f"{value} is out of range: allowed "
                                             f"[{minimum:g}, {maximum:g}]") from None
        return value
    parse.__name__ = f"number in [{minimum:g}, {maximum:g}]"
    parse.bounded = True
    return parse


def image_side(text: str) -> int:
    """An image height or width in 1..16384; the generator family's own rule (e.g. multiples of
    4 for ResNet, of 2^num_downs for U-Net) is checked by `model.check_size` once it is known."""
    return int_range(1, 16384)(text)


image_side.bounded = True  # type: ignore[attr-defined]
THREADS = int_range(1, 4096)


# The ranges of the constructor arguments that --arch FAMILY exposes as options, by name
# (config.values.ARG_RANGES): checked at parse time, before anything is built.
ARCH_RANGES = ARG_RANGES


def _option_type(kind: type, name: str = ""):
    """argparse type of a constructor argument: bounded numbers (the one range rule), with the
    argument's own range when ARCH_RANGES declares one."""
    if kind is bool:
        return _parse_bool
    low, high = ARCH_RANGES.get(name, (0, 10**6) if kind is int else (0.0, 1e6))
    if kind is int:
        return int_range(int(low), int(high))
    if kind is float:
        return float_range(float(low), float(high))
    return kind


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe a generator on the command line instead of a checkpoint: --arch
    FAMILY, then the family's own constructor arguments as --kebab-case options (derived from
    the registered classes' signatures, so a new family needs no edit here)."""
    group = parser.add_argument_group("architecture (when MODEL is not given)")
    families, options = _arch_options()
    group.add_argument("--arch", default=families[0], choices=_ArchChoices(families),
                       help=f"generator family (default: {families[0]}), or your own generator "
                            f"class as module.path:ClassName (importable; MODEL is then its "
                            f"weights file, optional)")
    _add_user_class_options(group, "with --arch module.path:ClassName: ")
    group.add_argument("--widths", metavar="CONFIG",
                       help="the family's published config string, e.g. 16_16_32_16_32_32_16_16")
    for name, (kind, owners) in sorted(options.items()):
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"arch_{name}", default=None,
                           type=_option_type(kind, name), metavar=kind.__name__.upper(),
                           help=f"constructor argument of: {', '.join(sorted(owners))}")


class _ArchChoices(list):
    """The registered families, plus any module.path:ClassName (a user's generator)."""

    def __contains__(self, value: object) -> bool:
        return super().__contains__(value) or (isinstance(value, str) and ":" in value)


def model_from_args(args: argparse.Namespace, device: str = "cpu") -> "ElasticGenerator":
    """The generator named by args.model (a checkpoint) or built from the architecture options."""
    from gancompress.models import build_generator, generator_class
    from gancompress.models.checkpoint import load_generator

    if ":" in (getattr(args, "arch", None) or ""):
        from gancompress.models.traced import cli_traced
        return cli_traced(args).to(device).eval()
    given = {k[5:]: v for k, v in vars(args).items() if k.startswith("arch_") and v is not None}
    if getattr(args, "model", None):
        if given or args.widths:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "--widths"
            raise UserError(f"{flags}: architecture options describe a model when no MODEL file "
                            f"is given; a checkpoint carries its own architecture")
        return load_generator(args.model, device=device)
    cls = generator_class(args.arch)
    model = build_generator(args.arch, **cls.arch_args(given))
    if args.widths:
        model = build_generator(args.arch, **{**model.arch,
                                              "widths": model.widths_from_config(args.widths)})
    return model.to(device).eval()


def add_user_arch_arguments(parser: argparse.ArgumentParser, weights: str = "MODEL",
                            after: str = "") -> None:
    """--arch module.path:ClassName [--arch-args JSON] [--pin LAYERS] [--condition F]: `weights`
    (MODEL, or compress's --teacher) is then the weights of the user's own generator class
    (commands that otherwise take any checkpoint); `after` says what becomes of them."""
    group = parser.add_argument_group(f"your own generator class ({weights} is then its weights)")
    group.add_argument("--arch", metavar="MODULE:CLASS",
                       help=f"e.g. mypkg.nets:Generator (importable); {weights}: a state dict, "
                            f"plain or under state_dict / model{after}")
    _add_user_class_options(group)


def _add_user_class_options(group, when: str = "") -> None:
    """--arch-args, --pin, --condition: the options of a user's own generator class."""
    group.add_argument("--arch-args", metavar="JSON",
                       help=f"{when}constructor arguments of the class, a JSON object")
    group.add_argument("--pin", metavar="LAYERS",
                       help=f"{when}comma-separated layer names kept at full width")
    group.add_argument("--condition", metavar="MODULE:FUNCTION",
                       help=f"{when}a function making forward()'s further inputs from an image "
                            f"batch (generators with more than one input)")


def load_model_arg(args: argparse.Namespace, device: str = "cpu") -> "ElasticGenerator":
    """args.model as a checkpoint, or as the weights of --arch module.path:ClassName."""
    from gancompress.models.checkpoint import load_generator

    if not getattr(args, "arch", None):
        return load_generator(args.model, device=device)
    from gancompress.models.traced import load_traced, parse_arch_args

    if ":" not in args.arch:
        raise UserError(f"--arch names your generator class as module.path:ClassName, got "
                        f"{args.arch!r} (a checkpoint needs no --arch)")
    size = getattr(args, "size", None)
    inputs = [[1, 3, int(size[0]), int(size[-1])]] if size else None
    pinned = [p.strip() for p in (args.pin or "").split(",") if p.strip()]
    model = load_traced(args.arch, parse_arch_args(args.arch_args), args.model, inputs, pinned,
                        condition=getattr(args, "condition", None) or "")
    return model.to(device).eval()


def add_test_mode_arguments(parser: argparse.ArgumentParser) -> None:
    """--test-mode eval|train and --seed (how a PyTorch generator runs; deploy.runtime)."""
    parser.add_argument("--test-mode", choices=["eval", "train"], default="eval",
                        help="eval (default: dropout off, BatchNorm running statistics) or train "
                             "(pix2pix test.py without --eval: dropout on, BatchNorm batch "
                             "statistics, as the reference's test images were made)")
    parser.add_argument("--seed", type=int_range(0, 2**32 - 1), default=0,
                        help="random seed of the dropout masks with --test-mode train (0)")


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
