"""The norm training paths side by side (block, cluster, tiles) across group sizes.

Group sizes below, inside and above the block and cluster paths' range: a training forward +
backward (norm_act_train, _norm_act_train_backward; ReLU) timed as GPU work (a CUDA-graph
replay) and as eager op calls, with the block and cluster kernels as built (a block a group up
to 2048 values, a cluster a group up to 32768 on Hopper), the cluster kernels off
(GENIMG_FAST_NORM_CLUSTER_MAX=0) and both off (GENIMG_FAST_NORM_BLOCK_MAX=0 too: the tile path
everywhere). The caps are read once a process, so each runs in a child process. Where a path
loses at some size, the limits in csrc/norm_act/train_path.h are what to move.

    GENIMG_FAST_IMPL=cuda PYTHONPATH=. python benchmarks/profiling/norm_path_sweep.py [--markdown out.md]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import torch

# (shape, per_sample): batch norm at DCGAN's batch 128, instance norm at CycleGAN's batch 1
CASES = [((128, 256, 4, 4), False), ((128, 256, 6, 6), False), ((128, 256, 8, 8), False),
         ((128, 128, 12, 12), False), ((128, 128, 16, 16), False), ((128, 64, 24, 24), False),
         ((1, 256, 64, 64), True), ((1, 128, 128, 128), True), ((1, 64, 256, 256), True)]
CAPS = {"as built": {},
        "no clusters": {"GENIMG_FAST_NORM_CLUSTER_MAX": "0"},
        "tile path": {"GENIMG_FAST_NORM_BLOCK_MAX": "0", "GENIMG_FAST_NORM_CLUSTER_MAX": "0"}}


def _step(shape: tuple[int, ...], per_sample: bool):
    """A training forward + backward at `shape` on fresh random inputs."""
    from genimg_fast.ops import _norm_act_train_backward, norm_act_train

    device = torch.device("cuda")
    x, gy = torch.randn(shape, device=device), torch.randn(shape, device=device)
    w, b = torch.randn(shape[1], device=device), torch.randn(shape[1], device=device)

    def step():
        y, mean, var = norm_act_train(x, w, b, per_sample, 1e-5, "relu", 0.0)
        return (y, *_norm_act_train_backward(gy, x, mean, var, w, b, 1e-5, "relu", 0.0))
    return step


def _child() -> None:
    from genimg_fast.bench.timing import count_launches, time_callable
    from genimg_fast.graph_capture import captured

    device = torch.device("cuda")
    steps = [_step(shape, per_sample) for shape, per_sample in CASES]
    rows = []
    for (shape, per_sample), step in zip(CASES, steps):
        replay, _ = captured(step)
        rows.append({"shape": shape, "per_sample": per_sample,
                     "gpu_us": time_callable(replay, device, warmup=10, repeats=200).median_ms * 1e3,
                     "eager_us": time_callable(lambda _i: step(), device, warmup=10, repeats=200).median_ms * 1e3})
    # counted last: a profiler session slows every later eager step of the process
    for row, step in zip(rows, steps):
        row["launches"] = count_launches(step, device)
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child()
        return
    results: dict[str, dict[tuple, dict]] = {}
    for label, cap in CAPS.items():
        run = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, **cap})
        if run.returncode != 0:
            sys.exit(f"{label}: the child failed:\n{run.stderr[-3000:]}")
        rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        results[label] = {(tuple(r["shape"]), r["per_sample"]): r for r in rows}
    header = "| norm | shape | values a group | " + " | ".join(
        f"{label}: GPU us / eager us / launches" for label in CAPS) + " |"
    lines = [f"{torch.cuda.get_device_name()}, torch {torch.__version__}", "", header,
             "|" + " --- |" * (3 + len(CAPS))]
    for shape, per_sample in CASES:
        count = shape[2] * shape[3] * (1 if per_sample else shape[0])
        cells = [f"{r['gpu_us']:.1f} / {r['eager_us']:.1f} / {r['launches']}"
                 for r in (results[label][(shape, per_sample)] for label in CAPS)]
        lines.append(f"| {'IN' if per_sample else 'BN'} | {'x'.join(map(str, shape))} | {count} | "
                     + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
