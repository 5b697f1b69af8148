// Compiled by nvcc so that __CUDA_ARCH_LIST__ (every -gencode target of this build) is defined.
#include "common/build_info.h"

#include <cuda_runtime_api.h>

namespace genimg_fast {

std::vector<int> compiled_cuda_archs() {
#ifdef __CUDA_ARCH_LIST__
  return {__CUDA_ARCH_LIST__};
#else
  return {};
#endif
}

int cuda_runtime_build_version() { return CUDART_VERSION; }

}  // namespace genimg_fast
