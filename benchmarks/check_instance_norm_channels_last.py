"""How far eager torch's and genimg_fast's instance-norm input gradients are from exact (float64,
NCHW) for channels_last inputs, at batch 1 (CycleGAN's) and batch 2, on the CPU and (when present)
the GPU. Found while building the networks' channels_last benchmark variant: torch 2.14.1's CPU
InstanceNorm backward is wrong for a batch-1 channels_last input and gradient (off by the
gradient's own size), while batch 2 is right; genimg_fast's fused InstanceNormAct2d is right in both.

    PYTHONPATH=. python benchmarks/check_instance_norm_channels_last.py
"""
import torch
from torch import nn

from genimg_fast.nn import InstanceNormAct2d


def input_gradient(module: nn.Module, x: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_()
    return torch.autograd.grad(module(x), x, gy)[0]


def main() -> None:
    torch.manual_seed(0)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    last = torch.channels_last
    print(f"torch {torch.__version__}")
    for device in devices:
        for batch in (1, 2):
            x = torch.randn(batch, 64, 32, 32, dtype=torch.float64)
            gy = torch.randn_like(x)
            exact = input_gradient(nn.InstanceNorm2d(64), x, gy)
            x_last, gy_last = (t.to(device, torch.float32).contiguous(memory_format=last) for t in (x, gy))
            eager = input_gradient(nn.InstanceNorm2d(64).to(device), x_last, gy_last)
            fused = input_gradient(InstanceNormAct2d(64, activation="identity").to(device), x_last, gy_last)
            print(f"{device} batch {batch} channels_last: |eager - exact| "
                  f"{(eager.cpu().double() - exact).abs().max().item():.3g}, |genimg_fast - exact| "
                  f"{(fused.cpu().double() - exact).abs().max().item():.3g}, scale {exact.abs().max().item():.3g}")


if __name__ == "__main__":
    main()
