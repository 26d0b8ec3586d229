"""The dashboard in a real browser: headless Chromium against `rebuild serve`, over a store a real run filled.

A person's walk: the overview, the package, the release that did not reproduce (its explanation and the
quoted changed line), its log; a screenshot of each page is written (the path is printed). A package name
that is markup, written straight into the store, shows as text and runs nothing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rebuild.service.models import DONE, Job, Target
from rebuild.service.store import Store
from tests.integration.web.conftest import Served

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("no_leftover_containers")]
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


def shot(browser: Any, served: Served, name: str) -> Path:
    path = served.screenshots / f"{name}.png"
    assert browser.save_screenshot(str(path)), f"no screenshot of {name}"
    assert path.stat().st_size > 1000
    return path


def test_overview_to_package_to_release_to_log(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/")
    assert browser.title == "Overview · rebuild-verifier"
    counts = browser.find_element(By.ID, "counts").text
    assert "generic 1 1 0 0 50.0%" in counts  # clock 1 reproduced, clock 2 not: rate 1 of 2
    regressions = browser.find_element(By.ID, "regressions").text
    assert "generic clock 2" in regressions and "None." not in regressions  # 2 fails where 1 reproduced
    assert browser.find_elements(By.CSS_SELECTOR, "svg.trend rect.bar-reproduced")
    assert browser.find_elements(By.TAG_NAME, "script") == []
    shot(browser, served, "1-overview")

    browser.find_element(By.CSS_SELECTOR, "#recent a.package").click()
    assert browser.find_element(By.ID, "package-name").text == "clock"
    versions = [row.text.split()[:3] for row in browser.find_elements(By.CSS_SELECTOR, "#versions tbody tr")]
    assert versions == [["2", "not", "reproduced"], ["1", "reproduced", "1"]]  # newest first, each verdict
    shot(browser, served, "2-package")

    browser.find_element(By.LINK_TEXT, "2").click()
    assert browser.find_element(By.ID, "verdict").text == "not reproduced"
    explanation = browser.find_element(By.CSS_SELECTOR, ".explanation").text
    assert "clock-2.tar" in explanation and "clock/stamp.txt" in explanation and "content" in explanation
    quoted = browser.find_element(By.CSS_SELECTOR, "blockquote.quoted").text
    assert quoted == "line 1: 'built at 11:00' -> 'built at 10:00'"  # published, then rebuilt
    attempts = browser.find_elements(By.CSS_SELECTOR, "table.attempts tr[id^=attempt-]")
    assert len(attempts) == 2  # "not reproduced" is checked twice
    assert browser.find_elements(By.CSS_SELECTOR, "a.attestation")  # the FAILED summary publish signed
    assert browser.find_elements(By.CSS_SELECTOR, "a.diffoscope")
    shot(browser, served, "3-release")

    browser.find_element(By.CSS_SELECTOR, "a.diffoscope").click()
    assert "stamp.txt" in browser.page_source  # diffoscope's own report, sandboxed
    browser.back()
    browser.find_element(By.CSS_SELECTOR, "a.log").click()
    assert browser.title.startswith("Log of attempt")
    assert "Page 1 of 1" in browser.find_element(By.ID, "pager").text
    assert browser.find_element(By.ID, "log").text.strip()
    shot(browser, served, "4-log")


def test_a_package_name_that_is_markup_shows_as_text(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    store = Store.open(f"sqlite:///{served.data / 'service.db'}")
    now = time.time()
    with store.session() as s:  # a hostile row, as a compromised intake or a shared database could write it
        target = Target(target="generic:hostile", ecosystem="generic", name=HOSTILE, version="1", created_at=now)
        s.add(target)
        s.flush()
        s.add(Job(key="e" * 64, target_id=target.id, status=DONE, tags="", decided_by="{}", round=1, not_before=0.0,
                  verdict="reproduced", detail=HOSTILE, created_at=now, updated_at=now, finished_at=now))  # fmt: skip
        target_id = target.id
    store.close()
    titles = {
        f"/packages/generic/{quote(HOSTILE, safe='')}": f"generic {HOSTILE} · rebuild-verifier",
        f"/releases/{target_id}": f"generic {HOSTILE} 1 · rebuild-verifier",
        "/": "Overview · rebuild-verifier",
    }
    for url, title in titles.items():
        browser.get(served.url + url)
        assert browser.title == title, url  # the payload would have set it to "pwned"
        assert browser.find_elements(By.TAG_NAME, "script") == [] and browser.find_elements(By.TAG_NAME, "img") == []
        assert HOSTILE in browser.find_element(By.TAG_NAME, "main").text, url
    browser.get(served.url + f"/packages/generic/{quote(HOSTILE, safe='')}")
    assert browser.find_element(By.ID, "package-name").text == HOSTILE
    shot(browser, served, "5-hostile-name")


def test_a_missing_release_is_a_404_page(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By

    browser.get(served.url + "/releases/424242")
    assert browser.find_element(By.ID, "error-status").text == "404"
    assert "Traceback" not in browser.page_source
