"""Argument helpers shared by several subcommands (not a command itself: no `register`)."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gancompress.errors import UserError
from gancompress.models.elastic import ElasticGenerator


def add_arch_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that describe a ResNet generator on the command line instead of a checkpoint."""
    group = parser.add_argument_group("architecture (when MODEL is not given)")
    group.add_argument("--arch", default="resnet", help="generator architecture (default: resnet)")
    group.add_argument("--conv", choices=["dense", "separable"], default="dense",
                       help="dense = full model, separable = mobile / compressed model")
    group.add_argument("--ngf", type=int, default=64, help="base width (default 64)")
    group.add_argument("--n-blocks", type=int, default=9, help="residual blocks (default 9)")
    group.add_argument("--norm", choices=["instance", "batch"], default="instance")
    group.add_argument("--widths", metavar="CONFIG",
                       help="published config string, e.g. 16_16_32_16_32_32_16_16")
    group.add_argument("--in-channels", type=int, default=3)
    group.add_argument("--out-channels", type=int, default=3)


def model_from_args(args: argparse.Namespace, device: str = "cpu") -> ElasticGenerator:
    """The generator named by args.model (a checkpoint) or built from the architecture options."""
    from gancompress.models import build_generator
    from gancompress.models.checkpoint import load_generator

    if getattr(args, "model", None):
        return load_generator(args.model, device=device)
    if args.arch != "resnet":
        raise UserError(f"--arch {args.arch!r} is not available on the command line; known: resnet")
    return build_generator("resnet", in_channels=args.in_channels, out_channels=args.out_channels,
                           ngf=args.ngf, n_blocks=args.n_blocks, conv=args.conv, norm=args.norm,
                           widths=args.widths).to(device).eval()


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
