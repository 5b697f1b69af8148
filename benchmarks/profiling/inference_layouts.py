"""Times each model family's optimized copy on the CPU, contiguous against channels_last.

optimize_for_inference's automatic layout (channels_last=None) takes the faster of the two, as
genimg_fast/inference/layouts.py's MEASURED_CHANNELS_LAST records it: rerun this when the models,
torch or the CPU change. Timed side by side in alternating rounds, with the plain reference model
as the 1.00x baseline.

    PYTHONPATH=. python benchmarks/profiling/inference_layouts.py [repeats]
"""
import sys

import torch
from torch import nn

from genimg_fast import optimize_for_inference
from genimg_fast.bench.timing import time_side_by_side
from genimg_fast.models import ConvVAE, DCGANGenerator, VAEDecoder, define_G


def _trained(net: nn.Module, x: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        net.train()(x)
    return net


def families():
    """name -> (reference model, input shape, train_mode, the model whose class the table keys)."""
    dcgan = _trained(DCGANGenerator(fused=False), torch.randn(64, 100, 1, 1))
    vae = _trained(ConvVAE(fused=False), torch.randn(16, 3, 64, 64))
    unet = define_G(3, 3, 64, "unet_256", "batch", use_dropout=True, fused=False)
    resnet = define_G(3, 3, 64, "resnet_9blocks", "instance", fused=False)
    return {"DCGANGenerator b64": (dcgan.eval(), (64, 100, 1, 1), False),
            "ConvVAE decoder b64": (VAEDecoder(vae.eval()), (64, 128), False),
            "ResnetGenerator 9 blocks b1 (train mode)": (resnet, (1, 3, 256, 256), True),
            "UnetGenerator 256 b1 (train mode)": (unet, (1, 3, 256, 256), True),
            "UnetGenerator 256 b1 (eval mode)": (unet, (1, 3, 256, 256), False)}


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ratios against the plain model's eager forward")
    for name, (model, shape, train_mode) in families().items():
        torch.manual_seed(0)
        model = model.train(train_mode)
        inputs = [torch.randn(shape) for _ in range(2)]
        models = {"torch": model}
        for layout in (False, True):
            models[f"channels_last={layout}"] = optimize_for_inference(model, train_mode=train_mode,
                                                                       channels_last=layout)

        def step(m):
            def run(i):
                with torch.no_grad():
                    return m(inputs[i % 2])
            return run
        timings = time_side_by_side({k: step(m) for k, m in models.items()}, torch.device("cpu"), warmup=2,
                                    repeats=repeats)
        base = timings["torch"].median_ms
        print(f"{name}: " + ", ".join(f"{k} {t.median_ms:.1f} ms ({base / t.median_ms:.2f}x)"
                                       for k, t in timings.items()), flush=True)


if __name__ == "__main__":
    main()
