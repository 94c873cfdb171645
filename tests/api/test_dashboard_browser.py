"""The dashboard in a real headless Chromium (Debian's), served by uvicorn, over a real worker
sending to the sandbox: log in, watch a campaign's counts grow without a reload, pause and
resume it from the page, and keep screenshots of what the operator saw."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from stickerq.api import create_app
from stickerq.db import open_sessions
from stickerq.models import Campaign
from stickerq.sandbox import SandboxServer
from stickerq.settings import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"  # ignored by git: the screenshots of the last run
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "dashboard-rw-token-31d5"
RECIPIENTS = 150
RATE = 20.0  # messages per second: the campaign takes ~7 s, time to watch, pause and resume
REFUSED = (5, 70, 130)  # recipients the sandbox answers WA400 once (apart: no WA400 streak)


@pytest.fixture(scope="module")
def chromium_installed() -> None:
    """Debian's chromium and chromedriver, installed by scripts/ensure-chromium.sh (as
    `make test` does through `make browser`); never skipped: without them this fails."""
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure-chromium.sh")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"no browser for the dashboard test: {done.stderr.strip()}", pytrace=False)


@pytest.fixture
def browser(chromium_installed: None, tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespaces for chromium's sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    # The driver's path given: Selenium Manager downloads nothing.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    yield driver
    driver.quit()


@pytest.fixture
def dashboard_settings(pg_database: str, redis_prefix: str, sandbox: SandboxServer) -> Settings:
    sandbox.script({_recipient(n): ["WA400"] for n in REFUSED})
    return make_settings(
        pg_database,
        redis_prefix,
        sandbox.url,
        rate_per_second=RATE,
        batch_size=25,
        in_flight=5,
        api_tokens=f"{TOKEN},dashboard-ro-token-77c1:ro",
    )


@pytest.fixture
def served(dashboard_settings: Settings) -> Iterator[str]:
    """The API (and its dashboard) served for real by uvicorn on a loopback port."""
    config = uvicorn.Config(
        create_app(dashboard_settings), host="127.0.0.1", port=0, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _recipient(n: int) -> str:
    return f"+9198100{n:05d}"


def _text(driver: webdriver.Chrome, css: str) -> str | None:
    """The text of the element now on the page (the board is replaced every poll)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", css
    )


def _number(driver: webdriver.Chrome, css: str) -> int:
    text = _text(driver, css)
    return int(text.replace(",", "")) if text else -1


def _wait(driver: webdriver.Chrome, what: Callable[[], object], timeout: float = 15) -> object:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda _: what())


def _click(driver: webdriver.Chrome, css: str) -> None:
    def clicked() -> bool:
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:  # replaced by a poll meanwhile: again
            return False
        return True

    _wait(driver, clicked)


def _screenshot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(exist_ok=True)
    kept = ARTIFACTS / name
    shutil.copyfile(path, kept)
    print(f"screenshot: {kept} (and {path})")
    return kept


def test_dashboard_shows_a_campaign_live_pauses_resumes_and_requeues_it(
    browser: webdriver.Chrome,
    served: str,
    dashboard_settings: Settings,
    run_worker: Callable[[Settings], None],
    tmp_path: Path,
) -> None:
    run_worker(dashboard_settings)
    browser.get(f"{served}/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    _wait(browser, lambda: browser.current_url == f"{served}/")
    browser.execute_script("window.notReloaded = true;")  # gone if the page ever reloads

    recipients = [_recipient(n) for n in range(RECIPIENTS)]
    created = httpx.post(
        f"{served}/campaigns",
        json={"sticker_id": "798123456789012", "recipients": recipients, "name": "Diwali <b>"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    card = f'article[data-campaign="{campaign_id}"]'
    settled = f"{card} [data-field=settled]"

    # The campaign appears and its counts grow, with no reload.
    first = _wait(browser, lambda: (n := _number(browser, settled)) > 0 and n)
    _wait(browser, lambda: _number(browser, settled) > first)  # type: ignore[operator]
    assert _text(browser, f"{card} .name") == "Diwali <b>"  # shown as text, not markup
    _wait(browser, lambda: "msg/s" in (_text(browser, f"{card} [data-field=rate]") or ""))
    assert browser.execute_script("return window.notReloaded === true;")

    _click(browser, f"{card} button[data-action=pause]")
    _wait(browser, lambda: _text(browser, f"{card} [data-field=status]") == "paused")
    assert "paused" in (_text(browser, "#flash") or "")
    _wait(browser, lambda: _number(browser, f'{card} [data-count="sending"] b') == 0)
    held = _number(browser, settled)
    assert 0 < held < RECIPIENTS
    time.sleep(2.5)  # two polls or more: nothing moves while it is paused
    assert _number(browser, settled) == held
    _screenshot(browser, tmp_path, "dashboard-paused.png")

    _click(browser, f"{card} button[data-action=resume]")
    _wait(browser, lambda: _number(browser, settled) > held)
    _screenshot(browser, tmp_path, "dashboard-running.png")
    status = f"{card} [data-field=status]"
    _wait(browser, lambda: _text(browser, status) == "completed", 30)
    assert _number(browser, settled) == RECIPIENTS
    assert _number(browser, f'{card} [data-count="failed"] b') == len(REFUSED)
    _screenshot(browser, tmp_path, "dashboard-completed.png")

    # The WA400s requeued from the page go again (the sandbox accepts them this time).
    _click(browser, f'{card} tr[data-failure="failed:WA400"] button[data-action=requeue]')
    _wait(browser, lambda: _number(browser, f'{card} [data-count="sent"] b') == RECIPIENTS)
    _wait(browser, lambda: _text(browser, status) == "completed")
    assert "3 failed WA400 message(s) requeued" in (_text(browser, "#flash") or "")
    assert browser.execute_script("return window.notReloaded === true;")

    with open_sessions(dashboard_settings.database_url) as sessions, sessions() as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and campaign.status == "completed"
