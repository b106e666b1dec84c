// dna report: what a policy does, class by class, on a dataset.
import path from 'node:path';

import { loadPolicy, policyReport, writePolicyReport, type PolicyReport } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import { RUN_GROUP, applyThreads, deviceOption, loadCustomOps, option } from '../cli/common.js';
import { DATA_OPTIONS, loadData, withSubset } from '../cli/data.js';
import { UsageError } from '../cli/options.js';

/**
 * Per class a line of its most likely sub-policies (three at most, the report has five), as many
 * as fit `width` columns, one at least.
 */
export function topSubPolicyLines(report: PolicyReport, width: number): string[] {
  const nameWidth = Math.max(...report.perClass.map((c) => c.name.length));
  return report.perClass.map((group) => {
    const head = `  ${group.name.padEnd(nameWidth)}  `;
    const entries = group.top.slice(0, 3).map((s) => `${s.name} ${(100 * s.probability).toFixed(1)}%`);
    let shown = entries.length;
    while (shown > 1 && head.length + entries.slice(0, shown).join(', ').length > width - 1) shown--;
    return head + entries.slice(0, shown).join(', ');
  });
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'per-class report of a policy on a dataset (Markdown, JSON, plots, pictures)',
  usage: 'dna report --policy FILE --data DIR [options]',
  description:
    'Runs a searched policy over the images of --data and writes, per class, the mean pi(x) and its top ' +
    'sub-policies, the entropies, per op the apply mass, p and m, and the distances between classes: report.md, ' +
    'report.json, SVG plots, and examples.png, test images of each class as they are and as the policy augments them.',
  groups: [
    {
      title: 'Policy and data',
      options: [
        { name: 'policy', kind: 'string', value: 'FILE', help: 'a policy.dna written by dna search' },
        option.opLibrary(),
        option.importModule(),
        ...DATA_OPTIONS,
        {
          name: 'split',
          kind: 'choice',
          value: 'NAME',
          choices: ['train', 'test'],
          help: 'which split to run the policy on (default test)',
        },
        { name: 'subset', kind: 'integer', min: 1, value: 'N', help: 'a stratified subset of N images' },
        { name: 'batch-size', kind: 'integer', min: 1, value: 'N', help: 'images per forward pass (default 256)' },
      ],
    },
    {
      title: 'Output',
      options: [
        option.out('where the report goes (default report/ beside the policy file)'),
        {
          name: 'examples',
          kind: 'integer',
          min: 1,
          value: 'N',
          help: 'images per class in examples.png, the grid of augmented images (default 4)',
        },
      ],
    },
    RUN_GROUP,
  ],
  async run(v) {
    if (v.policy === undefined) throw new UsageError('--policy is required (a policy.dna written by dna search)');
    await loadCustomOps(v);
    applyThreads(v);
    const device = deviceOption(v);
    const file = v.policy as string;
    const policy = await loadPolicy(file, { device });
    // A frozen policy that was not settled may not be the policy the search saw (its batch norm).
    if (policy.settled === undefined)
      console.error(
        `dna: warning: ${file} was not settled (written before settling existed, or by a search with settle off): ` +
          "its batch-norm statistics may not be the search's, and the report may differ from what the search saw",
      );
    else if (!policy.settled.passed)
      console.error(`dna: warning: ${file} failed its settle check: ${policy.settled.failures.join('; ')}`);
    try {
      const split = (v.split as 'train' | 'test' | undefined) ?? 'test';
      const loaded = await loadData(v, split, 0, policy.inChannels);
      if (split === 'test' && loaded.test === undefined) throw new UsageError(`${loaded.noTest!}, or --split train`);
      const data = withSubset(loaded[split]!, v.subset as number | undefined, 0);
      const report = await policyReport({ policy, data, device, batchSize: v['batch-size'] as number | undefined });
      const files = await writePolicyReport(
        report,
        (v.out as string | undefined) ?? path.join(path.dirname(path.resolve(file)), 'report'),
        { examples: { policy, data, perClass: v.examples as number | undefined } },
      );
      if (v.json) {
        console.log(JSON.stringify(files));
        return;
      }
      console.log(`report of ${file} on ${report.images} images of ${data.name}`);
      for (const line of topSubPolicyLines(report, process.stdout.columns || 80)) console.log(line);
      console.log(`markdown ${files.markdown}\njson     ${files.json}`);
      console.log(`examples ${files.examples}`);
      for (const plot of files.plots) console.log(`plot     ${plot}`);
    } finally {
      policy.dispose();
    }
  },
};
