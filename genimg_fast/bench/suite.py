"""`genimg-fast bench`: run every benchmark family on one device and collect one result record."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from genimg_fast.bench import (inference_bench, l1_loss_bench, models_bench, norm_act_bench, objectives_bench,
                               training_bench)
from genimg_fast.bench.checks import UntimedVariants
from genimg_fast.bench.environment import environment_record
from genimg_fast.bench.launch_counts import DeferredLaunchCounts
from genimg_fast.bench.timing import copy_bandwidth_gbs


# Each family: cases(device, quick) and run_case(case, device, *, compile_too, warmup, repeats) -> rows.
KINDS = {"ops": (l1_loss_bench, norm_act_bench, objectives_bench),
         "models": (models_bench, training_bench, inference_bench)}
FAMILIES = KINDS["ops"] + KINDS["models"]
# Families whose rows carry kernel launches per step: their run_case also takes launch_counts.
COUNTING_LAUNCHES = (objectives_bench,)


def run_suite(device: torch.device, *, quick: bool, compile_too: bool, only: str | None = None,
              kinds: str | None = None, repeats: int | None = None,
              on_case: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every family's cases, or with `only` ("text,text,...") those whose label contains one of
    the texts (case-insensitive); `kinds` 'ops' or 'models' keeps those families; `repeats`
    replaces the default count (each family scales it to its step's cost). `on_case` gets the
    record so far after every case (its "complete" is False until the end): a run cut short
    keeps what it measured."""
    torch.manual_seed(0)
    wanted = [text.strip().lower() for text in only.split(",") if text.strip()] if only else []
    warmup, default_repeats = (10, 100) if quick else (20, 400)
    if device.type == "cuda":
        default_repeats *= 5  # GPU repeats are cheap and the spread is larger
    repeats = repeats or default_repeats
    launch_counts = DeferredLaunchCounts()  # after every timing: a profiler session slows later eager steps
    record = environment_record(device)
    record.update({"mode": "quick" if quick else "full", "only": only, "repeats": repeats, "complete": False,
                   "copy_bandwidth_gbs": copy_bandwidth_gbs(device), "results": [], "failures": [],
                   "seconds_per_family": {}})
    rows, failures, seconds = record["results"], record["failures"], record["seconds_per_family"]
    matched = 0
    for family in KINDS[kinds] if kinds else FAMILIES:
        family_name = family.__name__.rsplit(".", 1)[-1].removesuffix("_bench")
        started = time.perf_counter()
        for case in family.cases(device, quick):
            if wanted and not any(text in case.label.lower() for text in wanted):
                continue
            matched += 1
            if compile_too:  # each case compiles afresh: earlier cases' guards would count toward the recompile limit
                torch._dynamo.reset()
            counting = {"launch_counts": launch_counts} if family in COUNTING_LAUNCHES else {}
            try:
                rows += family.run_case(case, device, compile_too=compile_too, warmup=warmup, repeats=repeats,
                                        **counting)
            except UntimedVariants as exc:  # the others were timed
                rows += exc.rows
                failures += [{"family": family_name, "case": case.label, "variant": name, "error": why}
                             for name, why in exc.failed.items()]
            except Exception as exc:  # a check of the whole case, or a crash: reported, the suite goes on
                error = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
                failures.append({"family": family_name, "case": case.label, "variant": None, "error": error})
            seconds[family_name] = round(time.perf_counter() - started, 1)
            if on_case is not None:
                on_case(record)
    if not matched:
        raise SystemExit(f"genimg-fast bench: no case label contains {only!r}")
    launch_counts.count_all()
    record["complete"] = True
    return record


def write_record(record: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)  # atomic: a reader never sees half a file
