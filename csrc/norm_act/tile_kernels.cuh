#pragma once
// Generic kernels over the tiles of a NormTiling (see norm_act_tiling.h):
// - reduce_*_kernel: each tile folds its elements into one partial Value per group;
// - merge_partials_kernel: one warp per group combines that group's partials in order;
// - elementwise_*_kernel: each element is transformed with its group's constants;
// - merge_elementwise_*_kernel: the two before in one launch: each tile first merges its
//   group's partials (the tile with partial 0 also publishes the merged value), then transforms
//   its elements with constants derived from it. Every merge runs warp_merge_partials, so a
//   merged value is bit-identical wherever it is computed.
// A Reducer provides Value, context(group, channel) and add<VEC>(value, context, offset); an
// Elementwise op provides context(group, channel) and apply<VEC>(context, offset); a merging one
// provides Value, publish(group, merged) and context(group, channel, merged) instead of the
// first. Offsets are element indices of the dense tensor (64-bit); add/apply handle the VEC
// elements from the offset on (NCHW kernels move VEC-element vectors when nchw_vector_width
// allows, NHWC kernels single elements).
#include <cuda_runtime.h>

#include <cstdint>

#include "norm_act/group_values.cuh"
#include "norm_act/norm_act_tiling.h"

namespace genimg_fast {

// fn(offset) for each VEC-element piece of an NCHW tile, the block's threads taking turns. The
// vector loop is unrolled so that each thread has several loads in flight.
template <int VEC, typename Fn>
__device__ __forceinline__ void for_each_nchw_piece(const NormTiling& t, const NchwTile& tile, Fn&& fn) {
  if constexpr (VEC == 1) {
    const uint32_t total = tile.runs * tile.run_length;
    for (uint32_t e = threadIdx.x; e < total; e += blockDim.x) fn(nchw_offset(t, tile, e));
  } else {
    const uint32_t per_run = tile.run_length / VEC;
    const uint32_t total = tile.runs * per_run;
#pragma unroll 4
    for (uint32_t v = threadIdx.x; v < total; v += blockDim.x) {
      const uint32_t run = v / per_run;
      fn(nchw_run_offset(t, tile, run) + static_cast<int64_t>(v - run * per_run) * VEC);
    }
  }
}

template <int VEC, typename Reducer>
__global__ void __launch_bounds__(kNormThreads)
    reduce_nchw_kernel(NormTiling t, Reducer reducer, typename Reducer::Value* partials) {
  using V = typename Reducer::Value;
  const NchwTile tile = decode_nchw_tile(t, blockIdx.x);
  const auto context = reducer.context(tile.group, tile.channel);
  V v = V::identity();
  for_each_nchw_piece<VEC>(t, tile, [&](int64_t offset) { reducer.template add<VEC>(v, context, offset); });

  __shared__ V warp_values[kNormThreads / kWarpLanes];
  const int lane = threadIdx.x % kWarpLanes, warp = threadIdx.x / kWarpLanes;
  v = warp_combine(v);
  if (lane == 0) warp_values[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kNormThreads / kWarpLanes ? warp_values[lane] : V::identity();
    v = warp_combine(v);
    if (lane == 0) partials[tile.group * t.partials_per_group + tile.partial] = v;
  }
}

template <typename Reducer>
__global__ void __launch_bounds__(kNormThreads)
    reduce_nhwc_kernel(NormTiling t, Reducer reducer, typename Reducer::Value* partials) {
  using V = typename Reducer::Value;
  const NhwcTile tile = decode_nhwc_tile(t, blockIdx.x, threadIdx.x);
  V v = V::identity();
  if (tile.valid) {
    const auto context = reducer.context(tile.group, tile.channel);
#pragma unroll 4  // several rows' loads in flight per thread
    for (int64_t row = tile.row_begin + threadIdx.y; row < tile.row_end; row += kNormTileRows) {
      reducer.template add<1>(v, context, row * t.C + tile.channel);
    }
  }
  __shared__ V row_values[kNormTileRows][kNormTileChannels];
  row_values[threadIdx.y][threadIdx.x] = v;
  __syncthreads();
  if (threadIdx.y == 0 && tile.valid) {
    for (int r = 1; r < kNormTileRows; ++r) v = V::combine(v, row_values[r][threadIdx.x]);
    partials[tile.group * t.partials_per_group + tile.partial] = v;
  }
}

// One warp combines a group's partials: lane-strided, then across lanes in a fixed order.
// The result is in lane 0. Each lane loads four partials before it combines them (in the same
// order as one at a time), so a long merge waits for memory once per four, not once per partial.
template <typename V>
__device__ __forceinline__ V warp_merge_partials(const V* __restrict__ partials, int64_t group, int64_t per_group,
                                                 int lane) {
  const V* __restrict__ own = partials + group * per_group;
  V v = V::identity();
  int64_t p = lane;
  for (; p + 3 * kWarpLanes < per_group; p += 4 * kWarpLanes) {
    const V a = own[p], b = own[p + kWarpLanes], c = own[p + 2 * kWarpLanes], d = own[p + 3 * kWarpLanes];
    v = V::combine(V::combine(V::combine(V::combine(v, a), b), c), d);
  }
  for (; p < per_group; p += kWarpLanes) v = V::combine(v, own[p]);
  return warp_combine(v);
}

template <typename V, typename Finish>
__global__ void __launch_bounds__(kNormThreads)
    merge_partials_kernel(const V* __restrict__ partials, int64_t groups, int64_t per_group, Finish finish) {
  const int lane = threadIdx.x % kWarpLanes;
  const int64_t group = static_cast<int64_t>(blockIdx.x) * (kNormThreads / kWarpLanes) + threadIdx.x / kWarpLanes;
  if (group >= groups) return;  // the whole warp leaves together
  const V v = warp_merge_partials(partials, group, per_group, lane);
  if (lane == 0) finish(group, v);
}

template <int VEC, typename Op>
__global__ void __launch_bounds__(kNormThreads) elementwise_nchw_kernel(NormTiling t, Op op) {
  const NchwTile tile = decode_nchw_tile(t, blockIdx.x);
  const auto context = op.context(tile.group, tile.channel);
  for_each_nchw_piece<VEC>(t, tile, [&](int64_t offset) { op.template apply<VEC>(context, offset); });
}

template <typename Op>
__global__ void __launch_bounds__(kNormThreads) elementwise_nhwc_kernel(NormTiling t, Op op) {
  const NhwcTile tile = decode_nhwc_tile(t, blockIdx.x, threadIdx.x);
  if (!tile.valid) return;
  const auto context = op.context(tile.group, tile.channel);
#pragma unroll 4  // several rows' loads in flight per thread
  for (int64_t row = tile.row_begin + threadIdx.y; row < tile.row_end; row += kNormTileRows) {
    op.template apply<1>(context, row * t.C + tile.channel);
  }
}

template <int VEC, typename Op>
__global__ void __launch_bounds__(kNormThreads)
    merge_elementwise_nchw_kernel(NormTiling t, Op op, const typename Op::Value* __restrict__ partials) {
  using V = typename Op::Value;
  const NchwTile tile = decode_nchw_tile(t, blockIdx.x);
  __shared__ V merged;
  if (threadIdx.x < kWarpLanes) {
    const V v = warp_merge_partials(partials, tile.group, t.partials_per_group, threadIdx.x);
    if (threadIdx.x == 0) {
      merged = v;
      if (tile.partial == 0) op.publish(tile.group, v);
    }
  }
  __syncthreads();
  const auto context = op.context(tile.group, tile.channel, merged);
  for_each_nchw_piece<VEC>(t, tile, [&](int64_t offset) { op.template apply<VEC>(context, offset); });
}

template <typename Op>
__global__ void __launch_bounds__(kNormThreads)
    merge_elementwise_nhwc_kernel(NormTiling t, Op op, const typename Op::Value* __restrict__ partials) {
  using V = typename Op::Value;
  __shared__ V merged[kNormTileChannels];
  // Row y of the (32, 8) block is one warp: warp y merges the groups of columns y, y + 8, ...
  for (int column = threadIdx.y; column < kNormTileChannels; column += kNormTileRows) {
    const NhwcTile owner = decode_nhwc_tile(t, blockIdx.x, column);
    if (!owner.valid) continue;  // the same for the whole warp
    const V v = warp_merge_partials(partials, owner.group, t.partials_per_group, threadIdx.x);
    if (threadIdx.x == 0) {
      merged[column] = v;
      if (owner.partial == 0) op.publish(owner.group, v);
    }
  }
  __syncthreads();
  const NhwcTile tile = decode_nhwc_tile(t, blockIdx.x, threadIdx.x);
  if (!tile.valid) return;
  const auto context = op.context(tile.group, tile.channel, merged[threadIdx.x]);
#pragma unroll 4  // several rows' loads in flight per thread
  for (int64_t row = tile.row_begin + threadIdx.y; row < tile.row_end; row += kNormTileRows) {
    op.template apply<1>(context, row * t.C + tile.channel);
  }
}

}  // namespace genimg_fast
