"""An independent PyTorch MobileNetV3-minimal with timm's module names, for reference outputs.

Built from the published tables (:mod:`tests.models.mobilenet_tables`) with TensorFlow 'SAME'
padding and BatchNorm epsilon 1e-3; nothing is derived from jaxface. Its ``state_dict`` has
timm's key names, so it stands in for a timm checkpoint.
"""

import math

import numpy as np
import pytest

from tests.models.mobilenet_tables import TABLES

torch = pytest.importorskip("torch")  # also skips this module's collection without torch
F = torch.nn.functional
nn = torch.nn


class SameConv(nn.Conv2d):
    """A bias-free convolution with TensorFlow's 'SAME' padding (the odd pixel at the end)."""

    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__(cin, cout, k, stride=stride, padding=0, groups=groups, bias=False)

    def forward(self, x):
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
            s, k = self.stride[0], self.kernel_size[0]
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.1)


class DS(nn.Module):
    def __init__(self, cin, stride, out):
        super().__init__()
        self.conv_dw = SameConv(cin, cin, 3, stride, groups=cin)
        self.bn1 = _bn(cin)
        self.conv_pw = SameConv(cin, out, 1)
        self.bn2 = _bn(out)
        self.skip = stride == 1 and cin == out

    def forward(self, x):
        y = self.bn2(self.conv_pw(F.relu(self.bn1(self.conv_dw(x)))))
        return y + x if self.skip else y


class IR(nn.Module):
    def __init__(self, cin, stride, mid, out):
        super().__init__()
        self.conv_pw = SameConv(cin, mid, 1)
        self.bn1 = _bn(mid)
        self.conv_dw = SameConv(mid, mid, 3, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.conv_pwl = SameConv(mid, out, 1)
        self.bn3 = _bn(out)
        self.skip = stride == 1 and cin == out

    def forward(self, x):
        y = F.relu(self.bn1(self.conv_pw(x)))
        y = F.relu(self.bn2(self.conv_dw(y)))
        y = self.bn3(self.conv_pwl(y))
        return y + x if self.skip else y


class CN(nn.Module):
    def __init__(self, cin, out):
        super().__init__()
        self.conv = SameConv(cin, out, 1)
        self.bn1 = _bn(out)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


def make_block(kind, cin, stride, mid, out):
    if kind == "ds":
        return DS(cin, stride, out)
    if kind == "ir":
        return IR(cin, stride, mid, out)
    return CN(cin, out)


class MobileNet(nn.Module):
    """NCHW images -> the last feature map (NCHW)."""

    def __init__(self, variant):
        super().__init__()
        table = TABLES[variant]
        self.conv_stem = SameConv(3, 16, 3, 2)
        self.bn1 = _bn(16)
        cin, stages = 16, []
        for stage in table:
            blocks = []
            for kind, stride, mid, out in stage:
                blocks.append(make_block(kind, cin, stride, mid, out))
                cin = out
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)

    def forward(self, x):
        return self.blocks(F.relu(self.bn1(self.conv_stem(x))))


def randomize(module, images_nchw, seed=0):
    """Random BatchNorm affine parameters and running statistics set from one batch (so that
    every layer sees well-scaled inputs in eval mode); returns the module in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=gen))
            bn.bias.copy_(0.1 * torch.randn(bn.bias.shape, generator=gen))
            bn.momentum = 1.0
        module.train()
        module(images_nchw)
        for bn in bns:
            bn.momentum = 0.1
            bn.running_mean.add_(0.05 * torch.randn(bn.running_mean.shape, generator=gen))
    return module.eval()


def save_state_dict(module, path, prefix=""):
    """The module's ``state_dict`` as an ``.npz`` (keys prefixed), as a timm user writes it."""
    np.savez(path, **{prefix + k: v.numpy() for k, v in module.state_dict().items()})
    return path


def to_nchw(images_nhwc):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(images_nhwc).transpose(0, 3, 1, 2)))


def to_nhwc(tensor):
    return tensor.detach().numpy().transpose(0, 2, 3, 1)
