"""CycleGAN training, following junyanz's cycle_gan_model: G_A: A -> B and G_B: B -> A
(resnet_9blocks, instance norm), PatchGAN discriminators D_A (on B) and D_B (on A), LSGAN;
each iteration one generator step on the six-term objective (GAN x2, cycle L1 x2 with
lambda_A/B, identity L1 x2 with lambda_identity) with the discriminators frozen, then one step
of both discriminators on 0.5 * (real + pooled fake) (an image pool of 50); Adam(2e-4, (0.5,
0.999)); the 'linear' rate policy (constant `epochs`, then decay over `epochs_decay`).
Checkpoints as the reference names them: latest_net_G_A.pth ... every epoch and
<epoch>_net_G_A.pth ... every `save_epoch_freq` epochs (plain state_dicts).

impl='fused' trains genimg_fast's networks with CycleGANGeneratorLoss / DiscriminatorLoss,
impl='reference' plain torch.nn with torch's losses, for A/B runs. The image pools live on the
device and draw from the device's generator (train/device_image_pool.py), so the whole iteration,
pools included, is captured by --cuda-graphs. Resumable exactly (pools and random state included).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genimg_fast.data import UnalignedFolder, UnpairedShapeStyles
from genimg_fast.models import define_D, define_G
from genimg_fast.nn import CycleGANGeneratorLoss
from genimg_fast.train.device_image_pool import DeviceImagePool
from genimg_fast.train.distributed import Distributed
from genimg_fast.train.image_to_image import SAME_ON_RESUME as IMAGE_TO_IMAGE_SAME_ON_RESUME
from genimg_fast.train.image_to_image import (ImageToImageOptions, ImageToImageRecipe, reference_gan_loss,
                                              train_image_to_image)
from genimg_fast.train.options import prepare_batch, prepare_networks
from genimg_fast.train.requires_grad import set_requires_grad

SAME_ON_RESUME = IMAGE_TO_IMAGE_SAME_ON_RESUME + ("lambda_A", "lambda_B", "lambda_identity", "pool_size")


@dataclass
class CycleGANConfig(ImageToImageOptions):
    out: str = "runs/cyclegan"        # data: 'shapes' or a dataroot with <phase>A/ and <phase>B/
    netG: str = "resnet_9blocks"
    norm: str = "instance"
    gan_mode: str = "lsgan"
    lambda_A: float = 10.0
    lambda_B: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50


class CycleGANRecipe(ImageToImageRecipe):
    loss_keys = ["loss_G", "D_A", "D_B"]
    net_names = ("G_A", "G_B", "D_A", "D_B")

    def __init__(self, config: CycleGANConfig, device: torch.device, dataset,
                 distributed: Distributed | None = None) -> None:
        distributed = distributed or Distributed()
        fused, ids = self._start("CycleGAN", config, device)
        self.G_A = define_G(3, 3, config.ngf, config.netG, config.norm, False, gpu_ids=ids, fused=fused)
        self.G_B = define_G(3, 3, config.ngf, config.netG, config.norm, False, gpu_ids=ids, fused=fused)
        self.D_A = define_D(3, config.ndf, config.netD, norm=config.norm, gpu_ids=ids, fused=fused)
        self.D_B = define_D(3, config.ndf, config.netD, norm=config.norm, gpu_ids=ids, fused=fused)
        prepare_networks([self.G_A, self.G_B, self.D_A, self.D_B], config, distributed)
        self._setup_training(config, device, distributed, dataset,
                             itertools.chain(self.G_A.parameters(), self.G_B.parameters()),
                             itertools.chain(self.D_A.parameters(), self.D_B.parameters()))
        self.pool_A, self.pool_B = DeviceImagePool(config.pool_size), DeviceImagePool(config.pool_size)
        if fused:
            self.g_loss = CycleGANGeneratorLoss(config.gan_mode, config.lambda_A, config.lambda_B, config.lambda_identity)

    def visuals(self, real_A: torch.Tensor, real_B: torch.Tensor) -> list[torch.Tensor]:
        """real_A, fake_B, rec_A and real_B, fake_A, rec_B, for each pair."""
        fake_B, fake_A = self.G_A(real_A), self.G_B(real_B)
        rec_A, rec_B = self.G_B(fake_B), self.G_A(fake_A)
        return [t[i:i + 1].float() for i in range(len(real_A))
                for t in (real_A, fake_B, rec_A, real_B, fake_A, rec_B)]

    def process_state(self) -> dict:
        """Each process's pools hold the fakes of its own slices."""
        return {"pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict()}

    def graph_state(self) -> list:
        return [self.pool_A, self.pool_B]

    def load_process_state(self, state: dict) -> None:
        self.pool_A.load_state_dict(state["pool_A"], self.device)
        self.pool_B.load_state_dict(state["pool_B"], self.device)

    def _generator_loss(self, fake_B, fake_A, rec_A, real_A, rec_B, real_B, idt_A, idt_B):
        c = self.config
        if c.impl == "fused":
            total, terms = self.g_loss(self.D_A(fake_B), self.D_B(fake_A), rec_A, real_A, rec_B, real_B, idt_A, idt_B)
            return total, {k: terms[k] for k in ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")}
        terms = {"G_A": reference_gan_loss(self.D_A(fake_B), c.gan_mode, True),
                 "G_B": reference_gan_loss(self.D_B(fake_A), c.gan_mode, True),
                 "cycle_A": F.l1_loss(rec_A, real_A) * c.lambda_A, "cycle_B": F.l1_loss(rec_B, real_B) * c.lambda_B}
        if c.lambda_identity > 0:
            terms["idt_A"] = F.l1_loss(idt_A, real_B) * c.lambda_B * c.lambda_identity
            terms["idt_B"] = F.l1_loss(idt_B, real_A) * c.lambda_A * c.lambda_identity
        else:
            terms["idt_A"] = terms["idt_B"] = torch.zeros((), device=real_A.device)
        return sum(terms.values()), terms

    def _discriminator_loss(self, net, real, fake):
        if self.config.impl == "fused":
            return self.d_loss(net(real), net(fake.detach()))[0]
        mode = self.config.gan_mode
        return 0.5 * (reference_gan_loss(net(real), mode, True) + reference_gan_loss(net(fake.detach()), mode, False))

    def graph_inputs(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return prepare_batch(batch, self.config)

    def graph_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """One iteration from device inputs alone (what --cuda-graphs captures, the pools' draws
        included)."""
        precision = self.precision
        with precision.autocast():
            fake_B = self.G_A(real_A)
            rec_A = self.G_B(fake_B)
            fake_A = self.G_B(real_B)
            rec_B = self.G_A(fake_A)
        set_requires_grad([self.D_A, self.D_B], False)
        self.optG.zero_grad(set_to_none=True)
        identity = self.config.lambda_identity > 0
        with precision.autocast():
            idt_A = self.G_A(real_B) if identity else None
            idt_B = self.G_B(real_A) if identity else None
            loss_G, terms = self._generator_loss(fake_B, fake_A, rec_A, real_A, rec_B, real_B, idt_A, idt_B)
        precision.backward(loss_G)
        precision.step(self.optG)
        set_requires_grad([self.D_A, self.D_B], True)
        self.optD.zero_grad(set_to_none=True)
        with precision.autocast():
            loss_D_A = self._discriminator_loss(self.D_A, real_B, self.pool_B.query(fake_B))
        precision.backward(loss_D_A)
        with precision.autocast():
            loss_D_B = self._discriminator_loss(self.D_B, real_A, self.pool_A.query(fake_A))
        precision.backward(loss_D_B)
        precision.step(self.optD)
        precision.update()
        return {"loss_G": loss_G.detach(), **{k: v.detach() for k, v in terms.items()}, "D_A": loss_D_A.detach(),
                "D_B": loss_D_B.detach()}


def train_cyclegan(config: CycleGANConfig) -> dict:
    return train_image_to_image(config, CycleGANRecipe, UnpairedShapeStyles, UnalignedFolder, SAME_ON_RESUME)
