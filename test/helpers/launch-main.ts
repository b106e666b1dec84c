// The launcher as a program, for the tests (the CLI's `dna launch` wraps the same function):
// `node launch-main.js <nproc> <command> [args...]` runs `launch` and exits with its status,
// printing `launch failed: rank R: <message>` when a rank failed.
import { launch } from '../../lib/distributed/index.js';

const [nproc, command, ...args] = process.argv.slice(2);
const result = await launch({ nproc: Number(nproc), command, args, graceSeconds: 2 });
if (result.failure !== undefined) process.stderr.write(`launch failed: rank ${result.failure.rank}: ${result.failure.message}\n`);
process.exitCode = result.exitCode;
