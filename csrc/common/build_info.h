#pragma once
// What this binary was compiled for, read back by genimg_fast.backend_info().
#include <vector>

namespace genimg_fast {

// SM versions of the device code in this binary (e.g. {800, 900}), from nvcc's __CUDA_ARCH_LIST__.
std::vector<int> compiled_cuda_archs();

// CUDART_VERSION of the toolkit the kernels were compiled with (e.g. 13000).
int cuda_runtime_build_version();

}  // namespace genimg_fast
