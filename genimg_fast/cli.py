"""`genimg-fast`: command-line entry point."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from genimg_fast.extras import require
from genimg_fast.help_format import DefaultsHelpFormatter


def _info(_args: argparse.Namespace) -> int:
    import genimg_fast

    print(json.dumps(genimg_fast.backend_info(), indent=2))
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.plot:
        require("bench --plot")  # before the suite runs (and --json writes), not after
    if args.history:
        from genimg_fast.bench.history import history_table

        print(history_table(args.history))
        return 0
    from genimg_fast.bench.checks import is_torch_variant
    from genimg_fast.bench.report import format_table
    from genimg_fast._device import resolve_device
    from genimg_fast.bench.suite import run_suite, write_record

    device = resolve_device(args.device, "bench")
    # With --json, the record so far is written after every case: a run cut short keeps its results.
    save_partial = (lambda record: write_record(record, Path(args.json))) if args.json else None
    record = run_suite(device, quick=args.quick, compile_too=args.compile, only=args.only, kinds=args.kinds,
                       repeats=args.repeats, on_case=save_partial)
    from genimg_fast._implementation import describe
    print(f"genimg_fast bench ({record['mode']}) on {record['device']}; torch {record['torch']}")
    print(describe(device))
    if record["copy_bandwidth_gbs"]:
        print(f"measured device copy bandwidth: {record['copy_bandwidth_gbs']:.0f} GB/s (read + write)")
    print(format_table(record["results"], record["copy_bandwidth_gbs"]))
    from genimg_fast.bench.versus_compile import summary_lines
    for line in summary_lines(record["results"]):
        print(f"vs best torch.compile: {line}")
    if args.json:
        write_record(record, Path(args.json))
        print(f"results written to {args.json}")
    if args.markdown:
        from genimg_fast.bench.summary import markdown_summary

        Path(args.markdown).write_text(markdown_summary(record))
        print(f"markdown summary written to {args.markdown}")
    if args.plot:
        from genimg_fast.bench.summary import speedup_plot

        speedup_plot(record, args.plot)
        print(f"speed-up chart written to {args.plot}")
    print("seconds per family: " + ", ".join(f"{name} {s:.0f}" for name, s in record["seconds_per_family"].items()))
    for failure in record["failures"]:
        what = ", ".join(filter(None, (failure["family"], failure["case"], failure.get("variant"))))
        print(f"FAILED CHECK ({what}), not timed: {failure['error']}")
    # torch's own variants (another layout, precision or compiler) failing is torch's problem,
    # reported but not genimg_fast's failure
    ours = [f for f in record["failures"] if f.get("variant") is None or not is_torch_variant(f["variant"])]
    return 1 if ours else 0


# model -> (module, config class, train function, help)
TRAINERS = {
    "dcgan": ("genimg_fast.train.dcgan", "DCGANConfig", "train_dcgan",
              "DCGAN (pytorch/examples dcgan) on 'shapes' (built in) or a folder of images"),
    "vae": ("genimg_fast.train.vae", "VAEConfig", "train_vae",
            "VAE: pytorch/examples' MLP VAE (--model mlp) or the convolutional VAE (--model conv)"),
    "cyclegan": ("genimg_fast.train.cyclegan", "CycleGANConfig", "train_cyclegan",
                 "CycleGAN (junyanz): 'shapes' (built in, two styles) or a dataroot with trainA/ and trainB/"),
    "pix2pix": ("genimg_fast.train.pix2pix", "Pix2PixConfig", "train_pix2pix",
                "pix2pix (junyanz): 'shapes' (built in, outlines -> shapes) or a dataroot of A|B images in train/"),
}


def _leave_process_group(wait_for_others: bool = True) -> None:
    """Under torchrun: every process reaches the end, then leaves the group (a process that exits
    while another still talks to it would abort that one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


def _resumed_config(args: argparse.Namespace) -> dict | None:
    """With --resume, the config record of the run in --out (None when there is none: the
    trainer then says so)."""
    if not args.resume:
        return None
    from genimg_fast.train.checkpoint import saved_run_config
    from genimg_fast.train.loop import STATE_FILE

    path = Path(args.out) / STATE_FILE
    return saved_run_config(path) if path.is_file() else None


def _data_workers(config) -> str:
    """The header's word on data loading: the worker count the run will use (the loop resolves it
    the same way, from the same device and machine)."""
    from genimg_fast._device import resolve_device
    from genimg_fast.train.workers import describe_workers, resolve_workers

    device_type = resolve_device(config.device, "train").type
    return describe_workers(config.workers, resolve_workers(config.workers, device_type))


def _train(args: argparse.Namespace) -> int:
    require("train")  # first: a run that cannot finish must not claim --out or write anything
    import importlib

    import genimg_fast
    from genimg_fast.train.cli_options import config_from_arguments
    from genimg_fast.train.options import check_run_options
    from genimg_fast.train.folder_claim import check_output_folder_free
    from genimg_fast.train.output_folder import check_output_folder

    module_name, config_name, train_name, _ = TRAINERS[args.model_family]
    module = importlib.import_module(module_name)
    config = config_from_arguments(getattr(module, config_name), args, _resumed_config(args))
    # before the header: a run that cannot start says only why (the trainer checks again, for callers in Python)
    check_run_options(config)
    check_output_folder(config.out)
    speaks = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 reports for all (and writes)
    if speaks:
        check_output_folder_free(config.out, config.resume, config.overwrite)
    backend = genimg_fast.backend_info()
    if speaks:
        print(f"genimg-fast train {args.model_family}: impl={config.impl}, kernels: {backend['impl']}"
              + (f" ({backend['reason']})" if backend["reason"] else "") + f", output in {config.out}"
              + (f", {os.environ['WORLD_SIZE']} processes" if os.environ.get("WORLD_SIZE", "1") != "1" else "")
              + f", {_data_workers(config)}", flush=True)
    try:
        summary = getattr(module, train_name)(config)
    except BaseException:
        _leave_process_group(wait_for_others=False)  # they may be stuck in a collective: do not wait
        raise
    _leave_process_group()
    if not speaks:
        return 0
    status = "stopped early (resume with --resume)" if summary["stopped_early"] else "done"
    losses = ", ".join(f"{k} {summary['losses'][k]:.4f}" for k in summary["loss_keys"] if k in summary["losses"])
    print(f"{args.model_family} {status}: {summary['steps']} iterations, {summary['epochs_done']} epochs, "
          f"{summary['images_per_second']:.1f} images/s on {summary['device']}, last {losses}; checkpoints, "
          f"samples, losses.jsonl and loss_curve.png in {summary['out']}")
    return 0


def _add_train_parser(sub) -> None:
    import importlib

    from genimg_fast.train.cli_options import add_config_arguments

    train = sub.add_parser("train", help="train a model of a reference recipe (needs the [train] extra)")
    families = train.add_subparsers(dest="model_family", required=True)
    for family, (module_name, config_name, _, help_text) in TRAINERS.items():
        parser = families.add_parser(family, help=help_text, description=f"{help_text} (needs the [train] extra)",
                                     formatter_class=DefaultsHelpFormatter)
        add_config_arguments(parser, getattr(importlib.import_module(module_name), config_name))
        parser.set_defaults(func=_train)


def _sample(args: argparse.Namespace) -> int:
    from genimg_fast.inference.sample import sample

    from genimg_fast._device import resolve_device

    path = sample(args.model, args.checkpoint, args.out, args.n, args.seed, resolve_device(args.device, "sample"),
                  fold=args.fold, cuda_graph=args.cuda_graph, compile=args.compile)
    print(f"{args.n} {args.model} samples from {args.checkpoint}: {path}")
    return 0


def _translate(args: argparse.Namespace) -> int:
    from genimg_fast.inference.translate import translate

    from genimg_fast._device import resolve_device

    page = translate(args.checkpoint, args.input, args.out, args.size, args.aligned, args.eval, args.dropout,
                     resolve_device(args.device, "translate"), args.seed, optimize=args.optimize, compile=args.compile)
    print(f"translated {args.input} with {args.checkpoint}: {page}")
    return 0


def _add_inference_parsers(sub) -> None:
    defaults = DefaultsHelpFormatter
    about = "a grid of images from a DCGAN generator or VAE checkpoint (needs the [images] extra)"
    sample = sub.add_parser("sample", help=about, description=about, formatter_class=defaults)
    sample.add_argument("model", choices=("dcgan", "vae"))
    sample.add_argument("--checkpoint", required=True, help="netG_epoch_N.pth or vae_epoch_N.pth (plain state_dict)")
    sample.add_argument("--out", default="samples.png", help="the PNG grid to write")
    sample.add_argument("--n", type=int, default=64, help="images")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda[:N]")
    sample.add_argument("--no-fold", dest="fold", action="store_false",
                        help="keep DCGAN's batch norms (default: folded into the convolutions, eval mode); on a "
                        "CPU also skips optimize_for_inference: the network runs as loaded")
    sample.add_argument("--cuda-graph", action="store_true", help="replay each full batch as one CUDA graph (GPU)")
    sample.add_argument("--compile", action="store_true",
                        help="run the decoder through torch.compile (the first batch compiles: seconds to minutes)")
    sample.set_defaults(func=_sample)
    about = "a folder of images through a CycleGAN or pix2pix generator (needs the [images] extra)"
    translate = sub.add_parser("translate", help=about, description=about, formatter_class=defaults)
    translate.add_argument("--checkpoint", required=True, help="e.g. latest_net_G_A.pth or latest_net_G.pth")
    translate.add_argument("--input", required=True, help="folder of images")
    translate.add_argument("--out", default="results", help="folder for images/ and index.html")
    translate.add_argument("--size", type=int, default=256, help="images are resized to this square")
    translate.add_argument("--aligned", action="store_true", help="inputs are A|B pairs: translate A, show B")
    translate.add_argument("--eval", action="store_true", help="eval mode (default: train mode, as the reference)")
    translate.add_argument("--no-dropout", dest="dropout", action="store_false",
                           help="the U-Net was trained without dropout (its checkpoint cannot tell)")
    translate.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda[:N]")
    translate.add_argument("--seed", type=int, default=0, help="for the dropout kept at test time")
    translate.add_argument("--no-optimize", dest="optimize", action="store_false",
                           help="on a CPU, run the generator as loaded instead of optimize_for_inference's copy "
                           "(same outputs to rounding, faster; its dropout masks are drawn in another order)")
    translate.add_argument("--compile", action="store_true",
                           help="run the generator through torch.compile (the first image compiles: seconds to "
                           "minutes)")
    translate.set_defaults(func=_translate)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genimg-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print backend_info() as JSON: which implementation runs and why")
    info.set_defaults(func=_info)

    bench = sub.add_parser("bench", help="time fused ops against eager PyTorch, side by side")
    bench.add_argument("--quick", action="store_true",
                       help="fewer cases, variants and repeats (seconds on a CPU, minutes on a GPU)")
    bench.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda[:N]")
    bench.add_argument("--compile", action="store_true",
                       help="also time torch.compile: of the ops', networks' and inference's eager variants; "
                       "for training iterations, of the reference recipe's networks in modes default, "
                       "max-autotune-no-cudagraphs and reduce-overhead (compiling takes minutes)")
    bench.add_argument("--repeats", type=_positive_int, metavar="N",
                       help="timed repeats per op step (default 100 quick, 400 full; x5 on a GPU); whole networks "
                       "take a tenth, training iterations a twentieth")
    bench.add_argument("--only", metavar="TEXT", help="only the cases whose label contains TEXT (several: 'TEXT,TEXT'), e.g. 'dcgan'")
    bench.add_argument("--json", metavar="PATH", help="write the results record (device, versions, commit, every "
                       "figure) here, after every case")
    bench.add_argument("--markdown", metavar="PATH", help="also write a markdown summary here")
    bench.add_argument("--history", metavar="FOLDER", help="instead of running, list the results kept under FOLDER "
                       "(e.g. benchmarks/results): genimg_fast's speed-up per op, run over run")
    bench.add_argument("--plot", metavar="PATH", help="also draw the speed-ups as a bar chart PNG (needs matplotlib)")
    kinds = bench.add_mutually_exclusive_group()
    kinds.add_argument("--ops", dest="kinds", action="store_const", const="ops",
                       help="only the fused ops (norms, losses, objectives)")
    kinds.add_argument("--models", dest="kinds", action="store_const", const="models",
                       help="only whole networks and training iterations")
    bench.set_defaults(func=_bench)
    _add_train_parser(sub)
    _add_inference_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; the user's errors (user_errors.py: a mistake in what was asked for, a full
    disk, a path the system refuses) are one line naming the command and exit status 2, as
    argparse's own errors, not a traceback. GENIMG_FAST_TRACEBACK=1 shows the traceback instead."""
    from genimg_fast.user_errors import is_user_error, one_line
    from genimg_fast.train.divergence import TrainingDiverged

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TrainingDiverged as exc:  # not a mistake in the command line: the run itself failed
        print(f"genimg-fast {_command(args)}: stopped: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if not is_user_error(exc) or os.environ.get("GENIMG_FAST_TRACEBACK") == "1":
            raise
        print(f"genimg-fast {_command(args)}: error: {one_line(exc, getattr(args, 'out', None))}", file=sys.stderr)
        return 2


def _command(args: argparse.Namespace) -> str:
    return " ".join(part for part in (args.command, getattr(args, "model_family", None)) if part)


if __name__ == "__main__":
    sys.exit(main())
