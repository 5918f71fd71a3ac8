// Draws the benchmark's times as an SVG bar chart: one group of bars per task (size and kind of memory).
import type { CaseResult } from './bench-results.ts';

const SERIES: Array<{ label: string; color: string; value: (r: CaseResult) => number }> = [
  { label: 'plain CRIU dump (tmpfs)', color: '#9ca3af', value: (r) => r.limits.dumpMs },
  { label: 'plain upload of the raw bytes', color: '#6b7280', value: (r) => r.limits.uploadMs },
  { label: 'spotsnap first checkpoint', color: '#2563eb', value: (r) => r.first.totalMs },
  { label: 'spotsnap second checkpoint (10% changed)', color: '#60a5fa', value: (r) => r.second.totalMs },
  { label: 'spotsnap background freeze', color: '#f59e0b', value: (r) => r.background.frozenMs },
  { label: 'plain download + plain restore', color: '#a3a3a3', value: (r) => r.limits.downloadMs + r.limits.restoreMs },
  { label: 'spotsnap restore (start to running)', color: '#16a34a', value: (r) => r.restore.totalMs },
];

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}

export function renderChart(results: CaseResult[]): string {
  const barHeight = 16;
  const groupGap = 24;
  const left = 280;
  const width = 900;
  const plotWidth = width - left - 80;
  const max = Math.max(...results.flatMap((r) => SERIES.map((s) => s.value(r))), 1);
  const groupHeight = SERIES.length * (barHeight + 4) + groupGap + 18;
  const height = 40 + results.length * groupHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">spotsnap checkpoint and restore times (seconds, shorter is better)</text>`,
  ];
  results.forEach((r, g) => {
    const top = 40 + g * groupHeight;
    parts.push(`<text x="10" y="${top + 12}" font-weight="bold">${r.mib} MiB task, ${r.kind} memory</text>`);
    SERIES.forEach((s, i) => {
      const y = top + 18 + i * (barHeight + 4);
      const value = s.value(r);
      const w = Math.max(1, (value / max) * plotWidth);
      parts.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${escapeXml(s.label)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${s.color}"/>`);
      parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 12}">${(value / 1000).toFixed(2)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
