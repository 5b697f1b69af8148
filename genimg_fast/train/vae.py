"""VAE training. model='mlp' follows pytorch/examples vae/main.py: the 784-400-20 VAE on 28x28
grey images in [0, 1], Adam(1e-3), loss = BCE(sum) + KL(sum), logged per image; each epoch
`reconstruction_N.png` (8 inputs over their reconstructions) and `sample_N.png` (64 decodes of a
fixed z). model='conv' is the convolutional VAE (64x64 colour, AntixK/PyTorch-VAE's VanillaVAE
recipe: Adam(5e-3) with an exponential decay of 0.95 a epoch, MSE(mean) + 0.00025 * KL per
image), where the fused norms pay. `vae_epoch_N.pth` (plain state_dict) after every epoch.

impl='fused' uses VAELoss (and for 'conv' the fused network), impl='reference' torch's losses
and plain layers, for A/B runs. Resumable exactly, like every trainer (see loop.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genimg_fast.data import ColouredShapes, image_folder
from genimg_fast.models import VAE, ConvVAE
from genimg_fast.nn import VAELoss
from genimg_fast.seeding import seeded_generator
from genimg_fast.train.checkpoint import atomic_save
from genimg_fast.train.distributed import Distributed
from genimg_fast.train.cuda_graphs_choice import choose_cuda_graphs
from genimg_fast.train.loop import run_training, start_run
from genimg_fast.train.options import RunOptions, adam, prepare_batch, prepare_networks
from genimg_fast.train.precision import Precision
from genimg_fast.train.recipe_base import RecipeBase
from genimg_fast.train.samples import save_grid

SAME_ON_RESUME = ("model", "data", "dataset_size", "batch_size", "lr", "latent_dim", "impl", "seed", "amp")
# model -> (image size, channels, default lr, default latent size, default batch size)
MODELS = {"mlp": (28, 1, 1e-3, 20, 128), "conv": (64, 3, 5e-3, 128, 64)}


@dataclass
class VAEConfig(RunOptions):
    model: str = "mlp"                # 'mlp' (pytorch/examples, 28x28 grey) or 'conv' (64x64 colour)
    data: str = "shapes"              # 'shapes' (built in) or a folder of images
    out: str = "runs/vae"
    dataset_size: int = 8192          # images in the built-in set
    batch_size: int | None = None     # default: the recipe's (128 mlp, 64 conv)
    epochs: int = 10
    lr: float | None = None           # default: the model's recipe (1e-3 mlp, 5e-3 conv)
    latent_dim: int | None = None     # default: 20 mlp, 128 conv
    sample_every: int = 0             # only at each epoch's end, as the example's test()


def _reference_loss(model: str):
    if model == "mlp":  # pytorch/examples' loss_function (in fp32: binary_cross_entropy is not autocast-safe)
        def loss(recon, x, mu, logvar):
            with torch.autocast(recon.device.type, enabled=False):
                recon, mu, logvar = recon.float(), mu.float(), logvar.float()
                bce = F.binary_cross_entropy(recon, x.view(-1, 784).float(), reduction="sum")
                return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    else:  # VanillaVAE.loss_function
        def loss(recon, x, mu, logvar):
            kld = torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1), dim=0)
            return F.mse_loss(recon, x) + 0.00025 * kld
    return loss


class VAERecipe(RecipeBase):
    loss_keys = ["loss"]

    def __init__(self, config: VAEConfig, device: torch.device, dataset, distributed: Distributed | None = None) -> None:
        self.model_name = config.model
        self.distributed = distributed or Distributed()
        self.title = f"VAE {config.model} ({config.impl})"
        _, channels, lr, latent, _ = MODELS[config.model]
        latent = config.latent_dim or latent
        torch.manual_seed(config.seed)
        if config.model == "mlp":
            self.model = VAE(latent_dim=latent).to(device)
            fused_loss = VAELoss()
        else:
            self.model = ConvVAE(channels, latent, fused=config.impl == "fused").to(device)
            fused_loss = VAELoss("mse", "mean", kld_weight=0.00025, kld_reduction="batchmean")
        self.config, self.precision = config, Precision(config.amp, device, self.distributed)
        self.cuda_graphs = choose_cuda_graphs(config, device, self.distributed.world)
        prepare_networks([self.model], config, self.distributed)
        self.loss = (lambda *a: fused_loss(*a)[0]) if config.impl == "fused" else _reference_loss(config.model)
        self.optimizer = adam(self.model.parameters(), config.lr or lr, (0.9, 0.999), device,
                              self.cuda_graphs.enabled)
        self.scheduler = (torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.95)
                          if config.model == "conv" else None)
        self.fixed_z = torch.randn(64, latent, generator=seeded_generator(config.seed + 2)).to(device)
        self.fixed_images = torch.stack([dataset[i][0] for i in range(min(8, len(dataset)))]).to(device)

    def networks(self) -> dict:
        return {"model": self.model}

    def optimizers(self) -> dict:
        return {"optimizer": self.optimizer}

    def extra_state(self) -> dict:
        return {} if self.scheduler is None else {"scheduler": self.scheduler.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])

    def graph_inputs(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (prepare_batch(batch, self.config)[0],)

    def graph_step(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """One iteration from device inputs alone (what --cuda-graphs captures)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.autocast():
            recon, mu, logvar = self.model(images)
            loss = self.loss(recon, images, mu, logvar)
        # the examples' loss is a sum over the batch: averaging the processes' gradients would
        # divide it by their number, so each process's sum counts that many times
        scale = self.distributed.world if self.model_name == "mlp" else 1
        self.precision.backward(loss * scale if scale != 1 else loss)
        self.precision.step(self.optimizer)
        self.precision.update()
        per_image = loss.detach() / images.shape[0] if self.model_name == "mlp" else loss.detach()
        return {"loss": per_image}

    def first_batch(self, batch: tuple[torch.Tensor, ...], out: Path) -> None:
        pass

    def _as_images(self, flat: torch.Tensor) -> torch.Tensor:
        size, channels, _, _, _ = MODELS[self.model_name]
        return flat.view(-1, channels, size, size)

    def sample(self, epoch: int, out: Path, write: bool = True) -> None:
        """As the example's test(): eval mode, no gradients; epochs count from 1 in the names."""
        if not write:  # eval mode: no synchronized statistics, only rank 0 needs to run it
            return
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            save_grid(self._as_images(self.model.decode(self.fixed_z)), out / f"sample_{epoch + 1}.png")
            recon, _, _ = self.model(self.fixed_images)
            comparison = torch.cat([self.fixed_images, self._as_images(recon)])
            save_grid(comparison, out / f"reconstruction_{epoch + 1}.png", nrow=len(self.fixed_images))
        self.model.train(was_training)

    def end_epoch(self, epoch: int, out: Path, write: bool = True) -> None:
        if write:
            atomic_save(self.model.state_dict(), out / f"vae_epoch_{epoch}.pth")
        if self.scheduler is not None:
            self.scheduler.step()


def train_vae(config: VAEConfig) -> dict:
    if config.model not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}, got {config.model!r}")
    if config.batch_size is None:
        config = dataclasses.replace(config, batch_size=MODELS[config.model][4])
    distributed, device = start_run(config)
    size, channels, _, _, _ = MODELS[config.model]
    if config.data == "shapes":
        dataset = ColouredShapes(config.dataset_size, size, channels, seed=config.seed, unit_range=True)
    else:
        dataset = image_folder(config.data, size, channels, unit_range=True)
    return run_training(config, config.epochs, SAME_ON_RESUME,
                        VAERecipe(config, device, dataset, distributed), dataset, device, distributed)
