"""The review flow of the web page in a real headless Chromium against a real ``uprm
serve`` with a site taxonomy: the result's segment carries the category and severity its
cause gives; the operator confirms the segment, drags its end on the strip, edits its
cause, marks a missed threat by dragging across the strip, picks its category, saves —
and the store holds exactly that; the page shows the saved review again after a reload;
a second review supersedes the first, which stays in the history."""

from __future__ import annotations

import httpx
import pytest

SITE = """\
name: shop
categories:
  - name: Theft
    description: Someone takes what is not theirs.
    severity: medium
    causes: [a person grabbing a bag]
  - name: Trespassing
    description: Someone climbs over the fence into the yard.
    severity: high
    causes: [a person climbing over the fence]
"""


def strip_x(driver, seconds: float, duration: float) -> float:
    """The offset from the strip's centre (selenium's origin) of a time on it, in pixels."""
    width = driver.execute_script("return document.getElementById('strip').getBoundingClientRect().width")
    return width * seconds / duration - width / 2


def review_rows(driver) -> list[dict]:
    return driver.execute_script("""
        return [...document.querySelectorAll('#review-segments tbody tr')].map((row) => ({
          start: Number(row.querySelector('input.start').value), end: Number(row.querySelector('input.end').value),
          verdict: row.querySelector('select.verdict') ? row.querySelector('select.verdict').value : 'added',
          category: row.querySelector('select.category').value, cause: row.querySelector('input.cause').value,
          shown: row.querySelector('select.category').selectedOptions[0].textContent}));""")


@pytest.fixture(scope="module")
def reviewed(start_server, checkpoint, videos, tmp_path_factory):
    site = tmp_path_factory.mktemp("site") / "site.yaml"
    site.write_text(SITE)
    server = start_server(checkpoint, "--taxonomy", str(site), "--media-root", str(videos["shop"].parent),
                          name="reviewed")
    yield server
    server.stop()


@pytest.mark.slow
def test_review_a_job_in_the_page_and_the_store_holds_it(chrome, reviewed, wait_job, tmp_path, page_tools):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from uprm.serve.store import JobStore

    until, save_screenshot = page_tools["until"], page_tools["save_screenshot"]
    with httpx.Client(base_url=reviewed.url, timeout=30) as client:
        job = client.post("/v1/jobs", json={"path": "shop.mp4"}).json()
        assert wait_job(client, job["id"])["state"] == "done"
        (segment,) = client.get(f"/v1/jobs/{job['id']}/result").json()["segments"]
    assert (segment["start"], segment["end"]) == (12.0, 32.0)
    assert (segment["category"], segment["severity"]) == ("Theft", "medium")  # the site taxonomy, by the cause

    chrome.get(f"{reviewed.url}/#job={job['id']}")
    chrome.get_log("browser")
    until(chrome, "document.querySelectorAll('#review-segments tbody tr').length === 1", 60, "the review table")
    assert review_rows(chrome) == [{"start": 12, "end": 32, "verdict": "", "category": "Theft",
                                    "cause": "a person grabbing a bag", "shown": "Theft (medium)"}]
    options = [o.text for o in Select(chrome.find_element(By.CSS_SELECTOR, "select.category")).options]
    assert options == ["choose…", "Theft (medium)", "Trespassing (high)"]  # the page's labels: the taxonomy's

    chrome.find_element(By.ID, "reviewer").send_keys("alice")
    chrome.find_element(By.ID, "save-review").click()  # not yet: the segment has no verdict
    until(chrome, "!document.getElementById('review-error').hidden", 10, "the page to refuse")
    assert "confirm or reject segment #1" in chrome.find_element(By.ID, "review-error").text

    Select(chrome.find_element(By.CSS_SELECTOR, "select.verdict")).select_by_value("confirmed")
    cause = chrome.find_element(By.CSS_SELECTOR, "#review-segments input.cause")
    cause.clear()
    cause.send_keys("a man snatches a bag")
    end = chrome.find_element(By.CSS_SELECTOR, "#strip button .handle.end")
    strip = chrome.find_element(By.ID, "strip")
    width = strip.size["width"]
    ActionChains(chrome).click_and_hold(end).move_by_offset(round(-4 / 40 * width), 0).release().perform()
    until(chrome, "Math.abs(Number(document.querySelector('#review-segments input.end').value) - 28) < 0.5", 10,
          "the end to follow the drag")

    actions = ActionChains(chrome).move_to_element_with_offset(strip, round(strip_x(chrome, 2.0, 40.0)), 0)
    actions.click_and_hold().move_by_offset(round(4 / 40 * width), 0).release().perform()  # a missed threat, 2-6 s
    until(chrome, "document.querySelectorAll('#review-segments tbody tr').length === 2", 10, "the added segment")
    assert len(chrome.find_elements(By.CSS_SELECTOR, "#strip button.added")) == 1
    added = chrome.find_elements(By.CSS_SELECTOR, "#review-segments tbody tr")[1]
    Select(added.find_element(By.CSS_SELECTOR, "select.category")).select_by_value("Trespassing")
    added.find_element(By.CSS_SELECTOR, "input.cause").send_keys("a person climbing over the fence")
    chrome.find_element(By.ID, "save-review").click()
    until(chrome, "document.getElementById('review-status').textContent.includes('revision 1')", 30, "the save")
    assert "label Theft" in chrome.find_element(By.ID, "review-status").text
    save_screenshot(chrome, tmp_path, "serve-review.png")

    store = JobStore(reviewed.data_dir / "jobs.sqlite3")
    try:
        (saved,) = store.reviews(job["id"])
        assert saved["reviewer"] == "alice"
        missed, confirmed = saved["segments"]  # ordered by start
        assert missed["verdict"] == "added" and missed["category"] == "Trespassing"
        assert missed["cause"] == "a person climbing over the fence"
        assert missed["start"] == pytest.approx(2.0, abs=0.3) and missed["end"] == pytest.approx(6.0, abs=0.3)
        assert confirmed == {"start": 12.0, "end": pytest.approx(28.0, abs=0.5), "category": "Theft",
                             "cause": "a man snatches a bag", "verdict": "confirmed"}

        chrome.refresh()  # the saved review comes back
        until(chrome, "document.querySelectorAll('#review-segments tbody tr').length === 2 && "
                      "document.getElementById('review-status').textContent.includes('revision 1')", 60, "the reload")
        rows = review_rows(chrome)
        assert [(r["verdict"], r["shown"]) for r in rows] == [("added", "Trespassing (high)"),
                                                              ("confirmed", "Theft (medium)")]
        assert rows[1]["end"] == confirmed["end"] and rows[1]["cause"] == "a man snatches a bag"

        chrome.find_elements(By.CSS_SELECTOR, "#review-segments button.remove")[0].click()  # a second look
        Select(chrome.find_element(By.CSS_SELECTOR, "select.verdict")).select_by_value("rejected")
        chrome.find_element(By.ID, "save-review").click()
        until(chrome, "document.getElementById('review-status').textContent.includes('revision 2')", 30, "the resave")
        assert "label Normal" in chrome.find_element(By.ID, "review-status").text
        current, earlier = store.reviews(job["id"])
        assert earlier == saved  # kept in the history
        assert [s["verdict"] for s in current["segments"]] == ["rejected"]
    finally:
        store.close()
    assert page_tools["severe_console_errors"](chrome) == []
