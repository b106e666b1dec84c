#!/usr/bin/env python3
"""The PyTorch side of bench/gpu.ts: a WideResNet training step on a device, in eager mode.

The network is bench/train_baseline.py's (ours, layer for layer); the step is the same: zero_grad
(set_to_none=True), forward, cross-entropy, backward, SGD (lr 0.1, momentum 0.9, Nesterov, weight
decay 2e-4), loss.item(). Each setting is a memory format and a precision as in lib/models.ts:
'channelsLast' moves the model and the batch to torch.channels_last; 'bfloat16' runs the forward
pass and the loss under torch.autocast(device, dtype=torch.bfloat16).

  python3 bench/gpu_baseline.py --depth 40 --widen 2 --batch 128 --device cuda \\
      --settings '[{"memoryFormat": "contiguous", "precision": "float32"}]' [--warmup 10] [--steps 30]

prints one JSON line: the torch version, the device's name, and per setting the seconds of each
timed step (the device is synchronised before and after every step).
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_baseline import WideResNet, add_step_arguments  # noqa: E402


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_setting(args, device, setting):
    channels_last = setting.get("memoryFormat") == "channelsLast"
    bf16 = setting.get("precision") == "bfloat16"
    model = WideResNet(args.depth, args.widen, args.classes, 3, [0.5] * 3, [0.5] * 3, args.seed).to(device)
    images = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed + 1)).to(device)
    labels = torch.randint(0, args.classes, (args.batch,), generator=torch.Generator().manual_seed(args.seed + 2)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        scope = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with scope:
            loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        synchronize(device)
        start = time.perf_counter()
        loss = step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return {"setting": setting, "step_seconds": times, "loss": loss}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_step_arguments(parser)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--settings", required=True, help="a JSON list of {memoryFormat, precision}")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_tf32": torch.backends.cuda.matmul.allow_tf32,
        "threads": torch.get_num_threads(),
        "results": [time_setting(args, device, setting) for setting in json.loads(args.settings)],
    }
    print(json.dumps(info), flush=True)


if __name__ == "__main__":
    main()
