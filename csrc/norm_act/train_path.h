#pragma once
// Which kernels a training forward and backward take for a tiling (host side):
// - single block: dense NCHW groups of 512-2048 values, one block a group (single_pass_kernels.cuh);
// - cluster: dense NCHW groups of 2049-32768 values on a GPU with thread block clusters (compute
//   capability 9.0 or later, with kernels built for it), one cluster a group (cluster_pass_kernels.cuh);
// - tiles: everything else (tile_kernels.cuh), two or three launches and a workspace.
// The first two need fp32 accumulation (not double inputs) and take one launch each way.
#include <cstdint>

#include "norm_act/norm_act_tiling.h"

namespace genimg_fast {

constexpr int kClusterPassThreads = 256;
constexpr int kClusterPassMaxBlocks = 8;     // the portable cluster size
constexpr int kClusterPassMaxItems = 16;     // values a thread holds at most
constexpr int64_t kClusterPassMaxCount = int64_t{kClusterPassMaxItems} * kClusterPassThreads * kClusterPassMaxBlocks;

// Values a thread holds and blocks a group's cluster has, for a group of `count` values: the
// fewest values a thread (4, 8 or 16) that a cluster of at most 8 blocks can hold, and the
// fewest blocks (a power of two) that hold the group.
struct ClusterPassShape {
  int items;
  int blocks;
};

inline ClusterPassShape cluster_pass_shape(int64_t count) {
  for (int items = 4; items <= kClusterPassMaxItems; items *= 2) {
    const int64_t per_block = int64_t{items} * kClusterPassThreads;
    int blocks = 2;
    while (blocks * per_block < count && blocks < kClusterPassMaxBlocks) blocks *= 2;
    if (blocks * per_block >= count) return {items, blocks};
  }
  return {0, 0};  // too large: callers check count <= kClusterPassMaxCount first
}

enum class TrainPath { kTiles, kSingleBlock, kCluster };

// The largest group the one-launch paths take: kClusterPassMaxCount, or less when the
// GENIMG_FAST_SINGLE_PASS_MAX environment variable says so (read once; 0 sends every group down
// the tile path), so that a benchmark can time the paths at the same shapes.
int64_t one_launch_max_count();

// Whether the current device runs the cluster kernels: a GPU of compute capability 9.0 or later
// that loaded them from code built for 9.0 or later (not from older PTX), and that can schedule a
// cluster of their largest size. Queried once per device.
bool cluster_pass_supported();

TrainPath train_path(const NormTiling& t, bool float_accumulation);

}  // namespace genimg_fast
