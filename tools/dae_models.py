"""PyTorch reference models for `dae` (SPEC section 3), named so that a `dae` checkpoint loads
with `load_state_dict(strict=True)`.

    from dae_models import build_model
    model = build_model({"name": "unet", "base_ch": 32, "num_downs": 2})

State-dict names:
  conv: encoder.{i}.block.*, bottleneck.block.*, decoder.{j}.*
  unet: inc.double_conv.*, downs.{i}.maxpool_conv.1.double_conv.*, ups.{k}.up.* (transposed
        only), ups.{k}.conv.double_conv.*, outc.weight, outc.bias
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_TYPES = ("group", "instance", "batch", "none")
ACTIVATIONS = ("relu", "leakyrelu", "gelu", "silu")
UP_MODES = ("bilinear", "transposed")

DEFAULTS = {
    "name": "unet",
    "base_ch": 64,
    "num_downs": 3,
    "norm_type": "group",
    "activation": "relu",
    "dropout": 0.0,
    "up": "bilinear",
    "in_ch": 1,
    "out_ch": 1,
}


def make_norm(norm_type: str, ch: int) -> nn.Module | None:
    if norm_type == "group":
        return nn.GroupNorm(min(32, ch), ch)
    if norm_type == "instance":
        # One group per channel, affine: same parameter names (weight, bias) as GroupNorm.
        return nn.GroupNorm(ch, ch)
    if norm_type == "batch":
        return nn.BatchNorm2d(ch)
    if norm_type == "none":
        return None
    raise ValueError(f"model.norm_type must be one of {NORM_TYPES}, got {norm_type!r}")


def make_act(activation: str) -> nn.Module:
    if activation == "relu":
        return nn.ReLU()
    if activation == "leakyrelu":
        return nn.LeakyReLU(0.2)
    if activation == "gelu":
        return nn.GELU()
    if activation == "silu":
        return nn.SiLU()
    raise ValueError(f"model.activation must be one of {ACTIVATIONS}, got {activation!r}")


def layer(conv: nn.Module, cout: int, norm_type: str, activation: str, dropout: float) -> list[nn.Module]:
    """[conv, norm (absent for none), act, dropout2d (only where dropout > 0)]."""
    mods = [conv]
    norm = make_norm(norm_type, cout)
    if norm is not None:
        mods.append(norm)
    mods.append(make_act(activation))
    if dropout > 0:
        mods.append(nn.Dropout2d(dropout))
    return mods


# ----------------------------------------------------------------------------------------------
# ConvDAE


class ConvBlock(nn.Module):
    def __init__(self, cin, cout, stride, norm_type, activation, dropout):
        super().__init__()
        conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=norm_type == "none")
        self.block = nn.Sequential(*layer(conv, cout, norm_type, activation, dropout))

    def forward(self, x):
        return self.block(x)


class ConvDAE(nn.Module):
    def __init__(self, in_ch=1, out_ch=1, base_ch=64, num_downs=3, norm_type="group",
                 activation="relu", dropout=0.0):
        super().__init__()
        enc = [ConvBlock(in_ch, base_ch, 1, norm_type, activation, dropout)]
        ch = base_ch
        for _ in range(num_downs):
            enc.append(ConvBlock(ch, ch * 2, 2, norm_type, activation, dropout))
            ch *= 2
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = ConvBlock(ch, ch, 1, norm_type, activation, dropout)
        dec = []
        for _ in range(num_downs):
            convt = nn.ConvTranspose2d(ch, ch // 2, 4, stride=2, padding=1, bias=norm_type == "none")
            dec += layer(convt, ch // 2, norm_type, activation, dropout)
            ch //= 2
        dec.append(nn.Conv2d(ch, out_ch, 3, padding=1, bias=True))
        self.decoder = nn.Sequential(*dec)

    def forward(self, x):
        h, w = x.shape[-2:]
        y = torch.sigmoid(self.decoder(self.bottleneck(self.encoder(x))))
        if y.shape[-2:] != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        return y


# ----------------------------------------------------------------------------------------------
# UNetDAE


class DoubleConv(nn.Module):
    """conv3x3(cin->mid), norm, act, (dropout), conv3x3(mid->cout), norm, act."""

    def __init__(self, cin, cout, mid, norm_type, activation, dropout):
        super().__init__()
        bias = norm_type == "none"
        mods = layer(nn.Conv2d(cin, mid, 3, padding=1, bias=bias), mid, norm_type, activation, dropout)
        mods += layer(nn.Conv2d(mid, cout, 3, padding=1, bias=bias), cout, norm_type, activation, 0.0)
        self.double_conv = nn.Sequential(*mods)

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, cin, cout, norm_type, activation, dropout):
        super().__init__()
        self.maxpool_conv = nn.Sequential(
            nn.MaxPool2d(2), DoubleConv(cin, cout, cout, norm_type, activation, dropout)
        )

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, cin, cout, mid, up, norm_type, activation, dropout):
        super().__init__()
        if up == "bilinear":
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        elif up == "transposed":
            # Not followed by a norm: always has a bias (the SPEC's counts require it).
            self.up = nn.ConvTranspose2d(cin, cin // 2, 2, stride=2, bias=True)
        else:
            raise ValueError(f"model.up must be one of {UP_MODES}, got {up!r}")
        self.conv = DoubleConv(cin, cout, mid, norm_type, activation, dropout)

    def forward(self, x, skip):
        x = self.up(x)
        dy = skip.shape[-2] - x.shape[-2]
        dx = skip.shape[-1] - x.shape[-1]
        # Extra pixel (odd difference) on the right / bottom.
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class UNetDAE(nn.Module):
    def __init__(self, in_ch=1, out_ch=1, base_ch=64, num_downs=3, norm_type="group",
                 activation="relu", dropout=0.0, up="bilinear"):
        super().__init__()
        if up not in UP_MODES:
            raise ValueError(f"model.up must be one of {UP_MODES}, got {up!r}")
        n = num_downs
        f = 2 if up == "bilinear" else 1
        chs = [base_ch * 2 ** i for i in range(n + 1)]
        self.inc = DoubleConv(in_ch, base_ch, base_ch, norm_type, activation, dropout)
        downs = []
        for i in range(n):
            cout = chs[i + 1] if i < n - 1 else chs[n] // f
            downs.append(Down(chs[i], cout, norm_type, activation, dropout))
        self.downs = nn.ModuleList(downs)
        ups = []
        for k in range(n):
            i = n - k
            cout = chs[i - 1] // f if i > 1 else chs[0]
            mid = chs[i] // 2 if up == "bilinear" else cout
            ups.append(Up(chs[i], cout, mid, up, norm_type, activation, dropout))
        self.ups = nn.ModuleList(ups)
        self.outc = nn.Conv2d(base_ch, out_ch, 1, bias=True)

    def forward(self, x):
        xs = [self.inc(x)]
        for down in self.downs:
            xs.append(down(xs[-1]))
        y = xs[-1]
        for k, up in enumerate(self.ups):
            y = up(y, xs[len(self.ups) - 1 - k])
        return torch.sigmoid(self.outc(y))


# ----------------------------------------------------------------------------------------------


def init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.GroupNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resolve_config(cfg: dict | None) -> dict:
    cfg = dict(cfg or {})
    unknown = set(cfg) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown model config key(s): {sorted(unknown)}")
    out = dict(DEFAULTS)
    out.update({k: v for k, v in cfg.items() if v is not None})
    if out["name"] not in ("conv", "unet"):
        raise ValueError(f"model.name must be 'conv' or 'unet', got {out['name']!r}")
    if not 1 <= int(out["num_downs"]) <= 4:
        raise ValueError(f"model.num_downs must be in 1..4, got {out['num_downs']}")
    if out["norm_type"] not in NORM_TYPES:
        raise ValueError(f"model.norm_type must be one of {NORM_TYPES}, got {out['norm_type']!r}")
    if out["activation"] not in ACTIVATIONS:
        raise ValueError(f"model.activation must be one of {ACTIVATIONS}, got {out['activation']!r}")
    if out["up"] not in UP_MODES:
        raise ValueError(f"model.up must be one of {UP_MODES}, got {out['up']!r}")
    return out


def build_model(cfg: dict | None = None) -> nn.Module:
    """Build ConvDAE / UNetDAE from the `model:` config keys (SPEC defaults for missing keys)."""
    c = resolve_config(cfg)
    common = dict(in_ch=int(c["in_ch"]), out_ch=int(c["out_ch"]), base_ch=int(c["base_ch"]),
                  num_downs=int(c["num_downs"]), norm_type=c["norm_type"],
                  activation=c["activation"], dropout=float(c["dropout"]))
    model = ConvDAE(**common) if c["name"] == "conv" else UNetDAE(up=c["up"], **common)
    init_weights(model)
    return model


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
