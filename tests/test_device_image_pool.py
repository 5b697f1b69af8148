"""DeviceImagePool: junyanz's ImagePool with its images, fill count and choices on the device
(capturable in a CUDA graph). Its draws are checked against the reference's distribution, its
bookkeeping against the reference's invariants, and its state for an exact resume."""
from __future__ import annotations

import pytest
import torch

from genimg_fast.train.device_image_pool import DeviceImagePool


def _ids(values) -> torch.Tensor:
    """Images (N, 1, 2, 2) whose every pixel is their id: what came back is readable."""
    values = torch.as_tensor(values, dtype=torch.float32)
    return values.reshape(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()


def _read(images: torch.Tensor) -> list[int]:
    return [int(v) for v in images[:, 0, 0, 0]]


def test_filling_returns_and_stores_each_image_even_across_the_fill_line():
    pool = DeviceImagePool(3, torch.Generator().manual_seed(0))
    assert _read(pool.query(_ids([1, 2]))) == [1, 2]
    out = _read(pool.query(_ids([3, 4, 5])))
    assert out[0] == 3 and int(pool.count) == 3  # the third slot fills; 4 and 5 find the pool full
    assert _read(pool.images) == [1, 2, 3] or out[1:] != [4, 5]  # unchanged unless a swap took place


def test_every_image_is_returned_or_kept():
    """The filling images are returned and kept; after that each image is either returned or
    kept in place of the stored image it sends back."""
    pool = DeviceImagePool(4, torch.Generator().manual_seed(1))
    seen, returned = [], []
    for step in range(50):
        batch = list(range(step * 3, step * 3 + 3))
        seen += batch
        returned += _read(pool.query(_ids(batch)))
        stored = _read(pool.images)[: int(pool.count)]  # the pool fills its slots in order
        assert sorted(returned + stored) == sorted(seen + seen[:4])


def test_draws_follow_the_reference_distribution():
    """After the pool is full: the new image comes back with probability 1/2, else a stored one,
    chosen uniformly among the slots."""
    size, steps = 3, 6000
    pool = DeviceImagePool(size, torch.Generator().manual_seed(2))
    pool.query(_ids([-1, -2, -3]))
    new_back, slot_counts = 0, [0] * size
    for i in range(steps):
        before = _read(pool.images)
        (out,) = _read(pool.query(_ids([i])))
        if out == i:
            new_back += 1
            assert _read(pool.images) == before
        else:
            slot = before.index(out)
            slot_counts[slot] += 1
            assert _read(pool.images)[slot] == i
    # binomial(6000, 1/2): standard deviation 0.0065 of the share; 5 of them allowed
    assert abs(new_back / steps - 0.5) < 0.033
    swaps = steps - new_back
    chi_square = sum((c - swaps / size) ** 2 / (swaps / size) for c in slot_counts)
    assert chi_square < 20.0  # 2 degrees of freedom: p < 5e-5 for a uniform choice


def test_a_restore_reuses_the_buffers_in_place():
    pool = DeviceImagePool(2, torch.Generator().manual_seed(4))
    pool.query(_ids([1, 2, 3]))
    saved, buffer = pool.state_dict(), pool.images
    kept = _read(saved["images"])
    for i in range(4, 40):
        pool.query(_ids([i]))
    assert _read(saved["images"]) == kept  # the saved state is a copy, not the live buffer
    assert _read(pool.images) != kept
    pool.load_state_dict(saved, torch.device("cpu"))
    assert pool.images is buffer and _read(pool.images) == kept


def test_resume_is_exact():
    def run(pool, gen, batches):
        return [_read(pool.query(_ids(b))) for b in batches]

    batches = [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(12)]
    gen = torch.Generator().manual_seed(3)
    pool = DeviceImagePool(5, gen)
    straight = run(pool, gen, batches)

    gen = torch.Generator().manual_seed(3)
    pool = DeviceImagePool(5, gen)
    first = run(pool, gen, batches[:5])
    saved_pool, saved_gen = pool.state_dict(), gen.get_state()
    resumed_gen = torch.Generator()
    resumed_gen.set_state(saved_gen)
    resumed = DeviceImagePool(5, resumed_gen)
    resumed.load_state_dict(saved_pool, torch.device("cpu"))
    assert first + run(resumed, resumed_gen, batches[5:]) == straight


def test_size_zero_passes_images_through_and_bad_input_is_named():
    images = _ids([1, 2])
    assert DeviceImagePool(0).query(images) is images
    with pytest.raises(ValueError, match="size must be a whole number"):
        DeviceImagePool(-1)
    pool = DeviceImagePool(2)
    pool.query(_ids([1]))
    with pytest.raises(ValueError, match=r"images must be torch.float32 of shape \(N, 1, 2, 2\)"):
        pool.query(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="saved pool holds 2 slots"):
        DeviceImagePool(3).load_state_dict(pool.state_dict(), torch.device("cpu"))


@pytest.mark.cuda
def test_a_query_captured_in_a_cuda_graph_keeps_the_pool_consistent():
    """Captured once and replayed, the pool draws afresh each replay (torch's default CUDA
    generator is graph-safe) and still returns or keeps every image."""
    device = torch.device("cuda")
    pool = DeviceImagePool(4)  # the default generator: its state advances with each replay
    pool.query(_ids([-1, -2, -3, -4]).to(device))  # full: every later query may swap
    static = _ids([0]).to(device)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(side), torch.cuda.graph(graph):
        out = pool.query(static)
    torch.cuda.current_stream().wait_stream(side)
    pool_images = pool.images
    pool.load_state_dict({"images": _ids([-1, -2, -3, -4]), "count": 4}, device)  # undo the capture's write
    seen, returned = [-1, -2, -3, -4], []
    for i in range(1, 200):
        static.copy_(_ids([i]).to(device))
        graph.replay()
        seen.append(i)
        returned += _read(out.cpu())
    assert pool_images is pool.images  # restored into the buffer the graph reads
    assert sorted(returned + _read(pool.images.cpu())) == sorted(seen)
    assert 0.35 < sum(r == i for r, i in zip(returned, range(1, 200))) / 199 < 0.65


def test_a_state_of_the_host_side_pool_is_restored():
    """A run saved while the pool was a Python list of (1, ...) images resumes with them."""
    pool = DeviceImagePool(3, torch.Generator().manual_seed(5))
    pool.load_state_dict({"images": [_ids([7]), _ids([8])]}, torch.device("cpu"))
    assert int(pool.count) == 2 and _read(pool.images)[:2] == [7, 8]
    assert _read(pool.query(_ids([9]))) == [9]  # still filling: the third slot takes it
    assert _read(pool.images) == [7, 8, 9]


def test_an_empty_state_empties_the_pool_in_place():
    pool = DeviceImagePool(2, torch.Generator().manual_seed(6))
    pool.query(_ids([1, 2]))
    buffer = pool.images
    pool.load_state_dict({"images": None, "count": 0}, torch.device("cpu"))
    assert pool.images is buffer and int(pool.count) == 0
    assert _read(pool.query(_ids([3, 4]))) == [3, 4]  # filling again


def test_the_buffer_keeps_the_batches_memory_format():
    images = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    pool = DeviceImagePool(2, torch.Generator().manual_seed(7))
    torch.testing.assert_close(pool.query(images), images, rtol=0, atol=0)
    assert pool.images.is_contiguous(memory_format=torch.channels_last)
