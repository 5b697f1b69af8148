// Host check of what the block and cluster norm kernels rely on (csrc/common/run_divider.h,
// csrc/norm_act/train_path.h):
// - RunDivider's quotient equals n / d for every d and n up to the largest cluster group,
//   and for sampled pairs up to 2^31 - 1;
// - norm_cluster_shape gives every group of 2049..32768 values a cluster of 2, 4 or 8 blocks
//   holding 4, 8 or 16 values a thread that covers the group, with the fewest values a thread and
//   then the fewest blocks; and the kernels' (block rank, thread, item) -> value mapping visits
//   each of the group's values exactly once.
// Prints "ok" or the first failure; built and run by tests/test_norm_tiling.py.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "common/run_divider.h"
#include "norm_act/train_path.h"

using namespace genimg_fast;

static int check_divider() {
  for (uint32_t d = 1; d <= static_cast<uint32_t>(kNormClusterMaxCount); ++d) {
    const RunDivider by(d);
    for (uint32_t n = 0; n <= static_cast<uint32_t>(kNormClusterMaxCount); ++n) {
      if (by.quotient(n) != n / d) {
        std::printf("FAIL RunDivider(%u).quotient(%u) = %u\n", d, n, by.quotient(n));
        return 1;
      }
    }
  }
  std::mt19937 random(7);
  std::uniform_int_distribution<uint32_t> below_2_31(1, 0x7fffffffu);
  for (int i = 0; i < 2000000; ++i) {
    const uint32_t d = i % 4 == 0 ? (1u << (i / 4 % 31)) + (i / 124 % 3) - 1 : below_2_31(random);
    const uint32_t n = i % 5 == 0 ? 0x7fffffffu - i / 5 : below_2_31(random);
    if (d == 0 || d > 0x7fffffffu) continue;
    if (RunDivider(d).quotient(n) != n / d) {
      std::printf("FAIL RunDivider(%u).quotient(%u)\n", d, n);
      return 1;
    }
  }
  return 0;
}

static int check_cluster_shapes() {
  const int64_t threads = kNormClusterThreads;
  for (int64_t count = 2049; count <= kNormClusterMaxCount; ++count) {
    const NormClusterShape s = norm_cluster_shape(count);
    const bool items_ok = s.items == 4 || s.items == 8 || s.items == 16;
    const bool blocks_ok = s.blocks == 2 || s.blocks == 4 || s.blocks == 8;
    const int64_t holds = int64_t{s.blocks} * s.items * threads;
    if (!items_ok || !blocks_ok || holds < count) {
      std::printf("FAIL norm_cluster_shape(%lld) = {%d, %d} does not hold the group\n", static_cast<long long>(count),
                  s.items, s.blocks);
      return 1;
    }
    const bool fewer_items_fit = s.items > 4 && int64_t{kNormClusterMaxBlocks} * (s.items / 2) * threads >= count;
    const bool fewer_blocks_fit = s.blocks > 2 && int64_t{s.blocks / 2} * s.items * threads >= count;
    if (fewer_items_fit || fewer_blocks_fit) {
      std::printf("FAIL norm_cluster_shape(%lld) = {%d, %d} is larger than needed\n", static_cast<long long>(count),
                  s.items, s.blocks);
      return 1;
    }
    if (count % 61 != 0 && count != 2049 && count != kNormClusterMaxCount) continue;  // the mapping: a sample
    std::vector<int> visits(count, 0);
    for (int rank = 0; rank < s.blocks; ++rank) {
      for (int thread = 0; thread < threads; ++thread) {
        const int64_t first = int64_t{rank} * s.items * threads + thread;  // as the kernels compute it
        for (int k = 0; k < s.items; ++k) {
          const int64_t e = first + k * threads;
          if (e < count) visits[e] += 1;
        }
      }
    }
    for (int64_t e = 0; e < count; ++e) {
      if (visits[e] != 1) {
        std::printf("FAIL group of %lld values: value %lld visited %d times\n", static_cast<long long>(count),
                    static_cast<long long>(e), visits[e]);
        return 1;
      }
    }
  }
  if (norm_cluster_shape(kNormClusterMaxCount + 1).items != 0) {
    std::printf("FAIL norm_cluster_shape accepts a group over kNormClusterMaxCount\n");
    return 1;
  }
  return 0;
}

int main() {
  if (check_divider() != 0 || check_cluster_shapes() != 0) return 1;
  std::printf("ok\n");
  return 0;
}
