"""HTML tables for the report: one header row, formatted cells (:mod:`engine.fmt`),
a horizontal scroll box for wide tables, negative numbers marked."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine import fmt


def _header_label(c: Any, labels: bool, rf_label: str | None) -> str:
    if isinstance(c, tuple):
        return " / ".join(str(x) for x in c)
    if not labels and str(c) in fmt.HEADER_WORDS:
        return fmt.HEADER_WORDS[str(c)]
    return fmt.label(c, rf_label, readable=labels)


def _index_name(n: Any) -> str:
    """An index name as a header: ``"strategy"`` -> ``"Strategy"``, ``"#"`` as it is."""
    text = "" if n is None else str(n).replace("_", " ")
    return text[:1].upper() + text[1:]


def _index_label(k: Any) -> str:
    if isinstance(k, int | np.integer) and not isinstance(k, bool):
        return str(int(k))
    if isinstance(k, float | np.floating) and float(k).is_integer():
        return str(int(k))
    return fmt.value("", k) if not isinstance(k, str) else k


def table(
    df: pd.DataFrame | None,
    caption: str | None = None,
    *,
    kinds: Mapping[Any, fmt.Kind] | None = None,
    kind: fmt.Kind | None = None,
    by_row: bool = False,
    labels: bool = True,
    index_names: Mapping[Any, str] | None = None,
    note: str | None = None,
    cls: str = "",
) -> str:
    """One formatted table (``kinds``/``kind``/``by_row`` as in :func:`engine.fmt.frame`).

    Row labels of a MultiIndex become leading columns (repeated values left blank); the
    index names head those columns, so there is a single header row. ``index_names`` maps
    row labels to display names (e.g. regime numbers to their labels).
    """
    if df is None or len(df) == 0 or df.shape[1] == 0:
        return '<p class="note">No data.</p>'
    df = fmt.rf0_twins_dropped(df)
    cells = fmt.frame(df, kinds=kinds, kind=kind, by_row=by_row)
    nlev = df.index.nlevels
    names = [_index_name(n) for n in df.index.names]
    head = "".join(f'<th class="ix">{html.escape(n)}</th>' for n in names)
    rf = df.attrs.get("rf_label")
    head += "".join(f"<th>{html.escape(_header_label(c, labels, rf))}</th>" for c in df.columns)
    rows = []
    prev: tuple[Any, ...] = ()
    for i, key in enumerate(df.index):
        key_t = key if isinstance(key, tuple) else (key,)
        tds = []
        for lvl, k in enumerate(key_t):
            same = len(prev) > lvl and prev[: lvl + 1] == key_t[: lvl + 1] and lvl < nlev - 1
            shown = (index_names or {}).get(k, _index_label(k))
            tds.append(f'<td class="ix">{"" if same else html.escape(shown)}</td>')
        prev = key_t
        for j in range(df.shape[1]):
            v = str(cells.iat[i, j])
            neg = v.startswith("-") and v != "-"
            tds.append(f"<td{' class=neg' if neg else ''}>{html.escape(v)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<h3>{html.escape(caption)}</h3>" if caption else ""
    nt = f'<p class="note">{note}</p>' if note else ""
    return (
        f'{cap}<div class="tw {cls}"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{nt}"
    )
