"""The drop-in networks against the independent references of tests/reference_nets.py: same
state_dict keys and shapes, the spec's parameter counts, strict loading both ways, equal outputs
(train and eval) and gradients, channels_last and bf16 autocast, clear errors, old InstanceNorm
checkpoints, to_reference() and fold_batchnorm()."""
from __future__ import annotations

import pytest
import torch
from reference_nets import (MLPVAE, ConvVAERef, DCGAND, DCGANG, PatchD, PixelD, ResnetG, UnetG,
                            junyanz_normal_init)
from torch import nn

import genimg_fast
from genimg_fast.models import (VAE, ConvVAE, DCGANDiscriminator, DCGANGenerator, define_D, define_G)
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d

# name -> (ours, reference, input shape, spec parameter count or None); small widths keep CPU time low
# where the count is not the spec's
CASES = {
    "dcgan_G": (lambda: DCGANGenerator(), lambda: DCGANG(), (4, 100, 1, 1), 3_576_704),
    "dcgan_D": (lambda: DCGANDiscriminator(), lambda: DCGAND(), (4, 3, 64, 64), 2_765_568),
    "resnet_9blocks_instance": (lambda: define_G(3, 3, 64, "resnet_9blocks", "instance"), lambda: ResnetG(),
                                (1, 3, 32, 32), 11_378_179),
    "resnet_9blocks_batch": (lambda: define_G(3, 3, 64, "resnet_9blocks", "batch"),
                             lambda: ResnetG(norm="batch"), (2, 3, 32, 32), 11_383_427),
    "resnet_6blocks_dropout": (lambda: define_G(3, 3, 16, "resnet_6blocks", "batch", use_dropout=True),
                               lambda: ResnetG(ngf=16, norm="batch", blocks=6, dropout=True), (2, 3, 32, 32), None),
    "unet_256_batch": (lambda: define_G(3, 3, 64, "unet_256", "batch"), lambda: UnetG(), (2, 3, 256, 256),
                       54_413_955),
    "unet_128_instance": (lambda: define_G(3, 3, 16, "unet_128", "instance", use_dropout=True),
                          lambda: UnetG(downs=7, ngf=16, norm="instance", dropout=True), (1, 3, 128, 128), None),
    "basic_D_instance": (lambda: define_D(3, 64, "basic", norm="instance"), lambda: PatchD(norm="instance"),
                         (1, 3, 64, 64), 2_764_737),
    "basic_D_batch_6ch": (lambda: define_D(6, 64, "basic", norm="batch"), lambda: PatchD(6), (2, 6, 64, 64),
                          2_768_705),
    "pixel_D": (lambda: define_D(3, 16, "pixel", norm="batch"), lambda: PixelD(ndf=16), (2, 3, 16, 16), None),
}


def _pair(name):
    ours_fn, ref_fn, shape, count = CASES[name]
    torch.manual_seed(0)
    ours = ours_fn()
    ref = ref_fn()
    ref.load_state_dict(ours.state_dict())
    return ours, ref, shape, count


def _close(actual, expected, rel=1e-4, what="", floor=0.0):
    """Close relative to the tensor's largest magnitude (gradients sum many float32 products), and
    at least `floor` absolute: a conv bias before an instance norm has a zero gradient in exact
    arithmetic, so both implementations give rounding noise of the size of the other gradients."""
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=rel, atol=max(rel * scale, floor), msg=lambda m: f"{what}: {m}")


def _same_dropout(fn, *args):
    torch.manual_seed(123)
    return fn(*args)


@pytest.mark.parametrize("name", list(CASES))
def test_keys_shapes_counts_and_strict_loading_both_ways(name):
    ours, ref, _, count = _pair(name)
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ours_sd)
    if count is not None:
        assert sum(p.numel() for p in ours.parameters()) == count
    ours.load_state_dict(ref_sd, strict=True)
    ref.load_state_dict(ours_sd, strict=True)
    assert any(isinstance(m, (BatchNormAct2d, InstanceNormAct2d)) for m in ours.modules()), "nothing fused"


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n][3] is None or n.startswith("dcgan")
                                  or n == "basic_D_instance"])
@pytest.mark.parametrize("training", [True, False])
def test_outputs_and_gradients_equal_the_reference(name, training):
    """In float64: in float32 a pre-activation within rounding of zero can take the ReLU's other
    side in one network and not the other (torch's CPU kernels round differently from one
    processor to another), and the gradients then differ legitimately by a whole element's worth."""
    ours, ref, shape, _ = _pair(name)
    ours.train(training).double(), ref.train(training).double()
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    y_ours, y_ref = _same_dropout(ours, x_ours), _same_dropout(ref, x_ref)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-10, atol=1e-10)
    gy = torch.randn_like(y_ref)
    y_ours.backward(gy), y_ref.backward(gy)
    _close(x_ours.grad, x_ref.grad, rel=1e-9, what="input grad")
    floor = 1e-10 * max(q.grad.abs().max().item() for q in ref.parameters())
    for (k, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        _close(p.grad, q.grad, rel=1e-9, what=k, floor=floor)
    for (k, b), (_, c) in zip(ours.named_buffers(), ref.named_buffers()):
        torch.testing.assert_close(b, c, rtol=1e-10, atol=1e-12, msg=lambda m, k=k: f"{k}: {m}")


def test_unet_256_forward_equals_the_reference_in_eval_mode():
    ours, ref, shape, _ = _pair("unet_256_batch")
    ours.eval(), ref.eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


def test_same_seed_gives_the_reference_s_initial_weights():
    """The layers are built (and initialized) in the reference's order: same seed, same weights."""
    torch.manual_seed(7)
    ours = DCGANGenerator(fused=False)
    torch.manual_seed(7)
    ref = DCGANG()
    ref.apply(lambda m: (nn.init.normal_(m.weight, 0.0, 0.02) if "Conv" in type(m).__name__ else
                         (nn.init.normal_(m.weight, 1.0, 0.02), nn.init.zeros_(m.bias))
                         if "BatchNorm" in type(m).__name__ else None))
    for (k, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        assert torch.equal(a, b), k


def test_vae_matches_the_examples_model():
    torch.manual_seed(0)
    ours, ref = VAE(), MLPVAE()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x = torch.rand(8, 1, 28, 28)
    torch.manual_seed(5)
    recon, mu, logvar = ours(x)
    torch.manual_seed(5)
    eps = torch.randn(8, 20)
    recon_ref, mu_ref, logvar_ref = ref(x, eps)
    torch.testing.assert_close(recon, recon_ref)
    torch.testing.assert_close(mu, mu_ref)
    torch.testing.assert_close(logvar, logvar_ref)
    assert sum(p.numel() for p in ours.parameters()) == 652_824
    assert ours.sample(3).shape == (3, 784)


def test_conv_vae_shapes_fusion_and_reference_export():
    torch.manual_seed(0)
    vae = ConvVAE(hidden_dims=[8, 16, 32, 32, 64], latent_dim=16)
    x = torch.randn(4, 3, 64, 64)
    recon, mu, logvar = vae(x)
    assert recon.shape == x.shape and mu.shape == logvar.shape == (4, 16)
    assert sum(isinstance(m, BatchNormAct2d) for m in vae.modules()) == 10
    plain = genimg_fast.to_reference(vae)
    assert not any(isinstance(m, (BatchNormAct2d, InstanceNormAct2d)) for m in plain.modules())
    with torch.no_grad():
        vae.eval(), plain.eval()
        torch.testing.assert_close(vae.decode(mu), plain.decode(mu), rtol=1e-5, atol=1e-5)
    assert vae.sample(2).shape == (2, 3, 64, 64)


@pytest.mark.parametrize("build,bad,match", [
    (lambda: define_G(3, 3, 8, "resnet_6blocks", "instance"), (1, 3, 30, 30), "divisible by 4"),
    (lambda: define_G(3, 3, 8, "unet_128", "batch"), (1, 3, 96, 96), "divisible by 128"),
    (lambda: define_G(3, 3, 8, "resnet_6blocks", "batch"), (1, 4, 32, 32), "expected 3 input channels"),
    (lambda: define_D(3, 8, "basic", norm="batch"), (2, 3, 16, 16), "at least 24"),
    (lambda: DCGANDiscriminator(ndf=8), (2, 3, 32, 32), "built for 64x64"),
    (lambda: DCGANGenerator(ngf=8), (2, 64, 1, 1), r"noise of shape \(N, 100, 1, 1\)"),
    (lambda: ConvVAE(hidden_dims=[4, 8]), (2, 3, 32, 32), "built for 64x64"),
])
def test_inputs_the_architecture_cannot_take_raise_clear_errors(build, bad, match):
    with pytest.raises(ValueError, match=match):
        build()(torch.randn(bad))


def test_unknown_factory_options_raise():
    with pytest.raises(ValueError, match="netG must be one of"):
        define_G(3, 3, 8, "unet_512")
    with pytest.raises(ValueError, match="norm must be one of"):
        define_D(3, 8, "basic", norm="group")
    with pytest.raises(ValueError, match="image_size must be one of"):
        DCGANGenerator(image_size=48)
    with pytest.raises(ValueError, match="DDP"):
        define_D(3, 8, "basic", gpu_ids=[0, 1])


@pytest.mark.parametrize("image_size", [32, 128])
def test_dcgan_other_image_sizes(image_size):
    g, d = DCGANGenerator(ngf=8, image_size=image_size), DCGANDiscriminator(ndf=8, image_size=image_size)
    images = g(torch.randn(2, 100))
    assert images.shape == (2, 3, image_size, image_size) and d(images).shape == (2,)


def test_logits_discriminator_has_the_same_keys_and_no_sigmoid():
    torch.manual_seed(0)
    probs, logits = DCGANDiscriminator(ndf=8), DCGANDiscriminator(ndf=8, logits=True)
    logits.load_state_dict(probs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(torch.sigmoid(logits(x)), probs(x))


def test_old_instance_norm_checkpoints_load_strictly():
    """junyanz's loader drops the running-stat keys old InstanceNorm checkpoints carry."""
    net = define_G(3, 3, 8, "resnet_6blocks", "instance")
    old = dict(net.state_dict())
    for prefix in ("model.2.", "model.10.conv_block.2."):
        old[prefix + "running_mean"], old[prefix + "running_var"] = torch.zeros(8 * (1 if "conv" not in prefix else 4)), \
            torch.ones(8 * (1 if "conv" not in prefix else 4))
        old[prefix + "num_batches_tracked"] = torch.tensor(3)
    assert str(net.load_state_dict(old, strict=True)) == "<All keys matched successfully>"


def test_channels_last_and_bf16_autocast_stay_close():
    ours, ref, _, _ = _pair("resnet_6blocks_dropout")
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref(x)
        cl = ours.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(cl, expected, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = ours(x)
        torch.testing.assert_close(low.float(), expected, rtol=0.1, atol=0.1)


def test_to_reference_is_plain_torch_and_exports():
    ours, _, shape, _ = _pair("basic_D_instance")
    plain = genimg_fast.to_reference(ours)
    assert not any(type(m).__module__.startswith("genimg_fast.nn") for m in plain.modules())
    assert list(plain.state_dict()) == list(ours.state_dict())
    x = torch.randn(shape)
    torch.testing.assert_close(plain(x), ours(x))
    exported = torch.export.export(plain.eval(), (x,))
    assert not any("genimg_fast" in str(node.target) for node in exported.graph.nodes)
    torch.testing.assert_close(exported.module()(x), plain(x))


def test_fold_batchnorm_for_eval_generation_and_pix2pix_train_mode_kept():
    g = DCGANGenerator(ngf=8).eval()
    for m in g.modules():  # non-trivial running statistics
        if isinstance(m, BatchNormAct2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 1.5)
    z = torch.randn(3, 100, 1, 1)
    folded = genimg_fast.fold_batchnorm(g)
    assert not any(isinstance(m, BatchNormAct2d) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(z), g(z), rtol=1e-5, atol=1e-5)
    pix2pix_g = define_G(3, 3, 8, "unet_128", "batch", use_dropout=True)  # test time keeps train mode
    with pytest.raises(RuntimeError, match="training mode"):
        genimg_fast.fold_batchnorm(pix2pix_g)


def test_unet_down_norms_take_over_the_next_level_s_leaky_relu():
    """Each middle level's fused down norm applies the LeakyReLU its submodule starts with (which
    becomes nn.Identity); to_reference() puts it back. Keys and numbers are unchanged."""
    ours, ref, shape, _ = _pair("unet_128_instance")
    folded = [m for m in ours.modules() if isinstance(m, InstanceNormAct2d) and m.activation == "leaky_relu"]
    assert len(folded) == 5 and all(m.negative_slope == 0.2 for m in folded)
    plain = genimg_fast.to_reference(ours)
    heads = [type(m.model[0]) for m in plain.modules() if type(m).__name__ == "UnetSkipConnectionBlock"
             and not m.outermost]
    assert heads == [nn.LeakyReLU] * 6
    ours.eval(), ref.eval(), plain.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(plain(x), ref(x), rtol=1e-5, atol=1e-5)
    assert list(plain.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize("ours,ref", [
    (lambda: define_G(3, 3, 8, "resnet_6blocks", "batch"), lambda: ResnetG(ngf=8, norm="batch", blocks=6)),
    (lambda: define_G(3, 3, 8, "unet_128", "instance"), lambda: UnetG(downs=7, ngf=8, norm="instance")),
    (lambda: define_D(6, 8, "basic", norm="batch"), lambda: PatchD(6, 8)),
    (lambda: define_D(3, 8, "pixel", norm="batch"), lambda: PixelD(ndf=8)),
])
def test_factories_draw_the_reference_s_initial_weights(ours, ref):
    """define_G / define_D (fused) with a seed give the weights the reference's init_net draws."""
    torch.manual_seed(11)
    a = ours()
    torch.manual_seed(11)
    b = junyanz_normal_init(ref())
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k


def test_init_weights_reaches_fused_batch_norms():
    from genimg_fast.models import ResnetGenerator, init_weights
    net = init_weights(ResnetGenerator(3, 3, 8, nn.BatchNorm2d, n_blocks=1))  # fused by default
    weights = [m.weight for m in net.modules() if isinstance(m, BatchNormAct2d)]
    assert weights and all(not torch.all(w == 1) for w in weights)


def test_conv_vae_has_the_antixk_layout():
    torch.manual_seed(0)
    ours, ref = ConvVAE(), ConvVAERef()
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ref.load_state_dict(ours.state_dict(), strict=True)
    z = torch.randn(2, 128)
    ours.eval(), ref.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours.decode(z), ref.decode(z), rtol=1e-5, atol=1e-5)


def test_n_layers_discriminators_of_any_depth():
    for n in (0, 1, 5):
        net = define_D(3, 8, "n_layers", n_layers_D=n, norm="batch")
        assert net(torch.randn(2, 3, 128, 128)).shape[1] == 1
