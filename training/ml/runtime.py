"""Where a recipe runs: device, bf16 autocast, and the processes of a multi-GPU launch.

One process per device. `torchrun --nproc_per_node N` and `accelerate launch --num_processes N` both export
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; when WORLD_SIZE > 1 the process group is started here
(NCCL on CUDA, gloo on CPU) and the recipe wraps its model in DistributedDataParallel. A single process —
the RQ worker's usual case — needs none of that. Nothing touches CUDA until `runtime_start` is called.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    bf16: bool
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            yield

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def any(self, flag: bool) -> bool:
        """True on every process when any process says so: a cancel or an early stop decided by rank 0 alone
        stops all of them at the same step."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def mean(self, value: float) -> float:
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.item() / self.world_size


def cpu_multiplies_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Intel AMX, Sapphire Rapids and later). Elsewhere torch emulates
    bf16 matrix products on the CPU, slower than float32."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(probe is not None and probe())


def runtime_start(bf16: bool | None, *, cpu_bf16: bool = False) -> Runtime:
    """The runtime of this process. `bf16=None` means bf16 autocast exactly when CUDA supports it or, where the
    caller says it pays (`cpu_bf16`), when the CPU multiplies bf16 in hardware."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    if bf16 is None:
        use_bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_bf16 and cpu_multiplies_bf16()
    else:
        use_bf16 = bf16
    return Runtime(device=device, bf16=use_bf16, rank=rank, local_rank=local_rank, world_size=world_size)
