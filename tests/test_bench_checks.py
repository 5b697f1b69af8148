"""The benchmarks never time a wrong answer: each family checks every variant against eager torch
first, and the suite reports a case that fails its check (and exits non-zero) instead of timing it."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn

from genimg_fast import cli
from genimg_fast.bench import models_bench, norm_act_bench, objectives_bench, training_bench
from genimg_fast.bench.checks import UntimedVariants
from genimg_fast.models import ConvVAE, define_G

CPU = torch.device("cpu")


class _Shifted(nn.Module):
    """A model whose output is another model's plus a small offset: a variant that is wrong."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x) + 0.1

    def load_state_dict(self, state, strict=True):  # the bench copies the reference's weights in
        return self.inner.load_state_dict(state, strict)


def _broken_models_case() -> models_bench.ModelCase:
    case = models_bench.cases(CPU, quick=True)[0]
    original = case.build
    return dataclasses.replace(case, build=lambda fused: _Shifted(original(True)) if fused else original(False))


def test_models_check_catches_a_variant_with_other_outputs_and_times_the_rest():
    with pytest.raises(UntimedVariants) as caught:
        models_bench.run_case(_broken_models_case(), CPU, compile_too=False, warmup=1, repeats=2)
    failed = caught.value.failed
    assert set(failed) == {"genimg_fast, forward", "genimg_fast, forward+backward"}
    assert failed["genimg_fast, forward"].startswith("disagrees with torch on dcgan_G forward (result 0)")
    assert {row["variant"] for row in caught.value.rows} == {"torch"}


def _steps(errors: dict[str, float]):
    """Steps whose one result is eager torch's off by the given relative error."""
    want = torch.linspace(1, 2, 10)
    return {name: (lambda i, e=e: (want * (1 + e),)) for name, e in errors.items()}


def test_bf16_variant_is_judged_against_eager_torchs_own_bf16_error():
    cases = {"torch": 0.0, "torch bf16": 0.3, "genimg_fast bf16": 0.5, "genimg_fast other": 0.05}
    variants = {"torch": models_bench.Variant(nn.Identity(), ()),
                "torch bf16": models_bench.Variant(nn.Identity(), (), tolerance=None),
                "genimg_fast bf16": models_bench.Variant(nn.Identity(), (), tolerance=0.1, yardstick="torch bf16"),
                "genimg_fast other": models_bench.Variant(nn.Identity(), ())}
    failed = models_bench.check_variants(_steps(cases), variants, "x")
    assert set(failed) == {"genimg_fast other"}  # 0.05 > 0.02; 0.5 <= 2 x 0.3
    failed = models_bench.check_variants(_steps({**cases, "genimg_fast bf16": 0.7}), variants, "x")
    assert "relative error 0.7 > 0.6" in failed["genimg_fast bf16"]
    failed = models_bench.check_variants(_steps({**cases, "torch bf16": float("nan")}), variants, "x")
    assert "torch bf16" in failed  # the yardstick itself must be finite


@pytest.mark.parametrize("case", [
    # U-Net with dropout (masks drawn per call, in memory order: channels_last draws others) and
    # instance norm after biased convs (those biases' gradients are zero in exact arithmetic:
    # rounding noise on both sides)
    models_bench.ModelCase("unet", lambda f: define_G(3, 3, 8, "unet_128", "instance", use_dropout=True, fused=f),
                           (2, 3, 128, 128), "unet small"),
    # a network that draws noise: every step seeded alike
    models_bench.ModelCase("conv_vae", lambda f: ConvVAE(fused=f), (4, 3, 64, 64), "conv vae small"),
], ids=["unet with dropout", "conv vae"])
def test_models_check_passes_every_variant_of_networks_that_draw_randomness(case):
    rows = models_bench.run_case(case, CPU, compile_too=False, warmup=1, repeats=2)
    assert {r["op"] for r in rows} == {f"{case.name} forward", f"{case.name} forward+backward"}
    assert {r["variant"] for r in rows} == {"torch", "genimg_fast", "torch bf16", "genimg_fast bf16",
                                            "torch channels_last", "genimg_fast channels_last"}


def test_models_check_turns_dropout_off_while_it_runs_only():
    model = nn.Sequential(nn.Linear(64, 64), nn.Dropout(0.5))
    same = models_bench.Variant(model, (torch.randn(8, 64),))
    variants = {"torch": same, "genimg_fast": same}
    steps = {name: models_bench._step(v, True, CPU) for name, v in variants.items()}
    assert models_bench.check_variants(steps, variants, "x") == {}  # with dropout on, two calls would differ
    assert model[1].training


def test_relative_error_judges_tiny_results_against_the_whole():
    want = torch.tensor([1e-9, -1e-9])
    assert models_bench.relative_error(-want, want) == pytest.approx(2.0)
    assert models_bench.relative_error(-want, want, floor=1e-3) < 1e-5


def test_suite_reports_a_failed_check_untimed_and_exits_non_zero(monkeypatch, tmp_path, capsys):
    broken = _broken_models_case()
    monkeypatch.setattr(models_bench, "_cases", lambda device, quick: [broken])
    md = tmp_path / "bench.md"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--only", "small", "--models",
                     "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert "FAILED CHECK (models, dcgan generator small, genimg_fast, forward), not timed: disagrees" in out
    timed = {line.split()[-4] for line in out.splitlines() if line.startswith("dcgan_G")}
    assert timed == {"torch"}  # the failed variant has no row; eager torch's still has
    assert "dcgan training iteration" in out  # and the other cases ran
    assert "## Failed checks" in md.read_text()


def test_eval_mode_norm_case_checks_and_times_the_inference_op():
    case = next(c for c in norm_act_bench.cases(CPU, quick=False) if not c.training)
    rows = norm_act_bench.run_case(case, CPU, compile_too=False, warmup=1, repeats=2)
    assert {r["op"] for r in rows} == {"BN+ReLU eval fwd+bwd", "BN+ReLU eval fwd"}
    n = case.numel * 4
    assert norm_act_bench.modeled_bytes(case) == 7 * n and norm_act_bench.modeled_bytes(case, True) == 2 * n


@pytest.mark.parametrize("name", ["pix2pix_D", "wgangp_D", "conv_vae"])
def test_objectives_added_for_the_suite_agree_with_their_references(name):
    case = next(c for c in objectives_bench.cases(CPU, quick=False) if c.name == name)
    rows = objectives_bench.run_case(case, CPU, compile_too=False, warmup=1, repeats=2)
    assert {r["variant"] for r in rows} == {"torch", "genimg_fast"}



@pytest.mark.parametrize("variant,status", [("torch channels_last", 0), ("torch.compile(torch)", 0),
                                            ("torch (cuda graph)", 0), ("genimg_fast bf16", 1),
                                            ("torch.compile(genimg_fast)", 1), (None, 1)])
def test_exit_status_flags_genimg_fasts_failures_not_torchs(monkeypatch, capsys, variant, status):
    from genimg_fast.bench import suite

    def run_suite(device, **_):
        record = {"device": "cpu", "torch": torch.__version__, "mode": "full", "copy_bandwidth_gbs": None,
                  "backend": {"impl": "reference", "reason": None}, "results": [], "seconds_per_family": {},
                  "failures": [{"family": "models", "case": "c", "variant": variant, "error": "off"}]}
        return record
    monkeypatch.setattr(suite, "run_suite", run_suite)
    assert cli.main(["bench", "--device", "cpu"]) == status
    assert "FAILED CHECK (models, c" in capsys.readouterr().out


def test_a_case_that_crashes_is_reported_and_the_suite_goes_on(monkeypatch, tmp_path, capsys):
    def crash(case, device, **_):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")
    monkeypatch.setattr(models_bench, "run_case", crash)
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--models", "--json", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED CHECK (models, dcgan generator small), not timed: RuntimeError: CUDA error" in out
    record = json.loads(path.read_text())
    assert record["complete"] and {r["op"] for r in record["results"]} == {"dcgan training iteration",
                                                                            "dcgan sampling"}


def test_the_record_so_far_is_handed_over_after_every_case():
    from genimg_fast.bench.suite import run_suite
    seen = []
    record = run_suite(CPU, quick=True, compile_too=False, kinds="models", repeats=3,
                       on_case=lambda r: seen.append((r["complete"], len(r["results"]))))
    # models, training, inference: one quick case each
    assert [complete for complete, _ in seen] == [False, False, False] and record["complete"]
    assert seen[0][1] < seen[1][1] < seen[2][1] == len(record["results"])
    assert {row["repeats"] for row in record["results"]} == {10}  # networks' and iterations' floor of 10


def test_repeats_must_be_positive():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["bench", "--repeats", "0"])


def _training_check_failure(build_with) -> UntimedVariants:
    """The training family's first quick case with its recipes built by build_with(original,
    options, device): the check must refuse the variant instead of timing it."""
    case = training_bench.cases(CPU, quick=True)[0]
    original = case.build
    broken = dataclasses.replace(case, build=lambda options, device: build_with(original, options, device))
    with pytest.raises(UntimedVariants) as caught:
        training_bench.run_case(broken, CPU, compile_too=False, warmup=1, repeats=2)
    return caught.value


def test_training_iteration_check_catches_a_variant_that_trains_differently():
    def build(original, options, device):  # the fused variant from another seed: other weights
        if options["impl"] == "fused":
            options = {**options, "seed": 7}
        return original(options, device)
    caught = _training_check_failure(build)
    assert caught.failed["genimg_fast"].startswith("disagrees with torch on dcgan's iteration 1")
    assert {row["variant"] for row in caught.rows} == {"torch"}


def test_training_iteration_check_catches_a_variant_whose_gradients_are_wrong():
    def build(original, options, device):  # the fused recipe's generator steps against its gradient
        recipe = original(options, device)
        if options["impl"] == "fused":
            for group in recipe.optimizers()["optG"].param_groups:
                group["lr"] = -group["lr"]
        return recipe
    caught = _training_check_failure(build)
    assert caught.failed["genimg_fast"].startswith("disagrees with torch on dcgan's iteration 2")


def test_training_iteration_check_catches_an_update_that_points_elsewhere():
    def build(original, options, device):
        recipe = original(options, device)
        for group in recipe.optimizers()["optG"].param_groups:
            group["lr"] = 1e-9  # the losses cannot move...
        if options["impl"] == "fused":
            for p in recipe.netG.parameters():
                p.register_hook(lambda g: -g)  # ...but the generator's update points back
        return recipe
    caught = _training_check_failure(build)
    assert caught.failed["genimg_fast"].startswith("netG's first update on dcgan points elsewhere")
