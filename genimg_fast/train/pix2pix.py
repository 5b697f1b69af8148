"""pix2pix training, following junyanz's pix2pix_model: G = unet_256 with batch norm and
dropout, D = PatchGAN on cat(A, B) (6 channels), vanilla GAN (BCE with logits); each iteration
first one D step on 0.5 * (D(cat(A, fake)) as fake + D(cat(A, B)) as real), then one G step
on GAN(D(cat(A, fake)), real) + lambda_L1 * L1(fake, B) with D frozen; Adam(2e-4, (0.5,
0.999)); the 'linear' rate policy. Checkpoints latest_net_G.pth / latest_net_D.pth every epoch
and <epoch>_net_G.pth ... every `save_epoch_freq` epochs (plain state_dicts).

impl='fused' uses genimg_fast's networks with Pix2PixGeneratorLoss / DiscriminatorLoss,
impl='reference' plain torch.nn and torch's losses, for A/B runs. Resumable exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genimg_fast.data import AlignedFolder, OutlinesToShapes
from genimg_fast.models import define_D, define_G
from genimg_fast.nn import Pix2PixGeneratorLoss
from genimg_fast.train.distributed import Distributed
from genimg_fast.train.image_to_image import SAME_ON_RESUME as IMAGE_TO_IMAGE_SAME_ON_RESUME
from genimg_fast.train.image_to_image import (ImageToImageOptions, ImageToImageRecipe, reference_gan_loss,
                                              train_image_to_image)
from genimg_fast.train.options import prepare_batch, prepare_networks
from genimg_fast.train.requires_grad import set_requires_grad

SAME_ON_RESUME = IMAGE_TO_IMAGE_SAME_ON_RESUME + ("direction", "dropout", "lambda_L1")


@dataclass
class Pix2PixConfig(ImageToImageOptions):
    out: str = "runs/pix2pix"         # data: 'shapes' (outlines -> filled shapes) or a dataroot of A|B images
    direction: str = "AtoB"
    netG: str = "unet_256"
    norm: str = "batch"
    dropout: bool = True              # the reference's default (its --no_dropout turns it off)
    gan_mode: str = "vanilla"
    lambda_L1: float = 100.0


class Pix2PixRecipe(ImageToImageRecipe):
    loss_keys = ["G_GAN", "G_L1", "D"]
    net_names = ("G", "D")

    def __init__(self, config: Pix2PixConfig, device: torch.device, dataset,
                 distributed: Distributed | None = None) -> None:
        distributed = distributed or Distributed()
        fused, ids = self._start("pix2pix", config, device)
        self.G = define_G(3, 3, config.ngf, config.netG, config.norm, config.dropout, gpu_ids=ids, fused=fused)
        self.D = define_D(6, config.ndf, config.netD, norm=config.norm, gpu_ids=ids, fused=fused)
        prepare_networks([self.G, self.D], config, distributed)
        self._setup_training(config, device, distributed, dataset, self.G.parameters(), self.D.parameters())
        if fused:
            self.g_loss = Pix2PixGeneratorLoss(config.gan_mode, config.lambda_L1)

    def visuals(self, real_A: torch.Tensor, real_B: torch.Tensor) -> list[torch.Tensor]:
        """real_A, fake_B, real_B for each pair (the translation direction's A and B)."""
        if self.config.direction == "BtoA":
            real_A, real_B = real_B, real_A
        fake_B = self.G(real_A)
        return [t[i:i + 1].float() for i in range(len(real_A)) for t in (real_A, fake_B, real_B)]

    def graph_inputs(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        batch = prepare_batch(batch, self.config)
        return batch if self.config.direction == "AtoB" else batch[::-1]

    def graph_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """One iteration from device inputs alone (what --cuda-graphs captures)."""
        mode, precision = self.config.gan_mode, self.precision
        with precision.autocast():
            fake_B = self.G(real_A)
        # D first: fake, then real, as the reference calls them (batch norm sees them in that order)
        set_requires_grad([self.D], True)
        self.optD.zero_grad(set_to_none=True)
        with precision.autocast():
            fake_AB = torch.cat((real_A, fake_B), 1)
            pred_fake = self.D(fake_AB.detach())
            pred_real = self.D(torch.cat((real_A, real_B), 1))
            if self.config.impl == "fused":
                loss_D = self.d_loss(pred_real, pred_fake)[0]
            else:
                loss_D = 0.5 * (reference_gan_loss(pred_fake, mode, False) + reference_gan_loss(pred_real, mode, True))
        precision.backward(loss_D)
        precision.step(self.optD)
        set_requires_grad([self.D], False)
        self.optG.zero_grad(set_to_none=True)
        with precision.autocast():
            pred_fake = self.D(fake_AB)
            if self.config.impl == "fused":
                loss_G, terms = self.g_loss(pred_fake, fake_B, real_B)
                gan, l1 = terms["G_GAN"], terms["G_L1"]
            else:
                gan, l1 = reference_gan_loss(pred_fake, mode, True), F.l1_loss(fake_B, real_B) * self.config.lambda_L1
                loss_G = gan + l1
        precision.backward(loss_G)
        precision.step(self.optG)
        precision.update()
        return {"G_GAN": gan.detach(), "G_L1": l1.detach(), "D": loss_D.detach()}


def train_pix2pix(config: Pix2PixConfig) -> dict:
    if config.direction not in ("AtoB", "BtoA"):
        raise ValueError(f"direction must be 'AtoB' or 'BtoA', got {config.direction!r}")
    return train_image_to_image(config, Pix2PixRecipe, OutlinesToShapes, AlignedFolder, SAME_ON_RESUME)
