"""The loop every trainer shares: epochs of batches in a seeded order, one recipe step per batch,
the losses logged, samples and checkpoints at their intervals, a graceful stop (Ctrl-C or
max_steps) that saves a resumable state at a step boundary, and an exact resume from it.

A recipe (one per model family) owns its networks, optimizers, losses and any random state of
its own, and provides:
  step(batch) -> {name: 0-dim tensor}     one training iteration on the data set's batch (a tuple
                                          of tensors on the device: (images, labels), or (A, B))
  state_dict() / load_state_dict(state)   everything a resumed run needs
  first_batch(batch, out)                 e.g. the reference's real_samples.png (rank 0 only)
  sample(epoch, out, write)               a sample grid (at epoch ends, and every `sample_every`
                                          batches unless it is 0; every process computes it,
                                          `write` says whether to save it)
  end_epoch(epoch, out, write)            the reference's checkpoints (saved when `write`)
  loss_keys                               what the loss curve plots; title: its heading
  cuda_graphs                             whether the loop captures graph_step(*graph_inputs(batch))
                                          (train/cuda_graphs_choice.py, train/cuda_graph_step.py)
"""
from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from genimg_fast.train.batches import batch_loader, epoch_batches
from genimg_fast.train.checkpoint import (atomic_save, load_training_state, remove_stale_temporaries, rng_state,
                                         set_rng_state)
from genimg_fast.train.cuda_graph_step import CUDAGraphStep
from genimg_fast.train.cuda_graphs_choice import CUDAGraphsChoice, choose_cuda_graphs
from genimg_fast.train.data_wait import InputWatch, device_batches
from genimg_fast.train.divergence import TrainingDiverged, first_non_finite, is_nan_probability_error
from genimg_fast.train.folder_claim import LOG_FILE, STATE_FILE, claim_output_folder
from genimg_fast._device import resolve_device
from genimg_fast.extras import require
from genimg_fast.train.distributed import Distributed, from_environment, seed_process_draws
from genimg_fast.train.options import check_distributed, check_run_options
from genimg_fast.train.interrupt import StopRequest
from genimg_fast.train.progress import StepProgress
from genimg_fast.train.run_log import NOT_LOSSES, LossLog, plot_losses
from genimg_fast.train.workers import resolve_workers


class Recipe(Protocol):
    loss_keys: list[str]
    title: str
    cuda_graphs: CUDAGraphsChoice

    def step(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def first_batch(self, batch: tuple[torch.Tensor, ...], out: Path) -> None: ...
    def sample(self, epoch: int, out: Path, write: bool) -> None: ...
    def end_epoch(self, epoch: int, out: Path, write: bool) -> None: ...


def start_run(config: Any) -> tuple[Distributed, torch.device]:
    """The process group (under torchrun) and device of a run, its options checked (and the train
    extra installed: a missing module would otherwise fail after the first files are written)."""
    require("train")
    check_run_options(config)
    distributed, device_name = from_environment(config.device)
    device = resolve_device(device_name, "train")
    choose_cuda_graphs(config, device, distributed.world)  # --cuda-graphs on that cannot be: refused now
    check_distributed(config, device, distributed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as both references: the fastest algorithm per shape
    return distributed, device


def _check_resumable(config: dict[str, Any], saved: dict[str, Any], same_on_resume: tuple[str, ...]) -> None:
    for name in same_on_resume:
        if saved.get(name) != config.get(name):
            raise ValueError(f"--resume: --{name.replace('_', '-')} was {saved.get(name)!r} in the run being resumed, "
                             f"now {config.get(name)!r}")


def _process_state(recipe: Recipe) -> dict:
    """What differs between the processes of a data-parallel run: their random state (drawn by
    the loop), and the recipe's own, e.g. CycleGAN's image pools of each process's fakes."""
    return recipe.process_state() if hasattr(recipe, "process_state") else {}


def _load_process_state(recipe: Recipe, processes: list[dict], distributed: Distributed) -> None:
    if len(processes) != distributed.world:
        raise ValueError(f"--resume: the run was saved by {len(processes)} process(es), now {distributed.world}: "
                         "its random state and image pools are per process, so resume with the same number")
    mine = processes[distributed.rank]
    set_rng_state(mine["rng"])
    if hasattr(recipe, "load_process_state"):
        recipe.load_process_state(mine["recipe"])


def run_training(config: Any, epochs: int, same_on_resume: tuple[str, ...], recipe: Recipe, dataset: Dataset,
                 device: torch.device, distributed: Distributed | None = None) -> dict:
    """Train `recipe` on `dataset` for `epochs` (config: a trainer's config, a RunOptions with out,
    batch_size and seed; its run options steer the loop); returns a summary (steps, epochs done, whether it stopped
    early, images per second, the last logged losses and the recipe's headline loss_keys among
    them, the output folder). In a data-parallel
    run each process trains on its slice of every batch and only rank 0 writes files; it holds
    the output folder for the run's lifetime (folder_claim.py)."""
    distributed = distributed or Distributed()
    if config.batch_size % distributed.world:
        raise ValueError(f"batch_size {config.batch_size} does not split into {distributed.world} equal slices "
                         "(one per process)")
    claim = (claim_output_folder(config.out, config.resume, config.overwrite) if distributed.writes
             else contextlib.nullcontext())
    with claim:
        return _train(config, epochs, same_on_resume, recipe, dataset, device, distributed)


def _train(config: Any, epochs: int, same_on_resume: tuple[str, ...], recipe: Recipe, dataset: Dataset,
           device: torch.device, distributed: Distributed) -> dict:
    return _Run(config, recipe, dataset, device, distributed).resume(same_on_resume).train(epochs)


class _Run:
    """One training run's steps: resume, the epochs, each batch, the log, the saves."""

    def __init__(self, config: Any, recipe: Recipe, dataset: Dataset, device: torch.device,
                 distributed: Distributed) -> None:
        self.config, self.recipe, self.dataset, self.device, self.distributed = (config, recipe, dataset, device,
                                                                                  distributed)
        self.out = Path(config.out)
        self.writes = distributed.writes
        self.config_record = dataclasses.asdict(config)
        self.epoch, self.batch_in_epoch, self.step = 0, 0, 0
        self.saved_step: int | None = None  # the step the state on disk resumes from
        self.saved_at = time.monotonic()
        self.last: dict = {}
        random.seed(config.seed)  # Python's random too (a folder data set's transforms may draw from it)
        seed_process_draws(config.seed, distributed)

    def resume(self, same_on_resume: tuple[str, ...]) -> "_Run":
        """Where the run starts: from the saved state with --resume, else afresh; then the log."""
        config, out = self.config, self.out
        if config.resume:
            state = load_training_state(out / STATE_FILE)
            _check_resumable(self.config_record, state["config"], same_on_resume)
            try:
                self.recipe.load_state_dict(state["recipe"])
                _load_process_state(self.recipe, state["processes"], self.distributed)
                self.epoch, self.batch_in_epoch, self.step = (int(state[key])
                                                              for key in ("epoch", "batch_in_epoch", "step"))
            except (KeyError, IndexError, TypeError, RuntimeError) as exc:  # a damaged state of the right form
                raise ValueError(f"{out / STATE_FILE}: does not fit this run: {type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            self.saved_step = self.step
        if self.writes:
            remove_stale_temporaries(out)
        self.log = (LossLog(out / LOG_FILE, resume_from_step=self.step if config.resume else None)
                    if self.writes else None)
        self.workers = resolve_workers(config.workers, self.device.type)  # None: as many as the machine allows
        self.progress = StepProgress(config.progress and self.writes, config.log_every, config.batch_size,
                                     self.distributed.mean,
                                     watch=InputWatch(self.workers, self.device.type) if self.writes else None)
        return self

    def write(self, entries: list[dict], check: bool = True) -> None:
        """Log the entries; a value that is not finite stops the run."""
        for entry in entries:
            if self.log is not None:
                self.log.write(entry)
            self.last = entry
        bad = first_non_finite(entries, NOT_LOSSES) if check else None
        if bad is not None:  # every process reads the same (averaged) values: all stop here
            self.diverged(f"{bad[1]} is {bad[2]} at step {bad[0]}")

    def diverged(self, what: str) -> None:
        kept = (f"{self.out / STATE_FILE} still resumes from step {self.saved_step}" if self.saved_step is not None
                else "no resumable state had been saved yet")
        raise TrainingDiverged(f"the run diverged: {what}; stopped without saving: {kept}, the checkpoints "
                               "written before stay as they were")

    def train_batch(self, batch: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        try:
            return self.train_step(batch)
        except RuntimeError as exc:
            if not is_nan_probability_error(exc):
                raise
            self.diverged(f"a probability given to a 'bce' loss is NaN at step {self.step}")

    def save_due(self) -> bool:
        """A periodic save is due (a kill loses at most save_every_minutes of training); every
        process decides together, at the step boundaries where they already exchange."""
        config = self.config
        due = (config.save_every_minutes > 0 and self.step != self.saved_step
               and time.monotonic() - self.saved_at >= 60 * config.save_every_minutes)
        if not self.distributed.active:
            return due
        return self.step % config.log_every == 0 and self.distributed.any(due, self.device)

    def save_state(self) -> None:
        """The resumable state, at a step boundary: every finished step is in it, no half step."""
        self.write(self.progress.flush())  # the log first: a kill after the save leaves no logged step missing
        processes = self.distributed.gather({"rng": rng_state(), "recipe": _process_state(self.recipe)})
        if self.writes:
            atomic_save({"config": self.config_record, "recipe": self.recipe.state_dict(), "epoch": self.epoch,
                         "batch_in_epoch": self.batch_in_epoch, "step": self.step, "processes": processes},
                        self.out / STATE_FILE)
        self.saved_step, self.saved_at = self.step, time.monotonic()

    def stop_asked(self, stop: StopRequest) -> bool:
        """All processes stop together; asked every log_every steps (a collective syncs)."""
        if not self.distributed.active:
            return stop.requested
        return self.step % self.config.log_every == 0 and self.distributed.any(stop.requested, self.device)

    def run_epoch(self, epochs: int, stop: StopRequest) -> bool:
        """The rest of the current epoch; True when the run stopped inside it (max_steps, a stop)."""
        config, recipe, distributed = self.config, self.recipe, self.distributed
        if hasattr(self.dataset, "set_epoch"):  # per-item randomness (crops, flips, unpaired draws) by epoch
            self.dataset.set_epoch(self.epoch)
        batches = [distributed.shard(b) for b in epoch_batches(len(self.dataset), config.batch_size, config.seed,
                                                               self.epoch, distributed.world)]
        self.progress.start_epoch(self.epoch, epochs, len(batches), self.batch_in_epoch)
        loader = batch_loader(self.dataset, batches[self.batch_in_epoch:], self.workers, self.device,
                              seed=config.seed * 100_003 + self.epoch)
        for batch, wait in device_batches(loader, self.device):  # on the device, with the wait it cost
            if config.max_steps is not None and self.step >= config.max_steps:
                break
            if self.stop_asked(stop):
                break
            if self.save_due():
                self.save_state()
            if self.step == 0 and self.writes:
                recipe.first_batch(batch, self.out)
            self.write(self.progress.add(self.step, self.epoch, self.train_batch(batch), wait))
            if config.sample_every and self.batch_in_epoch % config.sample_every == 0:
                recipe.sample(self.epoch, self.out, self.writes)  # every process runs it: synchronized norms
            self.step += 1
            self.batch_in_epoch += 1
        self.write(self.progress.flush())
        if self.batch_in_epoch < len(batches):  # stopped inside the epoch
            self.save_state()
            return True
        recipe.sample(self.epoch, self.out, self.writes)
        recipe.end_epoch(self.epoch, self.out, self.writes)
        self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        self.save_state()
        return False

    def finish_log(self) -> None:
        self.write(self.progress.flush())
        self.progress.close()
        if self.log is not None:
            self.log.close()
            entries = self.log.entries()
            if entries:
                plot_losses(entries, self.recipe.loss_keys, self.out / "loss_curve.png", self.recipe.title)

    def train(self, epochs: int) -> dict:
        """The epochs from where the run starts; the run's summary."""
        graphs = self.recipe.cuda_graphs
        if self.writes and self.config.progress:
            print(f"cuda graphs: {graphs.describe()}", flush=True)
        self.train_step = (CUDAGraphStep(self.recipe, self.config.batch_size // self.distributed.world,
                                         self.config.cuda_graphs) if graphs.enabled else self.recipe.step)
        started, first_step, stopped_early = time.perf_counter(), self.step, False
        with StopRequest() as stop:
            try:
                while self.epoch < epochs and not stopped_early:
                    stopped_early = self.run_epoch(epochs, stop)
            except BaseException:
                # another process may be in a collective: no exchange now; the error in flight is the one to report
                self.write(self.progress.flush(reduce=False), check=False)
                raise
            finally:
                self.finish_log()
        seconds = time.perf_counter() - started
        images_done = (self.step - first_step) * self.config.batch_size
        return {"steps": self.step, "epochs_done": self.epoch, "stopped_early": stopped_early,
                "images_per_second": images_done / seconds if seconds > 0 else 0.0,
                "losses": {k: v for k, v in self.last.items() if k not in NOT_LOSSES},
                "loss_keys": list(self.recipe.loss_keys), "out": str(self.out), "device": str(self.device)}
