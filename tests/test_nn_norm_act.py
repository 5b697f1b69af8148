"""BatchNormAct2d / InstanceNormAct2d / Conv(Transpose)2dNormAct against the torch layers they
replace (nn.BatchNorm2d or nn.InstanceNorm2d followed by ReLU / LeakyReLU / nothing), on CPU:
values, gradients, running statistics, state_dict compatibility, errors, torch.compile."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from genimg_fast._implementation import KERNELS, implementation
from genimg_fast.nn import BatchNormAct2d, Conv2dNormAct, ConvTranspose2dNormAct, InstanceNormAct2d

ACTIVATIONS = [("identity", 0.01), ("relu", 0.01), ("leaky_relu", 0.2)]


def torch_activation(activation: str, slope: float) -> nn.Module:
    return {"identity": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(slope)}[activation]


def randomize(norm: nn.Module, seed: int) -> None:
    """Non-trivial parameters and running statistics, so that a wrong one shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(norm.named_parameters()) + list(norm.named_buffers()):
            if name == "num_batches_tracked":
                continue
            positive = name in ("weight", "running_var")
            t.copy_(torch.rand(t.shape, generator=g) + 0.5 if positive else torch.randn(t.shape, generator=g))


def pair(torch_cls, fused_cls, c, activation, slope, seed=0, **kwargs):
    """(nn.Sequential(torch norm, act), fused module) with identical state."""
    ref = torch_cls(c, **kwargs)
    randomize(ref, seed)
    fused = fused_cls(c, activation=activation, negative_slope=slope, **kwargs)
    fused.load_state_dict(ref.state_dict(), strict=True)
    return nn.Sequential(ref, torch_activation(activation, slope)), fused


def run_step(module, x, grad):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(grad)
    return y.detach(), x.grad


def assert_same_step(ref, fused, x, seed, **tol):
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    y_ref, dx_ref = run_step(ref, x, grad)
    y, dx = run_step(fused, x, grad)
    torch.testing.assert_close(y, y_ref, **tol)
    torch.testing.assert_close(dx, dx_ref, **tol)
    norm = ref[0]
    for name, p in norm.named_parameters():
        torch.testing.assert_close(getattr(fused, name).grad, p.grad, **tol)
    for name, b in norm.named_buffers():
        torch.testing.assert_close(getattr(fused, name), b, **tol)


def random_input(shape, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 2 + 0.3).to(dtype)


# ---- batch norm ----

@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_then_eval_matches_torch(activation, slope, momentum, affine):
    ref, fused = pair(nn.BatchNorm2d, BatchNormAct2d, 5, activation, slope, momentum=momentum, affine=affine)
    for step in range(3):
        x = random_input((4, 5, 6, 7), seed=step)
        assert_same_step(ref, fused, x, seed=10 + step)
    assert int(fused.num_batches_tracked) == 3
    ref.eval(), fused.eval()
    assert_same_step(ref, fused, random_input((3, 5, 4, 4), seed=7), seed=20)
    assert int(fused.num_batches_tracked) == 3


@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
def test_batch_norm_without_running_stats_uses_batch_stats_in_eval(activation, slope):
    ref, fused = pair(nn.BatchNorm2d, BatchNormAct2d, 3, activation, slope, track_running_stats=False)
    assert fused.running_mean is None and fused.num_batches_tracked is None
    assert_same_step(ref, fused, random_input((2, 3, 5, 5), 0), seed=1)
    ref.eval(), fused.eval()
    assert_same_step(ref, fused, random_input((2, 3, 5, 5), 2), seed=3)


def test_batch_norm_channels_last_in_channels_last_out():
    ref, fused = pair(nn.BatchNorm2d, BatchNormAct2d, 4, "relu", 0.01)
    x = random_input((3, 4, 5, 6), 0).to(memory_format=torch.channels_last)
    y = fused(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(y, ref(x))
    fused.eval()
    assert fused(x).is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cls", [BatchNormAct2d, InstanceNormAct2d])
def test_gradcheck_through_module_float64(cls, training):
    m = cls(3, affine=True, track_running_stats=True, activation="leaky_relu", negative_slope=0.2,
            dtype=torch.float64)
    randomize(m, 0)
    m.train(training)
    x = random_input((2, 3, 4, 5), 1, torch.float64).requires_grad_()

    def f(x, weight, bias):
        return torch.func.functional_call(m, {"weight": weight, "bias": bias}, (x,))

    w = m.weight.detach().clone().requires_grad_()
    b = m.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (x, w, b))


def test_momentum_none_is_a_cumulative_average():
    ref, fused = pair(nn.BatchNorm2d, BatchNormAct2d, 2, "identity", 0.01, momentum=None)
    batches = [random_input((3, 2, 4, 4), s) for s in range(4)]
    for x in batches:
        fused(x)
    stacked = torch.stack([x.transpose(0, 1).reshape(2, -1) for x in batches])  # (batches, C, values)
    torch.testing.assert_close(fused.running_mean, stacked.mean(2).mean(0))
    torch.testing.assert_close(fused.running_var, stacked.var(2).mean(0))


# ---- state_dict, from_norm, repr ----

NORM_CONFIGS = [
    (nn.BatchNorm2d, BatchNormAct2d, {}),
    (nn.BatchNorm2d, BatchNormAct2d, {"affine": False}),
    (nn.BatchNorm2d, BatchNormAct2d, {"track_running_stats": False}),
    (nn.InstanceNorm2d, InstanceNormAct2d, {}),
    (nn.InstanceNorm2d, InstanceNormAct2d, {"affine": True, "track_running_stats": True}),
]


@pytest.mark.parametrize("torch_cls,fused_cls,kwargs", NORM_CONFIGS)
def test_state_dict_is_torch_s_and_loads_both_ways(torch_cls, fused_cls, kwargs):
    theirs, ours = torch_cls(6, **kwargs), fused_cls(6, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, t in theirs.state_dict().items():  # same init
        assert torch.equal(ours.state_dict()[name], t), name
    assert ours.state_dict()._metadata[""]["version"] == theirs.state_dict()._metadata[""]["version"]
    randomize(theirs, 1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    randomize(ours, 2)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    for name, t in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], t), name


def test_checkpoint_without_num_batches_tracked_loads_like_torch():
    theirs, ours = nn.BatchNorm2d(3), BatchNormAct2d(3)
    ours.num_batches_tracked.fill_(5)
    theirs.num_batches_tracked.fill_(5)
    old = nn.BatchNorm2d(3).state_dict()
    del old["num_batches_tracked"]
    old._metadata[""]["version"] = 1
    theirs.load_state_dict(old, strict=True)
    ours.load_state_dict(old, strict=True)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)
    old._metadata[""]["version"] = 2
    with pytest.raises(RuntimeError, match="num_batches_tracked"):
        ours.load_state_dict(old, strict=True)


def test_from_norm_shares_parameters_and_buffers():
    bn = nn.BatchNorm2d(4, momentum=0.3, eps=1e-3).eval()
    fused = BatchNormAct2d.from_norm(bn, "leaky_relu", 0.2)
    assert fused.weight is bn.weight and fused.bias is bn.bias
    assert fused.running_mean is bn.running_mean and fused.num_batches_tracked is bn.num_batches_tracked
    assert not fused.training and fused.eps == 1e-3 and fused.momentum == 0.3 and not fused.sync
    assert fused.activation == "leaky_relu" and fused.negative_slope == 0.2
    assert list(fused.state_dict()) == list(bn.state_dict())
    assert all(p.device.type == "cpu" for p in fused.state_dict().values())

    group = object()
    sync = BatchNormAct2d.from_norm(nn.SyncBatchNorm(4, process_group=group))
    assert sync.sync and sync.process_group is group and sync.activation == "identity"

    inorm = nn.InstanceNorm2d(4, affine=True)
    fused_in = InstanceNormAct2d.from_norm(inorm, "relu")
    assert fused_in.weight is inorm.weight and list(fused_in.state_dict()) == list(inorm.state_dict())
    with pytest.raises(TypeError, match="BatchNorm2d"):
        BatchNormAct2d.from_norm(inorm)
    with pytest.raises(TypeError, match="InstanceNorm2d"):
        InstanceNormAct2d.from_norm(bn)


def test_batch_norm_is_not_swapped_by_torch_convert_sync_batchnorm():
    model = nn.Sequential(BatchNormAct2d(3, activation="relu"))
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert type(converted[0]) is BatchNormAct2d and converted[0].activation == "relu"


def test_extra_repr_is_torch_s_plus_the_activation():
    ours = BatchNormAct2d(3, momentum=None, affine=False, activation="relu").extra_repr().split(", ")
    theirs = nn.BatchNorm2d(3, momentum=None, affine=False).extra_repr().split(", ")
    assert ours[:len(theirs) - 1] == theirs[:-1] and "activation=relu" in ours
    assert theirs[-1] in ours  # track_running_stats (torch >= 2.1 also writes bias=, and so do we)
    assert "negative_slope=0.2" in repr(InstanceNormAct2d(3, activation="leaky_relu", negative_slope=0.2))
    assert "sync=True" in repr(BatchNormAct2d(3, sync=True))
    with pytest.raises(ValueError, match="activation"):
        BatchNormAct2d(3, activation="gelu")


# ---- bad and edge inputs ----

def torch_error(fn) -> str:
    with pytest.raises(Exception) as info:
        fn()
    return str(info.value)


def test_batch_norm_bad_inputs_raise_like_torch():
    ours = BatchNormAct2d(3)
    with pytest.raises(ValueError) as info:
        ours(torch.randn(3, 4, 4))
    assert str(info.value) == torch_error(lambda: nn.BatchNorm2d(3)(torch.randn(3, 4, 4)))
    assert str(info.value) == "expected 4D input (got 3D input)"
    with pytest.raises(ValueError, match=r"num_features=3") as info:
        ours(torch.randn(2, 4, 3, 3))
    assert "4 channels" in str(info.value)
    one = torch.randn(1, 3, 1, 1)
    with pytest.raises(ValueError) as info:
        ours(one)
    assert str(info.value) == torch_error(lambda: nn.BatchNorm2d(3)(one))
    ours.eval()
    torch.testing.assert_close(ours(one), torch.relu(nn.BatchNorm2d(3).eval()(one)))  # fine with running stats


@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 0, 4)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_empty_batch_like_torch(shape, training):
    ref, fused = pair(nn.BatchNorm2d, BatchNormAct2d, 3, "relu", 0.01)
    ref.train(training), fused.train(training)
    before = fused.running_mean.clone()
    assert_same_step(ref, fused, torch.empty(shape), seed=0)
    assert torch.equal(fused.running_mean, before)
    assert int(fused.num_batches_tracked) == int(ref[0].num_batches_tracked) == int(training)
    assert torch.equal(fused.weight.grad, torch.zeros(3))


# ---- instance norm ----

@pytest.mark.parametrize("activation,slope", ACTIVATIONS)
@pytest.mark.parametrize("kwargs", [{}, {"affine": True}, {"affine": True, "track_running_stats": True},
                                    {"track_running_stats": True, "momentum": None}])
def test_instance_norm_train_then_eval_matches_torch(activation, slope, kwargs):
    ref, fused = pair(nn.InstanceNorm2d, InstanceNormAct2d, 4, activation, slope, **kwargs)
    for step in range(2):
        assert_same_step(ref, fused, random_input((3, 4, 5, 6), step), seed=10 + step)
    ref.eval(), fused.eval()
    assert_same_step(ref, fused, random_input((2, 4, 3, 5), 5), seed=20)


def test_instance_norm_unbatched_and_channels_last():
    ref, fused = pair(nn.InstanceNorm2d, InstanceNormAct2d, 3, "relu", 0.01, affine=True)
    assert_same_step(ref, fused, random_input((3, 5, 6), 0), seed=1)
    x = random_input((2, 3, 5, 6), 2).to(memory_format=torch.channels_last)
    y, expected = fused(x), ref(x)
    # the kernels keep the input's layout; torch's own instance norm (the fallback) returns NCHW
    kept = implementation(x, "norm") == KERNELS
    assert y.is_contiguous(memory_format=torch.channels_last if kept else torch.contiguous_format)
    torch.testing.assert_close(y, expected)


def test_instance_norm_bad_inputs_like_torch():
    x = torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError) as info:
        InstanceNormAct2d(3, affine=True)(x)
    assert str(info.value) == torch_error(lambda: nn.InstanceNorm2d(3, affine=True)(x))
    with pytest.warns(UserWarning, match="does not match num_features"):
        y = InstanceNormAct2d(3, activation="identity")(x)
    with pytest.warns(UserWarning):
        torch.testing.assert_close(y, nn.InstanceNorm2d(3)(x))
    single = torch.randn(2, 3, 1, 1)
    with pytest.raises(ValueError) as info:
        InstanceNormAct2d(3)(single)
    assert str(info.value) == torch_error(lambda: nn.InstanceNorm2d(3)(single))
    with pytest.raises(ValueError, match="expected 3D or 4D input"):
        InstanceNormAct2d(3)(torch.randn(3, 4))
    empty = InstanceNormAct2d(3, affine=True)(torch.empty(0, 3, 4, 4))  # torch itself fails here
    assert empty.shape == (0, 3, 4, 4)


def test_instance_norm_drops_stale_running_stats_of_old_checkpoints_like_torch():
    old = {"running_mean": torch.zeros(3), "running_var": torch.ones(3)}
    for module in (nn.InstanceNorm2d(3), InstanceNormAct2d(3)):
        for strict in (True, False):  # torch reports them even when not strict
            with pytest.raises(RuntimeError) as info:
                module.load_state_dict(dict(old), strict=strict)
            assert "running_mean" in str(info.value) and "running_var" in str(info.value)


# ---- conv blocks ----

@pytest.mark.parametrize("norm,torch_norm", [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d)])
@pytest.mark.parametrize("transposed", [False, True])
def test_conv_blocks_match_conv_norm_act(norm, torch_norm, transposed):
    torch.manual_seed(0)
    if transposed:
        block = ConvTranspose2dNormAct(4, 6, 4, 2, 1, bias=False, norm=norm, activation="leaky_relu",
                                       negative_slope=0.2)
        conv = nn.ConvTranspose2d(4, 6, 4, 2, 1, bias=False)
    else:
        block = Conv2dNormAct(4, 6, 3, padding=1, norm=norm, activation="leaky_relu", negative_slope=0.2)
        conv = nn.Conv2d(4, 6, 3, padding=1)
    ref = nn.Sequential(conv, torch_norm(6), nn.LeakyReLU(0.2))
    block.load_state_dict({k.replace("0.", "conv.").replace("1.", "norm."): v
                           for k, v in ref.state_dict().items()}, strict=True)
    x = random_input((2, 4, 5, 5), 0)
    torch.testing.assert_close(block(x), ref(x))
    with pytest.raises(ValueError, match="norm must be one of"):
        Conv2dNormAct(4, 6, 3, norm="group")


# ---- torch.compile ----

@pytest.mark.parametrize("cls,torch_cls,momentum", [(BatchNormAct2d, nn.BatchNorm2d, 0.1),
                                                    (BatchNormAct2d, nn.BatchNorm2d, None),
                                                    (InstanceNormAct2d, nn.InstanceNorm2d, 0.1)])
def test_compile_fullgraph_in_training_mode(cls, torch_cls, momentum):
    # momentum=None included: the cumulative average reads num_batches_tracked on the device only
    ref, fused = pair(torch_cls, cls, 3, "relu", 0.01, affine=True, track_running_stats=True, momentum=momentum)
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    for step in range(2):
        x = random_input((2, 3, 4, 5), step)
        grad = random_input(x.shape, 10 + step)
        y_ref, dx_ref = run_step(ref, x, grad)
        y, dx = run_step(compiled, x, grad)
        torch.testing.assert_close(y, y_ref)
        torch.testing.assert_close(dx, dx_ref)
    torch.testing.assert_close(fused.weight.grad, ref[0].weight.grad)
    torch.testing.assert_close(fused.running_mean, ref[0].running_mean)
    torch.testing.assert_close(fused.running_var, ref[0].running_var)
    assert torch.equal(fused.num_batches_tracked, ref[0].num_batches_tracked)


@pytest.mark.parametrize("activation,torch_act", [("relu", nn.ReLU()), ("leaky_relu", nn.LeakyReLU(0.2))])
@pytest.mark.parametrize("training", [False, True])
def test_nan_inputs_give_torch_s_outputs_and_gradients(activation, torch_act, training):
    """relu(NaN) is NaN and its gradient passes there (torch's threshold_backward); in eval mode
    the other elements stay finite, in training the NaN's channel turns NaN, as torch's do."""
    torch.manual_seed(0)
    ours = BatchNormAct2d(3, activation=activation, negative_slope=0.2).double()
    theirs = nn.Sequential(nn.BatchNorm2d(3), torch_act).double()
    theirs[0].load_state_dict(ours.state_dict())
    with torch.no_grad():
        for m in (ours, theirs[0]):
            m.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
            m.running_var.copy_(torch.tensor([1.5, 0.5, 2.0]))
    ours.train(training), theirs.train(training)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    x[0, 1, 2, 2] = float("nan")
    results = []
    for module in (ours, theirs):
        xi = x.clone().requires_grad_()
        y = module(xi)
        (gx,) = torch.autograd.grad(y, xi, torch.ones_like(y))
        results.append((y, gx))
    for got, want in zip(results[0], results[1]):
        torch.testing.assert_close(got, want, equal_nan=True)


class _Doubled(nn.Module):
    def forward(self, weight):
        return 2 * weight


@pytest.mark.parametrize("torch_cls,fused_cls,kwargs", [(nn.BatchNorm2d, BatchNormAct2d, {}),
                                                        (nn.InstanceNorm2d, InstanceNormAct2d, {"affine": True})])
@pytest.mark.parametrize("training", [True, False])
def test_parametrized_weight_is_read_through_its_parametrization(torch_cls, fused_cls, kwargs, training):
    """The forward reads parameters and buffers from the module's registries (fast), and a name a
    parametrization (or a weight-norm style hook) moved out of them the ordinary way: a
    parametrized weight counts as torch's does, its gradient reaching the original parameter."""
    from torch.nn.utils import parametrize
    ref, fused = pair(torch_cls, fused_cls, 6, "leaky_relu", 0.2, seed=3, **kwargs)
    for module in (ref[0], fused):
        parametrize.register_parametrization(module, "weight", _Doubled())
        module.train(training)
    ref.train(training)
    x = random_input((4, 6, 5, 5), seed=4)
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    y_ref, dx_ref = run_step(ref, x, grad)
    y, dx = run_step(fused, x, grad)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(dx, dx_ref)
    original = fused.parametrizations.weight.original
    torch.testing.assert_close(original.grad, ref[0].parametrizations.weight.original.grad)
    assert "weight" not in fused._parameters  # the case the ordinary lookup serves
