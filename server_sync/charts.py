"""Charts as SVG, drawn by the portal (no script, no library): stacked bars of donations per day or week,
and bars of progress to goals.

Readable without colour: every series has its own fill pattern as well as its own colour (the Okabe–Ito
palette, which colour-blind readers can tell apart), the legend repeats pattern, name and total, each bar
carries its value as text, every shape has a ``<title>`` (a tooltip, and what a screen reader says), and the
SVG is ``role="img"`` with a label and a summary. Under each chart the same numbers are in a table.

Pure: data in (``queries.donation_series``, ``queries.projects``/``areas``), markup out. Every value drawn
is also in a ``data-*`` attribute, so a test can read the chart back and compare it with the queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

from server_sync import i18n
from server_sync.i18n import N_


def percent_of(total_yen: int, goal_yen: int | None) -> int | None:
    """The whole percent of a goal reached, floored (99.6 % is not yet the goal) and at most 100, in integers:
    ``int(total / goal * 100)`` gave 28 for ¥14,500 of ¥50,000 (0.29 * 100 is 28.999999999999996 in floating
    point). None without a goal. Every page, chart and table prints this one figure."""
    return min(100, int(total_yen) * 100 // int(goal_yen)) if goal_yen else None

# Okabe–Ito: distinguishable with the common colour-vision deficiencies; black last.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
# One pattern per series, drawn over its colour: the series differ in texture too.
PATTERNS = ("solid", "diagonal", "dots", "cross", "horizontal", "vertical", "back-diagonal", "grid")
WIDTH = 480
"""The drawing's own width: the page scales it to fit, and never below this (it scrolls in its box on a phone),
so its text is never smaller than it is drawn."""
PROGRESS_WIDTH = 340
"""Goal bars are drawn narrow: they fit a phone at full size, so the names on the left are never scrolled away."""
AXIS = 46
"""The value axis's margin on each side: room for its longest mark (¥7,500, ¥2.5万, ¥2,000万: about 41 px at font
size 10)."""
FONT = "font-family:'Hiragino Sans','Noto Sans CJK JP','Yu Gothic',system-ui,sans-serif"


def yen(v: int) -> str:
    return f"¥{v:,}"


def compact_yen(v: int, lang: str) -> str:
    """A bar's label: ¥800, ¥1,200, 1.2万 / 12k; short enough to sit over a narrow bar."""
    if v < 1_000:
        return f"¥{v:,}"
    if v < 10_000:
        return f"{v:,}"  # no ¥: four digits and a comma are what fits over a narrow bar
    if lang == "en":
        if v >= 1_000_000:  # ¥1.2M, not ¥1200k: wider than a bar
            return f"¥{v / 1_000_000:.0f}M" if v >= 10_000_000 else f"¥{v / 1_000_000:.1f}M"
        return f"¥{v / 1000:.0f}k" if v >= 100_000 else f"¥{v / 1000:.1f}k"
    if v >= 100_000_000:  # 1.2億, not 12000万
        return f"{v / 100_000_000:.0f}億" if v >= 1_000_000_000 else f"{v / 100_000_000:.1f}億"
    return f"{v / 10_000:.0f}万" if v >= 1_000_000 else f"{v / 10_000:.1f}万"


def axis_yen(v: int, lang: str) -> str:
    """A mark of the value axis: the unit on every mark (¥0, ¥1,000, ¥2,000 … ¥1.5万; in English ¥15k, ¥2.5M), so a
    reader who looks at any mark knows it is yen; at most about six characters, to fit the axis margin."""
    if v < 10_000:
        return f"¥{v:,}"
    if lang == "en":
        if v >= 1_000_000 and v % 100_000 == 0:
            return f"¥{v / 1_000_000:,g}M"
        return f"¥{v / 1_000:,g}k" if v < 1_000_000 and v % 100 == 0 else f"¥{v:,}"
    if v >= 100_000_000 and v % 10_000_000 == 0:
        return f"¥{v / 100_000_000:,g}億"
    return f"¥{v / 10_000:,g}万" if v < 100_000_000 and v % 1_000 == 0 else f"¥{v:,}"


def _pattern(pid: str, i: int) -> str:
    colour, kind = COLOURS[i % len(COLOURS)], PATTERNS[i % len(PATTERNS)]
    ink = "#ffffff" if i % len(COLOURS) in (0, 2, 5, 7) else "#1d2a33"
    marks = {
        "solid": "",
        "diagonal": f'<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="{ink}" stroke-width="1.6"/>',
        "dots": f'<circle cx="4" cy="4" r="1.7" fill="{ink}"/>',
        "cross": f'<path d="M0,0 l8,8 M8,0 l-8,8" stroke="{ink}" stroke-width="1.2"/>',
        "horizontal": f'<path d="M0,4 h8" stroke="{ink}" stroke-width="1.8"/>',
        "vertical": f'<path d="M4,0 v8" stroke="{ink}" stroke-width="1.8"/>',
        "back-diagonal": f'<path d="M-2,6 l4,4 M0,0 l8,8 M6,-2 l4,4" stroke="{ink}" stroke-width="1.6"/>',
        "grid": f'<path d="M0,4 h8 M4,0 v8" stroke="{ink}" stroke-width="1"/>',
    }[kind]
    return (f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{colour}"/>{marks}</pattern>')


def _ticks(top: int) -> list[int]:
    """Round gridline values up to at least ``top`` (4 steps)."""
    if top <= 0:
        return [0, 100, 200, 300, 400]
    raw = top / 4
    mag = 10 ** (len(str(int(raw))) - 1)
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [int(step * k) for k in range(5)]


def stacked_bars(chart_id: str, title: str, labels: list[str], series: list[dict[str, Any]], lang: str,
                 text: Callable[..., str], *, tooltip_labels: list[str] | None = None) -> Markup:
    """Bars per bucket (``labels``), stacked by series (``{"key", "label", "yen": [...], "count": [...]}``).

    ``text`` translates the few words drawn; counts of donations are in ``lang`` (:func:`i18n.ntext`).
    """
    n = max(1, len(labels))
    # The value axis is written on both sides: on a phone the chart opens scrolled to its right end (the newest
    # days), where the left side's marks are out of sight.
    left, right, top, bottom = AXIS, AXIS, 22, 34
    plot_h = 190
    height = top + plot_h + bottom
    plot_w = WIDTH - left - right
    slot = plot_w / n
    bar_w = max(4.0, slot * 0.68)
    totals = [sum(s["yen"][i] for s in series) for i in range(len(labels))]
    counts = [sum(s["count"][i] for s in series) for i in range(len(labels))]
    ticks = _ticks(max(totals or [0]))
    scale = plot_h / ticks[-1]
    grand = sum(totals)
    tips = tooltip_labels or labels
    summary = i18n.ntext("Total %(yen)s, %(count)s donation. Highest: %(max)s on %(when)s.",
                         "Total %(yen)s, %(count)s donations. Highest: %(max)s on %(when)s.", sum(counts), lang,
                         yen=yen(grand), max=yen(max(totals or [0])),
                         when=tips[totals.index(max(totals))] if totals and max(totals) else "–")
    out = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
           f'aria-labelledby="{chart_id}-t {chart_id}-d" data-total-yen="{grand}" data-count="{sum(counts)}" '
           f'xmlns="http://www.w3.org/2000/svg" style="{FONT}">',
           f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(summary)}</desc>',
           "<defs>" + "".join(_pattern(f"{chart_id}-p{i}", i) for i in range(len(series))) + "</defs>"]
    for t in ticks:
        y = top + plot_h - t * scale
        mark = escape(axis_yen(t, lang))
        out.append(f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#d5dbd3" '
                   f'stroke-width="1"/><text class="tick" data-yen="{t}" x="{left - 4}" y="{y + 4:.1f}" '
                   f'font-size="10" text-anchor="end" fill="#5b6770">{mark}</text>'
                   f'<text class="tick" data-yen="{t}" x="{WIDTH - right + 4}" y="{y + 4:.1f}" font-size="10" '
                   f'text-anchor="start" fill="#5b6770" aria-hidden="true">{mark}</text>')
    widest = max((len(label) for label in labels), default=1) * 6 + 6  # px at font-size 10
    step = max(1, -(-widest // int(slot)))  # every label that fits without touching the next
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        out.append(f'<g class="bar" data-bucket="{escape(label)}" data-yen="{totals[i]}" data-count="{counts[i]}">')
        for si, s in enumerate(series):
            v = s["yen"][i]
            if not v:
                continue
            h = v * scale
            y -= h
            gifts = i18n.ntext("%(count)s donation", "%(count)s donations", s["count"][i], lang)
            tip = f"{tips[i]} · {s['label']}: {yen(v)} ({gifts})"
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="url(#{chart_id}-p{si})" stroke="#1d2a33" stroke-width="0.6" '
                       f'data-series="{escape(s["key"])}" data-yen="{v}" data-count="{s["count"][i]}">'
                       f'<title>{escape(tip)}</title></rect>')
        if totals[i]:
            out.append(f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="10" '
                       f'text-anchor="middle" fill="#1d2a33">{escape(compact_yen(totals[i], lang))}</text>')
        out.append("</g>")
        if (n - 1 - i) % step == 0:  # the newest bucket always has its label
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" font-size="10" '
                       f'text-anchor="middle" fill="#5b6770">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def legend(chart_id: str, series: list[dict[str, Any]]) -> Markup:
    """The key of a stacked chart, as HTML under it (it wraps on a phone): pattern, name and total of each
    series. Each swatch defines its own pattern, so the key reads the same wherever the chart scrolls."""
    out = ['<ul class="legend">']
    for i, s in enumerate(series):
        pid = f"{chart_id}-k{i}"
        out.append(f'<li data-series="{escape(s["key"])}" data-yen="{sum(s["yen"])}"><svg width="18" height="14" '
                   f'aria-hidden="true" xmlns="http://www.w3.org/2000/svg"><defs>{_pattern(pid, i)}</defs>'
                   f'<rect width="18" height="14" fill="url(#{pid})" stroke="#1d2a33" stroke-width="0.6"/></svg> '
                   f'<span>{escape(s["label"])} {escape(yen(sum(s["yen"])))}</span></li>')
    out.append("</ul>")
    return Markup("".join(out))


def _glyph_em(ch: str) -> float:
    """A character's advance in ems, near enough for Noto Sans CJK JP / Hiragino: ASCII and half-width kana about
    0.6 (a little less for narrow letters), everything else (kanji, kana, full-width forms) one em."""
    o = ord(ch)
    if o < 0x80:
        return 0.3 if ch in " .,:;'!|ilIjtf()[]" else 0.62
    return 0.55 if 0xFF61 <= o <= 0xFF9F else 1.0


def wrap_label(label: str, width: float, size: float, lines: int = 2) -> list[str]:
    """``label`` in at most ``lines`` lines that each fit ``width`` px at font ``size`` px (SVG text does not
    wrap): a line breaks at its last space if it has one (English), else at any character (Japanese); what does
    not fit in the last line ends in "…". The whole label is in the bar's ``<title>`` and in the table."""
    out: list[str] = []
    rest = label.strip()
    while rest and len(out) < lines:
        used, cut = 0.0, len(rest)
        for i, ch in enumerate(rest):
            used += _glyph_em(ch) * size
            if used > width:
                cut = i
                break
        if cut == len(rest):
            out.append(rest)
            return out
        if len(out) == lines - 1:  # the last line: room for the ellipsis
            while cut > 0 and sum(_glyph_em(c) for c in rest[:cut]) * size + size > width:
                cut -= 1
            out.append(rest[:cut].rstrip() + "…")
            return out
        space = rest.rfind(" ", 0, cut + 1)
        if space > 0:
            cut = space
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return out


def progress_bars(chart_id: str, title: str, items: list[dict[str, Any]], lang: str, text: Callable[..., str]
                  ) -> Markup:
    """One bar per item (``{"key", "label", "total_yen", "goal_yen"}``): the part of its goal given so far,
    with the amounts and the percentage written beside it. An item without a goal shows its total only."""
    row_h, line_h, top, width = 52, 17, 6, PROGRESS_WIDTH
    bar_x, bar_w = 2, width - 4
    # A long project title takes a second line (then "…"), rather than running off the drawing's edge.
    names = [wrap_label(str(it["label"]), bar_w, 13) for it in items]
    height = top + sum(row_h + line_h * (len(n) - 1) for n in names) + (0 if items else row_h) + 4
    out = [f'<svg class="chart progress" id="{chart_id}" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-labelledby="{chart_id}-t" xmlns="http://www.w3.org/2000/svg" style="{FONT}">',
           f'<title id="{chart_id}-t">{escape(title)}</title>',
           "<defs>" + _pattern(f"{chart_id}-done", 1).replace(COLOURS[1], "#3d9a6a") + "</defs>"]
    y = top
    for it, name in zip(items, names, strict=True):
        b = y + line_h * (len(name) - 1)  # the bar's row starts under the name's last line
        total, goal = int(it["total_yen"]), it.get("goal_yen")
        share = min(1.0, total / goal) if goal else None  # the bar's width
        percent = percent_of(total, goal)
        pct = f"{percent}%" if percent is not None else ""
        said = (text(N_("%(total)s of %(goal)s (%(percent)s)"), total=yen(total), goal=yen(goal), percent=pct)
                if goal else yen(total))
        out.append(f'<g class="goal" data-key="{escape(it["key"])}" data-total-yen="{total}" '
                   f'data-goal-yen="{goal or ""}" data-percent="{pct}"><title>{escape(it["label"])}: '
                   f'{escape(said)}</title>'
                   f'<text class="label" x="{bar_x}" y="{y + 13}" font-size="13" fill="#1d2a33">'
                   + "".join(f'<tspan x="{bar_x}" dy="{line_h if k else 0}">{escape(part)}</tspan>'
                             for k, part in enumerate(name)) + "</text>"
                   f'<text x="{bar_x + bar_w}" y="{b + 46}" font-size="12" text-anchor="end" fill="#1d2a33" '
                   f'font-weight="700">{escape(said)}</text>'
                   f'<rect x="{bar_x}" y="{b + 18}" width="{bar_w}" height="14" fill="#ffffff" stroke="#5b6770" '
                   f'stroke-width="1"/>')
        if share:
            out.append(f'<rect x="{bar_x}" y="{b + 18}" width="{bar_w * share:.1f}" height="14" '
                       f'fill="url(#{chart_id}-done)" stroke="#1d2a33" stroke-width="0.6"/>')
        for q in (0.25, 0.5, 0.75):  # quarter marks: the share can be read without the fill's colour
            out.append(f'<line x1="{bar_x + bar_w * q:.1f}" x2="{bar_x + bar_w * q:.1f}" y1="{b + 18}" '
                       f'y2="{b + 32}" stroke="#5b6770" stroke-width="0.8" stroke-dasharray="2,2"/>')
        out.append("</g>")
        y = b + row_h
    out.append("</svg>")
    return Markup("".join(out))
