"""Drop-in modules built on the fused ops: same parameters, buffers and state_dict keys as the
torch layers they replace, with the activation folded into the normalization."""
from genimg_fast.nn.batch_norm_act import BatchNormAct2d
from genimg_fast.nn.conv_norm_act import Conv2dNormAct, ConvTranspose2dNormAct
from genimg_fast.nn.instance_norm_act import InstanceNormAct2d

__all__ = ["BatchNormAct2d", "InstanceNormAct2d", "Conv2dNormAct", "ConvTranspose2dNormAct"]
