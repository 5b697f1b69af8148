#pragma once
// The spec string of genimg_fast::loss_terms and _scale_term_stored_grads: "kind:reduction,..." with
// the kinds of genimg_fast/ops/_loss_math.py, one entry per term.
#include <c10/util/string_view.h>

#include <cstddef>
#include <vector>

#include "losses/loss_math.h"

namespace genimg_fast {

struct TermSpec {
  LossKind kind;
  const char* name;  // as the spec spells it
  bool has_target;
  bool mean;
};

// One TermSpec per term; a malformed spec, or one with other than `count` entries, is an error
// naming `op`.
std::vector<TermSpec> parse_loss_spec(c10::string_view spec, size_t count, const char* op);

// Whether df/da depends on a (every kind but l1 and linear): a double backward through the
// stored gradient of such a term would treat it as a constant.
inline bool gradient_depends_on_input(LossKind kind) { return kind != LossKind::kL1 && kind != LossKind::kLinear; }

}  // namespace genimg_fast
