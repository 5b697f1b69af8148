"""The trainers' --cuda-graphs path on the CPU: every recipe run through CUDAGraphStep with the
capture's stand-in (tests/capture_stand_in.py: the warm-up iterations run and must be undone,
each replay re-runs the captured iteration on the refilled inputs) logs exactly the losses of
the eager loop. What this checks is the bookkeeping a real capture relies on: the warm-up put
back everywhere (networks, running statistics, optimizer state, CycleGAN's image pools, the
random generator), the inputs reaching each replay, partial batches run eagerly. The capture
itself is tested on a GPU (test_train_cuda.py)."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("torchvision")
pytest.importorskip("matplotlib")

from capture_stand_in import allow_cpu_capture  # noqa: E402
from genimg_fast import training_graph  # noqa: E402
from genimg_fast.train import dcgan, image_to_image, loop, vae  # noqa: E402
from genimg_fast.train.cuda_graphs_choice import CUDAGraphsChoice  # noqa: E402
from genimg_fast.train.cyclegan import CycleGANConfig, train_cyclegan  # noqa: E402
from genimg_fast.train.dcgan import DCGANConfig, train_dcgan  # noqa: E402
from genimg_fast.train.pix2pix import Pix2PixConfig, train_pix2pix  # noqa: E402
from genimg_fast.train.vae import VAEConfig, train_vae  # noqa: E402
from train_logs import read_losses  # noqa: E402

SMALL = dict(progress=False, log_every=2, workers=0)
RUNS = {  # dataset sizes that leave a partial last batch, run eagerly between replays
    "dcgan": (train_dcgan, DCGANConfig, dict(image_size=32, ngf=8, ndf=8, nz=8, batch_size=4, dataset_size=18,
                                             epochs=2, **SMALL)),
    "vae": (train_vae, VAEConfig, dict(model="conv", dataset_size=10, batch_size=4, epochs=2, **SMALL)),
    "pix2pix": (train_pix2pix, Pix2PixConfig, dict(crop_size=128, netG="unet_128", ngf=4, ndf=4, dataset_size=8,
                                                   batch_size=3, epochs=1, epochs_decay=1, **SMALL)),
    "cyclegan": (train_cyclegan, CycleGANConfig, dict(crop_size=32, netG="resnet_6blocks", ngf=4, ndf=4,
                                                      dataset_size=8, batch_size=3, epochs=1, epochs_decay=1,
                                                      pool_size=3, **SMALL)),
}


def _capture_on_the_cpu(monkeypatch) -> list:
    """Every recipe chooses the capture, with a plain Adam (a capturable one refuses CPU tensors)."""
    captures = allow_cpu_capture(monkeypatch)
    chosen = lambda config, device, processes=1: CUDAGraphsChoice(True)  # noqa: E731
    plain_adam = lambda params, lr, betas, device, capturable: torch.optim.Adam(params, lr=lr, betas=betas)  # noqa: E731
    for module in (dcgan, vae, image_to_image, loop):
        monkeypatch.setattr(module, "choose_cuda_graphs", chosen)
    for module in (dcgan, vae, image_to_image):
        monkeypatch.setattr(module, "adam", plain_adam)
    # a plain Adam's rate is a number the schedules replace (a capturable one's is a device
    # tensor they fill in place, which the check asks for)
    monkeypatch.setattr(training_graph.CapturedTrainingStep, "_check_rates", lambda self: None)
    return captures


@pytest.mark.parametrize("name", list(RUNS))
def test_a_captured_run_logs_the_eager_run_s_losses(monkeypatch, tmp_path, name):
    train, config_cls, base = RUNS[name]
    train(config_cls(out=str(tmp_path / "eager"), **base))
    captures = _capture_on_the_cpu(monkeypatch)
    train(config_cls(out=str(tmp_path / "graph"), **base))
    assert captures == ["thread_local"]  # one capture for the whole run
    eager, graph = read_losses(tmp_path / "eager"), read_losses(tmp_path / "graph")
    assert len(eager) == len(graph) > 4 and graph == eager
