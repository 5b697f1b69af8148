// genimg_fast._C: importing this module registers the CUDA kernels of every op with
// torch.ops.genimg_fast (through the TORCH_LIBRARY_IMPL blocks in the other translation
// units). The op schemas and reference implementations live in Python (genimg_fast/ops);
// the functions below report what the binary was built for and which norm kernels it picks,
// and let genimg_fast/_kernel_paths.py say which kernel paths may run.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <exception>
#include <string>

#include "common/build_info.h"
#include "common/kernel_paths.h"
#include "norm_act/norm_act_tiling.h"
#include "norm_act/train_path.h"

namespace py = pybind11;

namespace genimg_fast {
namespace {

// The Python callable that hears of a kernel path passed over; never freed (it may be called
// while the interpreter shuts down, from whichever thread runs an op).
py::object* passed_over_callback = nullptr;

void notify_python(const char* path, const char* instead) {
  if (passed_over_callback == nullptr || !Py_IsInitialized()) return;
  py::gil_scoped_acquire gil;
  try {
    (*passed_over_callback)(path, instead);
  } catch (py::error_already_set& error) {
    error.discard_as_unraisable("genimg_fast: the kernel-path notifier");
  } catch (const std::exception&) {
    // a notice is not worth failing the op that gave way
  }
}

void set_notifier(py::object callback) {
  if (callback.is_none()) {
    set_passed_over_notifier(nullptr);
    return;
  }
  if (passed_over_callback == nullptr) passed_over_callback = new py::object();
  *passed_over_callback = std::move(callback);
  set_passed_over_notifier(notify_python);
}

const char* train_path_name(TrainPath path) {
  return path == TrainPath::kReference ? "reference" : kernel_path_name(kernel_path_of(path));
}

// The training kernels of an (N, C, H, W) input under the current kernel-path settings, with
// `clusters` standing in for the device's answer: host logic, testable without a GPU.
std::string norm_train_path_for(int64_t n, int64_t c, int64_t hw, bool channels_last, bool per_sample,
                                bool double_input, bool clusters) {
  const NormTiling t = plan_norm_tiling(n, c, hw, channels_last, per_sample);
  bool (*supported)() = clusters ? +[] { return true; } : +[] { return false; };
  return train_path_name(runnable_train_path(fitting_train_path(t, !double_input, supported), kernel_path_enabled));
}

}  // namespace
}  // namespace genimg_fast

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace genimg_fast;
  m.doc() = "genimg_fast CUDA kernels (registered with torch.ops.genimg_fast on import)";
  m.def("compiled_cuda_archs", &compiled_cuda_archs, "SM versions of the device code in this binary, e.g. [800, 900]");
  m.def("cuda_runtime_build_version", &cuda_runtime_build_version,
        "CUDART_VERSION the kernels were compiled with, e.g. 13000");
  m.def("norm_cluster_kernels", &norm_cluster_supported,
        "Whether the current GPU runs the one-cluster-a-group norm kernels (needs a GPU)");
  m.def("norm_block_max_count", &norm_block_max_count, "The largest norm group (values) the block kernels take");
  m.def("norm_cluster_max_count", &norm_cluster_max_count,
        "The largest norm group (values) the cluster kernels take, where the GPU runs them");
  m.def("kernel_path_names", &kernel_path_names, "Every kernel path in this binary");
  m.def("set_enabled_kernel_paths", &set_enabled_kernel_paths, "Which kernel paths may run (the rest may not)");
  m.def("enabled_kernel_paths", &enabled_kernel_paths, "The kernel paths that may run");
  m.def("kernel_paths_ran", &kernel_paths_ran, "The kernel paths that ran since the last forget_kernel_paths_ran()");
  m.def("forget_kernel_paths_ran", &forget_kernel_paths_ran, "Start a new record of the kernel paths that ran");
  m.def("set_kernel_path_notifier", &set_notifier,
        "callback(path, instead), called the first time a kernel path that may not run is passed over (None: none)");
  m.def(
      "note_kernel_path_passed_over",
      [](const std::string& path, const std::string& instead) {
        note_kernel_path_passed_over(kernel_path_named(path), instead.c_str());
      },
      "Report a kernel path passed over for `instead`, as an op does (for tests)");
  m.def("norm_train_path_for", &norm_train_path_for, py::arg("n"), py::arg("c"), py::arg("hw"),
        py::arg("channels_last"), py::arg("per_sample"), py::arg("double_input"), py::arg("clusters"),
        "The norm training kernels an input of this shape takes under the current settings (host logic)");
}
