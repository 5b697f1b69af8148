#pragma once
// Aligned vector access: one 16-byte load/store moves 4 floats or 8 halves per thread.
#include <cstdint>

namespace genimg_fast {

template <typename T, int N>
struct alignas(sizeof(T) * N) AlignedVector {
  T val[N];
};

template <int N, typename T>
__device__ __forceinline__ AlignedVector<T, N> load_vector(const T* base, int64_t vector_index) {
  return reinterpret_cast<const AlignedVector<T, N>*>(base)[vector_index];
}

template <int N, typename T>
__device__ __forceinline__ void store_vector(T* base, int64_t vector_index, const AlignedVector<T, N>& v) {
  reinterpret_cast<AlignedVector<T, N>*>(base)[vector_index] = v;
}

// N elements from p + offset (offset a multiple of N, p 16-byte aligned when N > 1).
template <int N, typename T>
__device__ __forceinline__ AlignedVector<T, N> load_vector_at(const T* p, int64_t offset) {
  return *reinterpret_cast<const AlignedVector<T, N>*>(p + offset);
}

template <int N, typename T>
__device__ __forceinline__ void store_vector_at(T* p, int64_t offset, const AlignedVector<T, N>& v) {
  *reinterpret_cast<AlignedVector<T, N>*>(p + offset) = v;
}

// Elements per 16-byte access for T (1 when a pointer is not 16-byte aligned).
template <typename T>
constexpr int kVectorWidth = 16 / sizeof(T);

inline bool is_aligned_16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace genimg_fast
