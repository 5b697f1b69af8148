"""junyanz's ImagePool kept on the device, so that a training step using it can be captured in a
CUDA graph: the images in one preallocated buffer, the fill count a device tensor, and the
choices drawn by a torch generator on the device. No step reads anything back to the host.

The draw has the reference's distribution: until `size` images are stored, each new image is
stored and returned; then each new image is, with probability 1/2, swapped for a uniformly
chosen stored one (which is returned instead), else returned as it is. Images of a batch are
taken one after another, as the reference does, so a batch that crosses the fill line is
handled exactly. (The draws come from torch's generator, not Python's `random`: the same
distribution, another stream.)
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor


class DeviceImagePool:
    """The image history of one discriminator; query(images) returns the images it is shown."""

    def __init__(self, size: int, generator: torch.Generator | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"DeviceImagePool: size must be a whole number >= 0, got {size!r}")
        self.size = size
        self.generator = generator  # None: torch's default generator of the images' device
        self.images: Tensor | None = None  # (size, *image shape), allocated by the first query
        self.count: Tensor | None = None   # how many slots are filled, on the device

    def _allocate(self, images: Tensor) -> None:
        self.images = images.new_zeros((self.size, *images.shape[1:]))
        if images.dim() == 4 and not images.is_contiguous() and images.is_contiguous(memory_format=torch.channels_last):
            self.images = self.images.contiguous(memory_format=torch.channels_last)  # what the batches are in
        self.count = torch.zeros((), dtype=torch.long, device=images.device)

    def _check(self, images: Tensor) -> None:
        if not isinstance(images, Tensor) or images.dim() < 1:
            raise TypeError("DeviceImagePool.query: images must be a batch tensor (N, ...)")
        if images.shape[1:] != self.images.shape[1:] or images.dtype != self.images.dtype \
                or images.device != self.images.device:
            raise ValueError(f"DeviceImagePool.query: images must be {self.images.dtype} of shape (N, "
                             f"{', '.join(map(str, self.images.shape[1:]))}) on {self.images.device}, like the "
                             f"pool's, got {images.dtype} {list(images.shape)} on {images.device}")

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        if self.images is None:
            self._allocate(images)
        self._check(images)
        images = images.detach()
        device = images.device
        n = images.shape[0]
        # every random number this batch needs, in two draws
        coins = torch.rand(n, device=device, generator=self.generator)
        slots = torch.randint(0, self.size, (n,), device=device, generator=self.generator)
        returned = []
        for i in range(n):
            image = images[i : i + 1]
            filling = self.count < self.size
            swap = ~filling & (coins[i] > 0.5)
            slot = torch.where(filling, self.count, slots[i]).reshape(1)
            stored = self.images.index_select(0, slot)
            returned.append(torch.where(swap, stored, image))
            self.images.index_copy_(0, slot, torch.where(filling | swap, image, stored))
            self.count += filling.long()
        return torch.cat(returned, 0)

    def state_tensors(self) -> list[Tensor]:
        """The device tensors a query changes (what a captured training step must put back
        after its warm-up); none before the first query allocates them."""
        return [] if self.images is None else [self.images, self.count]

    def state_dict(self) -> dict:
        """The stored images and fill count, on the CPU (the generator is saved by its owner)."""
        if self.images is None:
            return {"images": None, "count": 0}
        return {"images": self.images.to("cpu", copy=True), "count": int(self.count)}  # a copy, even on a CPU

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        """Restore a saved pool; into the buffers already allocated where they fit, so that a
        CUDA graph captured with this pool keeps reading the restored images."""
        images = state["images"]
        if isinstance(images, list):  # a state saved by the host-side pool: its images in fill order
            count = len(images)
            images = torch.cat(images + [images[0].new_zeros(images[0].shape)] * (self.size - count)) if images else None
        else:
            count = int(state["count"])
        if images is None:  # an empty pool
            if self.count is not None:
                self.count.zero_()  # the buffers stay where a captured graph reads them
            return
        if images.shape[0] != self.size or not 0 <= count <= self.size:
            raise ValueError(f"DeviceImagePool: the saved pool holds {images.shape[0]} slots ({count} filled), "
                             f"this pool has {self.size}")
        fits = (self.images is not None and self.images.shape == images.shape and self.images.dtype == images.dtype
                and self.images.device == torch.device(device))
        if fits:
            self.images.copy_(images)
            self.count.fill_(count)
        else:
            self.images = images.to(device)
            self.count = torch.tensor(count, dtype=torch.long, device=device)
