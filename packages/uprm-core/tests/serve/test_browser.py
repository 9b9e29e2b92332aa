"""The web page in a real headless Chromium against a real ``uprm serve``: upload a
synthetic threat video, follow the job, see the segments, expert weights and timeline,
click a segment and watch the player seek there; choose a server-side video; sign in to
a server with a token (the player and pictures load through the session cookie)."""

from __future__ import annotations

import pytest

CAUSE = "a person grabbing a bag"


def open_page(driver, url: str) -> None:
    driver.get(url + "/")
    driver.get_log("browser")  # start from a clean console


@pytest.mark.slow
def test_upload_follow_see_the_segments_and_seek(chrome, served, videos, tmp_path, page_tools):
    from selenium.webdriver.common.by import By

    until, save_screenshot, severe_console_errors = (page_tools[k] for k in ("until", "save_screenshot",
                                                                             "severe_console_errors"))
    open_page(chrome, served.url)
    until(chrome, "document.getElementById('health').textContent === 'model ready'", 60, "the model to be ready")
    assert not chrome.find_element(By.ID, "login").is_displayed() and not chrome.find_element(By.ID, "result").is_displayed()
    chrome.find_element(By.ID, "file").send_keys(str(videos["shop"]))
    chrome.find_element(By.ID, "upload").click()
    until(chrome, "document.getElementById('job').dataset.state === 'done' && "
                  "document.querySelectorAll('#segments tbody tr').length > 0", what="the job's result")
    assert chrome.find_element(By.ID, "progress-text").text == "9 / 9 windows"
    assert chrome.find_element(By.ID, "state").text == "done"
    rows = chrome.find_elements(By.CSS_SELECTOR, "#segments tbody tr")
    assert len(rows) == 1
    cells = [c.text for c in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[:2] == ["1", "0:12.0 – 0:32.0"] and cells[3] == CAUSE and float(cells[2]) > 0.5
    assert "coarse" in cells[4]  # the router's weights, one bar per expert
    weights = rows[0].find_elements(By.CSS_SELECTOR, ".weights .bar")
    assert len(weights) >= 1
    until(chrome, "document.getElementById('timeline').complete && "
                  "document.getElementById('timeline').naturalWidth > 0", 60, "the timeline picture")
    assert len(chrome.find_elements(By.CSS_SELECTOR, "#strip button")) == 1
    until(chrome, "document.getElementById('player').readyState >= 1", 60, "the video's metadata")
    assert chrome.execute_script("return document.getElementById('player').duration") == pytest.approx(40, abs=0.6)

    rows[0].click()  # the player jumps to the segment
    until(chrome, "Math.abs(document.getElementById('player').currentTime - 12) < 0.3 && "
                  "!document.getElementById('player').seeking", 30, "the player to seek to 12 s")
    assert "active" in rows[0].get_attribute("class")
    chrome.execute_script("document.getElementById('player').currentTime = 1")
    until(chrome, "document.getElementById('player').currentTime < 2", 10)
    chrome.find_element(By.CSS_SELECTOR, "#strip button").click()  # the strip seeks too
    until(chrome, "Math.abs(document.getElementById('player').currentTime - 12) < 0.3", 30, "the strip's seek")
    shot = save_screenshot(chrome, tmp_path, "serve-page.png")
    assert shot.stat().st_size > 10_000
    assert severe_console_errors(chrome) == []


@pytest.mark.slow
def test_choose_a_video_on_the_server(chrome, served, page_tools):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    until, severe_console_errors = page_tools["until"], page_tools["severe_console_errors"]
    open_page(chrome, served.url)
    until(chrome, "!document.getElementById('media-form').hidden", 60, "the media list")
    Select(chrome.find_element(By.ID, "media")).select_by_visible_text("quiet.mp4")
    chrome.find_element(By.ID, "choose").click()
    until(chrome, "document.getElementById('result').hidden === false && "
                  "!document.getElementById('no-segments').hidden", what="the quiet video's result")
    assert chrome.find_element(By.ID, "job-name").text == "quiet.mp4"
    assert "0 threat segment(s)" in chrome.find_element(By.ID, "summary").text
    assert "quiet.mp4" in chrome.find_element(By.ID, "jobs").text
    assert severe_console_errors(chrome) == []


@pytest.mark.slow
def test_sign_in_then_the_player_and_pictures_load_through_the_cookie(chrome, guarded, videos, tmp_path, page_tools):
    from selenium.webdriver.common.by import By

    until, save_screenshot, severe_console_errors = (page_tools[k] for k in ("until", "save_screenshot",
                                                                             "severe_console_errors"))
    open_page(chrome, guarded.url)
    until(chrome, "!document.getElementById('login').hidden", 30, "the sign-in form")
    chrome.find_element(By.ID, "token").send_keys("wrong-token")
    chrome.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(chrome, "!document.getElementById('login-error').hidden", 30, "the refusal")
    token = chrome.find_element(By.ID, "token")
    token.clear()
    token.send_keys(guarded.token)
    chrome.find_element(By.CSS_SELECTOR, "#login-form button").click()
    until(chrome, "document.getElementById('login').hidden", 30, "signing in")
    assert all(c["name"] != "token" and guarded.token not in c["value"] for c in chrome.get_cookies())
    assert not chrome.find_element(By.ID, "media-form").is_displayed()  # this server has no media root
    chrome.find_element(By.ID, "file").send_keys(str(videos["shop"]))
    chrome.find_element(By.ID, "upload").click()
    until(chrome, "document.querySelectorAll('#segments tbody tr').length > 0", what="the result")
    until(chrome, "document.getElementById('player').readyState >= 1 && "
                  "document.getElementById('timeline').naturalWidth > 0", 60, "the video and timeline via the cookie")
    chrome.find_element(By.CSS_SELECTOR, "#segments tbody tr").click()
    until(chrome, "Math.abs(document.getElementById('player').currentTime - 12) < 0.3", 30, "the seek")
    save_screenshot(chrome, tmp_path, "serve-page-signed-in.png")
    # the console shows the expected 401s before signing in, nothing else
    assert all("401" in m for m in severe_console_errors(chrome))
