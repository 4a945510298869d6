"""Altair charts drawn from a cached Vega-Lite spec.

Building an Altair chart and turning it into Vega-Lite (Altair checks every channel
against its schema) takes 30–50 ms a chart, on every run of a page, while the data
behind a chart rarely changes between runs. :func:`altair` builds the chart once for
the same data and arguments and draws the stored spec afterwards; the chart looks the
same as with ``st.altair_chart`` (the same conversion, done by Streamlit's own code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

TTL_SECONDS = 300


def _to_spec(chart: Any) -> dict[str, Any] | None:
    """The Vega-Lite spec ``st.altair_chart`` would draw (datasets included), or None
    when this Streamlit has no such conversion."""
    try:
        from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec
    except ImportError:  # a Streamlit that moved it: draw the chart itself (slower)
        return None
    return dict(_convert_altair_to_vega_lite_spec(chart))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=1000)
def _spec(
    name: str, data: pd.DataFrame, args: tuple[Any, ...], _build: Callable[..., Any]
) -> dict[str, Any] | None:
    return _to_spec(_build(data, *args))


@st.cache_data(ttl=TTL_SECONDS, show_spinner=False, max_entries=200)
def _spec_by_key(key: tuple[Any, ...], _chart: Any) -> dict[str, Any] | None:
    return _to_spec(_chart)


def built(chart: Any, key: tuple[Any, ...] | None, *, container: Any = None, **kwargs: Any) -> None:
    """Draw an Altair ``chart`` already built; ``key`` names it for good (the same key,
    the same chart: e.g. the data folder, generation and arguments of a cached report),
    or None to convert it afresh."""
    where = container or st
    spec = None if key is None else _spec_by_key(key, chart)
    if spec is None:
        where.altair_chart(chart, **kwargs)
    else:
        where.vega_lite_chart(spec, **kwargs)


def altair(
    build: Callable[..., Any],
    data: pd.DataFrame,
    *args: Any,
    container: Any = None,
    **kwargs: Any,
) -> None:
    """Draw ``build(data, *args)`` (an Altair chart) in ``container`` (default: the page).

    ``build`` must be a module-level function whose chart depends only on ``data`` and
    ``args`` (they key the cache, with the function's name); ``kwargs`` go to the chart
    element (``width="stretch"``).
    """
    where = container or st
    # A page's functions all live in "__main__": the file tells two pages' apart.
    code = getattr(build, "__code__", None)
    name = f"{getattr(code, 'co_filename', build.__module__)}:{build.__qualname__}"
    spec = _spec(name, data, tuple(args), build)
    if spec is None:
        where.altair_chart(build(data, *args), **kwargs)
    else:
        where.vega_lite_chart(spec, **kwargs)
