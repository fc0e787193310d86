"""PyTorch reference of DiffusionAD's two networks and joint training step, written
from docs/method.md (sections 2-6) independently of the C code.

Weights are not dumped: both sides fill every tensor from a counter-based hash of
(seed, tensor name, index) -- see fill() and tests/test_model_torch.c -- so the
paper config (160 M parameters) needs no weight file. The dump holds inputs,
outputs, loss terms, every gradient and the parameters after two Adam steps.

Usage: ref_model.py OUT.ddt small|paper
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddt  # noqa: E402

M64 = (1 << 64) - 1


def fnv1a(s):
    h = 0xCBF29CE484222325
    for ch in s.encode():
        h ^= ch
        h = (h * 0x100000001B3) & M64
    return h


def hash_uniform(name, n, seed=7):
    """Uniform [-1, 1) floats: splitmix64 finaliser of (seed ^ fnv(name)) + i * golden."""
    with np.errstate(over="ignore"):
        base = np.uint64((seed ^ fnv1a(name)) & M64)
        x = base + np.arange(n, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = x
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(40)).astype(np.float64) / float(1 << 24) * 2.0 - 1.0).astype(np.float32)


def fill(model, prefix):
    """Deterministic non-zero weights (zero-initialised layers too, so every gradient
    flows); the same rule as hashfill_params() in tests/hashfill.h."""
    norm_names = set()
    for mname, m in model.named_modules():
        if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)):
            norm_names.update(mname + "." + s for s in ("weight", "bias"))
    for name, t in list(model.state_dict(keep_vars=True).items()):
        if name.endswith("num_batches_tracked"):
            continue
        u = torch.from_numpy(hash_uniform(prefix + "." + name, t.numel())).reshape(t.shape)
        if name.endswith("running_var"):
            v = 1.0 + 0.2 * u.abs()
        elif name.endswith("running_mean"):
            v = 0.1 * u
        elif name in norm_names:
            v = (1.0 + 0.2 * u) if name.endswith("weight") else 0.1 * u
        elif t.dim() > 1:
            v = u / math.sqrt(t[0].numel())
        else:
            v = 0.2 * u
        with torch.no_grad():
            t.copy_(v)


GROUPS = 32


def groups_for(c, groups=None):
    """docs/method.md §4's rule for small channel counts: gcd(groups, C); groups None: GROUPS."""
    return math.gcd(GROUPS if groups is None else groups, c)


# ---------------- denoiser (docs/method.md section 4) ----------------
class Sinusoid(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, t):
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb, mode=None, groups=None):
        super().__init__()
        self.mode = mode
        self.in_layers = nn.Sequential(nn.GroupNorm(groups_for(cin, groups), cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.embed_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, cout))
        self.out_layers = nn.Sequential(nn.GroupNorm(groups_for(cout, groups), cout), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def resample(self, x):
        if self.mode == "down":
            return F.avg_pool2d(x, 2)
        if self.mode == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self.in_layers[1](self.in_layers[0](x))
        h = self.resample(h)
        x = self.resample(x)
        h = self.in_layers[2](h)
        h = h + self.embed_layers(emb)[:, :, None, None]
        h = self.out_layers(h)
        return self.skip_connection(x) + h


class Attention(nn.Module):
    def __init__(self, c, heads, groups=None):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups_for(c, groups), c)
        self.to_qkv = nn.Conv1d(c, 3 * c, 1)
        self.proj_out = nn.Conv1d(c, c, 1)

    def forward(self, x):
        b, c, hh, ww = x.shape
        qkv = self.to_qkv(self.norm(x).reshape(b, c, -1))
        d = c // self.heads
        q, k, v = qkv.reshape(b * self.heads, 3 * d, -1).split(d, dim=1)
        scale = 1 / math.sqrt(math.sqrt(d))
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * scale, k * scale), dim=-1)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
        return x + self.proj_out(a).reshape(b, c, hh, ww)


class Step(nn.Sequential):
    def forward(self, x, emb):
        for m in self:
            x = m(x, emb) if isinstance(m, ResBlock) else m(x)
        return x


class UNet(nn.Module):
    def __init__(self, h, w, base, mult, res_blocks, attn, heads, groups=None):
        """groups: GroupNorm groups as the model key `groups` (gcd with each channel count);
        None: the module's GROUPS."""
        super().__init__()
        E = 4 * base
        self.time_embedding = nn.Sequential(Sinusoid(base), nn.Linear(base, E), nn.SiLU(), nn.Linear(E, E))
        self.down = nn.ModuleList([Step(nn.Conv2d(3, base, 3, padding=1))])
        skip = [base]
        ch, size = base, min(h, w)
        for lvl, m in enumerate(mult):
            for _ in range(res_blocks):
                mods = [ResBlock(ch, base * m, E, groups=groups)]
                ch = base * m
                if size in attn:
                    mods.append(Attention(ch, heads, groups))
                self.down.append(Step(*mods))
                skip.append(ch)
            if lvl != len(mult) - 1:
                self.down.append(Step(ResBlock(ch, ch, E, "down", groups)))
                skip.append(ch)
                size //= 2
        self.middle = Step(ResBlock(ch, ch, E, groups=groups), Attention(ch, heads, groups), ResBlock(ch, ch, E, groups=groups))
        self.up = nn.ModuleList()
        for lvl in reversed(range(len(mult))):
            m = mult[lvl]
            for r in range(res_blocks + 1):
                mods = [ResBlock(ch + skip.pop(), base * m, E, groups=groups)]
                ch = base * m
                if size in attn:
                    mods.append(Attention(ch, heads, groups))
                if lvl != 0 and r == res_blocks:
                    mods.append(ResBlock(ch, ch, E, "up", groups))
                    size *= 2
                self.up.append(Step(*mods))
        self.out = nn.Sequential(nn.GroupNorm(groups_for(ch, groups), ch), nn.SiLU(), nn.Conv2d(ch, 3, 3, padding=1))

    def forward(self, x, t):
        emb = self.time_embedding(t)
        hs = []
        h = x
        for m in self.down:
            h = m(h, emb)
            hs.append(h)
        h = self.middle(h, emb)
        for m in self.up:
            h = m(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


# ---------------- segmentation net (docs/method.md section 5) ----------------
def cbr2(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def up_cbr(cin, cout):
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
                         nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Encoder(nn.Module):
    def __init__(self, cin, w):
        super().__init__()
        self.block1 = cbr2(cin, w)
        self.block2 = cbr2(w, 2 * w)
        self.block3 = cbr2(2 * w, 4 * w)
        self.block4 = cbr2(4 * w, 8 * w)
        self.block5 = cbr2(8 * w, 8 * w)
        self.block6 = cbr2(8 * w, 8 * w)

    def forward(self, x):
        b1 = self.block1(x)
        b2 = self.block2(F.max_pool2d(b1, 2))
        b3 = self.block3(F.max_pool2d(b2, 2))
        b4 = self.block4(F.max_pool2d(b3, 2))
        b5 = self.block5(F.max_pool2d(b4, 2))
        b6 = self.block6(F.max_pool2d(b5, 2))
        return b1, b2, b3, b4, b5, b6


class Decoder(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.up_b = up_cbr(8 * w, 8 * w)
        self.db_b = cbr2(16 * w, 8 * w)
        self.up1 = up_cbr(8 * w, 4 * w)
        self.db1 = cbr2(12 * w, 4 * w)
        self.up2 = up_cbr(4 * w, 2 * w)
        self.db2 = cbr2(6 * w, 2 * w)
        self.up3 = up_cbr(2 * w, w)
        self.db3 = cbr2(3 * w, w)
        self.up4 = up_cbr(w, w)
        self.db4 = cbr2(2 * w, w)
        self.fin_out = nn.Sequential(nn.Conv2d(w, 1, 3, padding=1))

    def forward(self, b1, b2, b3, b4, b5, b6):
        d = self.db_b(torch.cat([self.up_b(b6), b5], 1))
        d = self.db1(torch.cat([self.up1(d), b4], 1))
        d = self.db2(torch.cat([self.up2(d), b3], 1))
        d = self.db3(torch.cat([self.up3(d), b2], 1))
        d = self.db4(torch.cat([self.up4(d), b1], 1))
        return self.fin_out(d)


class SegNet(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.encoder_segment = Encoder(6, w)
        self.decoder_segment = Decoder(w)

    def forward(self, x):
        return torch.sigmoid(self.decoder_segment(*self.encoder_segment(x)))


# ---------------- schedule, guided reconstruction, losses (sections 2, 3, 6) ----------------
def alpha_bar(T=1000):
    betas = np.linspace(1e-4 * 1000 / T, 0.02 * 1000 / T, T, dtype=np.float64)
    return np.cumprod(1.0 - betas)


def bcast(v):
    return torch.tensor(v, dtype=torch.float32)[:, None, None, None]


def min_snr_weight(ab, t, gamma):
    """Min-SNR-gamma (Hang et al. 2023) for an epsilon prediction: min(SNR, gamma) / SNR."""
    if gamma <= 0:
        return np.ones(len(t))
    snr = ab[t] / (1 - ab[t])
    return np.minimum(snr, gamma) / snr


def step_forward(unet, seg, x0, mask, labels, ts, tb, eps_s, eps_b, ab, w=1.0, snr_gamma=0.0):
    abs_, abb = ab[ts], ab[tb]
    x_ts = bcast(np.sqrt(abs_)) * x0 + bcast(np.sqrt(1 - abs_)) * eps_s
    x_tb = bcast(np.sqrt(abb)) * x0 + bcast(np.sqrt(1 - abb)) * eps_b
    B = x0.shape[0]
    e = unet(torch.cat([x_ts, x_tb]), torch.cat([torch.tensor(ts), torch.tensor(tb)]))
    e_s, e_b = e[:B], e[B:]
    x0_b = torch.clamp(x_tb * bcast(1 / np.sqrt(abb)) - bcast(np.sqrt(1 / abb - 1)) * e_b, -1, 1)
    k = bcast(np.sqrt(1 - abs_))
    r = bcast(np.sqrt(abs_)) * x0_b + k * e_s
    e_hat = e_s - k * w * (r - x_ts)
    x0_hat = torch.clamp(x_ts * bcast(1 / np.sqrt(abs_)) - bcast(np.sqrt(1 / abs_ - 1)) * e_hat, -1, 1)
    M = seg(torch.cat([x0, x0_hat], 1))
    normal = labels == 0
    if normal.any() and snr_gamma > 0:
        # per sample: w_t * mean squared error, then the mean over the normal samples
        ws = torch.tensor(min_snr_weight(ab, np.array(ts), snr_gamma), dtype=torch.float32)
        wb = torch.tensor(min_snr_weight(ab, np.array(tb), snr_gamma), dtype=torch.float32)
        mse_s = ((e_s - eps_s) ** 2).mean(dim=(1, 2, 3))
        mse_b = ((e_b - eps_b) ** 2).mean(dim=(1, 2, 3))
        noise = (ws * mse_s)[normal].mean() + (wb * mse_b)[normal].mean()
    elif normal.any():
        noise = F.mse_loss(e_s[normal], eps_s[normal]) + F.mse_loss(e_b[normal], eps_b[normal])
    else:
        noise = torch.zeros(())
    bce = F.binary_cross_entropy(M, mask, reduction="none")
    pt = torch.exp(-bce)
    focal = (0.5 * (1 - pt) ** 4 * bce).mean()
    sl1 = F.smooth_l1_loss(M, mask, beta=1.0)
    loss = noise + 5 * focal + sl1
    return dict(e_s=e_s, e_b=e_b, x0_hat=x0_hat, mask=M, noise=noise, focal=focal, sl1=sl1, loss=loss)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous()


def main():
    out_path, which = sys.argv[1], sys.argv[2]
    torch.manual_seed(5)
    torch.set_num_threads(int(os.environ.get("DIFFAD_TEST_THREADS", "2")))
    global GROUPS
    snr_gamma = 5.0 if which == "small_snr" else 0.0
    if which in ("small", "small_snr"):
        GROUPS = 8  # two channels per group at base 16, so biases before GroupNorm do not cancel
        H, W, base, mult, rb, attn, heads, segw, B = 64, 128, 16, [1, 2], 1, [32], 2, 4, 3
        labels = torch.tensor([0, 1, 0])
        # t_b up to 650: at t = 999 the x0 estimate multiplies the denoiser output by
        # 1/sqrt(abar) = 156, so float32 rounding alone would exceed the tolerances
        ts, tb = [5, 120, 299], [300, 480, 650]
    else:
        H, W, base, mult, rb, attn, heads, segw, B = 256, 256, 128, [1, 1, 2, 2, 4, 4], 2, [32, 16, 8], 4, 64, 1
        labels = torch.tensor([0])
        ts, tb = [200], [400]
    unet = UNet(H, W, base, mult, rb, attn, heads)
    seg = SegNet(segw)
    fill(unet, "unet")
    fill(seg, "seg")
    ab = alpha_bar()
    x0 = torch.rand(B, 3, H, W)
    mask = torch.zeros(B, 1, H, W)
    for b in range(B):
        if labels[b] == 1:
            mask[b, :, H // 4: H // 2, W // 3: W // 2] = 1.0
    eps_s, eps_b = torch.randn(B, 3, H, W), torch.randn(B, 3, H, W)
    counts = [sum(p.numel() for p in unet.parameters()), sum(p.numel() for p in seg.parameters()),
              len(unet.state_dict()), len(seg.state_dict())]
    # float32 holds integers exactly only up to 2^24: store each as (high, low) 16-bit halves
    outs = [("cfg.counts", torch.tensor([v for c in counts for v in (c >> 16, c & 0xFFFF)], dtype=torch.float64)),
            ("in.x0", nhwc(x0)), ("in.mask", nhwc(mask)), ("in.labels", labels.float()),
            ("in.ts", torch.tensor(ts).float()), ("in.tb", torch.tensor(tb).float()),
            ("in.eps", torch.cat([nhwc(eps_s), nhwc(eps_b)]))]
    if which == "paper":
        unet.eval(), seg.eval()  # inference: BatchNorm on running statistics
        with torch.no_grad():
            r = step_forward(unet, seg, x0, mask, labels, ts, tb, eps_s, eps_b, ab)
        outs += [("out.e", torch.cat([nhwc(r["e_s"]), nhwc(r["e_b"])])), ("out.x0_hat", nhwc(r["x0_hat"])),
                 ("out.mask", nhwc(r["mask"]))]
        ddt.write(out_path, outs)
        return
    params = [("unet." + n, p) for n, p in unet.named_parameters()] + [("seg." + n, p) for n, p in seg.named_parameters()]
    opt = torch.optim.Adam([{"params": list(unet.parameters()), "lr": 1e-4},
                            {"params": list(seg.parameters()), "lr": 1e-5}], betas=(0.9, 0.999), eps=1e-8)
    for step in range(2):
        opt.zero_grad()
        r = step_forward(unet, seg, x0, mask, labels, ts, tb, eps_s, eps_b, ab, snr_gamma=snr_gamma)
        r["loss"].backward()
        if step == 0:
            outs += [("out.e", torch.cat([nhwc(r["e_s"]), nhwc(r["e_b"])])), ("out.x0_hat", nhwc(r["x0_hat"])),
                     ("out.mask", nhwc(r["mask"])),
                     ("out.losses", torch.stack([r["loss"], r["noise"], r["focal"], r["sl1"]]).detach())]
            outs += [("grad." + n, p.grad.clone()) for n, p in params]
            outs += [("param0." + n, p.detach().clone()) for n, p in params]
        else:
            outs += [("grad2." + n, p.grad.clone()) for n, p in params]
        opt.step()
        if step == 0:
            outs += [("param1." + n, p.detach().clone()) for n, p in params]
    outs += [("param2." + n, p.detach().clone()) for n, p in params]
    outs += [("buf2.seg." + n, b.detach().clone().float()) for n, b in seg.named_buffers()]
    ddt.write(out_path, outs)


if __name__ == "__main__":
    main()
