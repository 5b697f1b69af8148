"""Host time of the fused norm modules' own Python: BatchNormAct2d / InstanceNormAct2d forward
calls with the op they end in replaced by a stub, so only the module's Python (attribute reads,
checks, dispatch decisions) is timed; beside it nn.BatchNorm2d + nn.ReLU's forward on the same
tiny CPU input (their Python plus two small CPU ops), for scale. No GPU needed.

    PYTHONPATH=. python benchmarks/module_python_overhead.py
"""
from __future__ import annotations

from unittest import mock

import torch
from torch import nn

from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d
from profile_norm_act import host_us  # the script beside this one

CPU = torch.device("cpu")


def per_call_us(fn, calls: int = 100_000) -> float:
    return host_us(fn, CPU, steps=calls, warmup=1000)


def main() -> None:
    x = torch.randn(2, 4, 1, 1)
    bn, inorm = BatchNormAct2d(4), InstanceNormAct2d(4, affine=True)
    stub_result = (x, None, None)
    with mock.patch("genimg_fast.nn.batch_norm_act.batch_norm_act_train_", lambda *a: stub_result), \
         mock.patch("genimg_fast.nn.batch_norm_act._backend.kernels_loaded", lambda: True), \
         mock.patch("genimg_fast.nn.instance_norm_act.norm_act_train", lambda *a: stub_result):
        print(f"BatchNormAct2d(4)(x), op stubbed:         {per_call_us(lambda: bn(x)):6.2f} us")
        print(f"InstanceNormAct2d(4)(x), op stubbed:      {per_call_us(lambda: inorm(x)):6.2f} us")
    torch_pair = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU())
    with torch.no_grad():
        print(f"nn.Sequential(BatchNorm2d, ReLU)(x), CPU: {per_call_us(lambda: torch_pair(x), 20_000):6.2f} us")


if __name__ == "__main__":
    main()
