"""A first look at the cluster-path norm kernels on a GPU, before the long test runs: one
BatchNorm + ReLU training step at groups of 8192 and 32768 values a channel and one InstanceNorm
+ ReLU step at 16384 values a plane (a cluster a group on Hopper) against the float64 reference,
and the launches each way. Exits non-zero on a wrong
answer or an unexpected launch count; gpu_check.sh runs it under a timeout, so a hang shows too.

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python3 scripts/cluster_smoke.py
"""
from __future__ import annotations

import sys

import torch

from genimg_fast.bench.timing import count_launches
from genimg_fast.ops import _norm_act_math as ref
from genimg_fast.ops import _norm_act_train_backward, norm_act_train


def max_error(got: torch.Tensor, want: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """Largest difference (over `where`) relative to the largest expected magnitude."""
    diff = (got.double().cpu() - want).abs()
    return ((diff if where is None else diff[where]).max() / want.abs().max().clamp_min(1e-30)).item()


def check(shape: tuple[int, int, int, int], per_sample: bool = False) -> bool:
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape, generator=g, device="cuda") * 1.5 + 0.3
    gy = torch.randn(shape, generator=g, device="cuda")
    w, b = torch.randn(shape[1], generator=g, device="cuda"), torch.randn(shape[1], generator=g, device="cuda")
    y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "relu", 0.0)
    dx, dw, db = _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0)
    x64, gy64, w64, b64 = (t.double().cpu() for t in (x, gy, w, b))
    mean64, var64 = ref.stats(x64, per_sample)
    sums = ref.backward_reduce(gy64, x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0)
    want = {"mean": mean64, "var": var64, "y": ref.apply(x64, mean64, var64, w64, b64, 1e-5, "relu", 0.0),
            "dx": ref.backward_apply(gy64, x64, mean64, var64, w64, b64, *sums, ref.group_count(x64, per_sample),
                                     1e-5, "relu", 0.0),
            **dict(zip(("dweight", "dbias"), ref.param_grads(*sums)))}
    got = {"mean": mean, "var": var, "y": y, "dx": dx, "dweight": dw, "dbias": db}
    # dx where z is within rounding of ReLU's kink may legitimately take the other side in fp32
    z, _, _ = ref.pre_activation(x64, mean64, var64, w64, b64, 1e-5)
    away_from_kink = z.abs() > 1e-4 * z.abs().max()
    errors = {name: max_error(got[name], want[name], away_from_kink if name == "dx" else None) for name in want}
    device = torch.device("cuda")
    launches = (count_launches(lambda: norm_act_train(x, w, b, per_sample, 1e-5, "relu", 0.0), device),
                count_launches(lambda: _norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0), device))
    expected = (1, 1) if torch.cuda.get_device_capability() >= (9, 0) else (2, 2)
    ok = all(e < 1e-4 for e in errors.values()) and launches == expected
    print(f"{'IN' if per_sample else 'BN'} {'x'.join(map(str, shape))}: launches {launches} (expected {expected}), errors "
          + ", ".join(f"{name} {e:.2e}" for name, e in errors.items()) + ("" if ok else "  FAILED"))
    return ok


def main() -> int:
    results = [check((128, 64, 8, 8)), check((128, 16, 16, 16)), check((1, 32, 128, 128), per_sample=True)]
    torch.cuda.synchronize()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
