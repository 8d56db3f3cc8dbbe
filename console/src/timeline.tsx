// One trace as a timeline: a floating bar per attempt, from its start to its end (ms
// from the request's start), one row per attempt labelled by strategy node, coloured
// by outcome (cancelled race losers grey, rejected cascade steps orange); the attempt
// whose answer was returned (each choice's, with n > 1) is outlined and starred.
import { useEffect, useRef } from "preact/hooks";
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip } from "chart.js";
import type { Attempt } from "./api";
import { ms, outcomeColor, usd } from "./format";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

export const rowLabel = (a: Attempt) =>
  `#${a.seq} ${a.node} · ${a.model}${a.sample !== undefined ? ` (sample ${a.sample})` : ""}`;

/** The attempts whose answers a trace returned. */
export const chosenOf = (t: { answer_attempt?: number; answer_attempts?: number[] }): number[] =>
  t.answer_attempts?.length ? t.answer_attempts : t.answer_attempt !== undefined ? [t.answer_attempt] : [];

export function Timeline({ attempts, latency, chosen = [] }: { attempts: Attempt[]; latency: number; chosen?: number[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!canvas.current) return;
    const labels = attempts.map((a) => (chosen.includes(a.seq) ? `★ ${rowLabel(a)}` : rowLabel(a)));
    const isChosen = attempts.map((a) => chosen.includes(a.seq));
    const outcomes = [...new Set(attempts.map((a) => a.outcome))];
    // One dataset per outcome, so the legend names them; `grouped: false` keeps each
    // bar on its own row however many datasets there are.
    const datasets = outcomes.map((outcome) => ({
      label: outcome,
      data: attempts.map((a) =>
        a.outcome === outcome ? ([a.started_ms, a.started_ms + Math.max(a.latency_ms, 0.5)] as [number, number]) : null,
      ),
      backgroundColor: outcomeColor[outcome] ?? "#546e7a",
      borderColor: "#212121",
      borderWidth: isChosen.map((c) => (c ? 3 : 0)),
      borderSkipped: false,
      grouped: false,
      barPercentage: 0.8,
      categoryPercentage: 1,
    }));
    const chart = new Chart(canvas.current, {
      type: "bar",
      data: { labels, datasets },
      options: {
        indexAxis: "y",
        animation: false,
        maintainAspectRatio: false,
        responsive: true,
        scales: {
          x: {
            min: 0,
            suggestedMax: latency,
            title: { display: true, text: "ms from the request's start" },
          },
          y: { ticks: { autoSkip: false } },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              label: (item) => {
                const a = attempts[item.dataIndex];
                const mark = isChosen[item.dataIndex] ? " (the answer returned)" : "";
                return `${a.outcome}${mark}: ${ms(a.started_ms)} → ${ms(a.started_ms + a.latency_ms)}, ${usd(a.cost_usd)}`;
              },
            },
          },
        },
      },
    });
    return () => chart.destroy();
  }, [attempts, latency, chosen.join()]);
  const described = attempts
    .map((a) => `${rowLabel(a)}: ${a.outcome}${chosen.includes(a.seq) ? " (chosen answer)" : ""}`)
    .join("; ");
  return (
    <div class="timeline" style={{ height: `${Math.max(140, 36 * attempts.length + 90)}px` }}>
      <canvas ref={canvas} role="img" aria-label={`Timeline of ${attempts.length} attempts. ${described}`} />
    </div>
  );
}
