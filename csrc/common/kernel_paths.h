#pragma once
// The kernel paths: the sets of kernels the ops choose between (buildtools/kernel_paths.py names
// the kernels of each). A path whose device code has not passed its CUDA tests on a GPU waits,
// off, unless opted in (docs/kernel-verification.md); genimg_fast/_kernel_paths.py says which
// may run when the kernels load. Until it does, none may: every op runs its reference.
#include <cstdint>
#include <string>
#include <vector>

namespace genimg_fast {

enum class KernelPath : uint8_t {
  kNormTiles,
  kNormBlock,
  kNormCluster,
  kRunningStats,
  kL1Loss,
  kScaleOneStoredGrad,
  kLossTerms,
  kScaleTermStoredGrads,
  kCount
};

// What serves an op whose kernels may not run.
inline constexpr const char* kReferenceInstead = "the PyTorch reference";

const char* kernel_path_name(KernelPath path);

// Whether `path` may run (verified, or opted in).
bool kernel_path_enabled(KernelPath path);

// `path` ran: the GPU check credits each test's outcome to the paths it ran.
void note_kernel_path_ran(KernelPath path);

// `path` could not run and `instead` served the call; the first time, the notifier hears of it.
void note_kernel_path_passed_over(KernelPath path, const char* instead);

// Whether `path` may run, noting either way: the ops' one-line gate.
inline bool take_kernel_path(KernelPath path, const char* instead) {
  if (kernel_path_enabled(path)) {
    note_kernel_path_ran(path);
    return true;
  }
  note_kernel_path_passed_over(path, instead);
  return false;
}

// For genimg_fast._C's Python functions (ops.cpp).
std::vector<std::string> kernel_path_names();
KernelPath kernel_path_named(const std::string& name);  // unknown names throw
void set_enabled_kernel_paths(const std::vector<std::string>& names);  // unknown names throw
std::vector<std::string> enabled_kernel_paths();
std::vector<std::string> kernel_paths_ran();
void forget_kernel_paths_ran();
using PassedOverNotifier = void (*)(const char* path, const char* instead);
void set_passed_over_notifier(PassedOverNotifier notifier);

}  // namespace genimg_fast
