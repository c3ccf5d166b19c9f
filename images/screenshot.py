"""Remake images/docs-authorize.png: the /docs demo in a headless browser that may reach nothing but the app.

Starts `uvicorn main:app`, signs up a user, then in Swagger UI: Authorize (the OAuth2 password form and the API
key), GET /users/me, Try it out, Execute. Checks that /redoc renders too, with its search. Fails if either page
sends a request to any address but the app's, or if the browser reports that the pages' Content-Security-Policy
blocked anything but ReDoc's logo; prints the origins each page sent requests to, and every violation reported.
Playwright is not one of the app's requirements; give it a venv of its own, with Debian's Chromium (Playwright's own
browser download needs the internet):

    apt-get install -y chromium
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    /tmp/pw/bin/python images/screenshot.py            # from the project's root, with .venv set up as in README.md
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

from playwright.sync_api import Browser, ConsoleMessage, Page, Route, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = os.environ.get("APP_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
USER = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "analytical1"}
# ReDoc's bundle shows the "API docs by Redocly" logo from its CDN, and hides it when that fails. The policy's
# img-src blocks it before it is sent: the one violation expected. Nothing else may be blocked.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
# The browser reports a violation on the console, and fires a securitypolicyviolation event; this logs the event
# too. In a worker (ReDoc's search runs in one) the event is all Playwright sees: it relays none of the browser's
# own messages there.
REPORT_VIOLATIONS = """self.addEventListener("securitypolicyviolation", (e) =>
    console.error(`Content Security Policy violation: ${e.effectiveDirective} blocked ${e.blockedURI}`))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [APP_PYTHON, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "BCRYPT_ROUNDS": "4"},
    )
    for _ in range(100):
        try:
            urlopen(f"http://127.0.0.1:{port}/health")
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("the app did not start")


def operations(page: Page, base: str) -> dict[str, str]:
    """Every operation in the app's document, by id, with its summary: each page must show them all."""
    paths = page.request.get(f"{base}/openapi.json").json()["paths"]
    return {operation["operationId"]: operation["summary"] for path in paths.values() for operation in path.values()}


def demo(page: Page, base: str) -> None:
    assert page.request.post(f"{base}/users", data=USER).status == 201
    page.goto(f"{base}/docs")
    expect(page.locator(".info .title")).to_contain_text("My API")
    for operation_id, summary in operations(page, base).items():
        expect(page.locator(f".opblock[id$='-{operation_id}'] .opblock-summary-description")).to_have_text(summary)

    page.locator(".auth-wrapper .authorize").click()
    page.locator("#oauth_username").fill(USER["email"])
    page.locator("#oauth_password").fill(USER["password"])
    oauth2 = page.locator(".auth-container", has_text="OAuth2PasswordBearer")
    oauth2.locator("button.authorize").click()
    expect(oauth2.get_by_role("heading", name="Authorized")).to_be_visible()  # Swagger UI posted to /token
    api_key = page.locator(".auth-container", has_text="APIKeyHeader")
    api_key.locator("input").fill("expected-api-key")
    api_key.locator("button.authorize").click()
    expect(api_key.get_by_role("heading", name="Authorized")).to_be_visible()
    page.locator(".modal-ux .btn-done").first.click()

    operation = page.locator("#operations-users-read_users_me_users_me_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    response = operation.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_contain_text("200")
    expect(response.locator(".response-col_description")).to_contain_text(USER["email"])
    # From the top (the Authorize button, its padlock closed) to the answer. A full-page clip counts from the top of
    # the page, not of the window, which Playwright scrolled to click: hence scrollY.
    height = response.evaluate("(answer) => answer.getBoundingClientRect().bottom + scrollY") + 10
    page.screenshot(
        path=ROOT / "images" / "docs-authorize.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1200, "height": height},
    )


def redoc(page: Page, base: str) -> None:
    page.goto(f"{base}/redoc")
    expect(page.locator("h1")).to_contain_text("My API")
    for operation_id, summary in operations(page, base).items():
        expect(page.locator(f"[id='operation/{operation_id}'] h2")).to_contain_text(summary)
    page.get_by_role("textbox", name="Search").fill("users me")  # the search runs in a blob: worker
    expect(page.locator("[data-role='search:results']")).to_contain_text("Read Users Me")


def visit(browser: Browser, base: str, path: str, check: Callable[[Page, str], None]) -> bool:
    """Run check on path in a browser context of its own; print where its requests went, and any violation."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    sent: list[str] = []
    violations: list[str] = []

    # Every request the browser sends passes here, and only the app's go on. What the policy blocks is never sent.
    def only_the_app(route: Route) -> None:
        sent.append(route.request.url)
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    context.route("**/*", only_the_app)
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    page.on("console", on_console)
    page.on("worker", lambda worker: worker.evaluate(REPORT_VIOLATIONS))
    try:
        check(page, base)
    finally:
        context.close()
        origins = sorted({"://".join(urlsplit(url)[:2]) for url in sent})
        print(f"{path}: {len(sent)} requests, to {', '.join(origins)}")
        for violation in violations:
            print(f"{path}: {violation}")
    outside = [url for url in sent if not url.startswith(base + "/")]
    blocked = [text for text in violations if not (REDOC_LOGO in text and "img-src" in text)]
    if outside:
        print(f"{path} asked for addresses outside the app: {outside}")
    if blocked:
        print(f"{path}: the Content-Security-Policy blocked what the page needs: {blocked}")
    return not outside and not blocked


def main() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_app(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
            )
            fine = [visit(browser, base, "/docs", demo), visit(browser, base, "/redoc", redoc)]
            browser.close()
    finally:
        server.terminate()
        server.wait()
    if not all(fine):
        sys.exit("failed: see above")
    print("/docs: the demo works; /redoc renders; neither asks for anything outside the app; images/docs-authorize.png")


if __name__ == "__main__":
    main()
