"""Fixtures of the browser tests: the real application in real Chromium.

* ``firmsync_server`` (session): the Firmsync application, served by werkzeug's threaded
  server in a background thread on a free ``127.0.0.1`` port, on the session's test
  database and Redis, with ``SANDBOX_URL`` pointing at the session's sandbox (so the
  dossier-level packages' OAuth apps are the sandbox's, as in ``make run``).
* ``browser`` (session): Debian's Chromium (``/usr/bin/chromium``) driven by Playwright's
  sync API, headless. Never downloads a browser; every test here is skipped, with the
  reason, only when that binary is absent (``make test`` installs it).
* ``page`` (function): a fresh browser context (no cookies) with a 1280x800 viewport whose
  relative URLs go to ``firmsync_server``. A failing test leaves ``failure.png`` in its
  artifacts folder; a passing test whose pages broke the Content-Security-Policy (the
  browser's console says so) fails at teardown.
* ``shots`` (function): ``shots.take(page, "name", publish="docs-name")`` saves a screenshot
  under the artifacts folder (``FIRMSYNC_BROWSER_ARTIFACTS``, else a pytest temp folder);
  with ``FIRMSYNC_UPDATE_SCREENSHOTS=1`` a ``publish`` name is also copied to
  ``docs/screenshots/<name>.png`` (the committed screenshots of the README). With
  ``FIRMSYNC_SCREENSHOT_LOCALE=fr`` (or ``nl``) the published copy is taken in that language
  instead, into ``docs/screenshots/fr/<name>.png``: the journey itself runs in English (its
  steps find buttons by their English names), and each published screenshot is retaken in a
  second tab of the same browser session asking for that language (``Accept-Language`` on
  each of its requests), on
  the same address with the same form values, open tabs and scroll position (see
  :meth:`Shots.in_locale`; a flash message of the moment is not repeated).

Data is written through the ``app`` fixture's session (committed before the browser acts)
and the tables are emptied after each test by it, like every other test.
"""
import os
import re
import shutil
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler

from app import create_app
from tests.threaded_server import ThreadedServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
VIEWPORT = {"width": 1280, "height": 800}
#: how long one browser step may wait for an element or a navigation (ms)
STEP_TIMEOUT_MS = 20_000
ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "docs" / "screenshots"
#: the languages the README's screenshots are published in ("en" at the top of docs/screenshots/)
SCREENSHOT_LOCALES = ("en", "fr", "nl")
#: what a page shows that a reload would lose: form values, open tabs, scroll position, visible ids
PAGE_STATE_JS = """() => {
  const names = {};
  const fields = [];
  for (const field of document.querySelectorAll("input[name], select[name], textarea[name]")) {
    const index = names[field.name] = (names[field.name] ?? -1) + 1;
    if (["hidden", "file", "submit", "button"].includes(field.type)) continue;
    fields.push({name: field.name, index, type: field.type, value: field.value, checked: field.checked,
                 selected: field.multiple ? Array.from(field.selectedOptions).map(o => o.value) : null});
  }
  const tabs = Array.from(document.querySelectorAll('[data-toggle="tab"].active, [role="tab"].active'))
    .map(tab => tab.id ? "#" + CSS.escape(tab.id) : tab.getAttribute("href") ? `[href="${tab.getAttribute("href")}"]` : null)
    .filter(Boolean);
  const visible = Array.from(document.querySelectorAll("[id]")).filter(e => e.offsetParent !== null).map(e => e.id);
  return {fields, tabs, visible, x: window.scrollX, y: window.scrollY};
}"""
#: puts a :data:`PAGE_STATE_JS` state on a freshly loaded copy of the page (no form is submitted)
APPLY_STATE_JS = """state => {
  for (const selector of state.tabs) { const tab = document.querySelector(selector); if (tab) tab.click(); }
  for (const f of state.fields) {
    const field = document.getElementsByName(f.name)[f.index];
    if (!field || field.type !== f.type) continue;
    if (f.type === "checkbox" || f.type === "radio") {
      if (field.checked !== f.checked) { field.checked = f.checked; field.dispatchEvent(new Event("change", {bubbles: true})); }
    } else if (f.selected) {
      for (const option of field.options) option.selected = f.selected.includes(option.value);
    } else if (field.value !== f.value && !field.hasAttribute("data-submit-on-change")) {
      field.value = f.value;
    }
  }
  window.scrollTo(state.x, state.y);
}"""


def pytest_collection_modifyitems(config, items):
    """Every browser test is a slow end-to-end test (``-m "not slow"`` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the item (the ``page`` fixture screenshots failures)."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without the access log (one line per request would drown the output)."""

    def log_request(self, code="-", size="-"):
        pass


class FirmsyncServer(ThreadedServer):
    """The Firmsync web application on a real HTTP server in a thread."""

    def __init__(self, app):
        super().__init__(app, "firmsync-web", request_handler=QuietRequestHandler)


@pytest.fixture(scope="session")
def firmsync_server(_schema, sandbox_server):
    os.environ["FIRMSYNC_INSTANCE_PATH"] = _schema["instance"]
    app = create_app("testing", SQLALCHEMY_DATABASE_URI=_schema["database_url"], REDIS_URL=_schema["redis_url"],
                     SANDBOX_URL=sandbox_server.url)
    server = FirmsyncServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`; `make test` installs it)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory):
    """Where screenshots go: ``$FIRMSYNC_BROWSER_ARTIFACTS`` or a pytest temp folder."""
    configured = os.environ.get("FIRMSYNC_BROWSER_ARTIFACTS")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("browser-artifacts")


@pytest.fixture
def test_artifacts(artifacts_dir, request):
    """This test's own folder of screenshots (emptied first: no picture of an earlier run stays)."""
    path = artifacts_dir / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


@pytest.fixture
def page(browser, firmsync_server, test_artifacts, request):
    context = browser.new_context(viewport=VIEWPORT, base_url=firmsync_server.url, locale="en-GB",
                                  timezone_id="Europe/Brussels")
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.set_default_navigation_timeout(STEP_TIMEOUT_MS)
    tab = context.new_page()
    blocked = []  # what the Content-Security-Policy refused (an inline handler, a foreign script...)
    tab.on("console", lambda message: blocked.append(message.text)
           if "Content Security Policy" in message.text else None)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            tab.screenshot(path=str(test_artifacts / "failure.png"))
        except Exception:  # noqa: BLE001 - a dead page must not hide the test's own failure
            pass
    context.close()
    if report is not None and report.passed and blocked:
        pytest.fail("the pages broke their Content-Security-Policy:\n" + "\n".join(blocked[:5]))


class Shots:
    """Numbered screenshots of one test; some are published to ``docs/screenshots/``.

    ``locale`` is the language of the published copies: ``"en"`` publishes the screenshot
    itself to ``docs/screenshots/``, another language retakes it in that language
    (:meth:`in_locale`) into ``docs/screenshots/<locale>/``.
    """

    def __init__(self, folder, publish, locale="en"):
        if locale not in SCREENSHOT_LOCALES:
            raise ValueError(f"FIRMSYNC_SCREENSHOT_LOCALE must be one of {', '.join(SCREENSHOT_LOCALES)}, "
                             f"not {locale!r}")
        self.folder = folder
        self.publish = publish
        self.locale = locale
        self.taken = []

    def take(self, page, name, publish=None):
        """Save the visible viewport as ``NN-name.png``; answer the file's path."""
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)
        if publish and self.publish:
            target = PUBLISHED if self.locale == "en" else PUBLISHED / self.locale
            source = path if self.locale == "en" else \
                self.in_locale(page, path.with_name(f"{path.stem}-{self.locale}.png"))
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / f"{publish}.png")
        return path

    def in_locale(self, page, path):
        """Screenshot ``page`` again in :attr:`locale` into ``path``; answer ``path``.

        A second tab of the same browser context (same login, viewport, time zone) asks for the
        page's address with ``Accept-Language: <locale>`` (users of the test firms have no
        language of their own, so the browser's decides), then gets the first tab's form
        values, open tabs and scroll position, and waits (5 s at most) until the elements
        visible in the first tab are visible. The first tab is left as it was.
        """
        state = page.evaluate(PAGE_STATE_JS)
        tab = page.context.new_page()
        try:
            # the context's own locale would win over extra headers: set the header on each request
            tab.route("**/*", lambda route: route.continue_(headers={**route.request.headers,
                                                                     "accept-language": self.locale}))
            response = tab.goto(page.url)
            assert response is not None and response.ok, \
                f"{page.url} answered {response and response.status} in {self.locale}"
            tab.evaluate(APPLY_STATE_JS, state)
            try:
                tab.wait_for_function("ids => ids.every(id => { const e = document.getElementById(id); "
                                      "return e && e.offsetParent !== null; })", arg=state["visible"], timeout=5_000)
            except Exception:  # noqa: BLE001 - a transient element (a flash) is not worth failing a picture for
                pass
            tab.screenshot(path=str(path))
        finally:
            tab.close()
        return path


@pytest.fixture
def shots(test_artifacts):
    return Shots(test_artifacts, publish=os.environ.get("FIRMSYNC_UPDATE_SCREENSHOTS") == "1",
                 locale=os.environ.get("FIRMSYNC_SCREENSHOT_LOCALE", "en"))
