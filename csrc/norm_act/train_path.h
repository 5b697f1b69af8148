#pragma once
// Which kernels a training forward and backward take for a tiling (host side):
// - block: dense NCHW groups of 512-2048 values, one block a group (block_kernels.cuh);
// - cluster: dense NCHW groups of 2049-32768 values on a GPU with thread block clusters (compute
//   capability 9.0 or later, with kernels built for it), one cluster a group (cluster_kernels.cuh);
// - tiles: everything else (tile_kernels.cuh), two or three launches and a workspace.
// The first two need fp32 accumulation (not double inputs) and take one launch each way. Each is
// a kernel path (common/kernel_paths.h): one that may not run gives way to the tile kernels, and
// those, when they may not run either, to the op's reference.
#include <cstdint>

#include "common/kernel_paths.h"
#include "norm_act/norm_act_tiling.h"

#if defined(__CUDACC__)
#define GENIMG_TRAIN_PATH_HOST_DEVICE __host__ __device__
#else
#define GENIMG_TRAIN_PATH_HOST_DEVICE
#endif

namespace genimg_fast {

constexpr int kNormBlockThreads = 256;
constexpr int64_t kNormBlockMinCount = 512;  // below: most of a block idle, the tile path packs groups
constexpr int kNormBlockItems = 8;  // values each thread holds in registers
constexpr int64_t kNormBlockMaxCount = kNormBlockItems * kNormBlockThreads;

constexpr int kNormClusterThreads = 256;
constexpr int kNormClusterMaxBlocks = 8;     // the portable cluster size
constexpr int kNormClusterMaxItems = 16;     // values a thread holds at most
constexpr int64_t kNormClusterMaxCount = int64_t{kNormClusterMaxItems} * kNormClusterThreads * kNormClusterMaxBlocks;

GENIMG_TRAIN_PATH_HOST_DEVICE inline int64_t values_per_group(const NormTiling& t) {
  return t.per_sample ? t.S : t.N * t.S;
}

// Values a thread holds and blocks a group's cluster has, for a group of `count` values: the
// fewest values a thread (4, 8 or 16) that a cluster of at most 8 blocks can hold, and the
// fewest blocks (a power of two) that hold the group.
struct NormClusterShape {
  int items;
  int blocks;
};

inline NormClusterShape norm_cluster_shape(int64_t count) {
  for (int items = 4; items <= kNormClusterMaxItems; items *= 2) {
    const int64_t per_block = int64_t{items} * kNormClusterThreads;
    int blocks = 2;
    while (blocks * per_block < count && blocks < kNormClusterMaxBlocks) blocks *= 2;
    if (blocks * per_block >= count) return {items, blocks};
  }
  return {0, 0};  // too large: callers check count <= kNormClusterMaxCount first
}

// kReference: no kernel of the family may run; the op calls its reference.
enum class TrainPath { kTiles, kBlock, kCluster, kReference };

// The kernel path of a training path's kernels (the tiles' for kReference, which has none).
KernelPath kernel_path_of(TrainPath path);

// The largest group the block path takes: kNormBlockMaxCount, or less when the
// GENIMG_FAST_NORM_BLOCK_MAX environment variable says so; and the cluster path's:
// kNormClusterMaxCount, or less by GENIMG_FAST_NORM_CLUSTER_MAX. Each is read once; 0 sends the
// path's groups down the tile path, so that a benchmark can time the paths at the same shapes.
// Where a path's variable is unset, the deprecated GENIMG_FAST_SINGLE_PASS_MAX (once the cap of
// both) caps it.
int64_t norm_block_max_count();
int64_t norm_cluster_max_count();

// Whether the current device runs the cluster kernels: a GPU of compute capability 9.0 or later
// that loaded them from code built for 9.0 or later (not from older PTX), and that can schedule a
// cluster of their largest size. Queried once per device.
bool norm_cluster_supported();

// The kernels that fit a tiling best, whether or not they may run; `clusters_supported` is asked
// only for a group the cluster kernels would take.
TrainPath fitting_train_path(const NormTiling& t, bool float_accumulation, bool (*clusters_supported)());

// What runs in place of `fitting` given which kernel paths may run: itself, else the tile
// kernels, else the reference.
TrainPath runnable_train_path(TrainPath fitting, bool (*enabled)(KernelPath));

// The path a training op takes on the current device, noting the paths it ran and passed over.
TrainPath train_path(const NormTiling& t, bool float_accumulation);

}  // namespace genimg_fast
