"""Transposed convolutions of spatially small inputs as one matrix product and a col2im (F.fold).

On a CPU, oneDNN's transposed convolution costs about the same whether its input is 2x2 or 8x8:
for the U-Net's innermost levels (1024 -> 512 channels, a 32 MB weight) it spends its time on
the weight, not the arithmetic. Written out, a transposed convolution is W^T @ x (every input
pixel scattered to its k x k output patch) followed by the sum of the overlapping patches, which
is exactly F.fold; at these sizes that is 2-3x faster (measured on the 2-core CPU: 2x2 input
8.8 ms against 24 ms, 4x4: 9.9 against 28, 8x8: 19 against 37; at 16x16 oneDNN wins, 30
against 34). Larger inputs take torch's own path.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# N x H x W of the input (the matrix product's columns) up to which the product is faster
MAX_COLUMNS = 64


class SmallInputConvTranspose2d(nn.ConvTranspose2d):
    """An nn.ConvTranspose2d (same parameters, same state_dict keys) that computes inputs with at
    most MAX_COLUMNS pixels in the batch as matmul + F.fold; the same sums, in another order."""

    @classmethod
    def replacing(cls, conv: nn.ConvTranspose2d) -> SmallInputConvTranspose2d:
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.output_padding, conv.groups, conv.bias is not None, conv.dilation, conv.padding_mode,
                  device="meta")
        new.weight, new.bias = conv.weight, conv.bias  # shared, not copied
        return new.train(conv.training)

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or x.dim() != 4 or x.shape[0] * x.shape[2] * x.shape[3] > MAX_COLUMNS:
            return super().forward(x, output_size)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (oh, ow) = self.kernel_size, self.stride, self.padding, self.output_padding
        # one 2-D product for the whole batch, its columns the batch's pixels (a batched product
        # would run one matrix-vector product per image: measured 20x slower for DCGAN's 64 x 1 x 1)
        pixels = x.reshape(n, c, h * w).transpose(0, 1).reshape(c, n * h * w)
        if self.weight.is_contiguous():  # (in, out, kh, kw) read as an (in, out * kh * kw) matrix: a view
            columns = (self.weight.reshape(c, -1).t() @ pixels).reshape(-1, n, h * w).transpose(0, 1)
        else:  # channels_last weight: (in, kh, kw, out) in memory, also a view; the small product is reordered
            columns = (self.weight.permute(0, 2, 3, 1).reshape(c, -1).t() @ pixels).reshape(kh * kw, -1, n, h * w)
            columns = columns.permute(2, 1, 0, 3).reshape(n, -1, h * w)
        size = ((h - 1) * sh - 2 * ph + kh + oh, (w - 1) * sw - 2 * pw + kw + ow)
        if (h, w, ph, pw, oh, ow) == (1, 1, 0, 0, 0, 0):  # a 1 x 1 input's patch is the whole output
            out = columns.reshape(n, -1, kh, kw)
        else:
            out = F.fold(columns, size, (kh, kw), padding=(ph, pw), stride=(sh, sw))
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)


def swap_small_input_deconvs(model: nn.Module) -> int:
    """In place: every plain nn.ConvTranspose2d that fold can express (one group, no dilation,
    zero padding, output padding below the stride) becomes SmallInputConvTranspose2d. Returns
    how many."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if type(child) is not nn.ConvTranspose2d or child.groups != 1 or child.dilation != (1, 1) \
                    or child.padding_mode != "zeros" or any(o >= s for o, s in zip(child.output_padding,
                                                                                    child.stride)):
                continue
            setattr(parent, name, SmallInputConvTranspose2d.replacing(child))
            swapped += 1
    return swapped
