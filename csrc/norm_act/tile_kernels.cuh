#pragma once
// Generic kernels over the tiles of a NormTiling (see norm_act_tiling.h):
// - reduce_*_kernel: each tile folds its elements into one partial Value per group;
// - merge_partials_kernel: one warp per group combines that group's partials in order;
// - elementwise_*_kernel: each element is transformed with its group's constants;
// - merge_elementwise_*_kernel: the two before in one launch: each tile first merges its
//   group's partials (the tile with partial 0 also publishes the merged value), then transforms
//   its elements with constants derived from it. Every merge runs warp_merge_partials, so a
//   merged value is bit-identical wherever it is computed.
// A Reducer provides Value, context(group, channel), load<VEC>(offset) -> Loaded<VEC> (reads the
// inputs) and accumulate<VEC>(value, context, loaded); an Elementwise op provides
// context(group, channel), load<VEC>(offset) and finish<VEC>(context, offset, loaded) (computes
// and writes); a merging one provides Value, publish(group, merged) and context(group, channel,
// merged) instead of the first. Offsets are element indices of the dense tensor (64-bit); each
// call handles the VEC elements from the offset on (NCHW kernels move VEC-element vectors when
// nchw_vector_width allows, NHWC kernels single elements). The elementwise loops load several
// pieces before they finish any: otherwise a finish's store holds the next load back (the
// compiler cannot tell the output from the inputs), leaving one load in flight per thread; the
// PTX showed that alternation in every elementwise kernel.
#include <cuda_runtime.h>

#include <cstdint>

#include "norm_act/group_values.cuh"
#include "norm_act/norm_act_tiling.h"

namespace genimg_fast {

constexpr int kNhwcRowsInFlight = 8;

// For the NHWC tile's rows that are this thread's, in order: loaded[k] = load(row k's offset)
// for kNhwcRowsInFlight rows at a time, then use(offset, loaded[k]) for each. (One 4-byte
// element a row: a thread needs several in flight to keep memory busy.)
template <typename Loaded, typename Load, typename Use>
__device__ __forceinline__ void for_each_nhwc_row(const NormTiling& t, const NhwcTile& tile, Load&& load,
                                                  Use&& use) {
  for (int64_t first = tile.row_begin + threadIdx.y; first < tile.row_end;
       first += kNhwcRowsInFlight * kNormTileRows) {
    Loaded loaded[kNhwcRowsInFlight];
#pragma unroll
    for (int k = 0; k < kNhwcRowsInFlight; ++k) {
      const int64_t row = first + k * kNormTileRows;
      if (row < tile.row_end) loaded[k] = load(row * t.C + tile.channel);
    }
#pragma unroll
    for (int k = 0; k < kNhwcRowsInFlight; ++k) {
      const int64_t row = first + k * kNormTileRows;
      if (row < tile.row_end) use(row * t.C + tile.channel, loaded[k]);
    }
  }
}

// Offset of the v-th VEC-element piece of an NCHW tile whose runs hold per_run pieces each.
template <int VEC>
__device__ __forceinline__ int64_t nchw_piece_offset(const NormTiling& t, const NchwTile& tile, uint32_t per_run,
                                                     uint32_t v) {
  const uint32_t run = v / per_run;
  return nchw_run_offset(t, tile, run) + static_cast<int64_t>(v - run * per_run) * VEC;
}

constexpr int kNchwPiecesInFlight = 4;

// The elementwise passes' loop over the VEC-element pieces of an NCHW tile, the block's threads
// taking turns: loaded[k] = load(offset) for kNchwPiecesInFlight pieces at a time, then
// use(offset, loaded[k]) for each.
template <int VEC, typename Loaded, typename Load, typename Use>
__device__ __forceinline__ void for_each_nchw_piece_loaded(const NormTiling& t, const NchwTile& tile, Load&& load,
                                                           Use&& use) {
  const uint32_t per_run = tile.run_length / VEC;
  const uint32_t total = tile.runs * per_run;
  for (uint32_t first = threadIdx.x; first < total; first += kNchwPiecesInFlight * blockDim.x) {
    int64_t offsets[kNchwPiecesInFlight];
    Loaded loaded[kNchwPiecesInFlight];
#pragma unroll
    for (int k = 0; k < kNchwPiecesInFlight; ++k) {
      const uint32_t v = first + k * blockDim.x;
      if (v < total) {
        offsets[k] = nchw_piece_offset<VEC>(t, tile, per_run, v);
        loaded[k] = load(offsets[k]);
      }
    }
#pragma unroll
    for (int k = 0; k < kNchwPiecesInFlight; ++k) {
      if (first + k * blockDim.x < total) use(offsets[k], loaded[k]);
    }
  }
}

// An elementwise op over the tile's elements, with its group's context (loads ahead of stores).
template <int VEC, typename Op, typename Context>
__device__ __forceinline__ void finish_nchw_tile(const NormTiling& t, const NchwTile& tile, const Op& op,
                                                 const Context& context) {
  using Loaded = typename Op::template Loaded<VEC>;
  for_each_nchw_piece_loaded<VEC, Loaded>(
      t, tile, [&](int64_t offset) { return op.template load<VEC>(offset); },
      [&](int64_t offset, const Loaded& in) { op.template finish<VEC>(context, offset, in); });
}

template <typename Op, typename Context>
__device__ __forceinline__ void finish_nhwc_tile(const NormTiling& t, const NhwcTile& tile, const Op& op,
                                                 const Context& context) {
  using Loaded = typename Op::template Loaded<1>;
  for_each_nhwc_row<Loaded>(
      t, tile, [&](int64_t offset) { return op.template load<1>(offset); },
      [&](int64_t offset, const Loaded& in) { op.template finish<1>(context, offset, in); });
}

// fn(offset) for each VEC-element piece of an NCHW tile, the block's threads taking turns. The
// vector loop is unrolled so that each thread has several loads in flight (the reductions store
// nothing inside it, so the compiler may issue the loads together).
template <int VEC, typename Fn>
__device__ __forceinline__ void for_each_nchw_piece(const NormTiling& t, const NchwTile& tile, Fn&& fn) {
  const uint32_t per_run = tile.run_length / VEC;
  const uint32_t total = tile.runs * per_run;
#pragma unroll 4
  for (uint32_t v = threadIdx.x; v < total; v += blockDim.x) fn(nchw_piece_offset<VEC>(t, tile, per_run, v));
}

template <int VEC, typename Reducer>
__global__ void __launch_bounds__(kNormThreads)
    reduce_nchw_kernel(NormTiling t, Reducer reducer, typename Reducer::Value* partials) {
  using V = typename Reducer::Value;
  const NchwTile tile = decode_nchw_tile(t, blockIdx.x);
  const auto context = reducer.context(tile.group, tile.channel);
  V v = V::identity();
  for_each_nchw_piece<VEC>(t, tile, [&](int64_t offset) {
    reducer.template accumulate<VEC>(v, context, reducer.template load<VEC>(offset));
  });

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
    using Loaded = typename Reducer::template Loaded<1>;
    for_each_nhwc_row<Loaded>(
        t, tile, [&](int64_t offset) { return reducer.template load<1>(offset); },
        [&](int64_t, const Loaded& in) { reducer.template accumulate<1>(v, context, in); });
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
  finish_nchw_tile<VEC>(t, tile, op, context);
}

template <typename Op>
__global__ void __launch_bounds__(kNormThreads) elementwise_nhwc_kernel(NormTiling t, Op op) {
  const NhwcTile tile = decode_nhwc_tile(t, blockIdx.x, threadIdx.x);
  if (!tile.valid) return;
  const auto context = op.context(tile.group, tile.channel);
  finish_nhwc_tile(t, tile, op, context);
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
  finish_nchw_tile<VEC>(t, tile, op, context);
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
  finish_nhwc_tile(t, tile, op, context);
}

}  // namespace genimg_fast
