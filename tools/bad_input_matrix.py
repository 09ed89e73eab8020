#!/usr/bin/env python3
"""Try `dae` as a careless user would: bad configs, bad numbers, corrupt data, broken and
mismatched checkpoints, NaN images, signals, a second run into a busy folder. Each case states
the exit status it should get (2 usage/config, 1 a failure of the run, 0 handled, 130/143
interrupted) and a word the message must contain; the tool prints one line per case and the
counts: clear, handled, unclear (wrong status or the word missing), silent (exit 0 where an error
was due), panic (exit 101 or "panicked"), data loss (a check after the case failed).

    python3 tools/bad_input_matrix.py [--dae target/release/dae] [--data ../shared/data/mnist] [--keep DIR]

Needs a built binary and the MNIST IDX files; about two minutes on lavapipe.
"""
import argparse
import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

ap = argparse.ArgumentParser()
ap.add_argument("--dae", default="target/release/dae")
ap.add_argument("--data", default=os.environ.get("DAE_DATA_DIR", "../shared/data/mnist"))
ap.add_argument("--keep", help="work folder to keep (default: a temporary one, removed)")
args = ap.parse_args()
DAE = os.path.abspath(args.dae)
DATA = os.path.abspath(args.data)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.path.join(ROOT, "configs", "quick.yaml")
work = args.keep or tempfile.mkdtemp(prefix="dae-bad-")
os.makedirs(work, exist_ok=True)
TINY = ["--set", "model.base_ch=4", "--set", "model.num_downs=1", "--set", "train.epochs=2", "--set", "train.save_every=1",
        "--set", "train.batch_size=8", "--set", "train.max_steps_per_epoch=3", "--set", "data.val_size=8",
        "--set", "noise.test_sigmas=[0.3]", "--set", "eval.test_limit=16", "--set", "eval.mode_images=4",
        "--set", "eval.diversity_images=2", "--set", "eval.diversity_draws=2", "--set", "eval.generation.chains=4",
        "--set", "eval.generation.levels=2", "--set", "eval.generation.steps=1", "--set", "eval.ood_images=16",
        "--set", "eval.mismatch_images=8", "-q"]


def path(*p):
    return os.path.join(work, *p)


def run(argv, timeout=300, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([DAE] + argv, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout, p.stderr


def train(out, *extra, data=DATA):
    return ["train", "--config", QUICK, "--out-dir", out, "--data-dir", data] + TINY + list(extra)


# ---- fixtures -------------------------------------------------------------------------------
print(f"work folder: {work}", file=sys.stderr)
run_dir = path("run")
rc, _, err = run(train(run_dir, "--overwrite"))
assert rc == 0, f"the fixture run failed: {err}"
ckpt = os.path.join(run_dir, "ckpts", "best_model.safetensors")
other_dir = path("run_base8")
rc, _, err = run(train(other_dir, "--overwrite", "--set", "model.base_ch=8"))
assert rc == 0, err
other = os.path.join(other_dir, "ckpts", "best_model.safetensors")


def data_copy(name, mutate=None, drop=None):
    d = path("data_" + name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in os.listdir(DATA):
        if not f.endswith(".gz") or f == drop:
            continue
        shutil.copy(os.path.join(DATA, f), d)
    if mutate:
        mutate(d)
    return d


def write_gz(d, name, raw):
    with gzip.open(os.path.join(d, name), "wb") as f:
        f.write(raw)


def read_gz(d, name):
    with gzip.open(os.path.join(d, name)) as f:
        return f.read()


def file_bytes(name, raw):
    p = path(name)
    with open(p, "wb") as f:
        f.write(raw)
    return p


ck = open(ckpt, "rb").read()
hlen = struct.unpack("<Q", ck[:8])[0]
header = json.loads(ck[8:8 + hlen])
nan_ckpt = bytearray(ck)
first = next(k for k in header if k != "__metadata__")
s0 = 8 + hlen + header[first]["data_offsets"][0]
nan_ckpt[s0:s0 + 4] = struct.pack("<f", float("nan"))


def safetensors(tensors):
    """tensors: name -> (shape, list of floats)."""
    h, blob = {}, b""
    for k, (shape, vals) in tensors.items():
        b = struct.pack(f"<{len(vals)}f", *vals)
        h[k] = {"dtype": "F32", "shape": shape, "data_offsets": [len(blob), len(blob) + len(b)]}
        blob += b
    hj = json.dumps(h).encode()
    return struct.pack("<Q", len(hj)) + hj + blob


def png(name, w, h, mode="L"):
    """A w x h PNG of one grey level, written by hand (zlib + struct: no imaging package)."""
    import zlib
    ch = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    ctype = {"L": 0, "RGB": 2, "RGBA": 6}[mode]
    row = b"\0" + bytes([128]) * (w * ch)
    comp = zlib.compressobj(6)
    body = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    p = path(name)
    with open(p, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return p


imgs = path("imgs")
os.makedirs(imgs, exist_ok=True)
png("imgs/a.png", 28, 28)
empty_dir = path("empty")
os.makedirs(empty_dir, exist_ok=True)
bad_yaml = {
    "list": "- 1\n- 2\n",
    "scalar": "42\n",
    "unknown_key": "train:\n  epochz: 3\n",
    "unknown_section": "trian:\n  epochs: 3\n",
    "wrong_type": "train:\n  epochs: three\n",
    "tabs": "train:\n\tepochs: 3\n",
    "unclosed": "train: {epochs: 3\n",
    "dataset": "data:\n  dataset: cifar\n",
    "noise_type": "noise:\n  type: pink\n",
    "model_name": "model:\n  name: resnet\n",
    "norm": "model:\n  norm_type: layer\n",
    "optimizer": "train:\n  optimizer: lion\n",
    "binary": "\x00\x01\x02\xff\xfe",
}
for k, v in bad_yaml.items():
    file_bytes(f"cfg_{k}.yaml", v.encode("latin-1"))

# ---- cases: (name, argv, expected statuses, word the message must contain, check) ------------
cases = []


def case(name, argv, codes, word=None, env=None, check=None, timeout=300, warn=None):
    """`warn`: a word stderr must hold when the command exits 0 (a warning where the input is
    usable); without it the case is silent."""
    cases.append((name, argv, codes if isinstance(codes, tuple) else (codes,), word, env, check, timeout, warn))


o = path("out")
for k in bad_yaml:
    case(f"config {k}", ["train", "--config", path(f"cfg_{k}.yaml"), "--out-dir", o, "--data-dir", DATA], 2, None)
case("config missing", ["train", "--config", path("nope.yaml"), "--out-dir", o], 2, "nope.yaml")
case("config is a folder", ["train", "--config", work, "--out-dir", o], 2, None)
for s, field in [("train.lr=0", "train.lr"), ("train.lr=-1", "train.lr"), ("train.lr=.nan", "train.lr"), ("train.lr=abc", "train.lr"),
                 ("train.batch_size=0", "batch_size"), ("train.batch_size=-1", "batch_size"), ("train.batch_size=1e12", "batch_size"),
                 ("train.epochs=0", "epochs"), ("train.ema_decay=1.5", "ema_decay"), ("train.grad_clip=-1", "grad_clip"),
                 ("train.weight_decay=.nan", "weight_decay"), ("model.base_ch=0", "base_ch"), ("model.num_downs=0", "num_downs"),
                 ("model.num_downs=12", "num_downs"), ("model.dropout=1", "dropout"), ("model.in_ch=3", "in_ch"),
                 ("noise.test_sigmas=[.inf]", "test_sigmas"), ("noise.test_sigmas=[.nan]", "test_sigmas"),
                 ("noise.train_sigma_range=[0, .inf]", "train_sigma_range"), ("noise.train_sigma_range=[0.5, 0.1]", "train_sigma_range"),
                 ("noise.train_sigmas=[]", "train_sigmas"), ("noise.amount=-0.1", "amount"), ("noise.peak=.inf", "peak"),
                 ("data.val_size=0", "val_size"), ("data.val_size=100000", "val_size"), ("data.train_limit=0", "train_limit"),
                 ("eval.batch_size=0", "batch_size"), ("seed=1.5", "seed"), ("nosuch.key=1", "nosuch"), ("train=3", "train"),
                 ("train.lr", "--set")]:
    case(f"--set {s}", train(o, "--overwrite", "--set", s), 2, field)
for a, word in [(["--seed", "-1"], "--seed"), (["--seed", "x"], "--seed"), (["--adapter", "99"], "adapter"), (["--adapter", "nosuchgpu"], "adapter")]:
    case(f"train {' '.join(a)}", train(o, "--overwrite", *a), 2, word)
for a, word in [(["--batch", "0"], "--batch"), (["--iters", "0"], "--iters"), (["--warmup", "-1"], "--warmup"),
                (["--models", "resnet50"], "resnet50"), (["--models", ""], "models"), (["--batch", "nan"], "--batch")]:
    case(f"bench {' '.join(a)}", ["bench"] + a, 2, word)
case("devices --adapter 99", ["--adapter", "99", "devices"], 2, "adapter")
case("gradcheck --only nosuch", ["gradcheck", "--only", "nosuchfamily"], 2, "nosuchfamily")
case("unknown subcommand", ["trian"], 2, None)

# data
for name, mut, word in [
    ("missing file", lambda d: os.remove(os.path.join(d, "train-labels-idx1-ubyte.gz")), "train-labels"),
    ("truncated gz", lambda d: open(os.path.join(d, "train-images-idx3-ubyte.gz"), "r+b").truncate(1000), "train-images"),
    ("not gzip", lambda d: open(os.path.join(d, "train-images-idx3-ubyte.gz"), "wb").write(b"hello"), "train-images"),
    ("wrong magic", lambda d: write_gz(d, "train-images-idx3-ubyte.gz", b"\0\0\x08\x01" + read_gz(d, "train-images-idx3-ubyte.gz")[4:]), "train-images"),
    ("short body", lambda d: write_gz(d, "train-images-idx3-ubyte.gz", read_gz(d, "train-images-idx3-ubyte.gz")[:100000]), "train-images"),
    ("count mismatch", lambda d: write_gz(d, "train-labels-idx1-ubyte.gz", read_gz(d, "train-labels-idx1-ubyte.gz")[:8 + 50000]), "label"),
    ("label 11", lambda d: write_gz(d, "train-labels-idx1-ubyte.gz", read_gz(d, "train-labels-idx1-ubyte.gz")[:8] + b"\x0b" * 60000), "label"),
]:
    d = data_copy(name.replace(" ", "_"), mut)
    case(f"data {name}", train(o, "--overwrite", data=d), 1, word)
case("data folder missing (no network)", train(o, "--overwrite", data=path("nodata")), (1,), "nodata",
     env={"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9"})

# checkpoints, for eval and infer
ev = lambda c, *extra: ["eval", "--config", QUICK, "--out-dir", run_dir, "--data-dir", DATA, "--ckpt", c] + TINY + list(extra)
for name, raw, word in [("empty", b"", None), ("random bytes", os.urandom(5000), None), ("truncated", ck[: len(ck) // 2], None),
                        ("header too long", struct.pack("<Q", 1 << 40) + b"{}", None), ("NaN weight", bytes(nan_ckpt), "finite")]:
    p = file_bytes(f"ck_{name.replace(' ', '_')}.safetensors", raw)
    case(f"eval ckpt {name}", ev(p), (1, 2), word)
    case(f"infer ckpt {name}", ["infer", "--ckpt", p, "--input", imgs, "--output", path("inf_out")], (1, 2), word)
case("eval ckpt of another model", ev(other), (1, 2), "base_ch")
case("eval ckpt missing", ev(path("nope.safetensors")), (1, 2), "nope.safetensors")
case("eval --sigmas nan", ev(ckpt, "--sigmas", "nan"), 2, "--sigmas")
case("eval --sigmas empty", ev(ckpt, "--sigmas", ""), 2, "--sigmas")
case("eval --batch 0", ev(ckpt, "--batch", "0"), 2, "--batch")
case("eval --noise poisson --sigmas 0", ev(ckpt, "--noise", "poisson", "--sigmas", "0"), 2, "--sigmas")
case("eval no checkpoint in folder", ["eval", "--config", QUICK, "--out-dir", empty_dir, "--data-dir", DATA] + TINY, (1, 2), "checkpoint")
case("report no checkpoint in folder", ["report", "--config", QUICK, "--out-dir", empty_dir, "--data-dir", DATA] + TINY, (1, 2), "checkpoint")
case("viz curves without logs", ["viz", "curves", "--config", QUICK, "--out-dir", empty_dir] + TINY, (1, 2), "log")

# infer inputs
inf = lambda i, *extra: ["infer", "--ckpt", ckpt, "--input", i, "--output", path("inf_out_" + os.path.basename(i))] + list(extra)
nan_in = file_bytes("nan_in.safetensors", safetensors({"input": ([2, 1, 28, 28], [0.5] * 1567 + [float("nan")])}))
inf_in = file_bytes("inf_in.safetensors", safetensors({"input": ([1, 1, 28, 28], [float("inf")] + [0.5] * 783)}))
wrong_name = file_bytes("wrong_name.safetensors", safetensors({"x": ([1, 1, 28, 28], [0.5] * 784)}))
wrong_rank = file_bytes("wrong_rank.safetensors", safetensors({"input": ([28, 28], [0.5] * 784)}))
wrong_ch = file_bytes("wrong_ch.safetensors", safetensors({"input": ([1, 3, 28, 28], [0.5] * 2352)}))
tiny_img = file_bytes("tiny.safetensors", safetensors({"input": ([1, 1, 1, 1], [0.5])}))
case("infer NaN input", inf(nan_in), (1, 2), "nan")
case("infer inf input", inf(inf_in), (1, 2), "inf")
case("infer no tensor 'input'", inf(wrong_name), (1, 2), "input")
case("infer 2-D input", inf(wrong_rank), (1, 2), "input")
case("infer 3 channels into a 1-channel model", inf(wrong_ch), (1, 2), "channel")
case("infer 1x1 image", inf(tiny_img), (0, 1, 2), None)
case("infer empty folder", inf(empty_dir), (1, 2), "png")
case("infer missing input", inf(path("nope.png")), (1, 2), "nope.png")
rgb = png("rgb.png", 28, 28, "RGB")
case("infer RGB png (converted)", inf(rgb), 0, None)
case("infer --batch 0", inf(imgs, "--batch", "0"), 2, "--batch")
case("infer output under a file", ["infer", "--ckpt", ckpt, "--input", imgs, "--output", os.path.join(nan_in, "x")], (1, 2), None)

# resume
case("resume with nothing to resume", train(path("fresh"), "--resume"), (1, 2), "checkpoint")
case("start over an earlier run without --overwrite", train(run_dir), 2, "--overwrite")


# ---- nothing lost: --overwrite, symbolic links, infer in place (each must leave the user's files) ----
def tree(d):
    """Every file under d with its bytes (lock files aside: each run rewrites its note)."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            if not f.endswith(".lock"):
                p = os.path.join(root, f)
                out[os.path.relpath(p, d)] = open(p, "rb").read()
    return out


def kept(d, before):
    """A check: the folder d holds exactly `before` (the earlier run, whole)."""
    def check(err):
        now = tree(d)
        gone = [k for k in before if now.get(k) != before[k]]
        return f"the earlier run lost or changed {len(gone)} files, e.g. {gone[:3]}" if gone else None
    return check


def fresh_run(name, *extra):
    d = path(name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(run_dir, d, ignore=shutil.ignore_patterns("*.lock"))
    return d


empty_gz = data_copy("empty_gz", lambda d: open(os.path.join(d, "train-images-idx3-ubyte.gz"), "wb").close())
for name, extra, data, codes, word in [
    ("an empty data file", [], empty_gz, (1,), "train-images"),
    ("a model too large for the adapter", ["--set", "model.base_ch=1024", "--set", "model.num_downs=2"], DATA, (2,), "model.base_ch"),
]:
    d = fresh_run("ow_" + name.replace(" ", "_"))
    case(f"--overwrite with {name} leaves the earlier run", train(d, "--overwrite", *extra, data=data), codes, word, check=kept(d, tree(d)))
ow_foreign = fresh_run("ow_foreign")
foreign = ["ckpts/my_pytorch_model.pt", "figures/holiday.png", "logs/notes.txt", "reports/thesis.tex", "mine/notes.md", "notes.txt"]
for f in foreign:
    os.makedirs(os.path.dirname(os.path.join(ow_foreign, f)), exist_ok=True)
    open(os.path.join(ow_foreign, f), "w").write(f)


def foreign_kept(err):
    lost = [f for f in foreign if not os.path.exists(os.path.join(ow_foreign, f)) or open(os.path.join(ow_foreign, f)).read() != f]
    return f"--overwrite removed files dae did not write: {lost}" if lost else None


case("--overwrite keeps files dae did not write", train(ow_foreign, "--overwrite"), 0, check=foreign_kept)
not_a_run = path("not_a_run")
os.makedirs(not_a_run, exist_ok=True)
open(os.path.join(not_a_run, "config.resolved.yaml"), "w").write("mine\n")
case("plain train into a folder holding a config.resolved.yaml", train(not_a_run), 2, "--overwrite", check=kept(not_a_run, tree(not_a_run)))

# Every file dae writes, tried as a symbolic link to a file of the user's: it must keep its bytes.
precious = path("precious")
os.makedirs(precious, exist_ok=True)


def linked(d, rel):
    target = os.path.join(precious, os.path.basename(d) + "." + rel.replace("/", "_") + ".mine")
    open(target, "w").write("the user's " + rel)
    p = os.path.join(d, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    if os.path.lexists(p):
        os.remove(p)
    os.symlink(target, p)

    def check(err):
        return None if open(target, "rb").read() == ("the user's " + rel).encode() else f"written through the link at {rel}"
    return check


train_writes = [".dae-train.lock", "config.resolved.yaml", "logs/train_metrics.csv", "logs/val_metrics.csv", "ckpts/last.safetensors",
                "ckpts/last.ema.safetensors", "ckpts/last.manifest.json", "ckpts/last.state.safetensors.tmp", "ckpts/epoch_001.safetensors",
                "ckpts/best_model.safetensors", "figures/recon_epoch_001.png"]
for rel in train_writes:
    d = path("ln_train_" + rel.replace("/", "_"))
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    case(f"train with {rel} a symbolic link", train(d, "--overwrite"), (0, 1, 2), check=linked(d, rel))
ev_writes = [".dae-eval.lock", "logs/evaluation_results.json"]
report_writes = ["reports/limitations_analysis.html", "reports/limitations_analysis.json", "grids/best_cases.png", "reports/training_curves.png"]
for rel in ev_writes + report_writes:
    d = fresh_run("ln_eval_" + rel.replace("/", "_"))
    sub = "report" if rel in report_writes else "eval"
    case(f"{sub} with {rel} a symbolic link", [sub, "--config", QUICK, "--out-dir", d, "--data-dir", DATA] + TINY, (0, 1, 2), check=linked(d, rel))

# infer never replaces its input
inplace = path("inplace")
os.makedirs(inplace, exist_ok=True)
png("inplace/a.png", 28, 28)
st_in = file_bytes("inplace_in.safetensors", safetensors({"input": ([1, 1, 28, 28], [0.5] * 784)}))
for name, i, out_ in [("a PNG onto itself", os.path.join(inplace, "a.png"), os.path.join(inplace, "a.png")),
                      ("a folder onto itself", inplace, inplace),
                      ("a safetensors file onto itself", st_in, st_in)]:
    seen = {}

    def argv(i=i, out_=out_, seen=seen):
        # The inputs as they are just before this case (an earlier case may have changed them).
        png("inplace/a.png", 28, 28)
        seen["before"] = (tree(inplace), open(st_in, "rb").read())
        return ["infer", "--ckpt", ckpt, "--input", i, "--output", out_]

    def check(err, seen=seen):
        folder, st = seen["before"]
        return kept(inplace, folder)(err) or (None if open(st_in, "rb").read() == st else "the safetensors input changed")
    case(f"infer {name}", argv, 2, "would replace the input", check=check)

# ---- silently accepted, misleading errors ------------------------------------------------------
# (A case that, unanswered, would train the full default model has a 30 s limit: a timeout is
# judged unclear.)
for k, text in [("empty", b""), ("blank", b"  \n\n"), ("model_null", b"model: ~\n"), ("model_empty", b"model: {}\n")]:
    case(f"config {k}", ["train", "--config", file_bytes(f"cfg2_{k}.yaml", text), "--out-dir", o, "--data-dir", DATA], 2, "empty", timeout=30)
for s_ in ["model=null", "model={}", "train=~"]:
    case(f"--set {s_}", train(o, "--overwrite", "--set", s_), 2, "empty", timeout=30)
bom = file_bytes("cfg_bom.yaml", b"\xef\xbb\xbf" + open(QUICK, "rb").read())
case("config with a byte-order mark", ["train", "--config", bom, "--out-dir", path("bom_run"), "--data-dir", DATA, "--overwrite"] + TINY, 0)
case("--set train={lr: 1e-3} keeps the section's other fields", train(path("merge_run"), "--overwrite", "--set", "train={lr: 1e-3}"), 0)
case("--set model.name={a: 1}", train(o, "--overwrite", "--set", "model.name={a: 1}"), 2, "unet")
case("warmup_epochs longer than the run", train(o, "--overwrite", "--set", "train.warmup_epochs=50"), 2, "warmup_epochs")
case("a model whose parameters cannot fit", train(o, "--overwrite", "--set", "model.base_ch=1024", "--set", "model.num_downs=4"), 2, "model.base_ch", timeout=60)
wide = file_bytes("wide_in.safetensors", safetensors({"input": ([1, 1, 28, 28], [(-50.0 + 100.0 * i / 783) for i in range(784)])}))
case("infer safetensors input outside [0, 1]", inf(wide), 0, warn="outside [0, 1]")
rgba = png("rgba.png", 28, 28, "RGBA")
case("infer RGB png into a grey model", inf(rgb), 0, warn="colour")
case("infer RGBA png into a grey model", inf(rgba), 0, warn="transparency")
case("infer PNG to a .jpg name", ["infer", "--ckpt", ckpt, "--input", rgb, "--output", path("x.jpg")], 2, ".png")
case("infer PNG to a .safetensors name", ["infer", "--ckpt", ckpt, "--input", rgb, "--output", path("x.safetensors")], 2, ".png")
case("infer safetensors to a .png name", ["infer", "--ckpt", ckpt, "--input", st_in, "--output", path("x.png")], 2, ".safetensors")
big = png("big.png", 10000, 10000)
case("infer a 10000x10000 PNG", ["infer", "--ckpt", ckpt, "--input", big, "--output", path("big_out.png")], (1, 2), "scale it down", timeout=120)
for k, text in [("empty", ""), ("header only", "step,epoch,loss,lr,grad_norm,images_per_s\n"), ("garbage", "hello\nworld\n")]:
    d = path("curves_" + k.replace(" ", "_"))
    os.makedirs(os.path.join(d, "logs"), exist_ok=True)
    open(os.path.join(d, "logs", "train_metrics.csv"), "w").write(text)
    open(os.path.join(d, "logs", "val_metrics.csv"), "w").write("epoch,sigma,val_loss,psnr,ssim,psnr_noisy,ssim_noisy\n")
    case(f"viz curves on a {k} train_metrics.csv", ["viz", "curves", "--config", QUICK, "--out-dir", d] + TINY, (1, 2), "train_metrics.csv")
case("bench --filter that matches nothing", ["bench", "--filter", "zzznomatch"], 2, "zzznomatch")
a_file = file_bytes("a_file", b"x")
case("--out-dir is a file", train(a_file, "--overwrite"), (1, 2), "not a folder")
case("--data-dir is a file", train(path("dd_file_run"), "--overwrite", data=a_file), (1, 2), "not a folder")
ck_file = fresh_run("ckpts_file")
shutil.rmtree(os.path.join(ck_file, "ckpts"))
open(os.path.join(ck_file, "ckpts"), "w").write("x")
case("--resume with ckpts a file", train(ck_file, "--resume", "--set", "train.epochs=3"), (1, 2), "not a folder")
case("infer output under a file (named)", ["infer", "--ckpt", ckpt, "--input", os.path.join(imgs, "a.png"), "--output", os.path.join(a_file, "x.png")], (1, 2), "not a folder")
case("eval --ckpt a folder of checkpoints", ev(os.path.join(run_dir, "ckpts")), 2, "is a folder")
bad_meta_ck = bytearray(ck)
meta_at = ck.find(b'"config":"')
bad_meta = header.get("__metadata__", {}).get("config", "")
if bad_meta:
    hdr = json.loads(ck[8:8 + hlen])
    hdr["__metadata__"]["config"] = "model: [unclosed\n"
    hj = json.dumps(hdr).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    case("eval ckpt with invalid YAML in its metadata", ev(file_bytes("ck_badmeta.safetensors", struct.pack("<Q", len(hj)) + hj + ck[8 + hlen:])), 1, "metadata")
done_run = fresh_run("finished")
case("--resume of a finished run", train(done_run, "--resume"), 0, warn="already complete")
nan_last = fresh_run("nan_last")


def nan_in_last():
    """NaN in last.safetensors with its manifest rewritten to match (size and SHA-256)."""
    import hashlib
    ckd = os.path.join(nan_last, "ckpts")
    raw = bytearray(open(os.path.join(ckd, "last.safetensors"), "rb").read())
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    k = next(x for x in h if x != "__metadata__" and h[x]["dtype"] == "F32")
    at = 8 + n + h[k]["data_offsets"][0]
    raw[at:at + 4] = struct.pack("<f", float("nan"))
    open(os.path.join(ckd, "last.safetensors"), "wb").write(raw)
    m = json.load(open(os.path.join(ckd, "last.manifest.json")))
    for f in m["files"]:
        if f["name"] == "last.safetensors":
            f["sha256"] = hashlib.sha256(raw).hexdigest()
            f["bytes"] = len(raw)
    json.dump(m, open(os.path.join(ckd, "last.manifest.json"), "w"))
    return train(nan_last, "--resume", "--set", "train.epochs=3")


case("--resume with a NaN in a last whose manifest matches", nan_in_last, 0, warn="continuing from epoch_002")
cache = file_bytes("tune_corrupt.json", b"{not json")


def one_warning(err):
    n = err.count("autotune cache")
    return None if n <= 1 else f"the autotune cache warning printed {n} times"


case("a corrupt autotune cache warns once", train(path("tune_run"), "--overwrite"), 0, env={"DAE_TUNE_CACHE": cache}, check=one_warning, warn="autotune cache")


def no_tmp_left(d):
    for root, _, files in os.walk(d):
        for f in files:
            if f.endswith(".tmp"):
                return f"stale {f}"
    return None


# ---- signal and concurrency cases (run by hand below) -----------------------------------------
def signal_case(name, sig, code):
    out = path("sig_" + name)
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen([DAE] + train(out, "--overwrite", "--set", "train.max_steps_per_epoch=400", "--set", "train.epochs=1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists(os.path.join(out, "logs", "train_metrics.csv")):
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(sig)
    _, err = p.communicate(timeout=300)
    problem = None
    if p.returncode == code:
        if not os.path.exists(os.path.join(out, "ckpts", "last.manifest.json")):
            problem = "no last checkpoint set after the interrupt"
        else:
            r2, _, e2 = run(train(out, "--resume", "--set", "train.max_steps_per_epoch=4", "--set", "train.epochs=1"))
            if r2 != 0:
                problem = f"--resume after the interrupt failed: {e2.strip()[-200:]}"
    return p.returncode, err, problem


def late_signal_case():
    """SIGINT once every training step has run, i.e. during the last epoch's validation (a large
    validation split keeps it busy for seconds): exit 130, `last` intact, --resume finishes."""
    out = path("sig_late")
    shutil.rmtree(out, ignore_errors=True)
    steps = 6
    p = subprocess.Popen([DAE] + train(out, "--overwrite", "--set", "train.epochs=1", "--set", f"train.max_steps_per_epoch={steps}",
                                       "--set", "train.log_every=1", "--set", "data.val_size=3000"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    csv = os.path.join(out, "logs", "train_metrics.csv")
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if os.path.exists(csv) and len(open(csv).read().splitlines()) >= steps + 1:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    problem = None
    if p.returncode == 130:
        if not os.path.exists(os.path.join(out, "ckpts", "last.manifest.json")):
            problem = "no last checkpoint set after the interrupt"
        else:
            r2, _, e2 = run(train(out, "--resume", "--set", "train.epochs=1", "--set", f"train.max_steps_per_epoch={steps}",
                                  "--set", "data.val_size=3000"))
            if r2 != 0:
                problem = f"--resume after the interrupt failed: {e2.strip()[-200:]}"
    return p.returncode, err, problem


def busy_case():
    out = path("busy")
    shutil.rmtree(out, ignore_errors=True)
    p = subprocess.Popen([DAE] + train(out, "--overwrite", "--set", "train.max_steps_per_epoch=400", "--set", "train.epochs=1"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not os.path.exists(os.path.join(out, "logs", "train_metrics.csv")):
        time.sleep(0.2)
    r, _, e = run(train(out, "--overwrite"))
    r3, _, e3 = run(train(out, "--resume"))
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=300)
    return [(f"second train into a busy folder", r, e, (2, 1), "in use"), ("--resume into a busy folder", r3, e3, (2, 1), "in use")]


# ---- run --------------------------------------------------------------------------------------
counts = {"clear": 0, "handled": 0, "unclear": 0, "silent": 0, "panic": 0, "data loss": 0}
rows = []


def judge(name, rc, err, codes, word, problem=None, warn=None):
    last = (err.strip().splitlines() or [""])[-1]
    if rc == 101 or "panicked" in err:
        kind = "panic"
    elif problem:
        kind = "data loss"
    elif rc == 0 and 0 not in codes:
        kind = "silent"
    elif rc == 0 and warn and warn.lower() not in err.lower():
        kind = "silent"
    elif rc not in codes:
        kind = "unclear"
    elif rc == 0:
        kind = "handled"
    elif word and word.lower() not in err.lower():
        kind = "unclear"
    else:
        kind = "clear"
    counts[kind] += 1
    detail = problem or last
    rows.append((kind, name, rc, detail))
    print(f"{kind:9} {rc:>3}  {name:45} {detail[:150]}")


for name, argv, codes, word, env, check, timeout, warn in cases:
    if callable(argv):  # set-up that must run just before the case (it reuses a folder)
        argv = argv()
    try:
        rc, _, err = run(argv, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        rc, err = -1, "timed out"
    judge(name, rc, err, codes, word, check(err) if check else None, warn)
for sig, code in [(signal.SIGINT, 130), (signal.SIGTERM, 143)]:
    rc, err, problem = signal_case(sig.name, sig, code)
    judge(f"{sig.name} during training, then --resume", rc, err, (code,), "received", problem)
rc, err, problem = late_signal_case()
judge("SIGINT during the last epoch's validation, then --resume", rc, err, (130,), "received", problem)
for name, rc, err, codes, word in busy_case():
    judge(name, rc, err, codes, word)
problem = no_tmp_left(work)
judge("no .tmp file left anywhere", 0, "", (0,), None, problem)

print()
print(f"{len(rows)} cases: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
if not args.keep:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(0 if counts["panic"] + counts["silent"] + counts["data loss"] + counts["unclear"] == 0 else 1)
