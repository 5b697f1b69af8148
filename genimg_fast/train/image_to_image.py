"""What junyanz's two image-to-image recipes share: their named networks, Adam(lr, (beta1,
0.999)) for the generators and for the discriminators with the 'linear' rate policy, the
reference's checkpoint names (latest_net_<name>.pth every epoch, <epoch>_net_<name>.pth every
save_epoch_freq), a grid of the latest visuals, and the GAN loss written in plain torch for
impl='reference'."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genimg_fast.nn import DiscriminatorLoss
from genimg_fast.train.checkpoint import atomic_save
from genimg_fast.train.distributed import Distributed
from genimg_fast.train.cuda_graphs_choice import choose_cuda_graphs
from genimg_fast.train.loop import run_training, start_run
from genimg_fast.train.options import RunOptions, adam
from genimg_fast.train.precision import Precision
from genimg_fast.train.recipe_base import RecipeBase
from genimg_fast.train.samples import save_grid
from genimg_fast.train.schedules import linear_decay


@dataclass
class ImageToImageOptions(RunOptions):
    """junyanz's options both models share, with its defaults (each model adds its own)."""
    data: str = "shapes"              # 'shapes' (built in) or a dataroot in the model's layout
    phase: str = "train"
    dataset_size: int = 1024          # image pairs in the built-in set
    load_size: int = 286
    crop_size: int = 256              # the image size (the built-in set is drawn at this size)
    batch_size: int = 1
    epochs: int = 100                 # at the initial rate
    epochs_decay: int = 100           # then decaying linearly to zero
    netD: str = "basic"
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    save_epoch_freq: int = 5


# What a resumed run of either model must share with the run it continues.
SAME_ON_RESUME = ("data", "phase", "dataset_size", "load_size", "crop_size", "batch_size", "netG", "netD", "ngf",
                  "ndf", "norm", "gan_mode", "lr", "beta1", "impl", "seed", "amp")


def gpu_ids(device: torch.device) -> tuple[int, ...]:
    """define_G / define_D's placement argument for `device`."""
    if device.type != "cuda":
        return ()
    return (device.index if device.index is not None else torch.cuda.current_device(),)


def train_image_to_image(config, recipe_cls, shapes_dataset, folder_dataset, same_on_resume: tuple[str, ...]) -> dict:
    """Either model's run: its built-in set (data='shapes') or a dataroot in its layout, trained
    for epochs + epochs_decay."""
    distributed, device = start_run(config)
    if config.data == "shapes":
        dataset = shapes_dataset(config.dataset_size, config.crop_size, config.seed)
    else:
        dataset = folder_dataset(config.data, config.phase, config.load_size, config.crop_size, seed=config.seed)
    return run_training(config, config.epochs + config.epochs_decay, same_on_resume,
                        recipe_cls(config, device, dataset, distributed), dataset, device, distributed)


def reference_gan_loss(prediction: torch.Tensor, mode: str, target_is_real: bool) -> torch.Tensor:
    """junyanz's GANLoss in plain torch: a label tensor, then the loss."""
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    return F.mse_loss(prediction, target) if mode == "lsgan" else F.binary_cross_entropy_with_logits(prediction, target)


class ImageToImageRecipe(RecipeBase):
    net_names: tuple[str, ...]  # the attributes holding the networks, as the checkpoints name them

    def _start(self, title: str, config, device: torch.device) -> tuple[bool, tuple[int, ...]]:
        """The recipes' opening: the title, the seed the networks' weights are drawn from, and
        define_G / define_D's fused and gpu_ids arguments."""
        self.title = f"{title} ({config.impl})"
        torch.manual_seed(config.seed)
        return config.impl == "fused", gpu_ids(device)

    def _setup_training(self, config, device: torch.device, distributed: Distributed, dataset, generator_params,
                        discriminator_params) -> None:
        self.config, self.device = config, device
        self.precision = Precision(config.amp, device, distributed)
        self.cuda_graphs = choose_cuda_graphs(config, device, distributed.world)
        betas = (config.beta1, 0.999)
        self.optG = adam(generator_params, config.lr, betas, device, self.cuda_graphs.enabled)
        self.optD = adam(discriminator_params, config.lr, betas, device, self.cuda_graphs.enabled)
        self.schedulers = [linear_decay(opt, config.epochs, config.epochs_decay) for opt in (self.optG, self.optD)]
        self.d_loss = DiscriminatorLoss(config.gan_mode) if config.impl == "fused" else None
        pairs = [dataset[i] for i in range(min(3, len(dataset)))]  # the same inputs in every visuals grid
        self.fixed_A, self.fixed_B = (torch.stack(images).to(device) for images in zip(*pairs))

    def networks(self) -> dict:
        return {name: getattr(self, name) for name in self.net_names}

    def optimizers(self) -> dict:
        return {"optG": self.optG, "optD": self.optD}

    def extra_state(self) -> dict:
        return {"schedulers": [s.state_dict() for s in self.schedulers]}

    def load_extra_state(self, state: dict) -> None:
        for scheduler, saved in zip(self.schedulers, state["schedulers"]):
            scheduler.load_state_dict(saved)

    def first_batch(self, batch: tuple[torch.Tensor, ...], out: Path) -> None:
        pass

    def visuals(self, real_A: torch.Tensor, real_B: torch.Tensor) -> list[torch.Tensor]:
        """Rows of three images for each input pair (the recipe's translations)."""
        raise NotImplementedError

    def sample(self, epoch: int, out: Path, write: bool = True) -> None:
        """The recipe's visuals of the same few training pairs, in eval mode (no side effect on the
        running statistics; no synchronized norm to wait for: rank 0 alone runs it)."""
        if not write:
            return
        nets = [getattr(self, name) for name in self.net_names]
        modes = [net.training for net in nets]
        for net in nets:
            net.eval()
        with torch.no_grad(), self.precision.autocast():
            rows = self.visuals(self.fixed_A, self.fixed_B)
        for net, mode in zip(nets, modes):
            net.train(mode)
        save_grid(torch.cat(rows), out / f"visuals_epoch_{epoch + 1:03d}.png", nrow=3)

    def end_epoch(self, epoch: int, out: Path, write: bool = True) -> None:
        for name in self.net_names if write else ():
            state = getattr(self, name).state_dict()
            atomic_save(state, out / f"latest_net_{name}.pth")
            if (epoch + 1) % self.config.save_epoch_freq == 0:
                atomic_save(state, out / f"{epoch + 1}_net_{name}.pth")
        for scheduler in self.schedulers:
            scheduler.step()
