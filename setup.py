"""Build genimg_fast: the CUDA extension genimg_fast._C when possible, else pure Python.

See buildtools/build_plan.py for the decision and README.md (Install) for the knobs:
GENIMG_FAST_BUILD_CUDA=0/1, TORCH_CUDA_ARCH_LIST, CUDA_HOME.
"""
import glob
import os
import sys
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from buildtools.build_plan import NVCC_FLAGS, plan_build, write_build_config  # noqa: E402

# Written beside the built extension: the fingerprints of its kernels' device code, which
# genimg_fast compares with its record of verified kernels (docs/kernel-verification.md).
FINGERPRINTS_FILE = "_kernel_fingerprints.json"

plan = plan_build()
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
else:
    # A stale in-place build would otherwise keep loading; this build promises no kernels.
    for stale in [*glob.glob(str(ROOT / "genimg_fast" / "_C*.so")), str(ROOT / "genimg_fast" / FINGERPRINTS_FILE)]:
        if os.path.exists(stale):
            os.remove(stale)
    print(f"genimg_fast: no CUDA kernels built ({plan.reason}); the modules and losses will run torch's own ops")

setup(ext_modules=ext_modules, cmdclass=cmdclass)
