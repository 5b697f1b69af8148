"""BatchNormAct2d(sync=True) across 2 CPU processes (gloo) against torch's nn.BatchNorm2d + activation
on the whole batch in one process; and the single-process fallback. The children assert; a failure
comes back through torch.multiprocessing.spawn (ProcessRaisedException with the child's traceback),
and each child writes a results file only after every case passed."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from genimg_fast.nn import BatchNormAct2d

WORLD_SIZE = 2
C = 3
# (samples on rank 0, samples on rank 1, activation, slope, momentum, own process group)
CASES = [
    (4, 4, "leaky_relu", 0.2, 0.1, False),
    (3, 5, "relu", 0.01, None, False),
    (0, 8, "identity", 0.01, 0.1, True),
]


def torch_activation(activation: str, slope: float) -> nn.Module:
    return {"identity": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(slope)}[activation]


def seeded(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def build_pair(activation, slope, momentum, group):
    ref = nn.BatchNorm2d(C, momentum=momentum, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(seeded((C,), 1) + 1)
        ref.bias.copy_(seeded((C,), 2))
    ours = BatchNormAct2d(C, momentum=momentum, activation=activation, negative_slope=slope, sync=True,
                          process_group=group, dtype=torch.float64)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return nn.Sequential(ref, torch_activation(activation, slope)), ours


def all_ranks(tensor, group=None):
    gathered = [torch.empty_like(tensor) for _ in range(WORLD_SIZE)]
    dist.all_gather(gathered, tensor.contiguous(), group=group)
    return gathered


def run_case(rank, n0, n1, activation, slope, momentum, own_group):
    group = dist.new_group(list(range(WORLD_SIZE))) if own_group else None
    ref, ours = build_pair(activation, slope, momentum, group)
    start, stop = (0, n0) if rank == 0 else (n0, n0 + n1)
    for step in range(2):
        x = seeded((n0 + n1, C, 5, 6), 10 + step) * 2 + 0.5
        g = seeded(x.shape, 20 + step)
        x_ref = x.clone().requires_grad_()
        y_ref = ref(x_ref)
        (y_ref * g).sum().backward()
        x_ours = x[start:stop].clone().requires_grad_()
        y = ours(x_ours)
        (y * g[start:stop]).sum().backward()

        torch.testing.assert_close(y, y_ref[start:stop])
        torch.testing.assert_close(x_ours.grad, x_ref.grad[start:stop])
        for name in ("weight", "bias"):  # local sums, adding up to the single-process gradient
            local = getattr(ours, name).grad
            torch.testing.assert_close(sum(all_ranks(local)), getattr(ref[0], name).grad)
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            mine = getattr(ours, name)
            torch.testing.assert_close(mine, getattr(ref[0], name))
            assert all(torch.equal(mine, other) for other in all_ranks(mine)), f"{name} differs between ranks"
        ours.zero_grad(), ref.zero_grad()
    ref.eval(), ours.eval()  # eval: running statistics, no communication
    x = seeded((n0 + n1, C, 5, 6), 30)
    torch.testing.assert_close(ours(x[start:stop]), ref(x)[start:stop])


def worker(rank, init_file, result_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        for case in CASES:
            run_case(rank, *case)
    finally:
        dist.destroy_process_group()
    (result_dir / f"rank{rank}.ok").write_text("all cases passed")


def test_sync_batch_norm_two_processes_match_one_process(tmp_path):
    mp.spawn(worker, args=(tmp_path / "init", tmp_path), nprocs=WORLD_SIZE, join=True)
    assert sorted(p.name for p in tmp_path.glob("*.ok")) == ["rank0.ok", "rank1.ok"]


def test_sync_without_distributed_is_plain_batch_norm():
    assert not dist.is_initialized()
    ref, ours = build_pair("relu", 0.01, 0.1, None)
    for step in range(2):
        x = seeded((4, C, 5, 6), step)
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref[0].running_var)
