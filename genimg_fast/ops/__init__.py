"""Fused ops in the `genimg_fast` torch.library namespace.

Each module defines one op family: schema, PyTorch reference (every device without a
kernel), fake impl (torch.compile), autograd; the CUDA kernels register from csrc/.

What is here:

- norm + activation: norm_act_train (training forward: statistics and output in one op),
  norm_act_apply (given statistics), norm_act_stats, the private backward pieces
  _norm_act_backward_reduce, _norm_act_backward_apply and _norm_act_train_backward, the
  running-statistics updates
  update_running_stats_ / update_tracked_running_stats_, and batch_norm_act_train_
  (BatchNorm2d's whole training forward).
- losses whose forward also computes the gradient: l1_loss; loss_terms with LossTerm (a
  weighted sum of several loss terms in one op); their private backward ops
  _scale_one_stored_grad (l1_loss) and _scale_term_stored_grads (loss_terms).
- genimg_fast.ops.objectives (not re-exported here): the recipes' objectives (GAN, CycleGAN,
  pix2pix, VAE) built on loss_terms, behind genimg_fast.nn's loss modules.

help() on an op defined with torch.library.custom_op shows the op's own docstring (copied onto
the op object below: torch's wrapper would show its class's).
"""
from genimg_fast.ops.l1_loss import l1_loss
from genimg_fast.ops.loss_terms import LossTerm, _scale_term_stored_grads, loss_terms
from genimg_fast.ops.norm_act import (_norm_act_backward_apply, _norm_act_backward_reduce, _norm_act_train_backward,
                                      batch_norm_act_train_, norm_act_apply, norm_act_stats, norm_act_train,
                                      update_running_stats_, update_tracked_running_stats_)
from genimg_fast.ops.stored_grad import _scale_one_stored_grad

# Not in __all__: the backward ops imported above (a leading underscore), which autograd calls;
# they are here for the package's modules and tests.
__all__ = [
    "l1_loss", "norm_act_train", "norm_act_apply", "norm_act_stats", "update_running_stats_",
    "update_tracked_running_stats_", "batch_norm_act_train_", "LossTerm", "loss_terms",
]


def _show_own_docstrings(namespace: dict) -> None:
    """A custom op is torch's CustomOpDef, whose class docstring help() would show; give each op
    the docstring of the function it was defined from."""
    for value in list(namespace.values()):
        defined_from = getattr(value, "_init_fn", None)
        if type(value).__name__ == "CustomOpDef" and defined_from is not None and defined_from.__doc__:
            value.__doc__ = defined_from.__doc__


_show_own_docstrings(globals())
