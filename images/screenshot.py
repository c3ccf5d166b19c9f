"""Remake images/docs-authorize.png: the /docs demo in a headless browser that may reach nothing but the app.

Starts `uvicorn main:app`, signs up a user, then in Swagger UI: Authorize (the OAuth2 password form and the API
key), GET /users/me, Try it out, Execute. Fails if the page asks for any address but the app's, and checks that
/redoc renders too. Playwright is not one of the app's requirements; give it a venv of its own, with Debian's
Chromium (Playwright's own browser download needs the internet):

    apt-get install -y chromium
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    /tmp/pw/bin/python images/screenshot.py            # from the project's root, with .venv set up as in README.md
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from playwright.sync_api import Page, Route, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
APP_PYTHON = os.environ.get("APP_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"
USER = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "analytical1"}


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


def demo(page: Page, base: str) -> None:
    assert page.request.post(f"{base}/users", data=USER).status == 201
    page.goto(f"{base}/docs")
    expect(page.locator(".info .title")).to_contain_text("My API")

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
    # From the top (the Authorize button, its padlock closed) to the answer.
    answer = response.bounding_box()
    assert answer is not None
    height = answer["y"] + answer["height"] + 10
    page.screenshot(
        path=ROOT / "images" / "docs-authorize.png",
        full_page=True,
        clip={"x": 0, "y": 0, "width": 1200, "height": height},
    )


def redoc(page: Page, base: str) -> None:
    page.goto(f"{base}/redoc")
    expect(page.locator("h1")).to_contain_text("My API")
    expect(page.get_by_role("heading", name="Create User")).to_be_visible()


def main() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    refused: list[str] = []

    def only_the_app(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    server = start_app(port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
            )
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", only_the_app)
            demo(page, base)
            if refused:
                sys.exit(f"/docs asked for addresses outside the app: {refused}")
            redoc(page, base)
            browser.close()
    finally:
        server.terminate()
        server.wait()
    # ReDoc's bundle shows the "API docs by Redocly" logo from its CDN, and hides it when that fails: nothing else.
    if refused != [REDOC_LOGO]:
        sys.exit(f"/redoc asked for addresses outside the app: {refused}")
    print("/docs: the demo works and asks for nothing outside the app; /redoc renders; images/docs-authorize.png")


if __name__ == "__main__":
    main()
