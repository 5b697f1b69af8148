"""genimg_fast.convert on the reference architectures (DCGAN G and D as in pytorch/examples, a
CycleGAN-style ResNet generator, a pix2pix-style U-Net block): same state_dict, outputs, gradients
and running statistics as the original model; fold_batchnorm against the unfolded eval model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genimg_fast.convert import convert, fold_batchnorm, sync_batchnorm
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d

TOL = {"rtol": 1e-4, "atol": 1e-5}  # float32 (fold_batchnorm); the float64 comparisons use the defaults


def dcgan_generator(nz=100, ngf=64, nc=3) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True)]
    for mult in (8, 4, 2):
        layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())


def dcgan_discriminator(nc=3, ndf=64) -> nn.Sequential:
    layers = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for mult in (1, 2, 4):
        layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * mult * 2),
                   nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())


def dcgan_init(model: nn.Module, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return model


class ResnetBlock(nn.Module):
    def __init__(self, dim: int, norm) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim), nn.ReLU(True),
                                        nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), norm(dim))

    def forward(self, x):
        return x + self.conv_block(x)


def resnet_generator(norm=nn.InstanceNorm2d, ngf=8) -> nn.Sequential:
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), norm(ngf), nn.ReLU(True),
        nn.Conv2d(ngf, 2 * ngf, 3, 2, 1), norm(2 * ngf), nn.ReLU(True),
        ResnetBlock(2 * ngf, norm), ResnetBlock(2 * ngf, norm),
        nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1), norm(ngf), nn.ReLU(True),
        nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())


class UnetBlock(nn.Module):
    """pix2pix's middle block: the in-place LeakyReLU also rewrites the skip branch."""

    def __init__(self, outer: int, inner: int, submodule: nn.Module | None) -> None:
        super().__init__()
        down = [nn.LeakyReLU(0.2, True), nn.Conv2d(outer, inner, 4, 2, 1, bias=False)]
        if submodule is None:  # innermost: no down norm, so the ReLU does not follow a norm
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False)]
        else:
            down += [nn.BatchNorm2d(inner), submodule]
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False)]
        self.model = nn.Sequential(*down, *up, nn.BatchNorm2d(outer))

    def forward(self, x):
        return torch.cat([x, self.model(x)], 1)


def unet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), UnetBlock(4, 8, UnetBlock(8, 16, None)))


def random_like_input(model_input_shape, seed, dtype=torch.float64):
    return torch.randn(model_input_shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def step(model, x, seed):
    model.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_()
    y = model(x)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype))
    return y.detach(), x.grad, {n: p.grad for n, p in model.named_parameters()}


def assert_same_training(ref, fused, shape, steps=2):
    for i in range(steps):
        x = random_like_input(shape, i)
        y_ref, dx_ref, grads_ref = step(ref, x, 100 + i)
        y, dx, grads = step(fused, x, 100 + i)
        torch.testing.assert_close(y, y_ref)
        torch.testing.assert_close(dx, dx_ref)
        assert grads.keys() == grads_ref.keys()
        for name in grads:
            torch.testing.assert_close(grads[name], grads_ref[name], msg=lambda m, name=name: f"{name}: {m}")
    for (name, b), (name_ref, b_ref) in zip(fused.named_buffers(), ref.named_buffers(), strict=True):
        assert name == name_ref
        torch.testing.assert_close(b, b_ref, msg=lambda m, name=name: f"{name}: {m}")


def count(model, cls, **attrs):
    return sum(isinstance(m, cls) and all(getattr(m, k) == v for k, v in attrs.items()) for m in model.modules())


MODELS = {  # name: (build, input shape, expected fused modules as (class, attributes, how many))
    "dcgan_generator": (lambda: dcgan_init(dcgan_generator(), 0), (2, 100, 1, 1),
                        [(BatchNormAct2d, {"activation": "relu"}, 4)]),
    "dcgan_discriminator": (lambda: dcgan_init(dcgan_discriminator(), 1), (2, 3, 64, 64),
                            [(BatchNormAct2d, {"activation": "leaky_relu", "negative_slope": 0.2}, 3)]),
    "resnet_instance": (lambda: resnet_generator(), (2, 3, 16, 16),
                        [(InstanceNormAct2d, {"activation": "relu"}, 5),
                         (InstanceNormAct2d, {"activation": "identity"}, 2)]),
    "resnet_batch": (lambda: resnet_generator(nn.BatchNorm2d), (2, 3, 16, 16),
                     [(BatchNormAct2d, {"activation": "relu"}, 5), (BatchNormAct2d, {"activation": "identity"}, 2)]),
    "unet": (unet, (2, 3, 16, 16), [(BatchNormAct2d, {"activation": "identity"}, 3)]),
}


def test_dcgan_models_are_the_reference_ones():
    g, d = dcgan_generator(), dcgan_discriminator()
    assert (len(g.state_dict()), sum(p.numel() for p in g.parameters())) == (25, 3_576_704)
    assert (len(d.state_dict()), sum(p.numel() for p in d.parameters())) == (20, 2_765_568)


@pytest.mark.parametrize("name", MODELS)
def test_convert_keeps_state_dict_outputs_and_gradients(name):
    build, shape, expected = MODELS[name]
    ref = build().double()  # float64: a wrong formula shows, float32 rounding noise does not
    original_types = [type(m) for m in ref.modules()]
    fused = convert(ref)
    assert [type(m) for m in ref.modules()] == original_types  # the original is untouched
    assert not any(p is q for p in ref.parameters() for q in fused.parameters())
    for cls, attrs, n in expected:
        assert count(fused, cls, **attrs) == n, (cls.__name__, attrs)
    assert count(fused, nn.BatchNorm2d) == count(fused, nn.InstanceNorm2d) == 0
    assert count(fused, nn.ReLU) + count(fused, nn.LeakyReLU) == count(ref, nn.ReLU) + count(ref, nn.LeakyReLU) - sum(
        n for _, attrs, n in expected if attrs["activation"] != "identity")
    ref_state, fused_state = ref.state_dict(), fused.state_dict()
    assert list(fused_state) == list(ref_state)
    for key in ref_state:
        assert torch.equal(fused_state[key], ref_state[key]), key

    assert_same_training(ref, fused, shape)
    ref.eval(), fused.eval()
    assert_same_training(ref, fused, shape, steps=1)
    ref.load_state_dict(fused.state_dict(), strict=True)
    fused.load_state_dict(ref.state_dict(), strict=True)


def test_convert_inplace_returns_the_same_model():
    model = dcgan_discriminator(ndf=4)
    assert convert(model, inplace=True) is model
    assert isinstance(model[3], BatchNormAct2d) and isinstance(model[4], nn.Identity)


def test_sync_batchnorm_converts_and_marks_every_batch_norm():
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = dcgan_generator(nz=4, ngf=2)
            self.extra = nn.BatchNorm2d(1)  # outside any Sequential

        def forward(self, x):
            return self.extra(self.body(x)[:, :1])

    group = object()
    model = sync_batchnorm(Wrapper(), process_group=group)
    bns = [m for m in model.modules() if isinstance(m, BatchNormAct2d)]
    assert len(bns) == 5 and all(m.sync and m.process_group is group for m in bns)
    assert list(model.state_dict()) == list(Wrapper().state_dict())


# ---- fold_batchnorm ----

def conv_layer(transposed: bool, groups: int, bias: bool) -> nn.Module:
    if transposed:
        return nn.ConvTranspose2d(4, 6, 4, 2, 1, groups=groups, bias=bias)
    return nn.Conv2d(4, 6, 3, padding=1, groups=groups, bias=bias)


def randomized_bn(bn: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=g) + 0.5)
        if bn.weight is not None:
            bn.weight.copy_(torch.randn(bn.weight.shape, generator=g))
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=g))
    return bn


NORMS = {
    "bn": lambda: nn.BatchNorm2d(6),
    "bn_no_affine": lambda: nn.BatchNorm2d(6, affine=False),
    "fused_relu": lambda: BatchNormAct2d(6, activation="relu", eps=1e-3),
    "fused_leaky": lambda: BatchNormAct2d(6, activation="leaky_relu", negative_slope=0.2),
}


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("transposed", [False, True])
def test_fold_batchnorm_matches_the_eval_model(transposed, groups, bias, norm):
    torch.manual_seed(0)
    model = nn.Sequential(conv_layer(transposed, groups, bias), randomized_bn(NORMS[norm](), 1), nn.Tanh()).eval()
    folded = fold_batchnorm(model)
    assert type(model[1]) is type(NORMS[norm]()) and (model[0].bias is None) == (not bias)  # untouched
    expected_act = {"fused_relu": nn.ReLU, "fused_leaky": nn.LeakyReLU}.get(norm, nn.Identity)
    assert type(folded[1]) is expected_act and folded[0].bias is not None
    if norm == "fused_leaky":
        assert folded[1].negative_slope == 0.2
    x = torch.randn(3, 4, 5, 5)
    torch.testing.assert_close(folded(x), model(x), **TOL)


def test_fold_batchnorm_refuses_training_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(RuntimeError, match="training mode"):
        fold_batchnorm(model)
    model.eval()
    model[1].train()
    with pytest.raises(RuntimeError, match="training mode"):
        fold_batchnorm(model)


def test_fold_batchnorm_leaves_norms_without_running_stats():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, track_running_stats=False)).eval()
    folded = fold_batchnorm(model)
    assert isinstance(folded[1], nn.BatchNorm2d)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(folded(x), model(x))


def test_fold_batchnorm_after_convert_on_dcgan_generator():
    ref = dcgan_init(dcgan_generator(nz=8, ngf=4), 0)
    step(ref, torch.randn(4, 8, 1, 1), 0)  # non-trivial running statistics
    ref.eval()
    folded = fold_batchnorm(convert(ref))
    assert count(folded, BatchNormAct2d) == 0 and count(folded, nn.ReLU) == 4
    x = torch.randn(3, 8, 1, 1)
    torch.testing.assert_close(folded(x), ref(x), **TOL)


def test_sync_batch_norm_is_fused_only_after_a_2d_convolution():
    """nn.SyncBatchNorm takes any rank (convert_sync_batchnorm makes it from BatchNorm1d/3d): a
    projection head's or a 3-D conv's stays torch's and keeps working."""
    model = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 6 * 6, 8), nn.BatchNorm1d(8), nn.ReLU()))
    volume = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv3d(2, 4, 1), nn.BatchNorm3d(4), nn.ReLU()))
    converted, converted_volume = convert(model).eval(), convert(volume).eval()
    assert type(converted[1]) is BatchNormAct2d and converted[1].activation == "relu"
    assert type(converted[5]) is nn.SyncBatchNorm and type(converted[6]) is nn.ReLU
    assert type(converted_volume[1]) is nn.SyncBatchNorm
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(converted(x), model.eval()(x))
    v = torch.randn(2, 2, 3, 3, 3)
    torch.testing.assert_close(converted_volume(v), volume.eval()(v))
