// A PolicyReport on disk: report.json, a readable report.md and SVG plots rendered headless with
// Vega-Lite (util/plots.ts).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

import type { TopLevelSpec } from 'vega-lite';

import { describe, optionsObject } from '../util/describe.js';
import { renderSvg } from '../util/plots.js';
import { writeTextAtomically } from '../util/files.js';
import { writeAugmentedExamples, type AugmentedExamplesOptions } from './report-examples.js';
import { POLICY_REPORT_KIND, type PolicyGroupStatistics, type PolicyReport } from './report.js';

export interface PolicyReportFiles {
  markdown: string;
  json: string;
  /** The SVG plots, in the order report.md shows them. */
  plots: string[];
  /** The grid of augmented images (examples.png), when asked for. */
  examples?: string;
}

export interface WritePolicyReportOptions {
  /** Also draw examples.png: images of `data` as they are and as `policy` augments them. */
  examples?: AugmentedExamplesOptions;
}

const number = (value: number | null, digits = 3) => (value === null ? '-' : value.toFixed(digits));
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s+/g, ' ');

function table(header: string[], rows: string[][]): string[] {
  return [header, header.map(() => '---'), ...rows].map((row) => `| ${row.map(cell).join(' | ')} |`);
}

/** Each class that had images, then all images together. */
const groups = (report: PolicyReport): PolicyGroupStatistics[] => [...report.perClass, report.overall];
const groupName = (group: PolicyGroupStatistics) =>
  group.label === undefined ? `(all ${group.count} images)` : group.name;

/** A class x op table of one op statistic. */
function opTable(report: PolicyReport, value: (op: PolicyGroupStatistics['ops'][number]) => number | null): string[] {
  return table(
    ['class', ...report.searchSpace.ops],
    groups(report).map((group) => [groupName(group), ...group.ops.map((op) => number(value(op)))]),
  );
}

/** Units of the values of the ops whose values are not plain numbers. */
const UNITS: Record<string, string> = { Rotate: '°' };

/**
 * An op's magnitude range in its own values, e.g. "Rotate +1° ± 22°": the centre meanM and half
 * the width meanWidth, mapped through the op's value range (before the clamp to [0, 1]).
 */
export function rangeText(report: PolicyReport, op: PolicyGroupStatistics['ops'][number]): string | null {
  const index = report.searchSpace.ops.indexOf(op.name);
  const range = report.searchSpace.ranges[index];
  if (range === null || range === undefined || op.meanM === null || op.meanWidth === null) return null;
  const [lo, hi] = range;
  const span = hi - lo;
  const digits = Math.abs(span) >= 20 ? 0 : Math.abs(span) >= 2 ? 1 : 2;
  const unit = UNITS[op.name] ?? '';
  const centre = lo + op.meanM * span;
  const half = (op.meanWidth / 2) * Math.abs(span);
  return `${op.name} ${centre >= 0 ? '+' : ''}${centre.toFixed(digits)}${unit} ± ${half.toFixed(digits)}${unit}`;
}

/** The magnitude-range section: per class, the ops it applies most with their ranges in the ops' own values. */
function rangeLines(report: PolicyReport): string[] {
  if (report.magnitudes !== 'range') return [];
  const shown = 4;
  return [
    '## Magnitude ranges per class',
    '',
    "Each draw takes a magnitude uniformly in centre ± width / 2 (in the op's own values, clamped to its range). " +
      `Per class the ${shown} ops it applies most (applications per image in brackets); then the half-width of every ` +
      'op with a magnitude, as a fraction of its whole range.',
    '',
    ...table(
      ['class', ...Array.from({ length: shown }, (_, i) => String(i + 1))],
      groups(report).map((group) => [
        groupName(group),
        ...[...group.ops]
          .filter((op) => rangeText(report, op) !== null)
          .sort((a, b) => b.applyMass - a.applyMass)
          .slice(0, shown)
          .map((op) => `${rangeText(report, op)} (${number(op.applyMass)})`),
      ]),
    ),
    '',
    ...opTable(report, (op) => (op.meanWidth === null ? null : op.meanWidth / 2)),
    '',
  ];
}

interface Plot {
  file: string;
  title: string;
  spec: TopLevelSpec;
}

/**
 * The report's plots. Colour scales are fixed to what the numbers mean, not stretched over the
 * data, so that a policy that has learned little looks pale: the apply-mass heatmap is white at
 * the untrained policy's value, the distances start from a floor of 0.25 bits. Axis titles the
 * plot's title already names are left out (headless rendering estimates the rotated labels' size
 * generously, and a title under them would sit far below the axis).
 */
function plots(report: PolicyReport): Plot[] {
  const ops = report.searchSpace.ops;
  const rowNames = groups(report).map(groupName);
  const heatmapText = (format: string) => ({
    mark: { type: 'text' as const, fontSize: 9 },
    encoding: { text: { field: 'value', type: 'quantitative' as const, format } },
  });
  const cells = { width: { step: 40 }, height: { step: 22 } };
  const opAxis = { field: 'op', type: 'nominal' as const, sort: ops, title: null, axis: { labelAngle: -45 } };
  // The apply mass of every op under the untrained policy (uniform pi, p = 0.5): each op is in
  // n - 1 of the n(n - 1)/2 pairs, once per pair, so 1/n applications per image.
  const untrained = 1 / ops.length;
  const masses = groups(report).flatMap((group) => group.ops.map((op) => op.applyMass));
  const applyMass: TopLevelSpec = {
    title: {
      text: 'Expected applications per image, by op and class',
      subtitle: `white: ${untrained.toFixed(3)}, the untrained policy's; orange above it, blue below`,
    },
    ...cells,
    data: {
      values: groups(report).flatMap((group) =>
        group.ops.map((op) => ({ group: groupName(group), op: op.name, value: op.applyMass })),
      ),
    },
    encoding: { x: opAxis, y: { field: 'group', type: 'nominal', sort: rowNames, title: null } },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: 'apply mass',
            scale: {
              scheme: 'blueorange',
              domain: [0, Math.max(2 * untrained, ...masses)],
              domainMid: untrained,
            },
          },
        },
      },
      heatmapText('.2f'),
    ],
  };
  const classes = report.distance.classes;
  const distances = report.distance.matrix.flat();
  const distance: TopLevelSpec = {
    title: 'Jensen-Shannon divergence (bits) between class-mean pi',
    ...cells,
    data: {
      values: report.distance.matrix.flatMap((row, i) =>
        row.map((value, j) => ({ a: classes[i], b: classes[j], value })),
      ),
    },
    encoding: {
      x: { field: 'b', type: 'nominal', sort: classes, title: null, axis: { labelAngle: -45 } },
      y: { field: 'a', type: 'nominal', sort: classes, title: null },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'value',
            type: 'quantitative',
            title: 'JSD',
            scale: { scheme: 'oranges', domain: [0, Math.max(0.25, ...distances)] },
          },
        },
      },
      heatmapText('.3f'),
    ],
  };
  const uniform = 1 / report.searchSpace.subPolicies.length;
  const probabilities = groups(report).flatMap((group) => group.top.map((entry) => entry.probability));
  const top: TopLevelSpec = {
    title: {
      text: 'Top sub-policies by mean pi per class',
      subtitle: `the line: uniform pi, ${uniform.toPrecision(3)}`,
    },
    data: {
      values: groups(report).flatMap((group) =>
        group.top.map((entry, rank) => ({
          group: groupName(group),
          rank,
          subPolicy: entry.name,
          probability: entry.probability,
        })),
      ),
    },
    facet: { field: 'group', type: 'nominal', sort: rowNames, title: null },
    columns: 4,
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
    spec: {
      width: 160,
      layer: [
        {
          mark: 'bar',
          encoding: {
            y: { field: 'subPolicy', type: 'nominal', sort: { field: 'rank' }, title: null },
            x: {
              field: 'probability',
              type: 'quantitative',
              title: 'mean pi',
              scale: { domain: [0, Math.max(2 * uniform, ...probabilities)] },
            },
          },
        },
        {
          mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
          encoding: { x: { datum: uniform, type: 'quantitative' } },
        },
      ],
    },
  };
  const identityAt = report.searchSpace.identityAt;
  const measures = ['mean p', 'mean m'];
  const parameters: TopLevelSpec = {
    title: {
      text: ['Per op over all images: mean apply probability p', 'and mean magnitude m (weighted by pi)'],
      // Two short lines: a subtitle wider than the chart would widen the whole picture.
      subtitle: ['black tick: the m at which the op does nothing', 'ops without a magnitude have no m'],
    },
    width: { step: 24 },
    encoding: { x: opAxis, xOffset: { field: 'measure', type: 'nominal', sort: measures } },
    layer: [
      {
        data: {
          values: report.overall.ops.flatMap((op) => [
            { op: op.name, measure: 'mean p', value: op.meanP },
            ...(op.meanM === null ? [] : [{ op: op.name, measure: 'mean m', value: op.meanM }]),
          ]),
        },
        mark: 'bar',
        encoding: {
          y: { field: 'value', type: 'quantitative', title: null, scale: { domain: [0, 1] } },
          color: { field: 'measure', type: 'nominal', title: null, scale: { domain: measures } },
        },
      },
      {
        data: {
          values: ops.flatMap((op, k) =>
            identityAt[k] === null || report.overall.ops[k].meanM === null
              ? []
              : [{ op, measure: 'mean m', value: identityAt[k] }],
          ),
        },
        mark: { type: 'tick', color: 'black', thickness: 3, orient: 'horizontal' },
        encoding: { y: { field: 'value', type: 'quantitative' } },
      },
    ],
  };
  return [
    { file: 'apply-mass.svg', title: 'Apply mass per op and class', spec: applyMass },
    { file: 'class-distance.svg', title: 'Distances between classes', spec: distance },
    { file: 'top-sub-policies.svg', title: 'Top sub-policies per class', spec: top },
    { file: 'op-parameters.svg', title: 'Mean p and m per op', spec: parameters },
  ];
}

function markdown(report: PolicyReport, plotList: Plot[], examples: boolean): string {
  const { searchSpace } = report;
  const S = searchSpace.subPolicies.length;
  const k = Math.max(...groups(report).map((group) => group.top.length));
  const lines = [
    `# Policy report${report.dataset === undefined ? '' : `: ${report.dataset}`}`,
    '',
    `${report.images} images in ${report.classes.length} classes; a search space of ${searchSpace.ops.length} ops ` +
      `and ${S} sub-policies ` +
      `(uniform pi: ${(1 / S).toPrecision(3)} each, entropy ln ${S} = ${number(searchSpace.maxEntropy)} nats).`,
  ];
  if (report.policy !== undefined) {
    lines.push(
      '',
      `Policy: ${Object.entries(report.policy)
        .map(([key, value]) => `${key} ${JSON.stringify(value)}`)
        .join(', ')}.`,
    );
  }
  const missing = report.classes.filter((_, label) => report.counts[label] === 0);
  if (missing.length > 0) lines.push('', `Classes without images (left out below): ${missing.join(', ')}.`);
  lines.push(
    '',
    '## Overview',
    '',
    ...table(
      ['class', 'images', 'top sub-policy', 'mean pi', 'mean entropy of pi(x) (nats)', 'entropy of mean pi (nats)'],
      groups(report).map((group) => [
        groupName(group),
        String(group.count),
        group.top[0].name,
        number(group.top[0].probability),
        number(group.meanEntropy),
        number(group.entropyOfMean),
      ]),
    ),
    '',
    `## Top ${k} sub-policies per class`,
    '',
    'Mean pi(x) over the images of each class (as in Table 3 of the DNA paper).',
    '',
    ...table(
      ['class', ...Array.from({ length: k }, (_, i) => String(i + 1))],
      groups(report).map((group) => [
        groupName(group),
        ...group.top.map((entry) => `${entry.name} (${number(entry.probability)})`),
      ]),
    ),
    '',
    '## Apply mass per op',
    '',
    'Expected applications of each op per image: the mean over images of pi_s(x) * p_{s,l}(x), summed over the ' +
      'slots (s, l) that hold the op.',
    '',
    ...opTable(report, (op) => op.applyMass),
    '',
    '## Mean apply probability p per op',
    '',
    'p averaged over the slots that hold the op, weighted by pi_s(x).',
    '',
    ...opTable(report, (op) => op.meanP),
    '',
    '## Mean magnitude m per op',
    '',
    'm in [0, 1], averaged like p (ops without a magnitude ignore it).',
    '',
    ...opTable(report, (op) => op.meanM),
    '',
    ...rangeLines(report),
    '## Distances between classes',
    '',
    `Jensen-Shannon divergence (base 2, 0 = same mean pi, 1 = disjoint) between the classes' mean pi; mean off the ` +
      `diagonal: ${number(report.distance.meanOffDiagonal, 4)}.`,
    '',
    ...table(
      ['', ...report.distance.classes],
      report.distance.matrix.map((row, i) => [report.distance.classes[i], ...row.map((value) => number(value, 4))]),
    ),
    '',
    ...(examples
      ? [
          '## What it does to images',
          '',
          'Test images as they are and under the sub-policy the policy draws for each (a hard sample, as ' +
            'in training with the policy).',
          '',
          '![Augmented examples](examples.png)',
          '',
        ]
      : []),
    '## Plots',
    '',
    ...plotList.flatMap((plot) => [`![${plot.title}](${plot.file})`, '']),
  );
  return lines.join('\n');
}

/**
 * Writes a report into `outDir` (created if needed): report.json, report.md and SVG plots (apply
 * mass per op and class, the class distances, the top sub-policies per class, p and m per op).
 * Each file is written atomically (util/files.ts).
 */
export async function writePolicyReport(
  report: PolicyReport,
  outDir: string,
  options: WritePolicyReportOptions = {},
): Promise<PolicyReportFiles> {
  if (report?.kind !== POLICY_REPORT_KIND)
    throw new TypeError(`writePolicyReport: expected a report made by policyReport(), got ${describe(report)}`);
  if (typeof outDir !== 'string' || outDir === '')
    throw new TypeError(`writePolicyReport: outDir must be a directory path, got ${describe(outDir)}`);
  const dir = path.resolve(outDir);
  await mkdir(dir, { recursive: true });
  const plotList = plots(report);
  const files: PolicyReportFiles = {
    markdown: path.join(dir, 'report.md'),
    json: path.join(dir, 'report.json'),
    plots: plotList.map((plot) => path.join(dir, plot.file)),
  };
  for (const [i, plot] of plotList.entries()) await writeTextAtomically(files.plots[i], await renderSvg(plot.spec));
  const { examples } = optionsObject(options, 'writePolicyReport');
  if (examples !== undefined) {
    files.examples = path.join(dir, 'examples.png');
    await writeAugmentedExamples(files.examples, examples);
  }
  await writeTextAtomically(files.json, JSON.stringify(report, null, 2) + '\n');
  await writeTextAtomically(files.markdown, markdown(report, plotList, examples !== undefined));
  return files;
}
