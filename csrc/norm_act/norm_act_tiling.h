#pragma once
// How the fused norm kernels split an (N, C, H, W) tensor into blocks ("tiles"). Every kernel
// of the family (statistics, apply, backward reduce, backward apply) uses the same tiling, so
// a tile's group (channel, or sample and channel) is fixed and its constants load once.
//
// NCHW: a group's values are `segments` runs of S = H*W contiguous values (N runs per
//   channel for batch norm, one run for instance norm). A tile covers `segments_per_tile`
//   runs when S is small, or a `chunk` of one run when S is large. One block of 256 threads.
// NHWC (channels_last): the tensor is a (rows = N*S, C) matrix. A tile covers 32 adjacent
//   channels (coalesced across a warp) and `chunk` rows: 128, or more where a group would
//   otherwise have over kMaxNhwcPartials partials (one warp merges a group's partials, so their
//   count is the merge's latency); for instance norm the rows of a tile stay within one sample.
//   One block of 32 x 8 threads.
// Reductions write one partial per (group, tile) into a workspace; a second kernel merges each
// group's partials in a fixed order, so results are deterministic. The training ops fold that
// merge into their elementwise pass (every tile merges its groups' partials) when a tile's merge
// reads little next to its elements: `merge_in_elementwise`.
#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define GENIMG_TILE_INLINE __host__ __device__ __forceinline__
#else
#define GENIMG_TILE_INLINE inline
#endif

namespace genimg_fast {

constexpr int kNormTileElements = 4096;
constexpr int kNormThreads = 256;
constexpr int kNormTileChannels = 32;
constexpr int kNormTileRows = kNormThreads / kNormTileChannels;
// Partials one tile may merge (over all its groups) in the fused pass: 128 Welford values are
// 1.5 KB against a tile's 16 KB or more of elements.
constexpr int64_t kMaxMergedPartialsPerTile = 128;
// A channels_last group's partials at most: 16 for each lane of the merging warp. 512 tiles of a
// group still fill an H100 (132 SMs x 8 blocks) from two channel tiles (C = 64) on.
constexpr int64_t kMaxNhwcPartials = 512;

struct NormTiling {
  int64_t N, C, S;
  bool channels_last;
  bool per_sample;           // instance norm: one group per (sample, channel)
  int64_t groups;            // C, or N * C
  int64_t chunk;             // NCHW: values of a run per tile; NHWC: rows per tile
  int64_t chunks;            // NCHW: tiles along a run; NHWC: tiles along a group's rows
  int64_t segments_per_tile; // NCHW only (1 for NHWC)
  int64_t segment_blocks;    // NCHW only: tiles across a group's runs
  int64_t channel_tiles;     // NHWC only (1 for NCHW)
  int64_t partials_per_group;
  int64_t num_tiles;
  bool merge_in_elementwise;  // the training ops' elementwise pass merges the partials itself
};

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Requires N, C, S > 0.
inline NormTiling plan_norm_tiling(int64_t N, int64_t C, int64_t S, bool channels_last, bool per_sample) {
  NormTiling t{};
  t.N = N;
  t.C = C;
  t.S = S;
  t.channels_last = channels_last;
  t.per_sample = per_sample;
  t.groups = per_sample ? N * C : C;
  if (!channels_last) {
    const int64_t segments = per_sample ? 1 : N;
    t.chunk = std::min<int64_t>(S, kNormTileElements);
    t.chunks = ceil_div(S, t.chunk);
    t.segments_per_tile = t.chunks == 1 ? std::max<int64_t>(1, std::min(segments, kNormTileElements / S)) : 1;
    t.segment_blocks = ceil_div(segments, t.segments_per_tile);
    t.channel_tiles = 1;
    t.partials_per_group = t.segment_blocks * t.chunks;
    t.num_tiles = t.groups * t.partials_per_group;
  } else {
    const int64_t rows = per_sample ? S : N * S;
    const int64_t rows_for_cap = ceil_div(ceil_div(rows, kMaxNhwcPartials), kNormTileRows) * kNormTileRows;
    t.chunk = std::max<int64_t>(kNormTileElements / kNormTileChannels, rows_for_cap);
    t.chunks = ceil_div(rows, t.chunk);
    t.segments_per_tile = 1;
    t.segment_blocks = 1;
    t.channel_tiles = ceil_div(C, kNormTileChannels);
    t.partials_per_group = t.chunks;
    t.num_tiles = t.channel_tiles * (per_sample ? N : 1) * t.chunks;
  }
  const int64_t groups_per_tile = channels_last ? kNormTileChannels : 1;
  t.merge_in_elementwise = groups_per_tile * t.partials_per_group <= kMaxMergedPartialsPerTile;
  return t;
}

// Where tile number `tile` lies. Host-callable so tests can check the partition on a CPU.
struct NchwTile {
  int64_t group, channel, partial;
  int64_t first_sample;  // sample of the tile's first run
  uint32_t runs;         // runs (samples) in the tile
  int64_t first_value;   // offset of the tile's values within a run
  uint32_t run_length;   // values per run in the tile
};

GENIMG_TILE_INLINE NchwTile decode_nchw_tile(const NormTiling& t, int64_t tile) {
  NchwTile r;
  r.group = tile / t.partials_per_group;
  r.partial = tile % t.partials_per_group;
  const int64_t segment_block = r.partial / t.chunks;
  const int64_t chunk = r.partial % t.chunks;
  if (t.per_sample) {
    r.channel = r.group % t.C;
    r.first_sample = r.group / t.C;
    r.runs = 1;
  } else {
    r.channel = r.group;
    r.first_sample = segment_block * t.segments_per_tile;
    r.runs = static_cast<uint32_t>(std::min<int64_t>(t.segments_per_tile, t.N - r.first_sample));
  }
  r.first_value = chunk * t.chunk;
  r.run_length = static_cast<uint32_t>(std::min<int64_t>(t.chunk, t.S - r.first_value));
  return r;
}

// Offset of the first element of the tile's run `run`.
GENIMG_TILE_INLINE int64_t nchw_run_offset(const NormTiling& t, const NchwTile& tile, uint32_t run) {
  return ((tile.first_sample + run) * t.C + tile.channel) * t.S + tile.first_value;
}

// Offset of the tile's e-th element (e < runs * run_length, at most kNormTileElements).
GENIMG_TILE_INLINE int64_t nchw_offset(const NormTiling& t, const NchwTile& tile, uint32_t e) {
  const uint32_t run = e / tile.run_length;
  return nchw_run_offset(t, tile, run) + (e - run * tile.run_length);
}

// Elements an NCHW kernel may move per 16-byte access: `max_width` when every run of every tile
// starts and ends on a multiple of it (S is; chunks are multiples of kNormTileElements) and the
// tensors are 16-byte aligned, else 1. NHWC kernels use single elements.
inline int nchw_vector_width(const NormTiling& t, int max_width, bool pointers_aligned_16) {
  return !t.channels_last && pointers_aligned_16 && t.S % max_width == 0 ? max_width : 1;
}

struct NhwcTile {
  int64_t group, channel, partial;
  int64_t row_begin, row_end;  // rows of the (N*S, C) matrix
  bool valid;                  // channel < C
};

GENIMG_TILE_INLINE NhwcTile decode_nhwc_tile(const NormTiling& t, int64_t tile, int lane) {
  NhwcTile r;
  const int64_t channel_tile = tile % t.channel_tiles;
  const int64_t rest = tile / t.channel_tiles;
  const int64_t sample = rest / t.chunks;  // 0 for batch norm (one run of N*S rows)
  const int64_t chunk = rest % t.chunks;
  const int64_t run_rows = t.per_sample ? t.S : t.N * t.S;
  r.channel = channel_tile * kNormTileChannels + lane;
  r.valid = r.channel < t.C;
  r.group = t.per_sample ? sample * t.C + r.channel : r.channel;
  r.partial = chunk;
  r.row_begin = sample * run_rows + chunk * t.chunk;
  r.row_end = sample * run_rows + std::min<int64_t>(run_rows, (chunk + 1) * t.chunk);
  return r;
}

}  // namespace genimg_fast
