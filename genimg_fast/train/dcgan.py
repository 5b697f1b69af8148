"""DCGAN training, following pytorch/examples dcgan/main.py: Adam(2e-4, betas (0.5, 0.999)) for
both networks; each iteration one D step on a real batch (label 1) and on fake.detach()
(label 0), then one G step on the same fake with label 1; BCE on the discriminator's sigmoid
output; samples of a fixed noise batch every `sample_every` iterations; netG_epoch_N.pth /
netD_epoch_N.pth as plain state_dicts after every epoch.

impl='fused' trains genimg_fast's networks and fused objectives; impl='reference' the same
layers in plain torch.nn with nn.BCELoss, for A/B runs. Runs are reproducible from the seed and
resumable from training_state.pt (written atomically after every epoch and when a run stops
early), with the same losses as an uninterrupted run.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genimg_fast.data import ColouredShapes, image_folder
from genimg_fast.models import DCGANDiscriminator, DCGANGenerator
from genimg_fast.nn import DiscriminatorLoss, GANLoss
from genimg_fast.seeding import seeded_generator
from genimg_fast.train.checkpoint import atomic_save
from genimg_fast.train.distributed import Distributed
from genimg_fast.train.cuda_graphs_choice import choose_cuda_graphs
from genimg_fast.train.loop import run_training, start_run
from genimg_fast.train.options import RunOptions, adam, prepare_batch, prepare_networks
from genimg_fast.train.precision import Precision
from genimg_fast.train.recipe_base import RecipeBase
from genimg_fast.train.samples import save_grid

# What a resumed run must share with the run it continues (the rest, e.g. epochs, may change).
SAME_ON_RESUME = ("data", "image_size", "channels", "dataset_size", "batch_size", "nz", "ngf", "ndf", "lr", "beta1",
                  "impl", "seed", "logits", "amp")


@dataclass
class DCGANConfig(RunOptions):
    data: str = "shapes"              # 'shapes' (built in) or a folder of images
    out: str = "runs/dcgan"
    image_size: int = 64
    channels: int = 3
    dataset_size: int = 4096          # images in the built-in set
    batch_size: int = 128
    epochs: int = 25
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    logits: bool = False              # D without its final Sigmoid, BCE on logits: the same loss, safer numerics


class DCGANRecipe(RecipeBase):
    """The networks, optimizers and losses of one run, fused or reference, and its noise."""

    loss_keys = ["loss_D", "loss_G"]

    def __init__(self, config: DCGANConfig, device: torch.device, distributed: Distributed | None = None) -> None:
        fused = config.impl == "fused"
        self.distributed = distributed or Distributed()
        self.title = f"DCGAN ({config.impl})"
        self.nz = config.nz
        torch.manual_seed(config.seed)
        self.netG = DCGANGenerator(config.nz, config.ngf, config.channels, config.image_size, fused=fused,
                                   device=device)
        self.netD = DCGANDiscriminator(config.channels, config.ndf, config.image_size, logits=config.logits,
                                       fused=fused, device=device)
        self.config, self.precision = config, Precision(config.amp, device, self.distributed)
        self.cuda_graphs = choose_cuda_graphs(config, device, self.distributed.world)
        prepare_networks([self.netG, self.netD], config, self.distributed)
        betas = (config.beta1, 0.999)
        self.optG = adam(self.netG.parameters(), config.lr, betas, device, self.cuda_graphs.enabled)
        self.optD = adam(self.netD.parameters(), config.lr, betas, device, self.cuda_graphs.enabled)
        if fused:
            mode = "vanilla" if config.logits else "bce"
            self.loss_D, self.loss_G = DiscriminatorLoss(mode, weight=1.0), GANLoss(mode)
        else:  # nn.BCELoss is not autocast-safe: in fp32, outside autocast
            bce = nn.BCEWithLogitsLoss() if config.logits else nn.BCELoss()

            def fp32_bce(out, label):
                with torch.autocast(device.type, enabled=False):
                    return bce(out.float(), torch.full_like(out, label, dtype=torch.float32))
            self.loss_D = lambda real, fake: (fp32_bce(real, 1.0) + fp32_bce(fake, 0.0), {})
            self.loss_G = lambda out, _is_real: fp32_bce(out, 1.0)
        # on the training device: a per-step copy of CPU noise from pageable memory would make the
        # host wait for the GPU every iteration
        self.noise_gen = seeded_generator(config.seed + 1, device)
        self.fixed_noise = torch.randn(64, config.nz, 1, 1,
                                       generator=seeded_generator(config.seed + 2)).to(device)

    def networks(self) -> dict:
        return {"netG": self.netG, "netD": self.netD}

    def optimizers(self) -> dict:
        return {"optG": self.optG, "optD": self.optD}

    def extra_state(self) -> dict:
        return {"noise_gen": self.noise_gen.get_state(), "noise_device": self.noise_gen.device.type}

    def load_extra_state(self, state: dict) -> None:
        saved = state.get("noise_device", self.noise_gen.device.type)
        if saved != self.noise_gen.device.type:  # a CPU and a CUDA generator's states are not interchangeable
            raise ValueError(f"--resume: the run drew its noise on the {saved} device; resume it there "
                             f"(--device {saved}), not on {self.noise_gen.device.type}")
        self.noise_gen.set_state(state["noise_gen"])

    def graph_inputs(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The step's inputs, drawn outside the captured step: the real batch and its noise."""
        real = prepare_batch(batch, self.config)[0]
        # the global batch's noise, then this process's slice of it: any number of processes draw the same
        global_batch = real.shape[0] * self.distributed.world
        noise = torch.randn(global_batch, self.nz, 1, 1, generator=self.noise_gen, device=real.device)
        return real, self.distributed.shard(noise)

    def graph_step(self, real: torch.Tensor, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """One iteration from device inputs alone (what --cuda-graphs captures)."""
        netG, netD, precision = self.netG, self.netD, self.precision
        netD.zero_grad(set_to_none=True)
        with precision.autocast():
            out_real = netD(real)
            fake = netG(noise)
            out_fake = netD(fake.detach())
            errD, _ = self.loss_D(out_real, out_fake)
        precision.backward(errD)
        precision.step(self.optD)
        netG.zero_grad(set_to_none=True)
        with precision.autocast():
            out = netD(fake)
            errG = self.loss_G(out, True)
        precision.backward(errG)
        precision.step(self.optG)
        precision.update()
        probability = torch.sigmoid if self.config.logits else (lambda t: t)  # D(x) as the reference logs it
        return {"loss_D": errD.detach(), "loss_G": errG.detach(), "D_x": probability(out_real.detach()).mean(),
                "D_G_z1": probability(out_fake.detach()).mean(), "D_G_z2": probability(out.detach()).mean()}

    def first_batch(self, batch: tuple[torch.Tensor, ...], out: Path) -> None:
        save_grid(batch[0][:64], out / "real_samples.png")

    def sample(self, epoch: int, out: Path, write: bool = True) -> None:
        with torch.no_grad():  # in train mode, as the reference samples
            fake = self.netG(self.fixed_noise)
        if write:
            save_grid(fake, out / f"fake_samples_epoch_{epoch:03d}.png")

    def end_epoch(self, epoch: int, out: Path, write: bool = True) -> None:
        if write:
            atomic_save(self.netG.state_dict(), out / f"netG_epoch_{epoch}.pth")
            atomic_save(self.netD.state_dict(), out / f"netD_epoch_{epoch}.pth")


def train_dcgan(config: DCGANConfig) -> dict:
    """Train; returns a summary (steps, epochs done, images per second, last losses, output folder)."""
    distributed, device = start_run(config)
    if config.data == "shapes":
        dataset = ColouredShapes(config.dataset_size, config.image_size, config.channels, seed=config.seed)
    else:
        dataset = image_folder(config.data, config.image_size, config.channels)
    return run_training(config, config.epochs, SAME_ON_RESUME,
                        DCGANRecipe(config, device, distributed), dataset, device, distributed)
