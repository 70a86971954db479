"""Multi-process training and search with torch.distributed (torchrun), and its no-op default.

    torchrun --nproc-per-node 4 -m gancompress train --preset ... --out runs/x
    torchrun --nnodes 2 --node-rank R --rdzv-backend c10d --rdzv-endpoint HOST:29400 \
        --nproc-per-node 8 -m gancompress compress ...

Under torchrun (WORLD_SIZE > 1 in the environment) `init()` joins the process group: NCCL with
device cuda:LOCAL_RANK when CUDA is available, gloo on CPU. In a plain single process every
function here is a no-op (rank 0 of 1) and no process group is created, so the default path is
unchanged in behaviour and speed.

What the rest of the code base uses:
    init(device)           join the group (idempotent), returns the device of this rank
    finish()               leave it together at the normal end of a command (the CLI calls it)
    rank() / world_size() / local_rank() / is_main() / active()
    print0(...)            print on rank 0 only
    output_lock(folder)    files.output_lock, held by rank 0 only (decided from the environment,
                           so it works before the process group starts)
    barrier()
    mean_scalars({k: v})   mean of logged numbers over ranks
    sum_number(x)          sum of one number over ranks
    reduce_gradients(params, weight)
                           grad <- sum over ranks of weight_r * grad_r (weight_r = this rank's
                           share of the global batch): exact gradient of the global-batch loss
    all_reduce_sum(t)      differentiable sum over ranks (synchronized BatchNorm statistics)
    gather(obj) / broadcast(obj) / all_gather(obj)   picklable objects (RNG states, scores)
    broadcast_module(m)    rank 0's parameters and buffers to every rank
    run_local(fn, n, ...)  n local processes with the torchrun environment (tests, benchmarks)
Multi-node runs expect the run / output folders on a filesystem every node sees (only rank 0
writes; the others read after barriers), as clusters usually provide.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def env_world_size() -> int:
    """WORLD_SIZE from the environment (torchrun sets it), 1 without it."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def env_rank() -> int:
    """RANK from the environment under torchrun (WORLD_SIZE > 1), else 0."""
    if env_world_size() <= 1:
        return 0
    try:
        return max(0, int(os.environ.get("RANK", "0")))
    except ValueError:
        return 0


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device | str = "cpu", timeout_s: float = 1800.0) -> torch.device:
    """Join the torchrun process group if the environment asks for one; return this rank's device.

    CUDA: NCCL, device cuda:LOCAL_RANK (a configured "cuda:N" is ignored under torchrun: one
    GPU per process is the torchrun convention). CPU: gloo. Without WORLD_SIZE > 1: returns
    `device` unchanged and creates nothing.
    """
    device = torch.device(device)
    if env_world_size() <= 1 or not dist.is_available():
        return device
    from gancompress.errors import UserError

    missing = [k for k in _ENV if k not in os.environ]
    if missing:
        raise UserError(f"WORLD_SIZE={os.environ['WORLD_SIZE']} but {', '.join(missing)} not set: "
                        f"start multi-process runs with torchrun (e.g. torchrun "
                        f"--nproc-per-node 2 -m gancompress train ...)")
    if device.type == "cuda":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            err = UserError(f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPUs on "
                            f"this node: use --nproc-per-node <= the GPU count")
            err.every_rank = True  # rank 0 may not see it: this rank prints its own error
            raise err
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=timeout_s)}
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
        atexit.register(destroy)
    return device


def destroy() -> None:
    """Leave the process group (registered with atexit by init; safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def finish() -> None:
    """The normal end of a multi-process command: every rank leaves the group together (a
    barrier, then destroy), not at interpreter exit in whatever order the processes get there.
    Not for failures: a failed rank must not wait for ranks stuck in a collective."""
    if active():
        dist.barrier()
    destroy()


def print0(*args: Any, **kwargs: Any) -> None:
    """print() on rank 0 only (every rank runs the same code; one copy of each message)."""
    if is_main():
        print(*args, **kwargs)


@contextlib.contextmanager
def output_lock(folder: str | Path, what: str = "gancompress") -> Iterator[Path]:
    """files.output_lock on rank 0; the other ranks of a torchrun job take no lock (they write
    nothing there, and would be refused by their own rank 0). A second job on the same folder is
    still refused: by its rank 0, which makes torchrun stop the whole job."""
    from gancompress.files import output_lock as lock

    if env_rank() > 0:
        yield Path(folder)
        return
    with lock(folder, what) as held:
        yield held


def barrier() -> None:
    if active():
        dist.barrier()


def _comm_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo CPU tensors.
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_scalars(values: Mapping[str, float]) -> dict[str, float]:
    """{key: mean over ranks} of the logged numbers (every rank must pass the same keys)."""
    if not active():
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    t /= world_size()
    return dict(zip(keys, t.tolist()))


def sum_number(value: float) -> float:
    if not active():
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item())


def reduce_gradients(params: Iterable[torch.nn.Parameter], weight: float) -> None:
    """grad <- sum over ranks of weight * grad (one coalesced all-reduce per dtype/device).

    With weight = (images on this rank) / (images in the global batch) this is the gradient of
    the loss over the whole global batch for losses that are means over images, the same as one
    process would compute on it. Parameters without a gradient are skipped: every rank runs the
    same sub-network (same widths, same frozen parts), so the skipped set is the same everywhere.
    """
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    buckets: dict[tuple, list[torch.Tensor]] = {}
    for g in grads:
        buckets.setdefault((g.dtype, g.device), []).append(g)
    for bucket in buckets.values():
        flat = torch.cat([g.reshape(-1) for g in bucket])
        if weight == 0.0:  # no share (e.g. no usable sample): zeros, even over inf / NaN
            flat.zero_()
        elif weight != 1.0:
            flat.mul_(weight)
        dist.all_reduce(flat)
        offset = 0
        for g in bucket:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks whose backward is again a sum over ranks (each rank's loss depends on every
    rank's inputs through the sum, so the gradient of the summed losses flows back everywhere)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (identity in a single process)."""
    return _AllReduceSum.apply(tensor) if active() else tensor


def _objects_device() -> torch.device | None:
    return _comm_device() if active() and dist.get_backend() == "nccl" else None


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s picklable object on every rank."""
    if not active():
        return obj
    box = [obj if rank() == src else None]
    dist.broadcast_object_list(box, src=src, device=_objects_device())
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """[object of rank 0, object of rank 1, ...] on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather(obj: Any) -> list[Any] | None:
    """[object of every rank] on rank 0, None elsewhere (gloo and NCCL both support it)."""
    if not active():
        return [obj]
    out: list[Any] | None = [None] * world_size() if is_main() else None
    if dist.get_backend() == "nccl":  # gather_object is not implemented by every NCCL build
        every = all_gather(obj)
        return every if is_main() else None
    dist.gather_object(obj, out, dst=0)
    return out


@torch.no_grad()
def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's module (identical start)."""
    if not active():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def to_cpu(obj: Any) -> Any:
    """The same nested dict / list with every tensor moved to the CPU (for gather / pickling)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


# ----------------------------------------------------------------------------------------------
# Local multi-process launch (what torchrun does, for tests and benchmarks on one machine)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_entry(index: int, fn: Callable[..., Any], world: int, port: int, done: str,
                 args: tuple) -> None:
    os.environ.update({"RANK": str(index), "LOCAL_RANK": str(index), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port)})
    fn(*args)
    Path(done, str(index)).touch()  # the work is finished; what follows is teardown only
    # An ordered teardown: every rank leaves the group together, then the process ends without
    # interpreter finalization (where gloo's worker threads can abort a finished process).
    finish()
    import sys
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_local(fn: Callable[..., Any], nprocs: int, *args: Any, timeout_s: float | None = None
              ) -> None:
    """Run fn(*args) in `nprocs` fresh processes with torchrun's environment variables set.

    Like torchrun, the first process that fails (exception or signal) stops the others, and a
    failure is raised here (torch.multiprocessing.ProcessRaisedException / ProcessExitedException);
    past `timeout_s` every process is killed and TimeoutError raised (a hung collective).
    A process killed by a signal after every process had finished `fn` (a crash in the
    process-group teardown, not in the work) is reported as a warning, not a failure.
    `fn` must be importable by name (a module-level function).
    """
    import tempfile
    import time
    import warnings

    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="gancompress-ranks-") as done:
        context = mp.start_processes(_local_entry, args=(fn, nprocs, free_port(), done, args),
                                     nprocs=nprocs, join=False, start_method="spawn")
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not context.join(timeout=0.5):
                if deadline is not None and time.monotonic() > deadline:
                    for process in context.processes:
                        if process.is_alive():
                            process.kill()
                    raise TimeoutError(f"{nprocs} local processes still running after "
                                       f"{timeout_s} s")
        except mp.ProcessExitedException as err:
            if len(os.listdir(done)) < nprocs or err.signal_name is None:
                raise
            warnings.warn(f"every process finished its work; then {err}", RuntimeWarning,
                          stacklevel=2)


__all__ = ["init", "destroy", "finish", "active", "rank", "world_size", "local_rank", "is_main",
           "print0", "barrier", "mean_scalars", "sum_number", "reduce_gradients", "all_reduce_sum",
           "broadcast", "all_gather", "gather", "broadcast_module", "to_cpu", "run_local",
           "env_world_size", "env_rank", "output_lock", "free_port"]
