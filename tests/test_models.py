"""Every registered model builds, takes its registered input and has its known size."""

import pytest
import torch
import torchinfo

from evakit import models

# Parameter counts: the architecture's own facts (a change here is a change of network).
PARAMETERS = {
    "s01/rf-net": 25_236, "s02/first-kernel": 14_378, "s03/assignment": 10_412,
    "s04/drill": 194_884, "s04/setup": 6_379_786, "s05/norm-net": 8_568,
    "s06/cifar-net": 184_386, "s07/resnet18": 11_173_962, "s07/resnet34": 21_282_122,
    "s08/custom-resnet": 6_573_120, "s08/speedrun-net": 1_971_352, "s09/stn": 27_420,
    "s09/ultimus": 25_978,
    "s10/convmixer": 594_186, "s10/vit": 572_074, "s11/bert": 826_818, "s11/clip": 146_577,
    "s11/gpt": 809_856, "s25/digit-sum": 34_253,
}


def _inputs(name: str, batch: int = 2):
    size = models.input_size(name)
    if name == "s25/digit-sum":
        return torch.zeros(batch, *size), torch.zeros(batch, dtype=torch.long)
    if name == "s11/clip":                              # images and their captions' tokens
        tokens = torch.tensor([[5, 6, 1, 0]] * batch)   # two words, end of text, padding
        return torch.zeros(batch, *size), tokens
    if len(size) == 1:                                  # a token sequence
        return (torch.zeros(batch, *size, dtype=torch.long),)
    return (torch.zeros(batch, *size),)


def test_every_model_is_listed_here():
    assert sorted(PARAMETERS) == models.names()


@pytest.mark.parametrize("name", models.names())
def test_model_builds_runs_and_has_its_size(name):
    model = models.create(name).eval()
    with torch.no_grad():
        out = model(*_inputs(name))
    size = models.input_size(name)
    if len(size) == 1:
        assert out.shape[:2] == (2, size[0])               # logits per position
    else:
        classes = {"s25/digit-sum": 29, "s11/clip": 2}     # CLIP: 2 images × 2 captions
        assert out.shape == (2, classes.get(name, 10))
    assert models.count_parameters(model) == PARAMETERS[name]
    if len(size) == 3:      # torchinfo counts a tied embedding twice, so CNNs only
        counted = torchinfo.summary(model, input_data=list(_inputs(name)), verbose=0)
        assert counted.trainable_params == PARAMETERS[name]     # an independent count


def test_unknown_model_is_one_sentence():
    with pytest.raises(ValueError, match="unknown model 'nope': expected one of"):
        models.create("nope")
    with pytest.raises(ValueError, match="registered twice"):
        models.register("s01/rf-net", (1, 28, 28))(lambda: None)


def test_evaluating_puts_a_model_back_in_the_mode_it_was_in_even_on_an_error():
    net = models.create("s06/cifar-net")
    with models.evaluating(net) as same:
        assert same is net and not net.training
    assert net.training
    net.eval()
    with pytest.raises(RuntimeError, match="stopped"), models.evaluating(net):
        net.train()
        raise RuntimeError("stopped inside the block")
    assert not net.training
    net.train()
    frozen = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)).eval()
    with models.evaluating(net):
        pass
    assert net.training and not frozen.training      # each module back in its own mode
