// The launcher as a program, for the tests (the CLI's `dna launch` wraps the same function):
//   node launch-main.js [--nnodes M --node-rank K --master-addr A --master-port P] <nproc> <command> [args...]
// runs `launch` and exits with its status, printing `launch failed: rank R: <message>` when a rank
// failed. SIGINT and SIGTERM stop the ranks (the launcher aborts).
import { launch, type LaunchOptions } from '../../lib/distributed/index.js';

const argv = process.argv.slice(2);
const hosts: Partial<LaunchOptions> = {};
const flags: Record<string, (value: string) => void> = {
  '--nnodes': (v) => (hosts.nnodes = Number(v)),
  '--node-rank': (v) => (hosts.nodeRank = Number(v)),
  '--master-addr': (v) => (hosts.masterAddr = v),
  '--master-port': (v) => (hosts.masterPort = Number(v)),
};
while (argv[0] in flags) {
  const [flag, value] = argv.splice(0, 2);
  flags[flag](value);
}
const [nproc, command, ...args] = argv;
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => controller.abort());
const result = await launch({
  ...hosts,
  nproc: Number(nproc),
  command,
  args,
  graceSeconds: 2,
  signal: controller.signal,
});
if (result.failure !== undefined)
  process.stderr.write(`launch failed: rank ${result.failure.rank}: ${result.failure.message}\n`);
process.exitCode = result.exitCode;
