"""PyTorch reference for the layer library (tests/test_ops_torch.c reads the dump).

For every op: random inputs (fixed seed), the forward output, and the gradients of
sum(out * g) for a random upstream g. Activations are dumped channels-last (NHWC),
weights in PyTorch layout. Usage: ref_ops.py OUT.ddt
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddt  # noqa: E402

torch.manual_seed(1234)
torch.set_num_threads(1)
out = []


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous()


def put(name, t):
    out.append((name, t.detach().clone().contiguous()))


def conv_case(tag, n, cin, cout, h, w, k, stride):
    x = torch.randn(n, cin, h, w, requires_grad=True)
    wt = (torch.randn(cout, cin, k, k) * 0.2).requires_grad_()
    b = torch.randn(cout, requires_grad=True)
    y = F.conv2d(x, wt, b, stride=stride, padding=k // 2)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    put(tag + ".x", nhwc(x)); put(tag + ".w", wt); put(tag + ".b", b)
    put(tag + ".y", nhwc(y)); put(tag + ".g", nhwc(g))
    put(tag + ".dx", nhwc(x.grad)); put(tag + ".dw", wt.grad); put(tag + ".db", b.grad)


conv_case("conv3", 2, 8, 16, 6, 5, 3, 1)
conv_case("conv3s2", 2, 8, 12, 8, 6, 3, 2)
conv_case("conv1", 2, 16, 8, 5, 7, 1, 1)


def gn_case(tag, silu):
    x = torch.randn(2, 32, 4, 5, requires_grad=True)
    gamma = (1 + 0.3 * torch.randn(32)).requires_grad_()
    beta = (0.3 * torch.randn(32)).requires_grad_()
    y = F.group_norm(x, 8, gamma, beta, eps=1e-5)
    if silu:
        y = F.silu(y)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    for nm, t in [("x", nhwc(x)), ("gamma", gamma), ("beta", beta), ("y", nhwc(y)), ("g", nhwc(g)),
                  ("dx", nhwc(x.grad)), ("dgamma", gamma.grad), ("dbeta", beta.grad)]:
        put(tag + "." + nm, t)


gn_case("gn", False)
gn_case("gnsilu", True)

# BatchNorm, training mode, then the running statistics.
x = torch.randn(3, 8, 4, 4, requires_grad=True)
bn = torch.nn.BatchNorm2d(8)
with torch.no_grad():
    bn.weight.copy_(1 + 0.3 * torch.randn(8)); bn.bias.copy_(0.3 * torch.randn(8))
    bn.running_mean.copy_(0.1 * torch.randn(8)); bn.running_var.copy_(1 + 0.1 * torch.rand(8))
put("bn.run_mean0", bn.running_mean.clone()); put("bn.run_var0", bn.running_var.clone())
y = bn(x)
g = torch.randn_like(y)
(y * g).sum().backward()
for nm, t in [("x", nhwc(x)), ("gamma", bn.weight), ("beta", bn.bias), ("y", nhwc(y)), ("g", nhwc(g)),
              ("dx", nhwc(x.grad)), ("dgamma", bn.weight.grad), ("dbeta", bn.bias.grad),
              ("run_mean", bn.running_mean), ("run_var", bn.running_var)]:
    put("bn." + nm, t)
bn.eval()
put("bn.y_eval", nhwc(bn(x)))


def unary(tag, fn, shape=(2, 6, 4, 4), pos=False):
    x = torch.randn(*shape)
    if pos:
        x = x.abs() + 0.1
    x.requires_grad_()
    y = fn(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    put(tag + ".x", nhwc(x)); put(tag + ".y", nhwc(y)); put(tag + ".g", nhwc(g)); put(tag + ".dx", nhwc(x.grad))


unary("silu", F.silu)
unary("relu", F.relu)
unary("sigmoid", torch.sigmoid)
unary("avgpool", lambda t: F.avg_pool2d(t, 2), (2, 5, 6, 8))
unary("maxpool", lambda t: F.max_pool2d(t, 2), (2, 5, 6, 8))
unary("upnearest", lambda t: F.interpolate(t, scale_factor=2, mode="nearest"), (2, 5, 3, 4))
unary("upbilinear", lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True), (2, 20, 3, 4))

# Linear.
x = torch.randn(6, 10, requires_grad=True)
lin = torch.nn.Linear(10, 7)
y = lin(x)
g = torch.randn_like(y)
(y * g).sum().backward()
for nm, t in [("x", x), ("w", lin.weight), ("b", lin.bias), ("y", y), ("g", g), ("dx", x.grad),
              ("dw", lin.weight.grad), ("db", lin.bias.grad)]:
    put("linear." + nm, t)

# Attention core, head-major qkv layout (docs/method.md section 4), dumped as [N, L, 3C] / [N, L, C].
n, c, heads, hh, ww = 2, 16, 4, 3, 4
L = hh * ww
qkv = torch.randn(n, 3 * c, L, requires_grad=True)
d = c // heads
q, k, v = qkv.reshape(n * heads, 3 * d, L).split(d, dim=1)
scale = 1 / math.sqrt(math.sqrt(d))
wts = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
a = torch.einsum("bts,bcs->bct", wts, v).reshape(n, c, L)
g = torch.randn_like(a)
(a * g).sum().backward()
put("attn.qkv", qkv.transpose(1, 2)); put("attn.a", a.transpose(1, 2)); put("attn.g", g.transpose(1, 2))
put("attn.dqkv", qkv.grad.transpose(1, 2))

# Timestep embedding, [sin | cos].
t = torch.tensor([0, 1, 17, 250, 999])
half = 32
freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
args = t[:, None].float() * freqs[None]
put("temb.t", t.float()); put("temb.e", torch.cat([torch.sin(args), torch.cos(args)], dim=-1))

# Losses.
p_logit = torch.randn(2, 1, 8, 8)
p = torch.sigmoid(p_logit).requires_grad_()
ytrue = (torch.rand(2, 1, 8, 8) > 0.7).float()
bce = F.binary_cross_entropy(p, ytrue, reduction="none")
pt = torch.exp(-bce)
focal = (0.5 * (1 - pt) ** 4 * bce).mean()
focal.backward()
put("focal.p", p); put("focal.y", ytrue); put("focal.loss", focal.reshape(1)); put("focal.dp", p.grad)
a = torch.randn(50, requires_grad=True)
b = torch.randn(50) * 2
sl = F.smooth_l1_loss(a, b, beta=1.0)
sl.backward()
put("sl1.a", a); put("sl1.b", b); put("sl1.loss", sl.reshape(1)); put("sl1.da", a.grad)
a = torch.randn(40, requires_grad=True)
b = torch.randn(40)
mse = F.mse_loss(a, b)
mse.backward()
put("mse.a", a); put("mse.b", b); put("mse.loss", mse.reshape(1)); put("mse.da", a.grad)

# Adam: two parameter groups with their own learning rates, three steps with given grads.
p1 = torch.randn(33, requires_grad=True)
p2 = torch.randn(7, requires_grad=True)
put("adam.p1_0", p1); put("adam.p2_0", p2)
opt = torch.optim.Adam([{"params": [p1], "lr": 1e-2}, {"params": [p2], "lr": 1e-3}], betas=(0.9, 0.999), eps=1e-8)
for s in range(3):
    g1, g2 = torch.randn(33), torch.randn(7) * 10
    put("adam.g1_%d" % s, g1); put("adam.g2_%d" % s, g2)
    p1.grad = g1.clone(); p2.grad = g2.clone()
    opt.step()
put("adam.p1_3", p1); put("adam.p2_3", p2)

ddt.write(sys.argv[1], out)
