// Parsing of the loss_terms spec (see loss_spec.h).
#include "losses/loss_spec.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <string>

namespace genimg_fast {

std::vector<TermSpec> parse_loss_spec(c10::string_view spec, size_t count, const char* op) {
  static const TermSpec kKinds[] = {{LossKind::kL1, "l1", true, true},
                                    {LossKind::kMse, "mse", true, true},
                                    {LossKind::kBce, "bce", true, true},
                                    {LossKind::kBceLogits, "bce_logits", true, true},
                                    {LossKind::kLinear, "linear", false, true},
                                    {LossKind::kHalfSquare, "half_square", false, true},
                                    {LossKind::kKlLogvar, "kl_logvar", false, true}};
  std::vector<TermSpec> parsed;
  const std::string text(spec);
  size_t start = 0;
  while (!text.empty() && start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string entry = text.substr(start, comma - start);
    const size_t colon = entry.find(':');
    const std::string kind = entry.substr(0, colon);
    const std::string reduction = colon == std::string::npos ? "" : entry.substr(colon + 1);
    const TermSpec* found = nullptr;
    for (const TermSpec& term : kKinds) {
      if (kind == term.name) found = &term;
    }
    TORCH_CHECK_VALUE(found != nullptr, op,
                      ": loss kind must be one of l1, mse, bce, bce_logits, linear, half_square, kl_logvar, got '",
                      kind, "'");
    TORCH_CHECK_VALUE(reduction == "mean" || reduction == "sum", op, ": reduction must be 'mean' or 'sum', got '",
                      reduction, "' (term '", kind, "')");
    TermSpec term = *found;
    term.mean = reduction == "mean";
    parsed.push_back(term);
    start = comma + 1;
  }
  TORCH_CHECK_VALUE(parsed.size() == count, op, ": spec must have one 'kind:reduction' entry per input (",
                    std::to_string(count), "), got '", text, "'");
  return parsed;
}

}  // namespace genimg_fast
