#pragma once
// Multiprocessor count per device, queried once: grid sizes derive from it, so a reduction's
// block partition (and thus its rounding) is fixed for a given device and size.
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime_api.h>

#include <atomic>

namespace genimg_fast {

inline int multiprocessor_count(int device) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  if (device >= 0 && device < kMaxDevices) {
    int cached = cache[device].load(std::memory_order_relaxed);
    if (cached > 0) return cached;
  }
  int count = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  if (device >= 0 && device < kMaxDevices) cache[device].store(count, std::memory_order_relaxed);
  return count;
}

}  // namespace genimg_fast
