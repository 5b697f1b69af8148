"""A stand-in for junyanz's CycleGANModel with the interface docs/cuda-graphs.md uses (its
attribute names, optimizers list, image pools and the order of optimize_parameters), built from
genimg_fast's networks and losses, so that the docs' example runs in the tests without the
reference repository."""
from __future__ import annotations

import itertools
from types import SimpleNamespace

import torch
from torch import nn

from genimg_fast.models import define_D, define_G
from genimg_fast.nn import GANLoss
from genimg_fast.train.requires_grad import set_requires_grad

OPTIONS = dict(ngf=8, ndf=8, netG="resnet_6blocks", pool_size=3, lambda_A=10.0, lambda_B=10.0, lambda_identity=0.5,
               lr=2e-4, beta1=0.5)


class HostPool:
    """Stands in for junyanz's own (host) pool until the example replaces it."""

    def query(self, images):
        raise AssertionError("the docs' example replaces the pools before training")


class CycleGANModelLike:
    def __init__(self, opt: SimpleNamespace, device: torch.device) -> None:
        self.opt, self.device = opt, device
        torch.manual_seed(0)
        self.netG_A = define_G(3, 3, opt.ngf, opt.netG, "instance").to(device)
        self.netG_B = define_G(3, 3, opt.ngf, opt.netG, "instance").to(device)
        self.netD_A = define_D(3, opt.ndf, "basic", norm="instance").to(device)
        self.netD_B = define_D(3, opt.ndf, "basic", norm="instance").to(device)
        self.fake_A_pool, self.fake_B_pool = HostPool(), HostPool()
        self.criterionGAN, self.criterionCycle, self.criterionIdt = GANLoss("lsgan"), nn.L1Loss(), nn.L1Loss()
        betas = (opt.beta1, 0.999)
        self.optimizer_G = torch.optim.Adam(itertools.chain(self.netG_A.parameters(), self.netG_B.parameters()),
                                            lr=opt.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(itertools.chain(self.netD_A.parameters(), self.netD_B.parameters()),
                                            lr=opt.lr, betas=betas)
        self.optimizers = [self.optimizer_G, self.optimizer_D]

    def setup(self, opt) -> None:
        self.schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lambda epoch: 1.0) for o in self.optimizers]

    def forward(self) -> None:
        self.fake_B = self.netG_A(self.real_A)
        self.rec_A = self.netG_B(self.fake_B)
        self.fake_A = self.netG_B(self.real_B)
        self.rec_B = self.netG_A(self.fake_A)

    def backward_D_basic(self, netD, real, fake):
        loss = 0.5 * (self.criterionGAN(netD(real), True) + self.criterionGAN(netD(fake.detach()), False))
        loss.backward()
        return loss

    def backward_D_A(self) -> None:
        self.loss_D_A = self.backward_D_basic(self.netD_A, self.real_B, self.fake_B_pool.query(self.fake_B))

    def backward_D_B(self) -> None:
        self.loss_D_B = self.backward_D_basic(self.netD_B, self.real_A, self.fake_A_pool.query(self.fake_A))

    def backward_G(self) -> None:
        o = self.opt
        idt_A, idt_B = self.netG_A(self.real_B), self.netG_B(self.real_A)
        self.loss_G = (self.criterionGAN(self.netD_A(self.fake_B), True) + self.criterionGAN(self.netD_B(self.fake_A), True)
                       + self.criterionCycle(self.rec_A, self.real_A) * o.lambda_A
                       + self.criterionCycle(self.rec_B, self.real_B) * o.lambda_B
                       + self.criterionIdt(idt_A, self.real_B) * o.lambda_B * o.lambda_identity
                       + self.criterionIdt(idt_B, self.real_A) * o.lambda_A * o.lambda_identity)
        self.loss_G.backward()

    def optimize_parameters(self) -> None:
        self.forward()
        set_requires_grad([self.netD_A, self.netD_B], False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
        set_requires_grad([self.netD_A, self.netD_B], True)
        self.optimizer_D.zero_grad()
        self.backward_D_A()
        self.backward_D_B()
        self.optimizer_D.step()

    def networks(self) -> list[nn.Module]:
        return [self.netG_A, self.netG_B, self.netD_A, self.netD_B]


def create_model_on(device: torch.device):
    """The docs' create_model(opt) for this device, and its opt."""
    opt = SimpleNamespace(**OPTIONS)
    return (lambda o: CycleGANModelLike(o, device)), opt
