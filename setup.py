"""Build genimg_fast: the CUDA extension genimg_fast._C when possible, else pure Python.

See buildtools/build_plan.py for the decision and README.md (Install) for the knobs:
GENIMG_FAST_BUILD_CUDA=0/1, TORCH_CUDA_ARCH_LIST, CUDA_HOME.
"""
import glob
import os
import sys
from pathlib import Path

import setuptools
from setuptools import setup

# pyproject.toml's license fields (PEP 639) need setuptools 77; an older one (python -m venv
# brings 65 with Python 3.11) fails on them with a schema error that does not say so. An isolated
# build gets a new one by itself; --no-build-isolation uses the environment's.
MIN_SETUPTOOLS = (77, 0)
if tuple(int(part) for part in setuptools.__version__.split(".")[:2] if part.isdigit()) < MIN_SETUPTOOLS:
    sys.exit(f"genimg_fast: build stopped: it needs setuptools>={'.'.join(map(str, MIN_SETUPTOOLS))}, this environment "
             f"has {setuptools.__version__}: pip install -U setuptools wheel, then build again")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from buildtools.build_plan import (NVCC_FLAGS, BuildPlan, plan_build, torch_requirement,  # noqa: E402
                                   write_build_config)
from buildtools.cuda_toolkit import CudaToolkitError  # noqa: E402
from buildtools.torch_beside import TorchMismatch, check_same_torch  # noqa: E402

# Written beside the built extension: the fingerprints of its kernels' device code, which
# genimg_fast compares with its record of verified kernels (docs/kernel-verification.md).
FINGERPRINTS_FILE = "_kernel_fingerprints.json"

# An sdist only packs the sources (MANIFEST.in), after egg_info (also run alone, by the sdist's
# requirements hook): they build nothing, so they plan nothing, need no torch, write nothing into
# the tree, and come out the same from any machine. Every other command builds or reports the
# wheel's metadata (dist_info), which depends on the plan.
_WORDS = {arg for arg in sys.argv[1:] if not arg.startswith("-")}  # the commands, and option values
PACKING_ONLY = bool(_WORDS & {"sdist", "egg_info"}) and not _WORDS & {
    "build", "build_ext", "build_py", "bdist_wheel", "dist_info", "editable_wheel", "install", "develop"}

if PACKING_ONLY:
    plan = BuildPlan(False, "an sdist builds nothing")
else:
    try:
        plan = plan_build()
        if plan.build_cuda:
            import torch

            check_same_torch(plan.torch_version, torch.__file__)
    except (CudaToolkitError, TorchMismatch) as exc:
        sys.exit(f"genimg_fast: build stopped: {exc}")  # one paragraph where pip shows the build's output
    write_build_config(plan, ROOT / "genimg_fast" / "_build_config.py")

ext_modules = []
cmdclass = {}
if plan.build_cuda:
    # torch.utils.cpp_extension reads CUDA_HOME and the arch list when imported/used.
    os.environ["CUDA_HOME"] = str(plan.toolkit.home)
    os.environ["TORCH_CUDA_ARCH_LIST"] = plan.arch_list
    try:  # the pip `ninja` package puts its binary outside PATH unless the venv is activated
        import ninja

        os.environ["PATH"] = ninja.BIN_DIR + os.pathsep + os.environ.get("PATH", "")
    except ImportError:
        pass
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension

    from buildtools.kernel_fingerprints import write_build_fingerprints

    class BuildWithFingerprints(BuildExtension):
        """build_ext, then the fingerprints of each extension's kernels beside its binary."""

        def run(self):
            super().run()
            for ext in self.extensions:
                binary = Path(self.get_ext_fullpath(ext.name))
                line = write_build_fingerprints(binary, binary.parent / FINGERPRINTS_FILE, plan.torch_version)
                print(f"genimg_fast: {line}")

    sources = sorted(
        os.path.relpath(p, ROOT)
        for pattern in ("csrc/**/*.cpp", "csrc/**/*.cu")
        for p in glob.glob(str(ROOT / pattern), recursive=True)
    )
    ext_modules.append(
        CUDAExtension(
            name="genimg_fast._C",
            sources=sources,
            include_dirs=[str(ROOT / "csrc")],
            extra_compile_args={
                "cxx": ["-O3"],
                "nvcc": list(NVCC_FLAGS),
            },
        )
    )
    cmdclass["build_ext"] = BuildWithFingerprints
    print(f"genimg_fast: building CUDA kernels with CUDA {plan.toolkit.version} at {plan.toolkit.home} "
          f"(found by {plan.toolkit.found_by}) for TORCH_CUDA_ARCH_LIST={plan.arch_list}")
elif not PACKING_ONLY:
    # A stale in-place build would otherwise keep loading; this build promises no kernels.
    for stale in [*glob.glob(str(ROOT / "genimg_fast" / "_C*.so")), str(ROOT / "genimg_fast" / FINGERPRINTS_FILE)]:
        if os.path.exists(stale):
            os.remove(stale)
    print(f"genimg_fast: no CUDA kernels built ({plan.reason}); the modules and losses will run torch's own ops")

setup(ext_modules=ext_modules, cmdclass=cmdclass,
      install_requires=[torch_requirement(plan)])  # packing only: no kernels, so the range
