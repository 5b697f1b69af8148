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

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genimg_fast.data import ColouredShapes, image_folder
from genimg_fast.models import DCGANDiscriminator, DCGANGenerator
from genimg_fast.nn import DiscriminatorLoss, GANLoss
from genimg_fast.train.batches import batch_loader, epoch_batches
from genimg_fast.train.checkpoint import atomic_save, load_training_state, rng_state, set_rng_state
from genimg_fast.train.interrupt import StopRequest
from genimg_fast.train.progress import StepProgress
from genimg_fast.train.run_log import LossLog, plot_losses
from genimg_fast.train.samples import save_grid

STATE_FILE = "training_state.pt"
# What a resumed run must share with the run it continues (the rest, e.g. epochs, may change).
SAME_ON_RESUME = ("data", "image_size", "channels", "dataset_size", "batch_size", "nz", "ngf", "ndf", "lr", "beta1",
                  "impl", "seed")


@dataclass
class DCGANConfig:
    data: str = "shapes"              # 'shapes' (built in) or a folder of images
    out: str = "runs/dcgan"
    image_size: int = 64
    channels: int = 3
    dataset_size: int = 4096          # images in the built-in set
    batch_size: int = 128
    epochs: int = 25
    max_steps: int | None = None      # stop after this many iterations in all (resumable)
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    impl: str = "fused"               # 'fused' or 'reference'
    device: str = "auto"
    seed: int = 0
    sample_every: int = 100
    log_every: int = 10               # losses are read from the GPU (a sync) this often; every step is logged
    workers: int = 0
    resume: bool = False
    progress: bool = True


class _Recipe:
    """The networks, optimizers and losses of one run, reference or fused."""

    def __init__(self, config: DCGANConfig, device: torch.device) -> None:
        fused = config.impl == "fused"
        torch.manual_seed(config.seed)
        self.netG = DCGANGenerator(config.nz, config.ngf, config.channels, config.image_size, fused=fused,
                                   device=device)
        self.netD = DCGANDiscriminator(config.channels, config.ndf, config.image_size, fused=fused, device=device)
        betas = (config.beta1, 0.999)
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=config.lr, betas=betas)
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=config.lr, betas=betas)
        if fused:
            self.loss_D, self.loss_G = DiscriminatorLoss("bce", weight=1.0), GANLoss("bce")
        else:
            bce = nn.BCELoss()
            self.loss_D = lambda real, fake: (bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake)), {})
            self.loss_G = lambda out, _is_real: bce(out, torch.ones_like(out))

    def state_dict(self) -> dict:
        return {"netG": self.netG.state_dict(), "netD": self.netD.state_dict(), "optG": self.optG.state_dict(),
                "optD": self.optD.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.netG.load_state_dict(state["netG"])
        self.netD.load_state_dict(state["netD"])
        self.optG.load_state_dict(state["optG"])
        self.optD.load_state_dict(state["optD"])

    def step(self, real: torch.Tensor, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        netG, netD = self.netG, self.netD
        netD.zero_grad(set_to_none=True)
        out_real = netD(real)
        fake = netG(noise)
        out_fake = netD(fake.detach())
        errD, _ = self.loss_D(out_real, out_fake)
        errD.backward()
        self.optD.step()
        netG.zero_grad(set_to_none=True)
        out = netD(fake)
        errG = self.loss_G(out, True)
        errG.backward()
        self.optG.step()
        return {"loss_D": errD.detach(), "loss_G": errG.detach(), "D_x": out_real.detach().mean(),
                "D_G_z1": out_fake.detach().mean(), "D_G_z2": out.detach().mean()}


def _dataset(config: DCGANConfig):
    if config.data == "shapes":
        return ColouredShapes(config.dataset_size, config.image_size, config.channels, seed=config.seed)
    return image_folder(config.data, config.image_size, config.channels)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("genimg-fast train: --device cuda requested but torch sees no CUDA GPU")
    return device


def _check_resumable(config: DCGANConfig, saved: dict) -> None:
    for name in SAME_ON_RESUME:
        if saved[name] != getattr(config, name):
            raise ValueError(f"--resume: {name} was {saved[name]!r} in the run being resumed, now {getattr(config, name)!r}")


def train_dcgan(config: DCGANConfig) -> dict:
    """Train; returns a summary (steps, epochs, images per second, last losses, output folder)."""
    if config.impl not in ("fused", "reference"):
        raise ValueError(f"impl must be 'fused' or 'reference', got {config.impl!r}")
    out = Path(config.out)
    device = _device(config.device)
    dataset = _dataset(config)
    recipe = _Recipe(config, device)
    fixed_noise = torch.randn(64, config.nz, 1, 1, generator=torch.Generator().manual_seed(config.seed + 2)).to(device)
    noise_gen = torch.Generator().manual_seed(config.seed + 1)
    epoch, batch_in_epoch, step = 0, 0, 0
    if config.resume:
        state = load_training_state(out / STATE_FILE)
        _check_resumable(config, state["config"])
        recipe.load_state_dict(state["recipe"])
        noise_gen.set_state(state["noise_gen"])
        set_rng_state(state["rng"])
        epoch, batch_in_epoch, step = state["epoch"], state["batch_in_epoch"], state["step"]
    log = LossLog(out / "losses.jsonl", resume_from_step=step if config.resume else None)
    progress = StepProgress(config.progress, config.log_every, config.batch_size)
    last: dict = {}

    def write(entries: list[dict]) -> None:
        nonlocal last
        for entry in entries:
            log.write(entry)
            last = entry

    def save_state() -> None:  # only at a step boundary: every finished step is in it, no half step
        atomic_save({"config": dataclasses.asdict(config), "recipe": recipe.state_dict(), "epoch": epoch,
                     "batch_in_epoch": batch_in_epoch, "step": step, "noise_gen": noise_gen.get_state(),
                     "rng": rng_state()}, out / STATE_FILE)

    started, first_step, stopped_early = time.perf_counter(), step, False
    with StopRequest() as stop:
        try:
            while epoch < config.epochs:
                batches = epoch_batches(len(dataset), config.batch_size, config.seed, epoch)
                progress.start_epoch(epoch, config.epochs, len(batches), batch_in_epoch)
                for real, _ in batch_loader(dataset, batches[batch_in_epoch:], config.workers, device.type == "cuda"):
                    if stop.requested or (config.max_steps is not None and step >= config.max_steps):
                        break
                    real = real.to(device, non_blocking=True)
                    if step == 0:
                        save_grid(real[:64], out / "real_samples.png")
                    noise = torch.randn(real.shape[0], config.nz, 1, 1, generator=noise_gen).to(device)
                    write(progress.add(step, epoch, recipe.step(real, noise)))
                    if batch_in_epoch % config.sample_every == 0:
                        with torch.no_grad():  # in train mode, as the reference samples
                            save_grid(recipe.netG(fixed_noise), out / f"fake_samples_epoch_{epoch:03d}.png")
                    step += 1
                    batch_in_epoch += 1
                write(progress.flush())
                if batch_in_epoch < len(batches):  # stopped inside the epoch
                    stopped_early = True
                    save_state()
                    break
                atomic_save(recipe.netG.state_dict(), out / f"netG_epoch_{epoch}.pth")
                atomic_save(recipe.netD.state_dict(), out / f"netD_epoch_{epoch}.pth")
                epoch, batch_in_epoch = epoch + 1, 0
                save_state()
        finally:
            write(progress.flush())
            progress.close()
            log.close()
            entries = log.entries()
            if entries:
                plot_losses(entries, ["loss_D", "loss_G"], out / "loss_curve.png", f"DCGAN ({config.impl})")
    seconds = time.perf_counter() - started
    images = (step - first_step) * config.batch_size
    return {"steps": step, "epochs_done": epoch, "stopped_early": stopped_early,
            "images_per_second": images / seconds if seconds > 0 else 0.0,
            "loss_D": last.get("loss_D"), "loss_G": last.get("loss_G"), "out": str(out), "device": str(device)}
