"""The dashboard end to end in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
log in, create a campaign, import leads, start it against the text simulator, watch a call finish,
open its transcript, export CSV. Screenshots go to $SALESBOT_ARTIFACTS_DIR (default: the test's tmp dir)."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.browser

LEADS = ("电话,姓名,公司,caller\n"
         "13800138001,张伟,华星科技,meeting\n"
         "13800138002,李娜,蓝海物流,callback\n"
         "13800138003,王芳,北辰建材,voicemail\n"
         "13800138004,\"=HYPERLINK(\"\"http://evil.example\"\")\",x,no_answer\n"
         "1380013800,坏号码,x,meeting\n")


def _require_browser():
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip("needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
                    "apt-get install -y chromium chromium-driver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("needs selenium (pip install -e '.[dev]')")


class ServerThread:
    """The dashboard on 127.0.0.1:<free port>, in its own thread and event loop (SQLite stays in that thread)."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.port = 0
        self.password = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._run, name="dashboard", daemon=True)

    def __enter__(self):
        self.thread.start()
        if not self.ready.wait(30) or self.error:
            raise RuntimeError(f"the dashboard did not start: {self.error}")
        return self

    def __exit__(self, *exc):
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)

    def _run(self):
        from aiohttp import web

        from edge.config import Config
        from edge.server import build_state, create_app
        from tests.fakes import KeywordClassifier

        self.loop = asyncio.new_event_loop()
        try:
            cfg = Config()
            cfg.data.dir = self.tmp_path / "data"
            cfg.records.database = self.tmp_path / "data" / "calls.db"
            state, fresh = build_state(cfg, classifier=KeywordClassifier(), pace_s=0.4)
            self.password = fresh.password
            runner = web.AppRunner(create_app(state))
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
        except BaseException as exc:  # noqa: BLE001 (reported to the test)
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()


@pytest.fixture
def browser(tmp_path):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look anything up
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", "--lang=zh-CN",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artifacts(tmp_path):
    folder = Path(os.environ.get("SALESBOT_ARTIFACTS_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_manager_runs_a_campaign_in_the_browser(browser, artifacts, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    leads = tmp_path / "客户名单.csv"
    leads.write_bytes(LEADS.encode("gbk"))  # as Excel on Chinese Windows saves it
    started = time.monotonic()
    with ServerThread(tmp_path) as server:
        base = f"http://127.0.0.1:{server.port}"
        browser.get(base + "/live")
        wait.until(ec.url_to_be(base + "/login"))
        browser.find_element(By.ID, "login-password").send_keys(server.password)
        browser.save_screenshot(str(artifacts / "01-login.png"))
        browser.find_element(By.ID, "login-submit").click()
        wait.until(ec.url_to_be(base + "/live"))

        browser.get(base + "/campaigns")
        wait.until(ec.presence_of_element_located((By.ID, "campaigns-table")))
        browser.find_element(By.ID, "campaign-name").send_keys("三月华东")
        browser.find_element(By.ID, "campaign-sender").send_keys("智销云")
        hours = browser.find_element(By.ID, "campaign-hours")
        hours.clear()
        hours.send_keys("mon-sun=00:00-24:00")  # the test runs at any hour
        Select(browser.find_element(By.ID, "campaign-holidays")).select_by_value("none")
        browser.find_element(By.ID, "create-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "campaigns-table"), "三月华东"))
        wait.until(lambda d: Select(d.find_element(By.ID, "import-campaign")).first_selected_option.text == "三月华东")
        browser.find_element(By.ID, "import-file").send_keys(str(leads))
        browser.find_element(By.ID, "import-submit").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "import-summary"), "接受 4 条，拒绝 1 条（GBK）"))
        assert "has 10 digits" in browser.find_element(By.ID, "rejections-table").text
        browser.save_screenshot(str(artifacts / "02-campaign-imported.png"))

        start = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[data-action=start]")))
        start.click()
        browser.get(base + "/live")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "tr.state-talking")))
        browser.save_screenshot(str(artifacts / "03-live-talking.png"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.state-ended")) == 4)
        browser.save_screenshot(str(artifacts / "04-live-ended.png"))

        row = browser.find_element(By.XPATH, "//tr[contains(@class,'state-ended')][contains(., '张伟')]")
        assert "已约演示" in row.text
        row.find_element(By.CSS_SELECTOR, "a.call-link").click()
        transcript = wait.until(ec.presence_of_element_located((By.ID, "transcript")))
        assert transcript.text.startswith("机器人\n您好，这是智销云的智能语音助理来电。")
        assert "我拍板" in transcript.text and "agree_meeting" in transcript.text
        assert "等级\nA\n" in browser.find_element(By.CSS_SELECTOR, "dl.facts").text
        browser.save_screenshot(str(artifacts / "05-call-transcript.png"))

        browser.get(base + "/calls")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#calls-table a.call-link")) == 4)
        browser.save_screenshot(str(artifacts / "06-calls.png"))

        browser.get(base + "/campaigns")
        link = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "a.export-csv")))
        link.click()
        deadline = time.monotonic() + 15
        files: list[Path] = []
        while time.monotonic() < deadline:
            files = [p for p in browser.downloads.iterdir() if p.suffix == ".csv"]
            if files:
                break
            time.sleep(0.1)
        assert files, "the CSV export did not download"
        exported = files[0].read_bytes().decode("utf-8-sig")
        assert exported.startswith("call_id,campaign,") and "'=HYPERLINK" in exported
        assert "13800138001" not in exported and "138****8001" in exported

        browser.get(base + "/roi")
        wait.until(ec.text_to_be_present_in_element((By.ID, "roi-rates"), "接通率"))
        wait.until(lambda d: all(img.get_attribute("naturalWidth") not in (None, "0")
                                 for img in d.find_elements(By.CSS_SELECTOR, ".charts img")))
        browser.save_screenshot(str(artifacts / "07-roi.png"))
    assert time.monotonic() - started < 60
    if os.environ.get("SALESBOT_ARTIFACTS_DIR") is None:
        shutil.copytree(artifacts, tmp_path / "kept", dirs_exist_ok=True)
