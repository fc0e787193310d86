"""Reference checkpoints for tests/test_convert.c.

Builds the reference networks of ref_model.py at a small config, fills random
weights (BatchNorm running statistics and num_batches_tracked included), saves
them the way the reference implementation does
({'unet_model_state_dict': ..., 'seg_model_state_dict': ...} with torch.save),
and runs the inference forward (eval mode) at fixed inputs and noise.

Usage: make_ref_checkpoint.py OUT_DIR
Writes into OUT_DIR:
  good.pth       the checkpoint (plus an 'epoch' entry the converter must ignore)
  module.pth     the same with DataParallel "module." prefixes
  badshape.pth   one denoiser tensor with a wrong shape
  missing.pth    one segmentation BatchNorm buffer missing
  extra.pth      one unexpected denoiser tensor
  notdict.pth    a list instead of a dict
  noseg.pth      no 'seg_model_state_dict'
  ref.ddt        in.x0 [B,H,W,3], in.eps [2B,H,W,3] (eps_s then eps_b), out.e [2B,H,W,3],
                 out.x0_hat [B,H,W,3], out.mask [B,H,W,1], cfg (H, W, t_s, t_b, B)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ddt  # noqa: E402
import ref_model  # noqa: E402

H, W, BASE, MULT, RES, ATTN, HEADS, SEGW, GROUPS = 32, 64, 16, [1, 2], 1, [16], 2, 4, 8
B, TS, TB = 2, 200, 400


def randomize(model, gen):
    norm = set()
    for mname, m in model.named_modules():
        if isinstance(m, (torch.nn.GroupNorm, torch.nn.BatchNorm2d)):
            norm.update(mname + "." + s for s in ("weight", "bias"))
    with torch.no_grad():
        for name, t in model.state_dict(keep_vars=True).items():
            if name.endswith("num_batches_tracked"):
                t.fill_(1234)
                continue
            r = torch.randn(t.shape, generator=gen)
            if name.endswith("running_var"):
                v = 0.5 + torch.rand(t.shape, generator=gen)
            elif name.endswith("running_mean"):
                v = 0.1 * r
            elif name in norm:
                v = 1.0 + 0.2 * r if name.endswith("weight") else 0.1 * r
            elif t.dim() > 1:
                v = r / (t[0].numel() ** 0.5)
            else:
                v = 0.1 * r
            t.copy_(v)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("DIFFAD_TEST_THREADS", "2")))
    gen = torch.Generator().manual_seed(11)
    ref_model.GROUPS = GROUPS  # GroupNorm groups = gcd(GROUPS, C)
    unet = ref_model.UNet(H, W, BASE, MULT, RES, ATTN, HEADS)
    seg = ref_model.SegNet(SEGW)
    randomize(unet, gen)
    randomize(seg, gen)
    unet.eval(), seg.eval()
    usd, ssd = unet.state_dict(), seg.state_dict()

    def save(name, obj):
        torch.save(obj, os.path.join(out, name))

    save("good.pth", {"unet_model_state_dict": usd, "seg_model_state_dict": ssd, "epoch": 3})
    save("module.pth", {"unet_model_state_dict": {"module." + k: v for k, v in usd.items()},
                        "seg_model_state_dict": {"module." + k: v for k, v in ssd.items()}})
    bad = dict(usd)
    bad["middle.0.out_layers.3.weight"] = torch.zeros(32, 32, 1, 1)
    save("badshape.pth", {"unet_model_state_dict": bad, "seg_model_state_dict": ssd})
    miss = dict(ssd)
    del miss["decoder_segment.db2.4.running_var"]
    save("missing.pth", {"unet_model_state_dict": usd, "seg_model_state_dict": miss})
    extra = dict(usd)
    extra["middle.1.bogus.weight"] = torch.zeros(3)
    save("extra.pth", {"unet_model_state_dict": extra, "seg_model_state_dict": ssd})
    save("notdict.pth", [usd, ssd])
    save("noseg.pth", {"unet_model_state_dict": usd})

    x0 = torch.rand(B, 3, H, W, generator=gen)
    eps_s = torch.randn(B, 3, H, W, generator=gen)
    eps_b = torch.randn(B, 3, H, W, generator=gen)
    mask = torch.zeros(B, 1, H, W)
    labels = torch.zeros(B, dtype=torch.long)
    with torch.no_grad():
        r = ref_model.step_forward(unet, seg, x0, mask, labels, [TS] * B, [TB] * B, eps_s, eps_b,
                                   ref_model.alpha_bar(1000))
    nhwc = ref_model.nhwc
    ddt.write(os.path.join(out, "ref.ddt"), [
        ("cfg", torch.tensor([H, W, TS, TB, B], dtype=torch.float32)),
        ("in.x0", nhwc(x0)), ("in.eps", torch.cat([nhwc(eps_s), nhwc(eps_b)])),
        ("out.e", torch.cat([nhwc(r["e_s"]), nhwc(r["e_b"])])), ("out.x0_hat", nhwc(r["x0_hat"])),
        ("out.mask", nhwc(r["mask"]))])


if __name__ == "__main__":
    main()
