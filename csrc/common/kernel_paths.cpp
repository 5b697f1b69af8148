#include "common/kernel_paths.h"

#include <c10/util/Exception.h>

#include <atomic>

namespace genimg_fast {
namespace {

constexpr int kPathCount = static_cast<int>(KernelPath::kCount);
constexpr const char* kNames[kPathCount] = {"norm_tiles",    "norm_block",            "norm_cluster",
                                            "running_stats", "l1_loss",               "scale_one_stored_grad",
                                            "loss_terms",    "scale_term_stored_grads"};

std::atomic<uint32_t> enabled_mask{0};
std::atomic<uint32_t> ran_mask{0};
std::atomic<uint32_t> passed_over_mask{0};
std::atomic<PassedOverNotifier> notifier{nullptr};

uint32_t bit(KernelPath path) { return uint32_t{1} << static_cast<int>(path); }

std::vector<std::string> names_in(uint32_t mask) {
  std::vector<std::string> names;
  for (int i = 0; i < kPathCount; ++i) {
    if (mask & (uint32_t{1} << i)) names.emplace_back(kNames[i]);
  }
  return names;
}

}  // namespace

const char* kernel_path_name(KernelPath path) { return kNames[static_cast<int>(path)]; }

bool kernel_path_enabled(KernelPath path) { return enabled_mask.load(std::memory_order_relaxed) & bit(path); }

void note_kernel_path_ran(KernelPath path) {
  // a load first: the read-modify-write only the first time
  if (!(ran_mask.load(std::memory_order_relaxed) & bit(path))) ran_mask.fetch_or(bit(path));
}

void note_kernel_path_passed_over(KernelPath path, const char* instead) {
  if (passed_over_mask.load(std::memory_order_relaxed) & bit(path)) return;
  if (passed_over_mask.fetch_or(bit(path)) & bit(path)) return;  // another thread was first
  if (const PassedOverNotifier notify = notifier.load()) notify(kernel_path_name(path), instead);
}

std::vector<std::string> kernel_path_names() { return names_in((uint32_t{1} << kPathCount) - 1); }

KernelPath kernel_path_named(const std::string& name) {
  for (int i = 0; i < kPathCount; ++i) {
    if (name == kNames[i]) return static_cast<KernelPath>(i);
  }
  TORCH_CHECK_VALUE(false, "genimg_fast: no kernel path is named '", name, "'");
  return KernelPath::kCount;  // not reached
}

void set_enabled_kernel_paths(const std::vector<std::string>& names) {
  uint32_t mask = 0;
  for (const std::string& name : names) mask |= bit(kernel_path_named(name));
  enabled_mask.store(mask);
  passed_over_mask.store(0);  // a path turned off again is reported again
}

std::vector<std::string> enabled_kernel_paths() { return names_in(enabled_mask.load()); }

std::vector<std::string> kernel_paths_ran() { return names_in(ran_mask.load()); }

void forget_kernel_paths_ran() { ran_mask.store(0); }

void set_passed_over_notifier(PassedOverNotifier notify) { notifier.store(notify); }

}  // namespace genimg_fast
