/** A device's volume over the window as a small uPlot line, with no axes or legend. */

import uPlot from "uplot";
import { cssVar } from "./levels";

const WIDTH = 120;
const HEIGHT = 28;

export function sparkline(target: HTMLElement, xs: number[], counts: number[]): uPlot {
  const color = cssVar("--accent");
  return new uPlot(
    {
      width: WIDTH,
      height: HEIGHT,
      pxAlign: false,
      cursor: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      legend: { show: false },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: color, fill: `${color}33`, width: 1.5, points: { show: false } }],
    },
    [xs, counts],
    target,
  );
}
