"""Loading the compiled CUDA kernels (genimg_fast._C) and reporting what runs.

Importing genimg_fast._C registers its kernels for the CUDA dispatch key of the ops defined
in genimg_fast.ops. The fused modules and losses choose per call between those kernels, torch's
own ops and the exact references (_implementation.py). GENIMG_FAST_IMPL selects: `auto`
(default: kernels where they serve, torch's ops elsewhere), `reference` (never load the kernels;
the exact references everywhere, the test oracle), `cuda` (fail at import unless kernels and a
GPU are there). Of the loaded kernels, only the kernel paths verified on a GPU run unless opted
in (_kernel_paths.py).
"""
from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import Any

import torch

from genimg_fast import _implementation, _kernel_paths

IMPL_ENV = "GENIMG_FAST_IMPL"
IMPL_CHOICES = ("auto", "reference", "cuda")
# Once the cap of both the block and cluster norm paths; the kernels still read it where
# GENIMG_FAST_NORM_BLOCK_MAX or GENIMG_FAST_NORM_CLUSTER_MAX is unset.
DEPRECATED_NORM_CAP_ENV = "GENIMG_FAST_SINGLE_PASS_MAX"

logger = logging.getLogger("genimg_fast")

_kernels: ModuleType | None = None
_load_failure: str | None = None  # why _kernels is None
_warned_fallback = False


def requested_impl() -> str:
    value = os.environ.get(IMPL_ENV, "auto").strip().lower() or "auto"
    if value not in IMPL_CHOICES:
        raise ValueError(f"{IMPL_ENV} must be one of {', '.join(IMPL_CHOICES)}; got {value!r}")
    return value


def _build_config() -> ModuleType | None:
    try:
        from genimg_fast import _build_config as config  # written by setup.py
    except ImportError:
        return None
    return config


def _torch_skew_hint(config: ModuleType | None) -> str:
    built_with = getattr(config, "BUILT_WITH_TORCH", None)
    if built_with and built_with.split(".")[:2] != torch.__version__.split(".")[:2]:
        return (f" (the kernels were built with torch {built_with} but torch {torch.__version__} is running: "
                f"rebuild with `pip install --no-build-isolation .`)")
    return ""


def _import_kernels() -> tuple[ModuleType | None, str | None]:
    if requested_impl() == "reference":
        return None, f"{IMPL_ENV}=reference forces the reference implementation"
    config = _build_config()
    if config is not None and not config.BUILT_CUDA:
        return None, f"not built: {config.REASON}"
    try:
        return importlib.import_module("genimg_fast._C"), None
    except ModuleNotFoundError as exc:
        if exc.name != "genimg_fast._C":
            return None, f"import error: {exc}"
        if config is None:
            return None, "not built: genimg_fast._C is missing and there is no build record (an unbuilt source tree?)"
        return None, "not built: the build recorded CUDA kernels but genimg_fast._C is missing; reinstall"
    except ImportError as exc:  # present but unloadable: ABI or CUDA runtime mismatch, missing library
        return None, f"import error: {exc}{_torch_skew_hint(config)}"


def load_kernels() -> None:
    """Import the compiled kernels once (called by `import genimg_fast`)."""
    global _kernels, _load_failure
    _kernels, _load_failure = _import_kernels()
    if _kernels is not None:
        _kernel_paths.configure(_kernels)
        if os.environ.get(DEPRECATED_NORM_CAP_ENV):
            logger.warning("genimg_fast: %s is deprecated: set GENIMG_FAST_NORM_BLOCK_MAX and "
                           "GENIMG_FAST_NORM_CLUSTER_MAX, the caps of the block and cluster norm kernels",
                           DEPRECATED_NORM_CAP_ENV)
    else:
        _warn_if_built_but_unloadable()
    _implementation.forget_choices()
    if requested_impl() == "cuda":
        if _kernels is None:
            raise RuntimeError(f"{IMPL_ENV}=cuda but the CUDA kernels are unavailable: {_load_failure}")
        if not torch.cuda.is_available():
            raise RuntimeError(f"{IMPL_ENV}=cuda but torch sees no CUDA GPU")


def _warn_if_built_but_unloadable() -> None:
    """One line at import when this install built kernels that do not load (another torch than
    the one they were built with, a missing CUDA library): a silent fallback would look like a
    slow package. The per-op fallback note then stays quiet: this line said it."""
    global _warned_fallback
    config = _build_config()
    if config is None or not config.BUILT_CUDA or requested_impl() == "reference":
        return
    _warned_fallback = True
    logger.warning("genimg_fast: the CUDA kernels of this install cannot load, torch's own ops run instead: %s",
                   _load_failure)


def kernels_loaded() -> bool:
    return _kernels is not None


def compiled_sm_versions() -> list[int]:
    """SM versions in the binary, e.g. [80, 90] (nvcc's __CUDA_ARCH_LIST__ says 800, 900)."""
    return [arch // 10 for arch in _kernels.compiled_cuda_archs()] if _kernels else []


def _arch_covers(capability: tuple[int, int], compiled: list[int], arch_list: str | None) -> bool:
    """Whether a device of this capability can run the binary: SASS of the same major and an
    equal or lower minor, or PTX of an equal or lower arch that the driver can JIT."""
    major, minor = capability
    if any(arch // 10 == major and arch % 10 <= minor for arch in compiled):
        return True
    for entry in (arch_list or "").replace(" ", ";").split(";"):
        if entry.endswith("+PTX"):
            ptx_major, ptx_minor = (int(p) for p in entry[:-4].split(".")[:2])
            if (ptx_major, ptx_minor) <= (major, minor):
                return True
    return False


def enabled_kernel_paths() -> list[str]:
    """The kernel paths the loaded kernels may run (none without kernels)."""
    return list(_kernels.enabled_kernel_paths()) if _kernels is not None else []


def unusable_reason() -> str | None:
    """Why the loaded kernels cannot run here, or None when they can."""
    if _kernels is None:
        return _load_failure
    if not torch.cuda.is_available():
        return "no GPU: torch.cuda.is_available() is False"
    compiled = compiled_sm_versions()
    capability = torch.cuda.get_device_capability()
    arch_list = getattr(_build_config(), "CUDA_ARCH_LIST", None)
    if not _arch_covers(capability, compiled, arch_list):
        major, minor = capability
        return (f"this GPU is sm_{major}{minor} but the kernels were compiled for "
                f"{', '.join(f'sm_{a}' for a in compiled)}: rebuild with TORCH_CUDA_ARCH_LIST={major}.{minor}")
    return None


def backend_info() -> dict[str, Any]:
    """Which implementation runs here and why, with the versions a bug report needs.

    Returns:
        dict: among others 'impl' ('cuda' when the loaded kernels can run on this machine's GPU,
        else 'reference' when GENIMG_FAST_IMPL=reference asks for it, else 'fallback'),
        'kernels_loaded', 'reason' (why the kernels cannot run, or None), 'requested_impl',
        the build's and this machine's torch / CUDA / cuDNN versions and GPU, 'kernel_paths',
        and 'implementation': what serves each op family on CPU and CUDA tensors, and why (the
        per-family answer: 'impl' does not account for GENIMG_FAST_IMPL=reference or kernel
        paths still waiting when the kernels can run).

    Raises:
        ValueError: GENIMG_FAST_IMPL holds an unknown value.
    """
    config = _build_config()
    reason = unusable_reason()
    cuda_available = torch.cuda.is_available()
    capability = torch.cuda.get_device_capability() if cuda_available else None
    return {
        "impl": "cuda" if reason is None else ("reference" if requested_impl() == "reference" else "fallback"),
        "kernels_loaded": _kernels is not None,
        "reason": reason,
        "requested_impl": requested_impl(),
        "compiled_archs": [f"sm_{sm}" for sm in compiled_sm_versions()],
        "built_arch_list": getattr(config, "CUDA_ARCH_LIST", None),
        "built_with": {
            "torch": getattr(config, "BUILT_WITH_TORCH", None),
            "cuda": getattr(config, "NVCC_VERSION", None),
            "cuda_home": getattr(config, "CUDA_HOME", None),
        },
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": cuda_available,
        "device": torch.cuda.get_device_name() if cuda_available else "cpu",
        "device_capability": f"{capability[0]}.{capability[1]}" if capability else None,
        "norm_kernels": _norm_kernel_paths() if reason is None else None,
        "kernel_paths": _kernel_paths.report(_kernels) if _kernels is not None else {},
        "unverified_kernels": os.environ.get(_kernel_paths.OPT_IN_ENV) or None,
        "implementation": _implementation.report(),
    }


def _norm_kernel_paths() -> dict[str, Any]:
    """Which training kernels the norm ops take on the current GPU (docs/kernels.md,
    Normalization + activation), one launch each way: NCHW groups of 512 values up to `block_max_group` a block
    each, those above 2048 up to `cluster_max_group` a cluster of blocks each when `clusters`; the
    rest on the tile path."""
    return {"block_max_group": _kernels.norm_block_max_count(),
            "cluster_max_group": _kernels.norm_cluster_max_count(),
            "clusters": _kernels.norm_cluster_kernels()}


def note_reference_on_cuda(op_name: str) -> None:
    """Log once per process that a CUDA tensor went through a reference implementation. (With the
    kernels loaded, a kernel path that may not run sent it there, and said so: _kernel_paths.py.)"""
    global _warned_fallback
    if _warned_fallback or requested_impl() == "reference" or _kernels is not None:
        return
    _warned_fallback = True
    logger.warning(
        "genimg_fast.%s ran its PyTorch reference on a CUDA tensor because the CUDA kernels are "
        "unavailable (%s); later ops fall back silently. See genimg_fast.backend_info().",
        op_name, _load_failure or "no CUDA kernel for this op",
    )
