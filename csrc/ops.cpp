// genimg_fast._C: importing this module registers the CUDA kernels of every op with
// torch.ops.genimg_fast (through the TORCH_LIBRARY_IMPL blocks in the other translation
// units). The op schemas and reference implementations live in Python (genimg_fast/ops);
// the functions below only report what the binary was built for and which norm kernels it picks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "common/build_info.h"
#include "norm_act/train_path.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "genimg_fast CUDA kernels (registered with torch.ops.genimg_fast on import)";
  m.def("compiled_cuda_archs", &genimg_fast::compiled_cuda_archs,
        "SM versions of the device code in this binary, e.g. [800, 900]");
  m.def("cuda_runtime_build_version", &genimg_fast::cuda_runtime_build_version,
        "CUDART_VERSION the kernels were compiled with, e.g. 13000");
  m.def("norm_cluster_kernels", &genimg_fast::cluster_pass_supported,
        "Whether the current GPU runs the one-cluster-a-group norm kernels (needs a GPU)");
  m.def("norm_one_launch_max_count", &genimg_fast::one_launch_max_count,
        "The largest norm group (values) the one-launch-each-way kernels take");
}
