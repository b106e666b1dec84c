#!/usr/bin/python3
"""The PyTorch side of bench/distributed.ts: one rank of a data-parallel training step (Debian's /usr/bin/python3).

Started by lib/distributed/launch.ts with torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR,
MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE=True: the launcher serves the store). With a world of
more than one it joins with torch.distributed.init_process_group("gloo") and wraps the network in
DistributedDataParallel (its defaults: 25 MB buckets, the allreduce overlapped with backward,
buffers broadcast from rank 0 before each forward); with a world of one it runs the plain step.

The network and the step are bench/train_baseline.py's (its Bench: our WideResNet layer for
layer; zero_grad(set_to_none=True), forward, cross-entropy, backward, SGD (lr 0.1, momentum 0.9,
Nesterov, weight decay 2e-4), loss.item(), on a fixed batch of random images in [0, 1] and random
labels), each rank drawing its batch from its own seed. One LibTorch thread.

  /usr/bin/python3 bench/distributed_ddp.py --depth 16 --widen 1 --batch 64 --warmup 3 --steps 20

prints `result <JSON>`: the rank, the world size, the seconds of each timed step, and this
process's CPU time and all processes' (from /proc/stat) over the timed steps.
"""
import argparse
import json
import os
import time

import torch
import torch.distributed as dist

from bench_common import busy_seconds
from train_baseline import Bench, add_step_arguments


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_step_arguments(parser)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    torch.set_num_threads(1)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # Each rank its own batch (and its own initial weights, which DDP replaces by rank 0's).
    args.seed = args.seed * 1000 + rank
    args.mean = args.std = None
    args.expect_params = None
    bench = Bench(args)
    if world > 1:
        dist.init_process_group("gloo")
        # The optimiser already holds the parameters, which DDP keeps (it only wraps the module).
        bench.model = torch.nn.parallel.DistributedDataParallel(bench.model)

    for _ in range(args.warmup):
        bench.step()
    if world > 1:
        dist.barrier()
    busy, own, start = busy_seconds(), time.process_time(), time.perf_counter()
    seconds = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        bench.step()
        seconds.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    result = {
        "rank": rank,
        "world": world,
        "stepMs": [s * 1000 for s in seconds],
        "ownMs": (time.process_time() - own) * 1000,
        "busyMs": None if busy is None else (busy_seconds() - busy) * 1000,
        "wallMs": wall * 1000,
        "torch": torch.__version__,
    }
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    print("result " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
