// dna launch: the ranks of a data-parallel run on this host, with torchrun's variables.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { launch } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import { UsageError } from '../cli/options.js';

const DNA = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'dna.js');

export const launchCommand: Command = {
  name: 'launch',
  summary: 'run a command as N data-parallel ranks (torchrun variables; Gloo on CPU, NCCL on GPU)',
  usage: 'dna launch --nproc N [--nnodes M --node-rank K --master-addr A --master-port P] <command> ...',
  description:
    "Starts this host's ranks of a command (dna train, dna search, dna demo, dna eval, or any program) with " +
    "torchrun's environment: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. The " +
    'cores are split between the ranks, each line of their output is prefixed with its rank, and when one ' +
    'fails the others are stopped and launch exits with its status, naming it. Ctrl-C stops every rank after ' +
    'its current step (they save; --resume continues); a second Ctrl-C ends them. On several hosts, run it ' +
    "on each with the same --nnodes, --master-addr (rank 0's host) and --master-port, and its own --node-rank.",
  groups: [
    {
      title: 'Ranks',
      options: [
        {
          name: 'nproc',
          kind: 'integer',
          min: 1,
          value: 'N',
          help: 'ranks on this host (one per GPU, or per group of cores)',
        },
        { name: 'nnodes', kind: 'integer', min: 1, value: 'M', help: 'hosts in the run (default 1)' },
        { name: 'node-rank', kind: 'integer', min: 0, value: 'K', help: "this host's index, 0..M-1 (default 0)" },
        { name: 'master-addr', kind: 'string', value: 'HOST', help: "rank 0's host (default 127.0.0.1 on one host)" },
        {
          name: 'master-port',
          kind: 'integer',
          min: 0,
          value: 'P',
          help: 'its rendezvous port (default: a free one on one host)',
        },
        {
          name: 'threads',
          kind: 'integer',
          min: 1,
          value: 'T',
          help: "LibTorch threads per rank (default: this host's cores / N)",
        },
      ],
    },
  ],
  words: 'stop',
  async run(v, rest) {
    if (v.nproc === undefined) throw new UsageError('--nproc is required (how many ranks to start on this host)');
    if (rest.length === 0)
      throw new UsageError('give the command to run, e.g. dna launch --nproc 2 dna train --data ...');
    const nnodes = (v.nnodes as number | undefined) ?? 1;
    if (nnodes > 1 && v['master-addr'] === undefined)
      throw new UsageError("--nnodes above 1 needs --master-addr (rank 0's host)");
    if (nnodes > 1 && v['master-port'] === undefined) throw new UsageError('--nnodes above 1 needs --master-port');
    // `dna ...` runs this package's CLI, whether or not a `dna` is on the PATH.
    const [command, ...args] = rest[0] === 'dna' ? [process.execPath, DNA, ...rest.slice(1)] : rest;
    const abort = new AbortController();
    const interrupt = new AbortController();
    const onInterrupt = () => {
      if (interrupt.signal.aborted) {
        abort.abort();
        return;
      }
      process.stderr.write('\ndna launch: stopping every rank after its current step (Ctrl-C again to end them)\n');
      interrupt.abort();
    };
    const onTerminate = () => abort.abort();
    process.on('SIGINT', onInterrupt);
    process.on('SIGTERM', onTerminate);
    try {
      const result = await launch({
        nproc: v.nproc as number,
        nnodes,
        nodeRank: v['node-rank'] as number | undefined,
        masterAddr: v['master-addr'] as string | undefined,
        masterPort: v['master-port'] as number | undefined,
        threadsPerRank: v.threads as number | undefined,
        command,
        args,
        signal: abort.signal,
        interrupt: interrupt.signal,
      });
      if (result.failure !== undefined) {
        process.stderr.write(`dna launch: rank ${result.failure.rank} failed: ${result.failure.message}\n`);
      }
      return result.exitCode;
    } finally {
      process.removeListener('SIGINT', onInterrupt);
      process.removeListener('SIGTERM', onTerminate);
    }
  },
};
