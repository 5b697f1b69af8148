// Host check of the norm kernels' tiling (csrc/norm_act/norm_act_tiling.h): for many shapes,
// both layouts and both grouping modes, every element is visited exactly once, by a tile of
// the element's own group, and every (group, partial) slot is written exactly once; where
// nchw_vector_width allows W-element vectors, every run starts and ends on a multiple of W; and a
// channels_last group has at most kMaxNhwcPartials partials.
// Prints "ok" or the first failure; built and run by tests/test_norm_tiling.py.
#include <cstdio>
#include <vector>

#include "norm_act/norm_act_tiling.h"

using namespace genimg_fast;

static int fail(const char* what, long long n, long long c, long long s, bool cl, bool ps) {
  std::printf("FAIL %s: N=%lld C=%lld S=%lld channels_last=%d per_sample=%d\n", what, n, c, s, cl, ps);
  return 1;
}

static int check(int64_t N, int64_t C, int64_t S, bool channels_last, bool per_sample) {
  const NormTiling t = plan_norm_tiling(N, C, S, channels_last, per_sample);
  if (channels_last && (t.partials_per_group > kMaxNhwcPartials || t.chunk % kNormTileRows != 0)) {
    return fail("channels_last tiling over its partials cap or off the block's rows", N, C, S, channels_last,
                per_sample);
  }
  std::vector<int> visits(N * C * S, 0);
  std::vector<int> slots(t.groups * t.partials_per_group, 0);
  auto group_of = [&](int64_t offset) {
    const int64_t n = channels_last ? offset / (S * C) : offset / (C * S);
    const int64_t c = channels_last ? offset % C : (offset / S) % C;
    return per_sample ? n * C + c : c;
  };
  for (int64_t tile = 0; tile < t.num_tiles; ++tile) {
    if (!channels_last) {
      const NchwTile tl = decode_nchw_tile(t, tile);
      if (tl.runs * tl.run_length > static_cast<uint32_t>(kNormTileElements) && tl.runs > 1) {
        return fail("tile larger than planned", N, C, S, channels_last, per_sample);
      }
      slots.at(tl.group * t.partials_per_group + tl.partial) += 1;
      for (int width : {2, 4, 8}) {  // the vector path's promise: every run starts and ends on a vector
        if (nchw_vector_width(t, width, true) != width) continue;
        for (uint32_t run = 0; run < tl.runs; ++run) {
          if (nchw_run_offset(t, tl, run) % width != 0 || tl.run_length % width != 0) {
            return fail("vector width claimed for a run that does not fit it", N, C, S, channels_last, per_sample);
          }
        }
      }
      for (uint32_t e = 0; e < tl.runs * tl.run_length; ++e) {
        const int64_t off = nchw_offset(t, tl, e);
        if (off < 0 || off >= N * C * S) return fail("offset out of range", N, C, S, channels_last, per_sample);
        if (group_of(off) != tl.group) return fail("element in a foreign group", N, C, S, channels_last, per_sample);
        visits[off] += 1;
      }
    } else {
      for (int lane = 0; lane < kNormTileChannels; ++lane) {
        const NhwcTile tl = decode_nhwc_tile(t, tile, lane);
        if (!tl.valid) continue;
        slots.at(tl.group * t.partials_per_group + tl.partial) += 1;
        for (int64_t row = tl.row_begin; row < tl.row_end; ++row) {
          const int64_t off = row * C + tl.channel;
          if (off < 0 || off >= N * C * S) return fail("offset out of range", N, C, S, channels_last, per_sample);
          if (group_of(off) != tl.group) return fail("element in a foreign group", N, C, S, channels_last, per_sample);
          visits[off] += 1;
        }
      }
    }
  }
  for (int v : visits) {
    if (v != 1) return fail("element not visited exactly once", N, C, S, channels_last, per_sample);
  }
  for (int v : slots) {
    if (v != 1) return fail("partial slot not written exactly once", N, C, S, channels_last, per_sample);
  }
  return 0;
}

int main() {
  const int64_t batches[] = {1, 2, 3, 7, 128};
  const int64_t channels[] = {1, 3, 31, 32, 33, 64, 97};
  const int64_t spatial[] = {1, 2, 16, 63, 64, 96, 1023, 4096, 4097, 9000, 12288, 65536, 131073};
  int failures = 0;
  for (int64_t n : batches) {
    for (int64_t c : channels) {
      for (int64_t s : spatial) {
        if (n * c * s > 20'000'000) continue;
        for (bool cl : {false, true}) {
          for (bool ps : {false, true}) failures += check(n, c, s, cl, ps);
        }
      }
    }
  }
  if (failures == 0) std::printf("ok\n");
  return failures == 0 ? 0 : 1;
}
