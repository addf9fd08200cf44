"""Interactive charts for the report: Plotly figure specs (plain dicts), serialized once
into the page, rendered by plotly.js embedded in the same file (no network).

Long series are thinned for display only (every ``k``-th bar plus the last, so at most
:data:`MAX_POINTS` points a trace); tables and statistics always use every bar. Shared
x-axes (dates) are stored once per page and referenced by the traces (``"@name"``).
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 2600
STRATEGY_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#d62728",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
BENCH_COLOR = "#333333"
#: Red (losses) - white - green (gains), for return heat-maps (zmid = 0).
DIVERGING = [
    [0.0, "#b42318"],
    [0.25, "#f2a49b"],
    [0.5, "#f7f7f7"],
    [0.75, "#8fd0a4"],
    [1.0, "#13803b"],
]
WARMUP_COLOR = "#b0b0b0"
#: Regime hues, calm to crisis (teal, yellow, pink, magenta, violet, ...): away from the
#: blue / orange / green / purple / red of the first strategy lines, so a line never
#: vanishes into the shading behind it.
_REGIME_HUES = ("#2bb5b0", "#f2c80f", "#e78ac3", "#c2185b", "#6a3d9a", "#a6761d", "#66a61e")
_REGIME_PALETTES = {
    1: (0,),
    2: (0, 3),
    3: (0, 1, 3),
    4: (0, 1, 2, 3),
    5: (0, 1, 2, 3, 4),
}
REGIME_ALPHA = 0.2
"""Opacity of the regime shading behind time charts (the warm-up's grey too)."""


def regime_color(k: int, n: int) -> str:
    """Calm teal to crisis magenta for state ``k`` of ``n`` (states are ordered by risk)."""
    if k < 0:
        return WARMUP_COLOR
    pal = _REGIME_PALETTES.get(n, tuple(range(len(_REGIME_HUES))))
    return _REGIME_HUES[pal[k % len(pal)]]


ASSET_COLORS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


def asset_color(i: int) -> str:
    """The colour of the ``i``-th symbol of the panel (the same in every weights chart)."""
    return ASSET_COLORS[i % len(ASSET_COLORS)]


def strategy_color(i: int) -> str:
    """The colour of the ``i``-th strategy (the same in every chart)."""
    return STRATEGY_COLORS[i % len(STRATEGY_COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


class Raw(str):
    """Pre-serialized JSON text (an array of numbers)."""


def numbers(a: Any, digits: int = 5) -> Raw:
    """A float array as compact JSON (``digits`` significant digits, NaN/inf -> null)."""
    v = np.asarray(a, dtype=float).ravel()
    return Raw("[" + ",".join(f"{x:.{digits}g}" if math.isfinite(x) else "null" for x in v) + "]")


def _dump(obj: Any) -> str:
    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_dump(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(_dump(v) for v in obj) + "]"
    if isinstance(obj, float | np.floating):
        f = float(obj)
        return json.dumps(f) if math.isfinite(f) else "null"
    if isinstance(obj, np.integer):
        return str(int(obj))
    if isinstance(obj, pd.Timestamp):
        return json.dumps(f"{obj:%Y-%m-%d}")
    return json.dumps(obj)


def display_rows(n: int, keep: Sequence[int] = ()) -> np.ndarray:
    """Row positions kept for display: every ``k``-th bar, the last, and the rows in
    ``keep`` (e.g. drawdown troughs, so the chart reaches the depth the table prints)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    k = math.ceil(n / MAX_POINTS)
    rows = np.r_[np.arange(0, n, k), n - 1, np.asarray(keep, dtype=np.int64)]
    return np.unique(rows[(rows >= 0) & (rows < n)])


@dataclass
class Page:
    """The charts of one page and the shared x arrays they reference."""

    axes: dict[str, Raw] = field(default_factory=dict)
    specs: list[str] = field(default_factory=list)
    thinned: bool = False
    daily: dict[str, bool] = field(default_factory=dict)

    def dates(self, index: pd.Index, keep: Sequence[int] = ()) -> tuple[str, np.ndarray]:
        """Register a date axis (thinned for display, ``keep`` rows always shown); returns
        its key and row positions."""
        rows = display_rows(len(index), keep)
        self.thinned |= len(rows) < len(index)
        key = f"d{len(index)}_{index[0]:%Y%m%d}_{index[-1]:%Y%m%d}" if len(index) else "d0"
        if len(rows) < len(index) and len(keep):
            key += "_" + format(zlib.crc32(rows.tobytes()), "x")
        if key not in self.axes:
            daily = bool(
                len(index) == 0
                or (pd.DatetimeIndex(index) == pd.DatetimeIndex(index).normalize()).all()
            )
            f = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
            self.axes[key] = Raw(json.dumps([f"{t:{f}}" for t in index[rows]]))
            self.daily["@" + key] = daily
        return "@" + key, rows

    def chart(
        self,
        traces: list[dict[str, Any]],
        layout: dict[str, Any],
        height: int = 380,
        chart_id: str | None = None,
    ) -> str:
        """A chart's placeholder ``<div>``; its spec goes into the page's script."""
        cid = chart_id or f"chart{len(self.specs)}"
        base: dict[str, Any] = {
            "height": height,
            "margin": {"l": 70, "r": 20, "t": 30, "b": 40},
            "font": {"family": "-apple-system,Segoe UI,Helvetica,Arial,sans-serif", "size": 12},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "hovermode": "x unified",
            "legend": {
                "orientation": "h",
                "x": 0,
                "y": 1.0,
                "yanchor": "bottom",
                "traceorder": "normal",
            },
            "xaxis": {"showgrid": True, "gridcolor": "#eee", "zeroline": False},
            "yaxis": {"showgrid": True, "gridcolor": "#eee", "zerolinecolor": "#bbb"},
        }
        refs = {str(t["x"]) for t in traces if isinstance(t.get("x"), str)}
        if refs & set(self.daily):  # dates on x: hover shows the day, not "Jan 3, 2008"
            daily = all(self.daily.get(r, True) for r in refs)
            base["xaxis"]["hoverformat"] = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
        for k, v in layout.items():
            if isinstance(v, dict) and isinstance(base.get(k), dict):
                base[k] = {**base[k], **v}
            else:
                base[k] = v
        self.specs.append(_dump({"id": cid, "data": traces, "layout": base}))
        return (
            f'<div class="chart" id="{cid}" style="height:{height}px">'
            '<noscript><p class="note">Interactive chart: needs JavaScript.</p></noscript>'
            "</div>"
        )

    def script(self, plotly_js: str | None) -> str:
        """The page's scripts: plotly.js (once, gzip-compressed: :func:`packed_js`), the
        shared axes, the specs, the loader (``reportDraw``) and the unpacker that runs it."""
        lib = (
            f'<script id="{PACKED_ID}" type="application/gzip;base64">{packed_js(plotly_js)}'
            "</script>"
            if plotly_js
            else ""
        )
        axes = "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in self.axes.items()) + "}"
        return (
            lib
            + "<script>\nvar REPORT_AXES="
            + axes
            + ";\nvar REPORT_SPECS=["
            + ",\n".join(self.specs)
            + "];\n"
            + LOADER
            + UNPACK
            + "</script>"
        )


PACKED_ID = "plotly-gz"


@functools.lru_cache(maxsize=2)
def packed_js(js: str) -> str:
    """``js`` gzip-compressed and base64-encoded (plotly.js: 4.8 MB -> 2.0 MB), inflated in
    the browser by ``DecompressionStream`` (no network, no library)."""
    return base64.b64encode(gzip.compress(js.encode("utf-8"), 9, mtime=0)).decode("ascii")


def unpacked_js(page: str) -> str | None:
    """The plotly.js embedded in a report page (None when the page has none)."""
    m = re.search(rf'<script id="{PACKED_ID}"[^>]*>([^<]*)</script>', page)
    return gzip.decompress(base64.b64decode(m.group(1))).decode("utf-8") if m else None


#: Counts script errors into ``<html data-js-errors>`` (read by the browser test).
ERROR_HOOK = (
    "<script>window.REPORT_ERRORS=0;function reportError(){window.REPORT_ERRORS++;"
    "document.documentElement.setAttribute('data-js-errors',window.REPORT_ERRORS);}"
    "window.addEventListener('error',reportError);"
    "window.addEventListener('unhandledrejection',reportError);</script>"
)

LOADER = """
function reportDraw(){
  var ok = typeof window.Plotly !== 'undefined';
  var cfg = {responsive: true, displaylogo: false, showLink: false, showSendToCloud: false,
             modeBarButtonsToRemove: ['lasso2d', 'select2d'],
             // on a phone the modebar would cover the legend (drag/pinch still zoom)
             displayModeBar: window.innerWidth < 640 ? false : 'hover'};
  document.body.setAttribute('data-plotly', ok ? Plotly.version : 'missing');
  var timeCharts = [];
  function drawOne(s){
    var el = document.getElementById(s.id);
    if (!ok) { el.style.height = 'auto';
      el.innerHTML = '<p class="note">Interactive chart unavailable: plotly.js did not load.</p>';
      return; }
    var dated = false;
    s.data.forEach(function(t){ ['x', 'y'].forEach(function(k){
      if (typeof t[k] === 'string' && t[k].charAt(0) === '@') {
        dated = dated || k === 'x'; t[k] = REPORT_AXES[t[k].slice(1)]; }
    }); });
    var fixed = {};  // y-axes the spec gives a range (Plotly writes autoranges back)
    Object.keys(s.layout).forEach(function(k){
      if (k.slice(0, 5) === 'yaxis' && s.layout[k] && s.layout[k].range) fixed[k] = true; });
    el._reportFixed = fixed;
    try { Plotly.newPlot(el, s.data, s.layout, cfg); if (dated) timeCharts.push(el); }
    catch (e) { reportError(); console.error('chart ' + s.id + ': ' + e); }
  }
  // charts in page order, yielding to the browser every ~50 ms (the page scrolls while
  // the lower charts draw); the zoom sync is wired once all are drawn
  var next = 0;
  (function drawSome(){
    var t0 = Date.now();
    while (next < REPORT_SPECS.length) {
      drawOne(REPORT_SPECS[next++]);
      if (next === 1 && window.performance && performance.mark)
        performance.mark('report-first-chart');
      if (Date.now() - t0 > 50) { setTimeout(drawSome, 0); return; }
    }
    finish();
  })();
  // y-ranges fitted to the bars in view: {'yaxis.range': [lo, hi], ...} for the x-range
  // [a, b] (date strings; null = autorange). Axes with a fixed range or stacked traces
  // keep theirs; filled areas and bars keep 0 in view.
  function iso(v){
    return typeof v === 'number' ? new Date(v).toISOString().replace('T', ' ') : String(v); }
  function fitY(el, a, b){
    var out = {}, ext = {}, spec = el._reportFixed || {};
    el.data.forEach(function(t){
      if (t.visible === 'legendonly' || t.visible === false || !t.x || !t.y) return;
      var ax = 'yaxis' + (t.yaxis && t.yaxis !== 'y' ? t.yaxis.slice(1) : '');
      if (spec[ax] || t.stackgroup || ext[ax] === false) { ext[ax] = false; return; }
      var e = ext[ax] || [Infinity, -Infinity];
      if (t.fill === 'tozeroy' || t.type === 'bar') {
        e[0] = Math.min(e[0], 0); e[1] = Math.max(e[1], 0); }
      for (var i = 0; i < t.x.length; i++) {
        var x = t.x[i], y = t.y[i];
        if (y === null || y === undefined || !isFinite(y)) continue;
        if (a !== null && (String(x) < a || String(x) > b)) continue;
        if (y < e[0]) e[0] = y; if (y > e[1]) e[1] = y;
      }
      ext[ax] = e;
    });
    Object.keys(ext).forEach(function(ax){
      var e = ext[ax], lay = el._fullLayout[ax];
      if (!e || !lay) return;
      if (a === null || !(e[1] >= e[0])) { out[ax + '.autorange'] = true; return; }
      var log = lay.type === 'log';
      var lo = log ? Math.log10(Math.max(e[0], 1e-12)) : e[0];
      var hi = log ? Math.log10(Math.max(e[1], 1e-12)) : e[1];
      var pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
      out[ax + '.range'] = [lo - pad, hi + pad];
    });
    return out;
  }
  // zooming one time-series chart zooms them all (double-click resets them all), and
  // every zoomed chart's y-axes fit the bars in view
  function finish(){
  var syncing = false;
  timeCharts.forEach(function(el){
    el.on('plotly_relayout', function(ev){
      if (syncing) return;
      var upd = null, a = null, b = null;
      if (ev['xaxis.range[0]'] !== undefined) {
        a = iso(ev['xaxis.range[0]']); b = iso(ev['xaxis.range[1]']);
      } else if (ev['xaxis.range'] !== undefined) {
        a = iso(ev['xaxis.range'][0]); b = iso(ev['xaxis.range'][1]);
      } else if (!ev['xaxis.autorange']) return;
      upd = a === null ? {'xaxis.autorange': true} : {'xaxis.range': [a, b]};
      syncing = true;
      Promise.all(timeCharts.map(function(o){
        var u = Object.assign(o === el ? {} : Object.assign({}, upd), fitY(o, a, b));
        return Object.keys(u).length ? Plotly.relayout(o, u) : null;
      })).then(function(){ syncing = false; }, function(){ syncing = false; });
    });
  });
  document.documentElement.setAttribute('data-js-errors', window.REPORT_ERRORS || 0);
  document.documentElement.setAttribute('data-charts', REPORT_SPECS.length);
  if (window.performance && performance.mark) performance.mark('report-charts');
  }
}
"""

#: Inflates the packed plotly.js, runs it, then draws the charts (``reportDraw``); without
#: a packed library (or a browser without ``DecompressionStream``) the charts say why.
UNPACK = """
(function(){
  var el = document.getElementById('plotly-gz');
  if (!el || typeof DecompressionStream === 'undefined') { reportDraw(); return; }
  function fail(e){ reportError(); console.error('plotly.js: ' + e); reportDraw(); }
  try {
    var bin = atob(el.textContent), a = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
    var gz = new Blob([a]).stream().pipeThrough(new DecompressionStream('gzip'));
    new Response(gz).text().then(function(src){
      var s = document.createElement('script');
      s.textContent = src;
      document.head.appendChild(s);
      reportDraw();
    }, fail);
  } catch (e) { fail(e); }
})();
"""


def plotly_js() -> str | None:
    """The plotly.js bundle shipped with the ``plotly`` package, or None if missing."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return None
    return str(get_plotlyjs())


def regime_shapes(states: pd.Series, n_states: int) -> list[dict[str, Any]]:
    """Background rectangles, one per run of the filtered state (warm-up included)."""
    v = states.to_numpy()
    if v.size == 0:
        return []
    idx = states.index
    change = np.flatnonzero(np.diff(v) != 0) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, v.size]
    out = []
    for a, b in zip(starts, ends):
        k = int(v[a])
        x1 = idx[b] if b < v.size else idx[-1]
        out.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": f"{idx[a]:%Y-%m-%d}",
                "x1": f"{x1:%Y-%m-%d}",
                "y0": 0,
                "y1": 1,
                "fillcolor": _rgba(regime_color(k, n_states), REGIME_ALPHA),
                "line": {"width": 0},
                "layer": "below",
            }
        )
    return out


def regime_legend(names: dict[int, str], n_states: int, present: set[int]) -> list[dict]:
    """Legend-only traces naming the shading colours."""
    out = []
    for k in sorted(present):
        out.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "markers",
                "marker": {"symbol": "square", "size": 12, "color": regime_color(k, n_states)},
                "name": "warm-up" if k < 0 else f"regime {names.get(k, str(k))}",
                "legendgroup": "regimes",
                "hoverinfo": "skip",
            }
        )
    return out


def line(
    x: str,
    y: Any,
    name: str,
    color: str,
    *,
    yaxis: str = "y",
    dash: str | None = None,
    width: float = 1.4,
    hover: str = ".2%",
    showlegend: bool = True,
    fill: str | None = None,
    group: str | None = None,
    digits: int = 5,
) -> dict[str, Any]:
    """A time-series trace (``hover``: d3 format of the value in the tooltip; ``digits``
    significant digits kept, 5 by default: exact for a ``.2%`` or ``.2f`` hover)."""
    t: dict[str, Any] = {
        "type": "scatter",
        "mode": "lines",
        "x": x,
        "y": numbers(y, digits),
        "name": name,
        "yaxis": yaxis,
        "line": {"color": color, "width": width, **({"dash": dash} if dash else {})},
        "hovertemplate": f"%{{y:{hover}}}",
        "showlegend": showlegend,
        "legendgroup": group or name,
    }
    if fill:
        t["fill"] = fill
        t["fillcolor"] = _rgba(color, 0.25)
    return t


def stacked(layout: dict[str, Any], rows: list[tuple[str, float]], gap: float = 0.06) -> None:
    """Stack y-axes top to bottom (``rows`` = [(title, relative height)]) on one x-axis."""
    total = sum(h for _, h in rows)
    top = 1.0
    usable = 1.0 - gap * (len(rows) - 1)
    for i, (title, h) in enumerate(rows):
        span = usable * h / total
        key = "yaxis" if i == 0 else f"yaxis{i + 1}"
        layout[key] = {
            **layout.get(key, {}),
            "domain": [max(top - span, 0.0), top],
            "title": {"text": title},
            "showgrid": True,
            "gridcolor": "#eee",
            "zerolinecolor": "#bbb",
        }
        top -= span + gap
    layout["xaxis"] = {
        **layout.get("xaxis", {}),
        "anchor": f"y{len(rows)}" if len(rows) > 1 else "y",
    }
    for i in range(2, len(rows) + 1):
        layout[f"yaxis{i}"]["anchor"] = "x"
