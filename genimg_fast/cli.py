"""`genimg-fast`: command-line entry point."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _info(_args: argparse.Namespace) -> int:
    import genimg_fast

    print(json.dumps(genimg_fast.backend_info(), indent=2))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from genimg_fast.bench.report import format_table
    from genimg_fast.bench.suite import resolve_device, run_suite, write_record

    device = resolve_device(args.device)
    record = run_suite(device, quick=args.quick, compile_too=args.compile, only=args.only)
    backend = record["backend"]
    print(f"genimg_fast bench ({record['mode']}) on {record['device']}; torch {record['torch']}; "
          f"impl={backend['impl']}" + (f" ({backend['reason']})" if backend["reason"] else ""))
    if record["copy_bandwidth_gbs"]:
        print(f"measured device copy bandwidth: {record['copy_bandwidth_gbs']:.0f} GB/s (read + write)")
    print(format_table(record["results"], record["copy_bandwidth_gbs"]))
    if args.json:
        write_record(record, Path(args.json))
        print(f"results written to {args.json}")
    return 0


def _train_dcgan(args: argparse.Namespace) -> int:
    import genimg_fast
    from genimg_fast.train import DCGANConfig, train_dcgan

    fields = {f for f in DCGANConfig.__dataclass_fields__}
    config = DCGANConfig(**{k: v for k, v in vars(args).items() if k in fields})
    backend = genimg_fast.backend_info()
    print(f"genimg-fast train dcgan: impl={config.impl}, kernels: {backend['impl']}"
          + (f" ({backend['reason']})" if backend["reason"] else "") + f", output in {config.out}", flush=True)
    summary = train_dcgan(config)
    status = "stopped early (resume with --resume)" if summary["stopped_early"] else "done"
    print(f"dcgan {status}: {summary['steps']} iterations, {summary['epochs_done']} epochs, "
          f"{summary['images_per_second']:.1f} images/s on {summary['device']}, last loss_D "
          f"{summary['loss_D']:.4f} loss_G {summary['loss_G']:.4f}; checkpoints, samples, losses.jsonl and "
          f"loss_curve.png in {summary['out']}")
    return 0


def _add_train_parser(sub) -> None:
    from genimg_fast.train import DCGANConfig

    train = sub.add_parser("train", help="train a model of a reference recipe")
    models = train.add_subparsers(dest="model", required=True)
    dcgan = models.add_parser("dcgan", help="DCGAN (pytorch/examples dcgan): 'shapes' (built in) or a folder of images",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d = DCGANConfig()
    dcgan.add_argument("--data", default=d.data, help="'shapes' (generated, no download) or a folder of images")
    dcgan.add_argument("--out", default=d.out, help="output folder: checkpoints, samples, losses")
    dcgan.add_argument("--image-size", type=int, default=d.image_size, help="32, 64, 128 or 256")
    dcgan.add_argument("--channels", type=int, default=d.channels, choices=(1, 3))
    dcgan.add_argument("--dataset-size", type=int, default=d.dataset_size, help="images in the built-in set")
    dcgan.add_argument("--batch-size", type=int, default=d.batch_size)
    dcgan.add_argument("--epochs", type=int, default=d.epochs)
    dcgan.add_argument("--max-steps", type=int, default=None, help="stop after this many iterations (resumable)")
    dcgan.add_argument("--nz", type=int, default=d.nz)
    dcgan.add_argument("--ngf", type=int, default=d.ngf)
    dcgan.add_argument("--ndf", type=int, default=d.ndf)
    dcgan.add_argument("--lr", type=float, default=d.lr)
    dcgan.add_argument("--beta1", type=float, default=d.beta1)
    dcgan.add_argument("--impl", choices=("fused", "reference"), default=d.impl,
                       help="genimg_fast's fused networks and losses, or plain torch.nn for A/B runs")
    dcgan.add_argument("--device", default=d.device, help="auto (GPU if present), cpu or cuda[:N]")
    dcgan.add_argument("--seed", type=int, default=d.seed)
    dcgan.add_argument("--sample-every", type=int, default=d.sample_every, help="iterations between sample grids")
    dcgan.add_argument("--log-every", type=int, default=d.log_every,
                       help="read the losses from the device this often (every iteration is logged)")
    dcgan.add_argument("--workers", type=int, default=d.workers, help="data-loading processes")
    dcgan.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    dcgan.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    dcgan.set_defaults(func=_train_dcgan)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genimg-fast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="print backend_info() as JSON: which implementation runs and why")
    info.set_defaults(func=_info)

    bench = sub.add_parser("bench", help="time fused ops against eager PyTorch, side by side")
    bench.add_argument("--quick", action="store_true", help="fewer cases and repeats (about a minute on CPU)")
    bench.add_argument("--device", default="auto", help="auto (GPU if present), cpu or cuda[:N]")
    bench.add_argument("--compile", action="store_true", help="also time torch.compile of both variants")
    bench.add_argument("--only", metavar="TEXT", help="only the cases whose label contains TEXT (several: 'TEXT,TEXT'), e.g. 'dcgan'")
    bench.add_argument("--json", metavar="PATH", help="write the results record (device, versions, commit) here")
    bench.set_defaults(func=_bench)
    _add_train_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
