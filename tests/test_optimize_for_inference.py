"""genimg_fast.optimize_for_inference: the optimized copy computes what the original computes
(within the documented tolerance) for the recipes' generators in eval and training mode, in
both layouts; the original is left as it was; batch norms are really folded; bad arguments are
errors naming the argument; `genimg-fast sample` / `translate` use it on a CPU."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from genimg_fast import optimize_for_inference
from genimg_fast.inference.optimize import TOLERANCE
from genimg_fast.models import ConvVAE, DCGANGenerator, VAEDecoder, define_G
from genimg_fast.nn import BatchNormAct2d, InstanceNormAct2d


def _with_running_stats(model: nn.Module, inputs: torch.Tensor) -> nn.Module:
    """Running statistics far from the (0, 1) defaults, so that folding them is tested."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(inputs * 2 + 0.5)
    return model


def _dcgan():
    torch.manual_seed(0)
    return _with_running_stats(DCGANGenerator(nz=16, ngf=8, image_size=32), torch.randn(8, 16, 1, 1)), \
        torch.randn(4, 16, 1, 1)


def _vae_decoder():
    torch.manual_seed(0)
    vae = _with_running_stats(ConvVAE(3, 16, [8, 16, 32], 32), torch.randn(8, 3, 32, 32))
    return VAEDecoder(vae), torch.randn(4, 16)


def _resnet():
    torch.manual_seed(0)
    return define_G(3, 3, 8, "resnet_6blocks", "instance"), torch.randn(2, 3, 64, 64)


def _unet():
    torch.manual_seed(0)
    net = _with_running_stats(define_G(3, 3, 8, "unet_128", "batch", use_dropout=True), torch.randn(2, 3, 128, 128))
    return net, torch.randn(1, 3, 128, 128)


MODELS = {"dcgan G": _dcgan, "conv vae decoder": _vae_decoder, "resnet G": _resnet, "unet G": _unet}


def _relative_max_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).abs().max() / want.abs().max()).item()


def _set_dropout(model: nn.Module, p: float) -> None:
    for layer in model.modules():
        if isinstance(layer, nn.Dropout):
            layer.p = p


@pytest.mark.parametrize("channels_last", [False, True, None], ids=["contiguous", "channels_last", "auto"])
@pytest.mark.parametrize("name", list(MODELS))
def test_eval_outputs_equal_the_original_models(name, channels_last):
    model, x = MODELS[name]()
    model.eval()
    optimized = optimize_for_inference(model, channels_last=channels_last)
    with torch.no_grad():
        want, got = model(x), optimized(x)
    assert got.shape == want.shape and got.is_contiguous()
    assert _relative_max_error(got, want) <= TOLERANCE


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("name", ["resnet G", "unet G"])
def test_train_mode_outputs_equal_the_original_in_train_mode_without_dropout(name, channels_last):
    model, x = MODELS[name]()
    model.train()
    _set_dropout(model, 0.0)  # masks are drawn in memory order: channels_last draws others
    optimized = optimize_for_inference(model, train_mode=True, channels_last=channels_last)
    assert optimized.training
    for batch in (x, torch.cat([x, x.flip(0) * 0.5])):  # one image (group norm) and two (batch norm)
        with torch.no_grad():
            want, got = model(batch), optimized(batch)
        assert _relative_max_error(got, want) <= TOLERANCE


def test_train_mode_uses_batch_statistics_and_the_same_dropout_masks_for_a_seed():
    model, x = _unet()
    model.train()
    optimized = optimize_for_inference(model, train_mode=True, channels_last=False)
    with torch.no_grad():
        torch.manual_seed(1)
        want = model(x)
        torch.manual_seed(1)
        got = optimized(x)
        evaluated = copy.deepcopy(model).eval()(x)
    assert _relative_max_error(got, want) <= TOLERANCE  # dropout on, same seed, same layout: same masks
    assert _relative_max_error(evaluated, want) > 0.05  # eval mode's running statistics give another picture
    dropouts = [sum(isinstance(m, nn.Dropout) for m in net.modules()) for net in (model, optimized)]
    assert dropouts == [2, 2]  # unet_128's two 8*ngf middle levels keep theirs


def test_the_original_model_is_not_modified():
    model, x = _unet()
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    types = [type(m) for m in model.modules()]
    optimize_for_inference(model, channels_last=True)
    optimize_for_inference(model, train_mode=True)
    assert [type(m) for m in model.modules()] == types
    assert not model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.is_contiguous() for p in model.parameters())


def test_eval_mode_folds_every_batch_norm_and_drops_dropout():
    for name in ("dcgan G", "unet G", "conv vae decoder"):
        model, _ = MODELS[name]()
        assert any(isinstance(m, BatchNormAct2d) for m in model.modules())  # fused norms to begin with
        optimized = optimize_for_inference(model.eval())
        leftover = [type(m).__name__ for m in optimized.modules()
                    if isinstance(m, (nn.BatchNorm2d, BatchNormAct2d, InstanceNormAct2d, nn.Dropout))]
        assert leftover == [], name
        assert not any(p.requires_grad for p in optimized.parameters())


def test_instance_norms_become_group_norms_with_one_channel_per_group():
    model, _ = _resnet()
    optimized = optimize_for_inference(model.eval())
    groups = [m for m in optimized.modules() if isinstance(m, nn.GroupNorm)]  # stem, 2 down, 6 blocks x 2, 2 up
    assert len(groups) == 1 + 2 + 6 * 2 + 2 and all(g.num_groups == g.num_channels for g in groups)
    assert not any(isinstance(m, (nn.InstanceNorm2d, InstanceNormAct2d)) for m in optimized.modules())


def test_activations_go_in_place_only_where_nobody_else_reads_their_input():
    model = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 4, 1),
                          nn.Identity(), nn.ReLU())
    optimized = optimize_for_inference(model.eval())
    assert [m.inplace for m in optimized if hasattr(m, "inplace")] == [False, True, True]
    x = torch.randn(1, 3, 8, 8)
    kept = x.clone()
    with torch.no_grad():
        optimized(x)
    assert torch.equal(x, kept)  # the caller's tensor: the first activation must not overwrite it


def test_channels_last_runs_in_that_layout_and_auto_follows_the_measured_table():
    model, _ = _dcgan()
    forced = optimize_for_inference(model.eval(), channels_last=True)
    conv = forced.main[3]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    plain = optimize_for_inference(model, channels_last=False)
    assert plain.main[3].weight.is_contiguous()
    auto = optimize_for_inference(model)  # DCGAN measured faster channels_last, U-Net contiguous
    assert auto.main[3].weight.is_contiguous(memory_format=torch.channels_last)
    unet, _ = _unet()
    assert optimize_for_inference(unet.eval()).model.model[0].weight.is_contiguous()
    other = optimize_for_inference(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3)))
    assert other[1].weight.is_contiguous()  # not measured: the default layout


def test_compile_wraps_the_optimized_copy_in_torch_compile(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda module: seen.append(module) or module)
    model, _ = _dcgan()
    optimized = optimize_for_inference(model.eval(), compile=True)
    assert seen == [optimized] and optimized is not model


def test_bad_arguments_are_errors_naming_them():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got function"):
        optimize_for_inference(lambda x: x)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got OrderedDict"):
        optimize_for_inference(nn.Linear(2, 2).state_dict())
    for name, value in (("train_mode", "yes"), ("channels_last", 1), ("compile", None)):
        with pytest.raises(TypeError, match=f"{name} must be"):
            optimize_for_inference(nn.Linear(2, 2), **{name: value})


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("shape,args", [
    ((8, 16, 1, 1), (16, 32, 4, 1, 0)),           # DCGAN's first layer: a 1 x 1 input
    ((1, 32, 2, 2), (32, 16, 4, 2, 1)),           # a U-Net's innermost level
    ((2, 8, 3, 5), (8, 4, 3, 2, 1, 1)),           # output padding, non-square
    ((1, 8, 16, 16), (8, 4, 4, 2, 1)),            # too large for the product: torch's own path
])
def test_small_input_transposed_convolutions_equal_torchs(shape, args, channels_last):
    from genimg_fast.inference.small_deconv import SmallInputConvTranspose2d
    torch.manual_seed(0)
    conv = nn.ConvTranspose2d(*args)
    small = SmallInputConvTranspose2d.replacing(copy.deepcopy(conv))
    if channels_last:
        small = small.to(memory_format=torch.channels_last)
    assert list(small.state_dict()) == list(conv.state_dict())
    x = torch.randn(shape)
    with torch.no_grad():
        want, got = conv(x), small(x)
    assert got.shape == want.shape and _relative_max_error(got, want) <= TOLERANCE


def test_eligible_transposed_convolutions_are_swapped():
    from genimg_fast.inference.small_deconv import SmallInputConvTranspose2d
    model, _ = _unet()
    optimized = optimize_for_inference(model.eval())
    assert sum(isinstance(m, SmallInputConvTranspose2d) for m in optimized.modules()) == 7  # unet_128: 7 levels
    grouped = optimize_for_inference(nn.Sequential(nn.ConvTranspose2d(4, 4, 3, groups=2)))
    assert type(grouped[0]) is nn.ConvTranspose2d  # F.fold has no groups
