#pragma once
// Accumulation type: float for float/half/bfloat16 (fp32 accumulation), double for double.
#include <type_traits>

namespace genimg_fast {

template <typename scalar_t>
using acc_type_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

}  // namespace genimg_fast
