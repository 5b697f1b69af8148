"""How many data-loading processes a run uses when --workers is not given: a number that follows
the machine, so a GPU is not left waiting for one Python process to decode its images."""
from __future__ import annotations

import os

# Past this, more workers rarely speed up decoding for one GPU, while each holds a copy of the data
# set object and its prefetched batches; a run that needs more is told so (data_wait.py).
MAX_AUTO_WORKERS = 8


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the system has one (a job
    scheduler or taskset may allow fewer than the machine has), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpus_per_process(cpus: int | None = None, local_processes: int | None = None) -> int:
    """This process's share of the usable CPUs: under torchrun the node's processes
    (LOCAL_WORLD_SIZE) each start their own workers from the same CPUs."""
    cpus = usable_cpus() if cpus is None else cpus
    if local_processes is None:
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cpus // max(1, local_processes))


def resolve_workers(requested: int | None, device_type: str, cpus: int | None = None,
                    local_processes: int | None = None) -> int:
    """The worker count a run uses: `requested` when given, but at most this process's share of
    the CPUs (more processes than cores only take turns: --workers 1000 on 16 cores ran 16x
    slower), else automatic:
      - 0 on a device other than CUDA: the model's own threads already use every core there, and
        workers would take cores from them (the built-in data sets are generated in memory);
      - on CUDA, this process's share of the CPUs less one (the training process needs its own
        core to launch the GPU's work), at most MAX_AUTO_WORKERS."""
    if requested is not None:
        return min(requested, cpus_per_process(cpus, local_processes))
    if device_type != "cuda":
        return 0
    return max(0, min(cpus_per_process(cpus, local_processes) - 1, MAX_AUTO_WORKERS))


def describe_workers(requested: int | None, workers: int) -> str:
    """For the run's header line: the count, and whether it was chosen automatically or capped."""
    if requested is None:
        return f"data workers: {workers} (auto)"
    if workers < requested:
        return f"data workers: {workers} (--workers {requested} capped to the CPUs this process may use)"
    return f"data workers: {workers}"
