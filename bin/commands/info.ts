// dna info: what the native backend is.
import { backend } from '../../lib/index.js';
import type { Command } from '../cli/command.js';

export const info: Command = {
  name: 'info',
  summary: 'the native backend: LibTorch version, CUDA, threads',
  usage: 'dna info [--json]',
  description:
    'Prints the LibTorch version the addon was built against, whether CUDA is built and visible, and the ' +
    'threads in use.',
  groups: [{ title: 'Output', options: [{ name: 'json', kind: 'flag', help: 'the backend as one JSON object' }] }],
  run(values) {
    const b = backend();
    if (values.json) {
      console.log(JSON.stringify(b));
      return;
    }
    console.log(`LibTorch   ${b.torch}`);
    const cuda = b.cuda
      ? `yes, ${b.cudaDevices} device(s)`
      : b.cudaBuilt
        ? 'built, no device visible'
        : 'no (CPU build)';
    console.log(`CUDA       ${cuda}`);
    console.log(`threads    ${b.threads}`);
  },
};
