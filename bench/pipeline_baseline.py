#!/usr/bin/python3
"""The PyTorch side of bench/pipeline.ts: one epoch of the whole training loop, the way a PyTorch
user writes it (run with Debian's /usr/bin/python3, python3-torch and python3-torchvision).

A Dataset of uint8 images [C, H, W]; per image torchvision's TrivialAugmentWide on the uint8
tensor; a DataLoader (batch 128, shuffled, num_workers W); in the training loop the batch becomes
float32 in [0, 1], then WideResNet forward (bench/train_baseline.py's, the same network as ours),
cross-entropy, backward and SGD (lr 0.1, momentum 0.9, Nesterov, weight decay 2e-4), and the loss
and hit count read every step. The thread budget is 2 cores: the training process gets
max(1, 2 - W) intra-op threads, each DataLoader worker 1 (PyTorch's default in workers).

  /usr/bin/python3 bench/pipeline_baseline.py --dataset cifar|fmnist [--images N] --workers W
      [--depth 16 --widen 1] [--seed S]
prints one JSON line: images per second over the epoch, its seconds, the threads and workers.

cifar: N (default 10,000) synthetic 3x32x32 images of 10 classes, pixel k of the dataset being
((k * 2654435761 mod 2^32) >> 11) & 255, labels i % 10 (bench/pipeline.ts makes the same bytes).
fmnist: the first N (default all 60,000) training images of /usr/share/datasets/fashion-mnist.
"""
import argparse
import gzip
import json
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import TrivialAugmentWide

from train_baseline import WideResNet

FASHION = "/usr/share/datasets/fashion-mnist"


def synthetic(count):
    index = torch.arange(count * 3 * 32 * 32, dtype=torch.int64)
    pixels = (((index * 2654435761) & 0xFFFFFFFF) >> 11) & 255
    images = pixels.to(torch.uint8).reshape(count, 3, 32, 32)
    labels = torch.arange(count, dtype=torch.int64) % 10
    return images, labels


def idx(path, header):
    with gzip.open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)


def fashion(count):
    images = idx(f"{FASHION}/train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = idx(f"{FASHION}/train-labels-idx1-ubyte.gz", 8).to(torch.int64)
    count = images.shape[0] if count is None else count
    return images[:count].clone(), labels[:count].clone()


class Augmented(Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.augment = TrivialAugmentWide()

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        return self.augment(self.images[i]), self.labels[i]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", choices=["cifar", "fmnist"], required=True)
    parser.add_argument("--images", type=int)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--depth", type=int, default=16)
    parser.add_argument("--widen", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    threads = max(1, 2 - args.workers)
    torch.set_num_threads(threads)
    torch.manual_seed(args.seed)
    if args.dataset == "cifar":
        images, labels = synthetic(args.images or 10000)
    else:
        images, labels = fashion(args.images)
    channels = images.shape[1]
    mean, std = [0.5] * channels, [0.25] * channels
    model = WideResNet(args.depth, args.widen, 10, channels, mean, std, args.seed).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-4)
    loader = DataLoader(
        Augmented(images, labels),
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        generator=torch.Generator().manual_seed(args.seed),
    )
    seen = 0
    correct = 0
    started = time.perf_counter()
    for x, y in loader:
        x = x.float().div_(255)
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        correct += (logits.argmax(1) == y).sum().item()
        loss.item()
        seen += y.shape[0]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "dataset": args.dataset,
                "images": seen,
                "seconds": seconds,
                "imagesPerSecond": seen / seconds,
                "workers": args.workers,
                "threads": threads,
                "accuracy": correct / seen,
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
