// dna report: what a policy does, class by class, on a dataset.
import path from 'node:path';

import { loadPolicy, policyReport, writePolicyReport, type PolicyReport } from '../../lib/index.js';
import type { Command } from '../cli/command.js';
import { RUN_GROUP, applyThreads, deviceOption, loadOpLibraries, option } from '../cli/common.js';
import { DATA_OPTIONS, loadData, withSubset } from '../cli/data.js';
import { UsageError } from '../cli/options.js';

/** The three most likely sub-policies per class, one line each (the report has five). */
function printTopSubPolicies(report: PolicyReport): void {
  const width = Math.max(...report.perClass.map((c) => c.name.length));
  for (const group of report.perClass) {
    const top = group.top
      .slice(0, 3)
      .map((s) => `${s.name} ${(100 * s.probability).toFixed(1)}%`)
      .join(', ');
    console.log(`  ${group.name.padEnd(width)}  ${top}`);
  }
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'per-class report of a policy on a dataset (Markdown, JSON, SVG plots)',
  usage: 'dna report --policy FILE --data DIR [options]',
  description:
    'Runs a searched policy over the images of --data and writes, per class, the mean pi(x) and its top ' +
    'sub-policies, the entropies, per op the apply mass, p and m, and the distances between classes: report.md, ' +
    'report.json and SVG plots.',
  groups: [
    {
      title: 'Policy and data',
      options: [
        { name: 'policy', kind: 'string', value: 'FILE', help: 'a policy.dna written by dna search' },
        option.opLibrary(),
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
    { title: 'Output', options: [option.out('where the report goes (default report/ beside the policy file)')] },
    RUN_GROUP,
  ],
  async run(v) {
    if (v.policy === undefined) throw new UsageError('--policy is required (a policy.dna written by dna search)');
    loadOpLibraries(v);
    applyThreads(v);
    const device = deviceOption(v);
    const file = v.policy as string;
    const data = withSubset(await loadData(v, (v.split as 'train' | 'test' | undefined) ?? 'test'), v, 0);
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
      const report = await policyReport({ policy, data, device, batchSize: v['batch-size'] as number | undefined });
      const files = await writePolicyReport(
        report,
        (v.out as string | undefined) ?? path.join(path.dirname(path.resolve(file)), 'report'),
      );
      if (v.json) {
        console.log(JSON.stringify(files));
        return;
      }
      console.log(`report of ${file} on ${report.images} images of ${data.name}`);
      printTopSubPolicies(report);
      console.log(`markdown ${files.markdown}\njson     ${files.json}\nplots    ${files.plots.join(', ')}`);
    } finally {
      policy.dispose();
    }
  },
};
