// Plots as files: a Vega-Lite specification rendered to SVG headless (compiled to Vega, rendered
// without a canvas). Vega is loaded on first use, so that importing the library does not pay for it.
import type { TopLevelSpec } from 'vega-lite';

/** Renders a Vega-Lite spec to SVG text, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * A heatmap of a confusion matrix: rows the true classes, columns the predicted ones, each cell
 * its count, coloured by the share of its row (so that small classes read like large ones).
 */
export function confusionSpec(classes: string[], confusion: number[][], title: string): TopLevelSpec {
  const values = confusion.flatMap((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return row.map((count, j) => ({
      actual: classes[i],
      predicted: classes[j],
      count,
      share: total === 0 ? 0 : count / total,
    }));
  });
  const step = classes.length > 20 ? 12 : 34;
  return {
    // Axis titles in the subtitle: headless rendering puts a title under rotated labels far below them.
    title: { text: title, subtitle: 'rows: the true class; columns: the predicted class; colour: share of the row' },
    width: { step },
    height: { step },
    data: { values },
    encoding: {
      x: { field: 'predicted', type: 'nominal', sort: classes, title: null, axis: { labelAngle: -45 } },
      y: { field: 'actual', type: 'nominal', sort: classes, title: null },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: {
            field: 'share',
            type: 'quantitative',
            title: 'share of row',
            scale: { scheme: 'blues', domain: [0, 1] },
          },
        },
      },
      ...(classes.length > 20
        ? []
        : [
            {
              mark: { type: 'text' as const, fontSize: 9 },
              encoding: {
                text: { field: 'count', type: 'quantitative' as const },
                color: { condition: { test: 'datum.share > 0.5', value: 'white' }, value: 'black' },
              },
            },
          ]),
    ],
  } as TopLevelSpec;
}
