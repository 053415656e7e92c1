"""Every network the course builds, found by name in one registry.

``create("s01/rf-net")`` builds one, ``names()`` lists them and ``input_size(name)`` says what
one input looks like. The networks live by family: :mod:`evakit.models.cnn` for the
convolutional networks of sessions 1–8, :mod:`evakit.models.attention` for session 9's
attention networks (ULTIMUS, the spatial transformer), :mod:`evakit.models.vit` for session 10's
vision transformer and ConvMixer, :mod:`evakit.models.language` for the transformers that read
text (GPT, BERT) in session 11, :mod:`evakit.models.clip` for its image–text model (CLIP), and
:mod:`evakit.models.speedrun` for session 8's speedrun network.
"""

from evakit.models import attention, clip, cnn, language, speedrun, vit
from evakit.models.cnn import (
    BasicBlock,
    CifarNet,
    CifarResNet,
    CustomResNet,
    DepthwiseSeparable,
    DrillNet,
    conv_block,
    conv_bn_relu,
    norm_layer,
)
from evakit.models.registry import (
    count_parameters,
    create,
    evaluating,
    input_size,
    names,
    register,
)

__all__ = ["BasicBlock", "CifarNet", "CifarResNet", "CustomResNet", "DepthwiseSeparable",
           "DrillNet", "attention", "clip", "cnn", "conv_bn_relu", "conv_block",
           "count_parameters", "create", "evaluating", "input_size", "language", "names",
           "norm_layer", "register", "speedrun", "vit"]
