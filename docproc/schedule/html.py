"""The daily report as one self-contained HTML page: inline CSS and SVG charts, no scripts."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from docproc.model import State
from docproc.units import human_bytes

# Rows per failure reason in the page; the JSON lists every one.
MAX_ROWS = 500
COLORS: dict[str, str] = {
    State.DONE: "#2f855a", State.FAILED: "#c53030", State.DUPLICATE: "#718096",
    State.RETRIED: "#dd6b20", State.QUEUED: "#a0aec0", State.RUNNING: "#3182ce",
}
# Documents of an hour neither done nor failed (duplicate, unfinished) are drawn as "other".
OTHER_COLOR = COLORS[State.QUEUED]
CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1a202c;
 margin:0 auto;max-width:980px;padding:24px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 6px}
.muted{color:#718096}.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.tile{border:1px solid #e2e8f0;border-radius:6px;padding:8px 14px;min-width:96px}
.tile b{display:block;font-size:20px}.warn{background:#fffaf0;border:1px solid #f6ad55;
 border-radius:6px;padding:8px 12px;margin:12px 0}
table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:3px 8px;
 border-bottom:1px solid #edf2f7;vertical-align:top}th{background:#f7fafc}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}code{font-size:12px;color:#4a5568;
 word-break:break-all}svg text{font:11px sans-serif;fill:#4a5568}
"""


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _moment(iso: str) -> str:
    return escape(iso[:16].replace("T", " "))


def _ms(value: float) -> str:
    return f"{value / 1000:,.2f} s" if value >= 1000 else f"{value:,.1f} ms"


def hours_chart(by_hour: list[dict[str, Any]]) -> str:
    """Return an SVG of documents received per hour, stacked: done, failed, other."""
    width, height, left, bottom, top = 940, 200, 40, 24, 10
    peak = max([hour["documents"] for hour in by_hour] + [1])
    step = (width - left) / max(len(by_hour), 1)
    scale = (height - bottom - top) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="documents per hour">']
    base = height - bottom
    for fraction in (0, 0.5, 1):
        y = base - fraction * peak * scale
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" '
                     'stroke="#edf2f7"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_n(round(fraction * peak))}</text>')
    for index, hour in enumerate(by_hour):
        x = left + index * step + 2
        y = base
        other = hour["documents"] - hour["done"] - hour["failed"]
        # by_hour's "done" and "failed" are fields of the daily report (failed: retried too).
        for name, count, color in (("done", hour["done"], COLORS[State.DONE]),
                                   ("failed", hour["failed"], COLORS[State.FAILED]),
                                   ("other", other, OTHER_COLOR)):
            if count <= 0:
                continue
            bar = count * scale
            y -= bar
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 4:.1f}" '
                         f'height="{bar:.1f}" fill="{color}"><title>{escape(hour["hour"])}'
                         f' {name}: {count}</title></rect>')
        if index % 2 == 0:
            parts.append(f'<text x="{x + (step - 4) / 2:.1f}" y="{height - 8}" '
                         f'text-anchor="middle">{escape(hour["hour"][:2])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(items: list[tuple[str, float, str]], label_width: int = 150, unit: str = "") -> str:
    """Return an SVG of horizontal bars: (label, value, color) each."""
    if not items:
        return '<p class="muted">none</p>'
    width, row = 600, 22
    peak = max(value for _, value, _ in items) or 1
    span = width - label_width - 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{row * len(items) + 4}" role="img">']
    for index, (label, value, color) in enumerate(items):
        y = index * row + 2
        length = max(value / peak * span, 1 if value else 0)
        parts.append(f'<text x="{label_width - 8}" y="{y + 15}" text-anchor="end">'
                     f'{escape(label[:28])}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="15" '
                     f'fill="{color}"/>')
        parts.append(f'<text x="{label_width + length + 6:.1f}" y="{y + 15}">'
                     f'{_n(value)}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timing_bar(stats: dict[str, float], peak: float) -> str:
    """Return a small SVG of one stage's p50 to p99 on a log scale shared by all stages."""
    width, height = 260, 16

    def x(ms: float) -> float:
        return math.log10(1 + ms) / math.log10(1 + peak) * (width - 4) + 2 if peak > 0 else 2

    low, spread = x(stats["p50"]), max(x(stats["p99"]) - x(stats["p50"]), 1)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
            f'<line x1="2" y1="8" x2="{width - 2}" y2="8" stroke="#edf2f7"/>'
            f'<rect x="{low:.1f}" y="3" width="{spread:.1f}" height="10" fill="#90cdf4"/>'
            f'<rect x="{x(stats["p90"]) - 1:.1f}" y="1" width="2" height="14" fill="#2b6cb0"/>'
            f'<rect x="{x(stats["p50"]) - 1:.1f}" y="1" width="2" height="14" fill="#1a202c"/>'
            "</svg>")


def render(report: dict[str, Any], json_name: str) -> str:
    """Return the report as one HTML page."""
    status = report["by_status"]
    day = escape(report["date"])
    window = report["window"]
    out = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>docproc daily report {day}</title>", f"<style>{CSS}</style></head><body>",
        f"<h1>docproc daily report — {day}</h1>",
        f'<div class="muted">documents received from {_moment(window["from"])} to '
        f'{_moment(window["to"])} ({escape(window["timezone"])}) · built '
        f'{_moment(report["generated_at"])} UTC from the {escape(report["source"])}</div>',
        '<div class="tiles">',
    ]
    tiles = [("documents", _n(report["documents"])), (State.DONE, _n(status.get(State.DONE, 0))),
             (State.FAILED, _n(status.get(State.FAILED, 0) + status.get(State.RETRIED, 0))),
             (State.DUPLICATE, _n(status.get(State.DUPLICATE, 0))), ("pages", _n(report["pages"])),
             ("words", _n(report["words"])), ("received", human_bytes(report["bytes"]))]
    out += [f'<div class="tile"><b>{value}</b>{name}</div>' for name, value in tiles]
    out.append("</div>")
    unfinished = status.get(State.QUEUED, 0) + status.get(State.RUNNING, 0)
    if report["not_summarized"]:
        out.append(f'<div class="warn">{len(report["not_summarized"])} document(s) could not be '
                   'summarized: they are counted by status but not in the figures below '
                   '(see <a href="#not-summarized">the list</a>).</div>')
    if unfinished:
        out.append(f'<div class="warn">{unfinished} document(s) were still being processed '
                   'when this report was built.</div>')

    out.append("<h2>Throughput by hour</h2>")
    out.append('<p class="muted">documents received per hour: '
               f'<span style="color:{COLORS[State.DONE]}">■ done</span> '
               f'<span style="color:{COLORS[State.FAILED]}">■ failed</span> '
               f'<span style="color:{OTHER_COLOR}">■ other</span></p>')
    out.append(hours_chart(report["by_hour"]))

    out.append("<h2>By status and kind</h2>")
    out.append(bars([(name, count, COLORS.get(name, "#4a5568"))
                     for name, count in status.items() if count]))
    out.append(bars([(name, count, "#4c51bf") for name, count in report["by_kind"].items()]))

    out.append("<h2>Processing time per stage</h2>")
    timings = report["timings_ms"]
    if timings:
        peak = max(stats["p99"] for stats in timings.values())
        out.append('<table><tr><th>stage</th><th class="n">documents</th><th class="n">p50</th>'
                   '<th class="n">p90</th><th class="n">p99</th><th class="n">max</th>'
                   '<th>p50 ▮ p90 ▮ to p99 (log scale)</th></tr>')
        for stage, stats in timings.items():
            out.append(f'<tr><td>{escape(stage)}</td><td class="n">{_n(stats["count"])}</td>'
                       + "".join(f'<td class="n">{_ms(stats[k])}</td>'
                                 for k in ("p50", "p90", "p99", "max"))
                       + f"<td>{timing_bar(stats, peak)}</td></tr>")
        out.append("</table>")
    else:
        out.append('<p class="muted">no timings</p>')

    out.append("<h2>Top keywords</h2>")
    out.append(bars([(item["keyword"], item["documents"], "#805ad5")
                     for item in report["keywords"]], unit=" docs"))

    out.append("<h2>Failures by reason</h2>")
    if not report["failures"]:
        out.append('<p class="muted">no failures</p>')
    for reason, entry in report["failures"].items():
        out.append(f"<h3>{escape(reason)} — {entry['count']}</h3>")
        out.append("<table><tr><th>file</th><th>stage</th><th>what to do</th>"
                   "<th>outbox folder</th></tr>")
        for doc in entry["documents"][:MAX_ROWS]:
            retried = " (retried)" if doc.get("retried") else ""
            out.append(f"<tr><td>{escape(doc['relpath'])}{retried}</td>"
                       f"<td>{escape(doc['stage'])}</td><td>{escape(doc['message'])}</td>"
                       f"<td><code>{escape(doc['folder'])}</code></td></tr>")
        out.append("</table>")
        if entry["count"] > MAX_ROWS:
            out.append(f'<p class="muted">and {entry["count"] - MAX_ROWS} more in '
                       f"{escape(json_name)}</p>")

    if report["not_summarized"]:
        out.append('<h2 id="not-summarized">Not summarized</h2><table><tr><th>file</th>'
                   "<th>why</th><th>outbox folder</th></tr>")
        for doc in report["not_summarized"][:MAX_ROWS]:
            out.append(f"<tr><td>{escape(doc['relpath'])}</td><td>{escape(doc['reason'])}</td>"
                       f"<td><code>{escape(doc['folder'])}</code></td></tr>")
        out.append("</table>")
    out.append(f'<p class="muted">The same figures, and every file, are in '
               f"{escape(json_name)}.</p></body></html>")
    return "\n".join(out) + "\n"
