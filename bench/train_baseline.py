#!/usr/bin/python3
"""The PyTorch side of bench/train.ts: one classifier training step (run with Debian's /usr/bin/python3).

The network is the WideResNet of native/nn/modules.cc, written out here layer for layer:
per-channel input normalisation (x - mean) / std, a 3x3 convolution to 16 channels, three
groups of (depth - 4) / 6 pre-activation blocks (widths 16k, 32k, 64k; the first block of
groups 2 and 3 has stride 2), then BN-ReLU, global average pooling and a linear classifier.
A block is BN-ReLU-conv3x3-BN-ReLU-conv3x3, the ReLUs in place; its shortcut is a 1x1
convolution of the pre-activated input when the shape changes, the input itself otherwise.
Convolutions have no bias; batch norm has eps 1e-5 and momentum 0.1. Parameter and buffer
names are ours (conv1.weight, group2.0.bn1.bias, fc.weight, ...), and so are the initial
weight distributions (He normal with fan_out for convolutions; U(+-1/sqrt(in)) and a zero
bias for the linear layer).

A step is ours (lib/train.ts): zero_grad(set_to_none=True), forward, cross-entropy, backward,
SGD (momentum 0.9, Nesterov, weight decay 2e-4) with torch.optim.SGD's defaults otherwise, and
loss.item(). The batch is fixed: random floats in [0, 1] and random integer labels.

  /usr/bin/python3 bench/train_baseline.py --depth 16 --widen 1 --batch 128 [--threads 1,2]
      [--warmup 2] [--steps 8] [--expect-params N] [--seed S] [--mean M ...] [--std S ...]
    times the step at each thread count and prints one JSON line.
  ... --serve
    prints one JSON line describing the model, then for each JSON line on stdin,
    {"threads": n, "warmup": w, "warmup_seconds": s, "steps": k}, runs w untimed steps (and more
    until s seconds have passed) and k timed ones at n threads and prints one JSON line with their
    times (whole steps and phases: forward with zero_grad and the loss, backward, update with
    loss.item()), the minor page faults of the timed steps and the CPU cores other processes kept
    busy meanwhile (from /proc/stat); stops at end of input. bench/train.ts drives it this way so that our steps and these
    take turns.

--expect-params N: exit with status 3 unless the model has exactly N trainable values (both
numbers are printed, on stderr and in the JSON).
"""
import argparse
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_common import LoadMeter


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x):
        return torch.div(torch.sub(x, self.mean.view(1, -1, 1, 1)), self.std.view(1, -1, 1, 1))


def conv(cin, cout, kernel, stride, generator):
    layer = nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
    with torch.no_grad():
        layer.weight.normal_(0.0, math.sqrt(2.0 / (cout * kernel * kernel)), generator=generator)
    return layer


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)  # weight 1, bias 0


class PreActBlock(nn.Module):
    def __init__(self, cin, cout, stride, generator):
        super().__init__()
        self.bn1 = batch_norm(cin)
        self.conv1 = conv(cin, cout, 3, stride, generator)
        self.bn2 = batch_norm(cout)
        self.conv2 = conv(cout, cout, 3, 1, generator)
        self.shortcut = conv(cin, cout, 1, stride, generator) if (cin != cout or stride != 1) else None

    def forward(self, x):
        activated = self.bn1(x).relu_()
        residual = self.shortcut(activated) if self.shortcut is not None else x
        y = self.bn2(self.conv1(activated)).relu_()
        return self.conv2(y).add_(residual)


class WideResNet(nn.Module):
    def __init__(self, depth, widen, classes, in_channels, mean, std, seed):
        super().__init__()
        assert depth >= 10 and (depth - 4) % 6 == 0, "depth must be 6n+4"
        generator = torch.Generator().manual_seed(seed)
        blocks = (depth - 4) // 6
        widths = [16 * widen, 32 * widen, 64 * widen]
        self.normalize = Normalize(mean, std)
        self.conv1 = conv(in_channels, 16, 3, 1, generator)
        cin = 16
        for group in range(3):
            layers = []
            for i in range(blocks):
                stride = 2 if (i == 0 and group > 0) else 1
                layers.append(PreActBlock(cin, widths[group], stride, generator))
                cin = widths[group]
            setattr(self, f"group{group + 1}", nn.Sequential(*layers))
        self.bn = batch_norm(cin)
        self.fc = nn.Linear(cin, classes)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(cin)
            self.fc.weight.uniform_(-bound, bound, generator=generator)
            self.fc.bias.zero_()

    def forward(self, x):
        x = self.conv1(self.normalize(x))
        x = self.group3(self.group2(self.group1(x)))
        x = self.bn(x).relu_()
        return self.fc(x.mean((2, 3)))


class Bench:
    def __init__(self, args):
        torch.manual_seed(args.seed)
        channels = 3
        mean = args.mean if args.mean is not None else [0.5] * channels
        std = args.std if args.std is not None else [0.5] * channels
        self.batch = args.batch
        self.model = WideResNet(args.depth, args.widen, args.classes, channels, mean, std, args.seed)
        self.model.train()
        self.optimizer = torch.optim.SGD(
            self.model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=2e-4)
        generator = torch.Generator().manual_seed(args.seed + 1)
        self.images = torch.rand(args.batch, channels, args.size, args.size, generator=generator)
        self.labels = torch.randint(0, args.classes, (args.batch,), generator=generator)
        self.parameters = sum(p.numel() for p in self.model.parameters())
        self.info = {
            "model": f"WRN-{args.depth}-{args.widen}",
            "batch": args.batch,
            "size": args.size,
            "classes": args.classes,
            "parameters": self.parameters,
            "expected_parameters": args.expect_params,
            "parameter_tensors": len(list(self.model.parameters())),
            "parameter_names": [name for name, _ in self.model.named_parameters()],
            "parameter_shapes": [list(p.shape) for p in self.model.parameters()],
            "buffer_names": [name for name, _ in self.model.named_buffers()],
            "torch": torch.__version__,
            "sgd_foreach": self.optimizer.param_groups[0].get("foreach"),
        }

    def step(self, phases=None):
        """One step; `phases` (a list), when given, gets the seconds of forward (with zero_grad and
        the loss), backward and the SGD update (with loss.item())."""
        t0 = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.images), self.labels)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        self.optimizer.step()
        value = loss.item()
        if phases is not None:
            phases.append([t1 - t0, t2 - t1, time.perf_counter() - t2])
        return value

    def run(self, threads, warmup, warmup_seconds, steps):
        torch.set_num_threads(threads)
        start = time.perf_counter()
        n = 0
        while n < warmup or time.perf_counter() - start < warmup_seconds:
            self.step()
            n += 1
        times, phases = [], []
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        meter = LoadMeter()
        for _ in range(steps):
            t0 = time.perf_counter()
            loss = self.step(phases)
            times.append(time.perf_counter() - t0)
        _, background = meter.stop()
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        if not math.isfinite(loss):
            raise RuntimeError(f"the loss became {loss}")
        return {
            "threads": threads,
            "torch_threads": torch.get_num_threads(),
            "warmup_steps": n,
            "step_seconds": times,
            "phase_seconds": phases,
            "minor_faults": faults,
            "background_cores": background,
            "loss": loss,
        }


def add_step_arguments(parser):
    """The model and batch of a timed step (shared with bench/gpu_baseline.py)."""
    parser.add_argument("--depth", type=int, required=True)
    parser.add_argument("--widen", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_step_arguments(parser)
    parser.add_argument("--mean", type=float, nargs=3)
    parser.add_argument("--std", type=float, nargs=3)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--warmup-seconds", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--expect-params", type=int)
    parser.add_argument("--serve", action="store_true")
    args = parser.parse_args()

    bench = Bench(args)
    print(f"PyTorch {bench.info['model']}: {bench.parameters} parameters"
          + ("" if args.expect_params is None else f", ours: {args.expect_params}"), file=sys.stderr)
    if args.expect_params is not None and bench.parameters != args.expect_params:
        print(f"parameter counts differ: PyTorch {bench.parameters}, ours {args.expect_params}", file=sys.stderr)
        sys.exit(3)

    if args.serve:
        print(json.dumps(bench.info), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            result = bench.run(int(request["threads"]), int(request.get("warmup", 1)),
                               float(request.get("warmup_seconds", 0.0)), int(request["steps"]))
            print(json.dumps(result), flush=True)
        return

    runs = [bench.run(int(t), args.warmup, args.warmup_seconds, args.steps) for t in args.threads.split(",")]
    for run in runs:
        times = sorted(run["step_seconds"])
        run["images_per_s"] = args.batch / times[len(times) // 2] if len(times) % 2 else \
            args.batch / ((times[len(times) // 2 - 1] + times[len(times) // 2]) / 2)
    print(json.dumps({**bench.info, "runs": runs}))


if __name__ == "__main__":
    main()
