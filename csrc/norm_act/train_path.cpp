#include "norm_act/train_path.h"

#include <cstdint>

namespace genimg_fast {

KernelPath kernel_path_of(TrainPath path) {
  switch (path) {
    case TrainPath::kBlock:
      return KernelPath::kNormBlock;
    case TrainPath::kCluster:
      return KernelPath::kNormCluster;
    default:
      return KernelPath::kNormTiles;
  }
}

namespace {

const char* describe(TrainPath path) { return path == TrainPath::kTiles ? "the tile kernels" : kReferenceInstead; }

}  // namespace

TrainPath fitting_train_path(const NormTiling& t, bool float_accumulation, bool (*clusters_supported)()) {
  const int64_t count = values_per_group(t);
  if (!float_accumulation || t.channels_last || t.groups > INT32_MAX || count < kNormBlockMinCount) {
    return TrainPath::kTiles;
  }
  if (count <= kNormBlockMaxCount) return count <= norm_block_max_count() ? TrainPath::kBlock : TrainPath::kTiles;
  if (count > norm_cluster_max_count()) return TrainPath::kTiles;
  // a grid of groups x blocks must fit the grid's x dimension
  const bool grid_fits = t.groups * kNormClusterMaxBlocks <= INT32_MAX;
  return grid_fits && clusters_supported() ? TrainPath::kCluster : TrainPath::kTiles;
}

TrainPath runnable_train_path(TrainPath fitting, bool (*enabled)(KernelPath)) {
  if (enabled(kernel_path_of(fitting))) return fitting;
  return enabled(KernelPath::kNormTiles) ? TrainPath::kTiles : TrainPath::kReference;
}

TrainPath train_path(const NormTiling& t, bool float_accumulation) {
  const TrainPath fitting = fitting_train_path(t, float_accumulation, norm_cluster_supported);
  const TrainPath chosen = runnable_train_path(fitting, kernel_path_enabled);
  if (chosen != fitting) note_kernel_path_passed_over(kernel_path_of(fitting), describe(chosen));
  if (chosen == TrainPath::kReference) {
    note_kernel_path_passed_over(KernelPath::kNormTiles, describe(chosen));
  } else {
    note_kernel_path_ran(kernel_path_of(chosen));
  }
  return chosen;
}

}  // namespace genimg_fast
