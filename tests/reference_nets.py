"""Independent plain-torch.nn references of the recipes' networks (pytorch/examples' DCGAN and
VAE, junyanz's CycleGAN and pix2pix: their layer tables and key layouts) for the model tests. Nothing here
imports genimg_fast: they are what the drop-in models are checked against."""
from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels)  # affine=False, no running stats: no keys
    return nn.Identity()


class DCGANG(nn.Module):
    """The 64x64 table: ConvT(nz, 8ngf, 4, 1, 0) ... ConvT(ngf, nc, 4, 2, 1), Tanh."""

    def __init__(self, nz=100, ngf=64, nc=3):
        super().__init__()
        widths = [nz, 8 * ngf, 4 * ngf, 2 * ngf, ngf]
        layers = []
        for i in range(4):
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, stride, pad, bias=False),
                       nn.BatchNorm2d(widths[i + 1]), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z)


class DCGAND(nn.Module):
    def __init__(self, nc=3, ndf=64):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(4 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 8 * ndf, 4, 2, 1, bias=False), nn.BatchNorm2d(8 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * ndf, 1, 4, 1, 0, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


class MLPVAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x, eps):
        h = torch.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + eps * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z)))), mu, logvar


class ResnetBlockRef(nn.Module):
    def __init__(self, dim, norm, dropout):
        super().__init__()
        bias = norm == "instance"
        first = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim), nn.ReLU(True)]
        second = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*first, *([nn.Dropout(0.5)] if dropout else []), *second)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetG(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, ngf=64, norm="instance", blocks=9, dropout=False):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, ngf, 7, bias=bias), _norm(norm, ngf), nn.ReLU(True),
                  nn.Conv2d(ngf, 2 * ngf, 3, 2, 1, bias=bias), _norm(norm, 2 * ngf), nn.ReLU(True),
                  nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1, bias=bias), _norm(norm, 4 * ngf), nn.ReLU(True)]
        layers += [ResnetBlockRef(4 * ngf, norm, dropout) for _ in range(blocks)]
        layers += [nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1, bias=bias), _norm(norm, 2 * ngf),
                   nn.ReLU(True),
                   nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1, bias=bias), _norm(norm, ngf),
                   nn.ReLU(True), nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UnetLevel(nn.Module):
    """One level of the recursive U-Net, its `model` list as the spec gives it."""

    def __init__(self, outer, inner, norm, sub=None, in_nc=None, kind="middle", dropout=False):
        super().__init__()
        bias = norm == "instance"
        self.kind = kind
        in_nc = in_nc or outer
        if kind == "outermost":
            layers = [nn.Conv2d(in_nc, inner, 4, 2, 1, bias=bias), sub, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1), nn.Tanh()]
        elif kind == "innermost":
            layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(in_nc, inner, 4, 2, 1, bias=bias), nn.ReLU(True),
                      nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]
        else:
            layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(in_nc, inner, 4, 2, 1, bias=bias), _norm(norm, inner), sub,
                      nn.ReLU(True), nn.ConvTranspose2d(2 * inner, outer, 4, 2, 1, bias=bias), _norm(norm, outer)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        y = self.model(x)  # the in-place LeakyReLU has already changed x: the skip carries LeakyReLU(x)
        return y if self.kind == "outermost" else torch.cat([x, y], 1)


class UnetG(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, downs=8, ngf=64, norm="batch", dropout=False):
        super().__init__()
        level = UnetLevel(8 * ngf, 8 * ngf, norm, kind="innermost")
        for _ in range(downs - 5):
            level = UnetLevel(8 * ngf, 8 * ngf, norm, level, dropout=dropout)
        level = UnetLevel(4 * ngf, 8 * ngf, norm, level)
        level = UnetLevel(2 * ngf, 4 * ngf, norm, level)
        level = UnetLevel(ngf, 2 * ngf, norm, level)
        self.model = UnetLevel(out_nc, ngf, norm, level, in_nc=in_nc, kind="outermost")

    def forward(self, x):
        return self.model(x)


class PatchD(nn.Module):
    """basic (n_layers 3): all k4 p1; strides 2, 2, 2, 1, 1."""

    def __init__(self, in_nc=3, ndf=64, norm="batch"):
        super().__init__()
        bias = norm == "instance"
        self.model = nn.Sequential(
            nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 2 * ndf, 4, 2, 1, bias=bias), _norm(norm, 2 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1, bias=bias), _norm(norm, 4 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(4 * ndf, 8 * ndf, 4, 1, 1, bias=bias), _norm(norm, 8 * ndf), nn.LeakyReLU(0.2, True),
            nn.Conv2d(8 * ndf, 1, 4, 1, 1))

    def forward(self, x):
        return self.model(x)


class PixelD(nn.Module):
    def __init__(self, in_nc=3, ndf=64, norm="batch"):
        super().__init__()
        bias = norm == "instance"
        self.net = nn.Sequential(nn.Conv2d(in_nc, ndf, 1), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(ndf, 2 * ndf, 1, bias=bias), _norm(norm, 2 * ndf), nn.LeakyReLU(0.2, True),
                                 nn.Conv2d(2 * ndf, 1, 1, bias=bias))

    def forward(self, x):
        return self.net(x)


def junyanz_normal_init(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """networks.py's init_func for init_type 'normal', by class name as the reference matches."""
    def init(m):
        name = m.__class__.__name__
        if hasattr(m, "weight") and (name.find("Conv") != -1 or name.find("Linear") != -1):
            nn.init.normal_(m.weight.data, 0.0, gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias.data, 0.0)
        elif name.find("BatchNorm2d") != -1:
            nn.init.normal_(m.weight.data, 1.0, gain)
            nn.init.constant_(m.bias.data, 0.0)
    return net.apply(init)


class ConvVAERef(nn.Module):
    """AntixK/PyTorch-VAE's VanillaVAE layout: encoder blocks Conv(3, s2, p1)+BN+LeakyReLU, fc_mu,
    fc_var, decoder_input, decoder blocks ConvT(3, s2, p1, op1)+BN+LeakyReLU, final_layer."""

    def __init__(self, in_channels=3, latent_dim=128, hidden=(32, 64, 128, 256, 512)):
        super().__init__()
        enc, c = [], in_channels
        for h in hidden:
            enc.append(nn.Sequential(nn.Conv2d(c, h, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(h),
                                     nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*enc)
        self.fc_mu = nn.Linear(hidden[-1] * 4, latent_dim)
        self.fc_var = nn.Linear(hidden[-1] * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, hidden[-1] * 4)
        rev = list(reversed(hidden))
        self.decoder = nn.Sequential(*[nn.Sequential(
            nn.ConvTranspose2d(rev[i], rev[i + 1], kernel_size=3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(rev[i + 1]), nn.LeakyReLU()) for i in range(len(rev) - 1)])
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(rev[-1], rev[-1], kernel_size=3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(rev[-1]), nn.LeakyReLU(), nn.Conv2d(rev[-1], in_channels, kernel_size=3, padding=1),
            nn.Tanh())

    def decode(self, z):
        return self.final_layer(self.decoder(self.decoder_input(z).view(-1, 512, 2, 2)))
