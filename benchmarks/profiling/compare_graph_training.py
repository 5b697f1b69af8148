"""Per-step drift of a --cuda-graphs run's losses from the eager loop's, beside two eager runs'.

Two eager runs drift apart too (the GPU's own run-to-run noise: atomic adds in reflection
padding's and some convolutions' backward), so a replay is judged against that noise: per recipe
and implementation, in full float32 precision, with cuDNN's nondeterministic algorithms allowed
and not. The recipes are the trainer tests' small ones (tests/test_train_cuda.py, whose graph
tolerances this informs); needs a GPU.

    PYTHONPATH=. python benchmarks/profiling/compare_graph_training.py [RECIPE ...] [--impl fused|reference]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from genimg_fast.bench.checks import exact_fp32

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from test_train_cuda import RUNS  # noqa: E402
from train_logs import read_losses  # noqa: E402


def drift(a: list[dict], b: list[dict]) -> list[float]:
    """Per step, the largest relative difference among the logged losses."""
    return [max(abs(x[k] - y[k]) / max(abs(y[k]), 1e-5) for k in x if k != "step") for x, y in zip(a, b)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", metavar="RECIPE", help=f"some of {', '.join(RUNS)} "
                        "(default: cyclegan dcgan pix2pix)")
    parser.add_argument("--impl", choices=["fused", "reference"], action="append")
    args = parser.parse_args()
    unknown = sorted(set(args.recipes) - set(RUNS))
    if unknown:
        parser.error(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RUNS)}")
    args.recipes = args.recipes or ["cyclegan", "dcgan", "pix2pix"]
    saved = torch.backends.cudnn.deterministic
    try:
        compare_all(args.recipes, args.impl or ["fused", "reference"])
    finally:
        torch.backends.cudnn.deterministic = saved


def compare_all(recipes: list[str], impls: list[str]) -> None:
    for name in recipes:
        train, config_cls, base = RUNS[name]
        for impl in impls:
            for deterministic in (True, False):
                torch.backends.cudnn.deterministic = deterministic
                with tempfile.TemporaryDirectory() as tmp, exact_fp32():
                    runs = {}
                    for run, graphs in (("eager", False), ("eager again", False), ("graph", True)):
                        train(config_cls(out=f"{tmp}/{run}", impl=impl, cuda_graphs="on" if graphs else "off", **base))
                        runs[run] = read_losses(Path(tmp) / run)
                noise = drift(runs["eager again"], runs["eager"])
                graph = drift(runs["graph"], runs["eager"])
                head = f"{name} {impl} cudnn.deterministic={deterministic}: per-step drift, "
                print(f"{head}eager vs eager {' '.join(f'{d:.1e}' for d in noise)}")
                print(f"{' ' * len(head)}graph vs eager {' '.join(f'{d:.1e}' for d in graph)}")


if __name__ == "__main__":
    main()
