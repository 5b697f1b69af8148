"""How far eager torch's and genimg_fast's BN+activation gradients are from a float64 copy of the
same step, at one DCGAN batch-128 shape, in fp32 and bf16 (GPU run 6 found that eager torch's bf16
weight/bias gradients are the inaccurate ones, so the benchmarks check against float64 instead).

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python benchmarks/check_bf16_gradients.py
"""
import copy

import torch
from torch import nn

from genimg_fast.nn import BatchNormAct2d


def main() -> None:
    torch.manual_seed(0)
    shape = (128, 128, 16, 16)
    for activation, dtype in [("leaky_relu", torch.float32), ("relu", torch.bfloat16), ("relu", torch.float32)]:
        act = nn.LeakyReLU(0.2) if activation == "leaky_relu" else nn.ReLU()
        eager = nn.Sequential(nn.BatchNorm2d(shape[1]), act).cuda()
        fused = BatchNormAct2d.from_norm(copy.deepcopy(eager[0]), activation=activation, negative_slope=0.2).cuda()
        x = torch.randn(shape, device="cuda", dtype=dtype).requires_grad_()
        gy = torch.randn(shape, device="cuda", dtype=dtype)
        from_eager = torch.autograd.grad(eager(x), [x, *eager.parameters()], gy)
        from_fused = torch.autograd.grad(fused(x), [x, *fused.parameters()], gy)
        exact_module = copy.deepcopy(eager).double()
        x64 = x.detach().double().requires_grad_()
        exact = torch.autograd.grad(exact_module(x64), [x64, *exact_module.parameters()], gy.double())
        for what, e, f, ref in zip(["dx", "dw", "db"], from_eager, from_fused, exact):
            print(f"{activation} {dtype} {what}: |eager - f64| {(e.double() - ref).abs().max().item():.3g}, "
                  f"|fused - f64| {(f.double() - ref).abs().max().item():.3g}, scale {ref.abs().max().item():.3g}")


if __name__ == "__main__":
    main()
