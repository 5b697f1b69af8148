#pragma once
// Aligned vector access: one 16-byte load/store moves 4 floats or 8 halves per thread.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

namespace genimg_fast {

template <typename T, int N>
struct alignas(sizeof(T) * N) AlignedVector {
  T val[N];
};

template <int N, typename T>
__device__ __forceinline__ AlignedVector<T, N> load_vector(const T* base, int64_t vector_index) {
  return reinterpret_cast<const AlignedVector<T, N>*>(base)[vector_index];
}

// A vector's bytes as one unsigned word or CUDA vector of words: stored through it with __stwb,
// a vector built element by element is written with one instruction (in the norm kernels a
// struct assignment, or one of the raw word, was split into one st.global per element). The
// asm store is also a compiler barrier: callers load what they need before it.
template <int Bytes>
struct RawBits {};
template <>
struct RawBits<2> { using type = unsigned short; };
template <>
struct RawBits<4> { using type = unsigned int; };
template <>
struct RawBits<8> { using type = uint2; };
template <>
struct RawBits<16> { using type = uint4; };

template <typename T, int N>
__device__ __forceinline__ void store_whole(AlignedVector<T, N>* destination, const AlignedVector<T, N>& v) {
  using Raw = typename RawBits<sizeof(AlignedVector<T, N>)>::type;
  static_assert(sizeof(Raw) == sizeof(AlignedVector<T, N>), "a vector is moved as one word");
  Raw raw;
  memcpy(&raw, &v, sizeof(Raw));
  __stwb(reinterpret_cast<Raw*>(destination), raw);
}

// (Stored by assignment: the loss kernels that use it get one vector store so, and their
// __restrict__ pointers let the compiler move loads past it, which the asm store would forbid.)
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
  store_whole(reinterpret_cast<AlignedVector<T, N>*>(p + offset), v);
}

// Elements per 16-byte access for T (1 when a pointer is not 16-byte aligned).
template <typename T>
constexpr int kVectorWidth = 16 / sizeof(T);

inline bool is_aligned_16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace genimg_fast
