"""The `/dashboard` UI in a real headless browser (Chromium driven by Selenium).

The real wharf binary runs against the `mockwa` mock WhatsApp network. Chromium opens
the dashboard with its Basic-auth login, the API key is typed in, a session is created
from the page, its QR image appears, the QR is scanned through mockwa's admin API, and
the page must show WORKING by itself (from the `/ws` event stream, no reload). A second
session is then paired by phone code from the page, and the test-message form sends
from the first to the second, whose `message` event must appear in the event monitor; a
webhook dead letter is replayed, and a session stopped and deleted from the page.
Screenshots of both moments go to `compat-tests/artifacts/` (`WHARF_TEST_ARTIFACTS`).

Chromium and chromedriver come from Debian (`apt-get install chromium chromium-driver`,
done by `.ci/run`). Without them the test is skipped, unless `WHARF_REQUIRE_BROWSER=1`
or `CI` is set: then a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import free_port
from test_groups import mockwa  # noqa: F401  (a fixture)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("WHARF_TEST_ARTIFACTS") or REPO / "compat-tests" / "artifacts")
PHONE, PHONE2 = "15550009999", "15550008888"
USER, PASSWORD = "ops", "dashboard-pass-8f3b2c"


def _browser_or_skip() -> tuple[str, str]:
    chromium = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("CHROMEDRIVER_BIN") or shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing = "the Python package selenium (compat-tests/python/requirements.txt)"
    else:
        missing = None
    if not chromium:
        missing = "chromium (apt-get install chromium)"
    elif not driver:
        missing = "chromedriver (apt-get install chromium-driver)"
    if missing:
        msg = f"browser test needs {missing}"
        if os.environ.get("WHARF_REQUIRE_BROWSER") == "1" or os.environ.get("CI"):
            pytest.fail(msg + " (WHARF_REQUIRE_BROWSER=1 or CI: required here)", pytrace=False)
        pytest.skip(msg)
    return chromium, driver


@pytest.fixture
def browser():
    chromium, driver_bin = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager must not try to download anything (no internet).
    os.environ["SE_OFFLINE"] = "true"
    profile = tempfile.mkdtemp(prefix="wharf-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",  # root in CI containers
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1700",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def embedded_only(store):
    """Set up before the server: the mongo case is skipped without starting anything."""
    if store != "embedded":
        pytest.skip("the browser test runs once, on the embedded store (the page does not depend on the store)")


def test_generated_password_is_logged_and_opens_the_dashboard(embedded_only, start_server):
    """No (or a weak) WAHA_DASHBOARD_PASSWORD: wharf makes one up and prints it at start."""
    server = start_server(WAHA_DASHBOARD_PASSWORD="admin")
    logs = server.logs()
    found = re.findall(r"WAHA_DASHBOARD_PASSWORD=([0-9a-f]{32})", logs)
    assert len(found) == 1, logs
    assert f"dashboard: http://127.0.0.1:{server.port}/dashboard" in logs, logs
    assert requests.get(server.url("/dashboard"), auth=("admin", "admin"), timeout=10).status_code == 401
    r = requests.get(server.url("/dashboard"), auth=("admin", found[0]), timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"), r.headers


def _shot(drv, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    assert drv.save_screenshot(str(path)), f"screenshot {path} not written"
    assert path.stat().st_size > 1000
    return path


def test_dashboard_login_pair_and_live_status(embedded_only, start_server, mockwa, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    server = start_server(
        WHARF_WA_URL=f"ws://{mockwa}/ws/chat",
        WAHA_DASHBOARD_USERNAME=USER,
        WAHA_DASHBOARD_PASSWORD=PASSWORD,
    )
    # The login is required: no credentials, wrong ones → 401 with a Basic challenge.
    r = requests.get(server.url("/dashboard"), timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic "), r.headers
    assert requests.get(server.url("/dashboard"), auth=(USER, "wrong"), timeout=10).status_code == 401

    drv = browser
    waiter = WebDriverWait(drv, 45, poll_frequency=0.1)

    class _Wait:
        """WebDriverWait that reports the page's state when it times out."""

        def until(self, cond, what: str = "condition"):
            from selenium.common.exceptions import TimeoutException

            try:
                return waiter.until(cond)
            except TimeoutException:
                state = drv.execute_script(
                    "return {connection: document.getElementById('connection').textContent,"
                    " error: document.getElementById('error').textContent,"
                    " status: document.getElementById('detail-status').textContent}"
                )
                try:
                    console = drv.get_log("browser")
                except Exception as e:  # noqa: BLE001 (diagnostics only)
                    console = repr(e)
                _shot(drv, "dashboard-failure.png")
                pytest.fail(f"timed out waiting for {what}; page: {state}; console: {console}", pytrace=False)

    wait = _Wait()

    def click(css: str, what: str) -> None:
        """Clicks `css` once it exists, again if the page re-rendered it meanwhile."""
        from selenium.common.exceptions import StaleElementReferenceException

        def attempt(d):
            try:
                found = d.find_elements(By.CSS_SELECTOR, css)
                if found:
                    found[0].click()
                    return True
            except StaleElementReferenceException:
                pass
            return False

        wait.until(attempt, what)
    drv.get(f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/dashboard")
    assert drv.title == "wharf dashboard"
    key = wait.until(lambda d: d.find_element(By.ID, "api-key"))
    key.send_keys(server.api_key)
    drv.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "connection").text == "Connected: live events on", "the /ws connection")
    # Not a cluster: no Worker column.
    assert not drv.find_element(By.CSS_SELECTOR, "#sessions th.worker").is_displayed()
    # A marker that a reload would wipe out.
    drv.execute_script("window.__wharfNoReload = 'still here'")

    drv.find_element(By.ID, "new-session").send_keys("dash")
    drv.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()

    # The QR image: loaded (decoded pixels), and the code it shows is the session's current one.
    def qr_shown(d):
        img = d.find_element(By.ID, "qr")
        ok = img.is_displayed() and d.execute_script(
            "const i = arguments[0]; return i.complete && i.naturalWidth > 100 && i.src.startsWith('blob:')", img
        )
        return img.get_attribute("data-qr") if ok else None

    shown = wait.until(qr_shown)
    raw = server.get("/api/dash/auth/qr", params={"format": "raw"}).json()["value"]
    assert shown == raw, "the page shows a QR code other than the session's current one"
    assert drv.find_element(By.ID, "detail-status").text == "SCAN_QR_CODE"
    _shot(drv, "dashboard-qr.png")

    r = requests.post(f"http://{mockwa}/admin/scan-qr", json={"qr": raw, "phone": PHONE, "pushName": "Dash"}, timeout=30)
    assert r.status_code == 200, r.text

    wait.until(lambda d: d.find_element(By.ID, "detail-status").text == "WORKING")
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#sessions tr[data-session='dash'] td.status").text == "WORKING"
    )
    assert drv.execute_script("return window.__wharfNoReload") == "still here", "the page reloaded"
    # QR gone, account shown (`me`), the status event in the monitor.
    wait.until(lambda d: not d.find_element(By.ID, "qr").is_displayed())
    wait.until(lambda d: PHONE in d.find_element(By.ID, "me").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events li[data-event='session.status'][data-session='dash']"))
    # The event monitor's session filter hides other sessions' events.
    drv.find_element(By.ID, "filter-session").send_keys("nobody")
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#events li"))
    drv.find_element(By.ID, "filter-session").clear()
    drv.execute_script("document.getElementById('filter-session').dispatchEvent(new Event('input'))")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#events li"))
    assert drv.find_element(By.ID, "error").text == ""
    _shot(drv, "dashboard-working.png")

    # A second session, paired by phone code from the page.
    drv.find_element(By.ID, "new-session").send_keys("dash2")
    drv.find_element(By.CSS_SELECTOR, "#create-form button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "detail-name").text == "dash2", "dash2 selected")
    wait.until(lambda d: d.find_element(By.ID, "phone").is_displayed(), "the pairing-code form")
    drv.find_element(By.ID, "phone").send_keys(PHONE2)
    drv.find_element(By.CSS_SELECTOR, "#code-form button[type=submit]").click()
    shown = wait.until(lambda d: d.find_element(By.ID, "pair-code").text, "the pairing code")
    code = shown.removeprefix("Code: ")
    assert len(code) == 9 and code[4] == "-", shown
    r = requests.post(f"http://{mockwa}/admin/pair-code", json={"phone": PHONE2, "code": code}, timeout=30)
    assert r.status_code == 200, r.text
    wait.until(lambda d: d.find_element(By.ID, "detail-status").text == "WORKING", "dash2 WORKING")

    # The test-message form: dash writes to dash2, whose `message` event reaches the monitor.
    box = drv.find_element(By.ID, "send-session")
    box.clear()
    box.send_keys("dash")
    drv.find_element(By.ID, "send-chat").send_keys(f"{PHONE2}@c.us")
    drv.find_element(By.ID, "send-text").send_keys("hello from the dashboard")
    drv.find_element(By.CSS_SELECTOR, "#send-form button[type=submit]").click()
    wait.until(lambda d: d.find_element(By.ID, "send-result").text.startswith("Sent: "), "the send result")
    drv.find_element(By.ID, "filter-event").send_keys("message")
    item = wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#events li[data-event='message'][data-session='dash2']"),
        "dash2's message event in the monitor",
    )[0]
    assert "hello from the dashboard" in item.text
    assert drv.execute_script("return window.__wharfNoReload") == "still here", "the page reloaded"
    assert drv.find_element(By.ID, "error").text == ""
    _shot(drv, "dashboard-message.png")

    # Dead letters: a session whose webhook receiver is down (a closed loopback port, one
    # attempt), opened from the list; one letter replayed from the page.
    hook = {
        "url": f"http://127.0.0.1:{free_port()}/hook",
        "events": ["session.status"],
        "retries": {"policy": "constant", "delaySeconds": 0.05, "attempts": 1},
    }
    r = server.post("/api/sessions", json={"name": "dl", "config": {"webhooks": [hook]}})
    assert r.status_code == 201, r.text
    click("button[data-action='open'][data-session='dl']", "open dl")
    wait.until(lambda d: d.find_element(By.ID, "detail-name").text == "dl", "dl selected")

    def dead_rows(d):
        d.find_element(By.ID, "dead-refresh").click()
        return d.find_elements(By.CSS_SELECTOR, "#dead button[data-replay]")

    wait.until(dead_rows, "a dead letter listed")
    wait.until(
        lambda d: "session.status" in d.find_element(By.CSS_SELECTOR, "#dead tbody tr").text, "the letter's event"
    )
    click("#dead button[data-replay]", "replay")
    wait.until(lambda d: d.find_element(By.ID, "connection").text == "Replayed 1 dead letter(s)", "the replay")

    # Stop, then delete (confirmed in the browser's dialog): the list follows live.
    click("button[data-action='stop'][data-session='dl']", "stop")
    wait.until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#sessions tr[data-session='dl'] td.status").text == "STOPPED",
        "dl STOPPED",
    )
    click("button[data-action='delete'][data-session='dl']", "delete")
    wait.until(lambda d: d.switch_to.alert, "the delete confirmation").accept()
    wait.until(lambda d: not d.find_elements(By.CSS_SELECTOR, "#sessions tr[data-session='dl']"), "dl gone")
    assert server.get("/api/sessions/dl").status_code == 404
    assert drv.execute_script("return window.__wharfNoReload") == "still here", "the page reloaded"
    assert drv.find_element(By.ID, "error").text == ""


def test_dashboard_shows_each_sessions_worker_in_cluster_mode(store, start_server, browser):
    """Cluster mode (MongoDB): the sessions table gains a Worker column, filled from the
    `cluster.leases` of `/api/server/status` (the worker holding each session's lease)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    if store != "mongo":
        pytest.skip("cluster mode needs the MongoDB store")
    server = start_server(
        WHARF_CLUSTER="true",
        WHARF_CLUSTER_SECRET="dashboard-cluster-secret-01",
        WAHA_WORKER_ID="dash-worker-1",
        WAHA_DASHBOARD_USERNAME=USER,
        WAHA_DASHBOARD_PASSWORD=PASSWORD,
    )
    # Started: placed on (and leased by) the only worker, whatever its connection does.
    assert server.post("/api/sessions", json={"name": "cw"}).status_code == 201
    leases = server.get("/api/server/status").json()["cluster"]["leases"]
    assert [(l["session"], l["owner"]) for l in leases] == [("cw", "dash-worker-1")], leases

    drv = browser
    wait = WebDriverWait(drv, 45, poll_frequency=0.1)
    drv.get(f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/dashboard")
    wait.until(lambda d: d.find_element(By.ID, "api-key")).send_keys(server.api_key)
    drv.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    cell = "#sessions tr[data-session='cw'] td.worker"
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, cell) and d.find_element(By.CSS_SELECTOR, cell).text == "dash-worker-1")
    assert drv.find_element(By.CSS_SELECTOR, "#sessions th.worker").is_displayed()
    _shot(drv, "dashboard-cluster.png")
