#!/usr/bin/env python3
"""Export torchvision's VGG16 `features` weights to safetensors for dae's perceptual loss.

    python tools/export_vgg16.py vgg16_features.safetensors          # ImageNet weights
    python tools/export_vgg16.py vgg16_random.safetensors --random   # random init (tests)

Needs torch, torchvision and safetensors (pip). torchvision downloads the ImageNet weights
once, on YOUR machine; dae itself never downloads model weights. Prints the SHA-256 and the
config section to paste:

    train:
      loss: l2 + 0.1*perceptual
      perceptual: {weights: vgg16_features.safetensors, sha256: <printed hash>}
"""
import argparse
import hashlib
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="output .safetensors path")
    ap.add_argument("--random", action="store_true", help="random weights instead of ImageNet (for tests)")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401
        import torchvision
        from safetensors.torch import save_file
    except ImportError as e:
        print(f"error: {e}; install with: pip install torch torchvision safetensors", file=sys.stderr)
        return 2
    weights = None if args.random else torchvision.models.VGG16_Weights.IMAGENET1K_V1
    model = torchvision.models.vgg16(weights=weights)
    tensors = {f"features.{k}": v.detach().contiguous() for k, v in model.features.state_dict().items()}
    save_file(tensors, args.out, metadata={"source": "torchvision vgg16().features", "weights": "random" if args.random else "IMAGENET1K_V1"})
    with open(args.out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    print(f"wrote {args.out}: {len(tensors)} tensors")
    print("train:")
    print("  loss: l2 + 0.1*perceptual")
    print(f"  perceptual: {{weights: {args.out}, sha256: {digest}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
