"""Numeric day/month dates (``04/01/1999``, ``31.12.2019``): one order for a whole column.

Left to pandas, ``04/01/1999`` is read month-first (April 1st) and ``13/01/1999`` day-first
(January 13th), element by element: a day-first file then reads as unsorted dates, or —
when no day is above 12, as in a monthly file dated on the 1st — as a *different, sorted*
calendar without any error. :func:`date_order` decides the order once per column from the
values themselves: a first field above 12 means day-first, a second field above 12
month-first; a column with both, or with neither (no value tells), is refused naming a row.
Every reader of timestamps (bar files, exogenous series, risk-free rate files) uses it.
This module is import-light (numpy and pandas only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

_NUMERIC_DATE = r"^\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{2}|\d{4})(?:$|[\sT])"


@dataclass(frozen=True)
class DateOrder:
    """``dayfirst``: True / False, or None when the column is not numeric day/month dates
    (then it is parsed as before); ``problem`` and ``row`` (0-based) when it cannot be read
    unambiguously."""

    dayfirst: bool | None = None
    problem: str | None = None
    row: int = 0


def date_order(values: pd.Series) -> DateOrder:
    """The day/month order of a column of dates (see the module docstring); a column that
    is not text (numbers, datetimes) has none."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values.dtype)):
        return DateOrder()
    text = values.astype("string")
    known = text.dropna()
    if known.empty or not known.iloc[:1].str.match(_NUMERIC_DATE).all():
        return DateOrder()
    parts = text.str.extract(_NUMERIC_DATE)
    first = pd.to_numeric(parts[0], errors="coerce").to_numpy()
    second = pd.to_numeric(parts[2], errors="coerce").to_numpy()
    day_first = first > 12
    month_first = second > 12
    if day_first.any() and month_first.any():
        i, j = int(day_first.argmax()), int(month_first.argmax())
        return DateOrder(
            problem=f"timestamp {values.iloc[max(i, j)]!r} is "
            f"{'month' if j > i else 'day'}-first but an earlier one, "
            f"{values.iloc[min(i, j)]!r}, is {'day' if j > i else 'month'}-first; "
            "write ISO dates (YYYY-MM-DD)",
            row=max(i, j),
        )
    if day_first.any() or month_first.any():
        return DateOrder(dayfirst=bool(day_first.any()))
    i = int(np.flatnonzero(text.notna().to_numpy())[0])
    return DateOrder(
        problem=f"timestamp {values.iloc[i]!r} could be day-first or month-first (no value "
        "in the column has a day above 12 to tell); write ISO dates (YYYY-MM-DD)",
        row=i,
    )


def parse_numeric_dates(values: pd.Series, dayfirst: bool) -> pd.DatetimeIndex:
    """The column read in the one order :func:`date_order` found (unreadable -> NaT)."""
    try:
        ts = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst)
    except (ValueError, TypeError):  # several UTC offsets: the instants, in UTC
        ts = pd.to_datetime(values, errors="coerce", format="mixed", dayfirst=dayfirst, utc=True)
    return pd.DatetimeIndex(ts)


def read_dates(values: pd.Series, order: DateOrder) -> pd.DatetimeIndex:
    """``values`` in the day/month ``order`` :func:`date_order` found, or as pandas reads
    them when they are not numeric day/month dates (unreadable -> NaT)."""
    if order.dayfirst is not None:
        return parse_numeric_dates(values, order.dayfirst)
    return pd.DatetimeIndex(pd.to_datetime(values, errors="coerce"))
