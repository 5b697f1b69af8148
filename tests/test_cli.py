"""`genimg-fast info` and `genimg-fast bench --quick` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from genimg_fast import cli


def test_info_prints_backend_info_as_json():
    out = subprocess.run([sys.executable, "-m", "genimg_fast.cli", "info"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["torch"] == torch.__version__ and "impl" in info


def test_bench_quick_prints_a_table_and_writes_a_record(tmp_path, capsys):
    path = tmp_path / "results" / "bench.json"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--json", str(path)]) == 0
    table = capsys.readouterr().out
    assert "x vs torch" in table and "genimg_fast" in table
    record = json.loads(path.read_text())
    assert record["device"].startswith("cpu") and record["torch"] == torch.__version__
    assert record["commit"] and record["backend"]["impl"] in ("cuda", "fallback", "reference")
    assert "genimg_fast runs torch's own ops on cpu" in table  # which implementation it measured
    variants = {row["variant"] for row in record["results"]}
    # the inference family's variants are optimize_for_inference's copy in each layout
    assert variants == {"torch", "genimg_fast", "optimize_for_inference", "optimize_for_inference channels_last"}
    for row in record["results"]:
        assert row["median_ms"] > 0 and row["speedup_vs_torch"] > 0
        assert {"launches", "peak_mb", "modeled_gbs"} <= set(row)  # every row has every field (null where unmeasured)
    assert record["failures"] == []
    assert set(record["seconds_per_family"]) == {"l1_loss", "norm_act", "objectives", "models", "training",
                                                 "inference"}
    assert "seconds per family: l1_loss" in table


def test_bench_only_filters_cases_by_label(capsys):
    assert cli.main(["bench", "--quick", "--device", "cpu", "--only", "DCGAN G"]) == 0
    table = capsys.readouterr().out
    assert "dcgan G" in table and "cyclegan" not in table
    with pytest.raises(SystemExit, match="no case label contains"):
        cli.main(["bench", "--quick", "--device", "cpu", "--only", "no such case"])


def test_bench_kinds_markdown_and_chart(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    md, png = tmp_path / "bench.md", tmp_path / "bench.png"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--models", "--markdown", str(md), "--plot", str(png)]) == 0
    table = capsys.readouterr().out
    assert "training iteration" in table and "BN+ReLU" not in table  # whole networks only
    summary = md.read_text()
    assert summary.startswith("# genimg_fast bench (quick), cpu") and "## dcgan training iteration" in summary
    assert "| dcgan training small | 16x3x32x32 | float32 | genimg_fast |" in summary
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main(["bench", "--quick", "--device", "cpu", "--ops", "--only", "dcgan"]) == 0
    table = capsys.readouterr().out
    assert "BN+ReLU" in table and "training iteration" not in table


def test_bench_history_lists_kept_results_run_over_run(tmp_path, capsys):
    def record(created, commit, speedups):
        rows = [{"op": "BN+ReLU fwd+bwd", "variant": "torch", "speedup_vs_torch": 1.0}]
        rows += [{"op": "BN+ReLU fwd+bwd", "variant": "genimg_fast", "speedup_vs_torch": s} for s in speedups]
        return {"created": created, "device": "GPU X", "commit": commit, "results": rows}
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "bench.json").write_text(json.dumps(record("2026-11-28T10:00:00", "bbbbbbb", [2.0, 8.0])))
    (tmp_path / "run1.json").write_text(json.dumps(record("2026-11-27T10:00:00", "aaaaaaa", [1.0])))
    (tmp_path / "backend_info.json").write_text(json.dumps({"impl": "cuda"}))  # not a results record
    assert cli.main(["bench", "--history", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "BN+ReLU" in line]
    assert len(lines) == 2 and "aaaaaaa" in lines[0] and "bbbbbbb" in lines[1]  # oldest first
    assert "4.00" in lines[1] and "2.00-8.00" in lines[1]  # geometric mean, range
    with pytest.raises(SystemExit, match="no results records"):
        cli.main(["bench", "--history", str(tmp_path / "run2" / "nothing")])


def test_driver_version_read_from_the_kernel_modules_banner():
    from genimg_fast.bench.environment import driver_from_banner
    banner = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 07:09:00 UTC 2025\nGCC version: 13"
    assert driver_from_banner(banner) == "580.65.06"
    open_banner = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.133.20  Release Build"
    assert driver_from_banner(open_banner) == "570.133.20"
    assert driver_from_banner("no driver here") is None


def test_a_mistake_in_the_request_is_one_line_naming_the_command(tmp_path, capsys):
    assert cli.main(["train", "dcgan", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genimg-fast train dcgan: error: ") and "nowhere: no such folder" in err
    assert "Traceback" not in err
    assert cli.main(["train", "vae", "--batch-size", "0", "--out", str(tmp_path / "o")]) == 2
    assert "genimg-fast train vae: error: batch_size must be at least 1" in capsys.readouterr().err


def test_a_device_that_is_not_one_is_named(tmp_path, capsys):
    assert cli.main(["train", "dcgan", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("genimg-fast train dcgan: error: --device 'gpu' is not a device (auto, cpu, "
                                       "cuda or cuda:N)\n")


def test_train_help_shows_the_workers_default_as_auto(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "dcgan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    workers = text[text.index("--workers WORKERS data-loading"):]
    assert workers.index("(default: auto)") < workers.index("--resume")
    assert "at most 8; on a CPU 0" in workers


@pytest.mark.parametrize("command", [["train", "dcgan"], ["train", "vae"], ["train", "cyclegan"],
                                     ["train", "pix2pix"], ["sample"], ["translate"]])
def test_help_says_a_switch_s_default_in_words(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: True)" not in text and "(default: False)" not in text
    if command[0] == "train":
        assert "--no-progress no progress bar (default: progress on)" in text
        assert "--compile torch.compile the networks (default: off)" in text


def test_the_train_header_names_the_data_workers(tmp_path, capsys):
    tiny = ["--out", str(tmp_path), "--image-size", "32", "--ngf", "8", "--ndf", "8", "--nz", "16", "--batch-size",
            "8", "--dataset-size", "8", "--device", "cpu", "--no-progress", "--max-steps", "0"]
    assert cli.main(["train", "dcgan", *tiny]) == 0
    assert ", data workers: 0 (auto)\n" in capsys.readouterr().out  # a CPU device's cores run the model
    assert cli.main(["train", "dcgan", *tiny, "--overwrite", "--workers", "1"]) == 0
    assert ", data workers: 1\n" in capsys.readouterr().out
    from genimg_fast.train.workers import cpus_per_process
    assert cli.main(["train", "dcgan", *tiny, "--overwrite", "--workers", "1000"]) == 0
    assert (f", data workers: {cpus_per_process()} (--workers 1000 capped to the CPUs this process may use)\n"
            in capsys.readouterr().out)
