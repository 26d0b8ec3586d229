"""The server-drawn trend chart and the periods it is drawn from."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from rebuild.service.config import ServicePaths, init_service
from rebuild.service.store import Store
from rebuild.web import queries
from rebuild.web.charts import trend_svg
from rebuild.web.queries import COULD_NOT_REBUILD, NOT_REPRODUCED, REPRODUCED, Bucket
from tests.unit.web.test_pages import DAY, NOW, add_release

SVG = "{http://www.w3.org/2000/svg}"


def heights(svg: str, css: str) -> list[float]:
    root = ET.fromstring(svg)
    return [float(r.attrib["height"]) for r in root.iter(f"{SVG}rect") if r.attrib.get("class") == css]


def test_no_verdict_yet_is_said_not_drawn() -> None:
    svg = trend_svg([])
    assert "no verdict yet" in svg and "<rect" not in svg
    ET.fromstring(svg)  # well-formed


def test_bars_are_stacked_in_proportion_and_the_rate_is_a_line() -> None:
    buckets = [
        Bucket(0.0, 3600.0, {REPRODUCED: 3, NOT_REPRODUCED: 1, COULD_NOT_REBUILD: 0}),
        Bucket(3600.0, 7200.0, {REPRODUCED: 0, NOT_REPRODUCED: 0, COULD_NOT_REBUILD: 0}),
        Bucket(7200.0, 10800.0, {REPRODUCED: 1, NOT_REPRODUCED: 0, COULD_NOT_REBUILD: 1}),
    ]
    svg = trend_svg(buckets)
    ok, bad, could_not = (heights(svg, c) for c in ("bar-reproduced", "bar-not-reproduced", "bar-could-not"))
    assert len(ok) == 2 and len(bad) == 1 and len(could_not) == 1  # an empty period draws nothing
    assert ok[0] == 3 * bad[0] and ok[1] == could_not[0] == bad[0]
    (line,) = ET.fromstring(svg).iter(f"{SVG}polyline")
    assert len(line.attrib["points"].split()) == 2  # the rate where something finished
    assert "1970-01-01 00:00: 3 reproduced, 1 not reproduced, 0 could not rebuild" in svg
    assert not re.search(r"style=|<script", svg)  # the pages' CSP allows neither


def test_periods_reach_back_to_the_first_verdict(tmp_path: Path) -> None:
    paths = ServicePaths(tmp_path / "data", f"sqlite:///{tmp_path / 'data' / 'service.db'}")
    init_service(paths)
    store = Store.open(paths.db)
    add_release(store, "generic", "a", "1", ["reproduced"], finished=NOW - 10 * DAY)
    add_release(store, "generic", "a", "2", ["not reproduced"], finished=NOW - 2 * DAY)
    add_release(store, "generic", "a", "3", ["reproduced"], finished=NOW - 2 * DAY)
    add_release(store, "generic", "a", "4", [], status="queued")
    trend = queries.overview(store, now=NOW).trend
    store.close()
    assert len(trend) == queries.TREND_BUCKETS and trend[-1].start <= NOW < trend[-1].end
    assert {b.end - b.start for b in trend} == {86400.0}  # ten days: daily periods
    counted = [(b.counts[REPRODUCED], b.counts[NOT_REPRODUCED]) for b in trend if any(b.counts.values())]
    assert counted == [(1, 0), (1, 1)]
