"""Tests for main.py, one group per article section: `pytest -k auth` runs one section.

Each test runs on every store: `memory`, `sqlite` and, when TEST_DATABASE_URL names one, `postgresql`
(`pytest -k sqlite` runs one).
"""

import asyncio
import inspect
import json
import math
import os
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import main
from main import app

# The real cost (12) takes a quarter of a second a hash; 4 keeps the suite fast and still runs bcrypt.
main.pwd_context.update(bcrypt__rounds=4)

client = TestClient(app)

ADA = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "analytical1"}

# A PostgreSQL database the tests may empty, e.g. postgresql+asyncpg://app:app@localhost/app_test (.ci/run makes one).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
SQL_BACKENDS = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]


@pytest.fixture(params=["memory", *SQL_BACKENDS])
def backend(request):
    return request.param


@pytest.fixture(autouse=True)
def fresh_state(backend, monkeypatch, tmp_path):
    monkeypatch.setattr(main, "login_throttle", main.LoginThrottle())
    monkeypatch.setattr(main, "SECRET_KEY", main.SECRET_KEY)  # a database's start-up sets its own
    if backend == "memory":
        monkeypatch.setattr(main, "database", main.InMemoryDB())
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/test.db" if backend == "sqlite" else TEST_DATABASE_URL
        if backend == "postgresql":
            asyncio.run(drop_tables(url))
        engine = main.open_engine(url)
        monkeypatch.setattr(main, "engine", engine)
        monkeypatch.setattr(main, "AsyncSessionLocal", async_sessionmaker(engine, expire_on_commit=False))
        monkeypatch.setattr(main, "database", main.SQLDatabase())
    # The lifespan runs, as under uvicorn: it creates the tables, and every request of the test shares its loop.
    with client:
        yield
    app.dependency_overrides.clear()


async def drop_tables(url):
    engine = main.open_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(main.Base.metadata.drop_all)
    await engine.dispose()


def create_user(**fields):
    r = client.post("/users", json={**ADA, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def login(username=ADA["email"], password=ADA["password"]):
    """The Authorization header for a fresh token."""
    r = client.post("/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def token_for(claims, key=None, algorithm="HS256"):
    return {"Authorization": f"Bearer {jwt.encode(claims, key or main.SECRET_KEY, algorithm=algorithm)}"}


def user_json(user_id=1, **fields):
    """A user as the API shows it."""
    user = {k: v for k, v in ADA.items() if k != "password"}
    return {**user, "role": "user", "id": user_id, "created_at": ANY, "is_active": True, **fields}


def stored(method, *args):
    """What the store's method returns, called on the app's event loop: stored("get_user", 1)."""
    assert client.portal is not None
    return client.portal.call(getattr(main.database, method), *args)


def send_at_once(method, path, requests):
    """Send the requests all at once, as separate clients would, and return the responses in order."""

    async def send():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await asyncio.gather(*(ac.request(method, path, **request) for request in requests))

    assert client.portal is not None
    return client.portal.call(send)


# --- Basic Application ---


def test_basic_root_welcomes():
    r = client.get("/")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Welcome to My API"}


def test_basic_health_is_healthy():
    r = client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "healthy"}


def test_basic_app_is_described_as_in_the_article():
    info = client.get("/openapi.json").json()["info"]
    assert info == {"title": "My API", "description": "A sample REST API built with FastAPI", "version": "1.0.0"}


# --- Request and Response Models ---


def test_models_role_defaults_to_user_and_created_at_is_utc():
    user = create_user()
    assert user == user_json()
    created_at = datetime.fromisoformat(user["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-email"}, "body -> email", ANY),
        ({"name": ""}, "body -> name", "String should have at least 1 character"),
        ({"name": "x" * 101}, "body -> name", "String should have at most 100 characters"),
        ({"role": "owner"}, "body -> role", "Input should be 'admin', 'user' or 'guest'"),
        ({"password": "short1"}, "body -> password", "String should have at least 8 characters"),
        ({"password": "no-digits-here"}, "body -> password", "Password must contain at least one digit"),
        ({"password": "١٢٣٤٥٦٧٨"}, "body -> password", "Password must contain at least one digit"),
        ({"password": "1" + "é" * 36}, "body -> password", "Password must be at most 72 bytes in UTF-8, with no NUL"),
        ({"password": "nul\x00byte1"}, "body -> password", "Password must be at most 72 bytes in UTF-8, with no NUL"),
        ({"password": "1" * 73}, "body -> password", "String should have at most 72 characters"),
    ],
)
def test_models_user_create_validation(fields, field, message):
    r = client.post("/users", json={**ADA, **fields})
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "Validation Error", "details": [{"field": field, "message": message, "type": ANY}]}


def test_models_password_of_72_bytes_is_whole_and_accepted():
    password = "1" + "é" * 35 + "x"  # 72 bytes in UTF-8
    create_user(password=password)
    assert login(password=password)
    for wrong in (password[:-1], password + "x", password + "\x00"):
        r = client.post("/token", data={"username": ADA["email"], "password": wrong})
        assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    "update",
    [
        {"name": None},
        {"name": ""},
        {"role": None},
        {"role": "owner"},
        {"is_active": None},
        {"is_active": 0},
        {"is_active": 1},
        {"is_active": "yes"},
        {"is_active": "false"},
    ],
)
def test_models_user_update_rejects_null_and_loose_types(update):
    create_user()
    r = client.patch("/users/1", json=update)
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == f"body -> {next(iter(update))}"
    assert client.get("/users/1").json() == user_json()


# --- CRUD Endpoints ---


def test_crud_create_stores_a_bcrypt_hash_and_never_shows_it():
    r = client.post("/users", json=ADA)
    assert r.status_code == 201, r.text
    assert r.json() == user_json()
    assert "password" not in r.text
    hashed_password = stored("get_user", 1).hashed_password
    assert hashed_password.startswith("$2b$")
    assert main.verify_password(ADA["password"], hashed_password)


def test_crud_duplicate_email_is_refused_whatever_its_case():
    create_user()
    r = client.post("/users", json={**ADA, "email": "ADA@Example.COM"})
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Email already registered"}
    assert client.get("/users").json() == [user_json()]


def test_crud_list_pages_in_creation_order_and_filters_by_role():
    for i, role in enumerate(["user", "admin", "guest", "admin", "user"]):
        create_user(email=f"u{i}@example.com", role=role)

    assert [u["id"] for u in client.get("/users").json()] == [1, 2, 3, 4, 5]
    assert [u["id"] for u in client.get("/users", params={"skip": 1, "limit": 2}).json()] == [2, 3]
    assert [u["id"] for u in client.get("/users", params={"role": "admin"}).json()] == [2, 4]
    assert [u["id"] for u in client.get("/users", params={"role": "admin", "skip": 1}).json()] == [4]
    assert client.get("/users", params={"skip": 5}).json() == []


def test_crud_list_shows_ten_by_default():
    for i in range(12):
        create_user(email=f"u{i}@example.com")
    assert len(client.get("/users").json()) == 10
    assert len(client.get("/users", params={"limit": 100}).json()) == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"skip": -1}, "query -> skip"),
        ({"limit": 0}, "query -> limit"),
        ({"limit": 101}, "query -> limit"),
        ({"limit": "ten"}, "query -> limit"),
        ({"role": "owner"}, "query -> role"),
    ],
)
def test_crud_list_rejects_bad_paging(params, field):
    r = client.get("/users", params=params)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_crud_get_user():
    create_user()
    r = client.get("/users/1")
    assert r.status_code == 200, r.text
    assert r.json() == user_json()


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_crud_unknown_user_is_404(method):
    r = client.request(method, "/users/7", json={"name": "X"} if method == "PATCH" else None)
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "User not found"}


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "1.5"])
def test_crud_user_id_must_be_a_positive_integer(user_id):
    r = client.get(f"/users/{user_id}")
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == "path -> user_id"


def test_crud_patch_changes_only_the_fields_sent():
    created = create_user()
    r = client.patch("/users/1", json={"name": "Countess", "role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json() == {**created, "name": "Countess", "role": "admin"}
    r = client.patch("/users/1", json={"is_active": False})
    assert r.json() == {**created, "name": "Countess", "role": "admin", "is_active": False}
    assert client.get("/users/1").json() == r.json()


def test_crud_patch_cannot_change_fields_the_model_does_not_own():
    created = create_user()
    hashed_password = stored("get_user", 1).hashed_password
    r = client.patch(
        "/users/1",
        json={"id": 9, "email": "eve@example.com", "created_at": "2000-01-01T00:00:00Z", "hashed_password": "x"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == created
    assert stored("get_user", 1).hashed_password == hashed_password
    assert stored("get_user_by_email", "eve@example.com") is None


def test_crud_delete_then_gone_and_email_free_and_id_not_reused():
    create_user()
    r = client.delete("/users/1")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert client.get("/users/1").status_code == 404
    assert create_user() == user_json(user_id=2)


# --- Dependency Injection ---

API_KEY = {"X-API-Key": "expected-api-key"}


def test_deps_items_list_the_catalogue_with_the_api_key():
    r = client.get("/items", headers=API_KEY)
    assert r.status_code == 200, r.text
    items = r.json()
    assert len(items) == len(main.CATALOGUE) >= 5
    assert items[0] == {"id": 1, "name": "Keyboard", "price": 49.99}


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": "ключ"}])
def test_deps_items_need_the_right_api_key(headers):
    r = client.get("/items", headers={k: v.encode() for k, v in headers.items()})
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Invalid API key"}


def test_deps_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setattr(main, "API_KEY", "class-key")
    assert client.get("/items", headers=API_KEY).status_code == 401
    assert client.get("/items", headers={"X-API-Key": "class-key"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "ids"),
    [
        ({}, [1, 2, 3, 4, 5, 6]),
        ({"sort_by": "price"}, [2, 6, 1, 5, 4, 3]),
        ({"sort_by": "price", "order": "desc"}, [3, 4, 5, 1, 6, 2]),
        ({"sort_by": "name", "limit": 2}, [4, 1]),
        ({"sort_by": "id", "order": "desc", "skip": 4}, [2, 1]),
        ({"limit": 1000}, [1, 2, 3, 4, 5, 6]),
        ({"skip": 10**30}, []),
    ],
)
def test_deps_items_paginate_and_sort(params, ids):
    r = client.get("/items", headers=API_KEY, params=params)
    assert r.status_code == 200, r.text
    assert [item["id"] for item in r.json()] == ids


def test_deps_pagination_caps_limit_at_100():
    assert main.PaginationParams(limit=1000).limit == 100
    assert main.PaginationParams(limit=7).limit == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"skip": -1}, "query -> skip"),
        ({"limit": 0}, "query -> limit"),
        ({"sort_by": "secret"}, "query -> sort_by"),
        ({"order": "sideways"}, "query -> order"),
    ],
)
def test_deps_items_reject_bad_pagination(params, field):
    r = client.get("/items", headers=API_KEY, params=params)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_deps_get_db_can_be_overridden():
    other = main.InMemoryDB()
    other.items = [main.Item(id=42, name="Override", price=1.0)]

    async def get_other_db():
        yield other

    app.dependency_overrides[main.get_db] = get_other_db
    assert client.get("/items", headers=API_KEY).json() == [{"id": 42, "name": "Override", "price": 1.0}]
    create_user()
    assert list(other.users_db) == [1]
    app.dependency_overrides.clear()
    assert client.get("/users").json() == []


# --- Authentication with JWT ---


def test_auth_login_returns_a_bearer_token_naming_the_user():
    create_user()
    r = client.post("/token", data={"username": ADA["email"], "password": ADA["password"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"access_token": ANY, "token_type": "bearer"}
    claims = jwt.decode(r.json()["access_token"], main.SECRET_KEY, algorithms=["HS256"])
    assert claims == {"sub": "1", "email": "ada@example.com", "exp": ANY}
    expires_in = datetime.fromtimestamp(claims["exp"], UTC) - datetime.now(UTC)
    assert timedelta(minutes=29) < expires_in <= timedelta(minutes=30)


def test_auth_username_is_case_insensitive():
    create_user()
    r = client.get("/users/me", headers=login(username="ADA@example.COM"))
    assert r.status_code == 200, r.text
    assert r.json() == user_json()


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ada@example.com", "wrong-password1"),
        ("nobody@example.com", "analytical1"),
        ("ada", "analytical1"),
        ("", "x"),
        ("ada", ""),
    ],
)
def test_auth_wrong_password_and_unknown_user_look_the_same(username, password):
    create_user()
    r = client.post("/token", data={"username": username, "password": password})
    if not username or not password:
        assert r.status_code == 422, r.text
        return
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Incorrect username or password"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("username", ["nobody@example.com", "not an email"])
def test_auth_unknown_user_still_checks_a_password(monkeypatch, username):
    checks = []
    monkeypatch.setattr(main.pwd_context, "dummy_verify", lambda: checks.append("dummy"))
    r = client.post("/token", data={"username": username, "password": "analytical1"})
    assert r.status_code == 401, r.text
    assert checks == ["dummy"]


@pytest.mark.parametrize(
    ("signed_up", "logs_in"),
    [
        (" sp@example.com ", " sp@example.com "),
        (" sp@example.com ", "sp@example.com"),
        ("rene\u0301@example.com", "rene\u0301@example.com"),
        ("rene\u0301@example.com", "ren\u00e9@example.com"),
        ("bob@xn--bcher-kva.de", "bob@xn--bcher-kva.de"),
        ("bob@xn--bcher-kva.de", "BOB@B\u00fccher.de"),
        ("Ada Lovelace <ada@example.com>", "ada@example.com"),
    ],
)
def test_auth_the_email_that_signed_up_logs_in(signed_up, logs_in):
    email = create_user(email=signed_up)["email"]
    r = client.get("/users/me", headers=login(username=logs_in))
    assert r.status_code == 200, r.text
    assert r.json()["email"] == email


def test_auth_a_username_longer_than_an_email_is_422_and_not_kept():
    r = client.post("/token", data={"username": "a" * 250 + "@example.com", "password": "x"})
    assert r.status_code == 422, r.text
    assert r.json()["details"] == [
        {"field": "body -> username", "message": "String should have at most 254 characters", "type": "string_too_long"}
    ]
    assert not main.login_throttle.attempts


def test_auth_hashing_and_checking_run_off_the_event_loop(monkeypatch):
    threads = []

    def record_thread(real):
        def wrapper(*args):
            try:
                asyncio.get_running_loop()
                threads.append("event loop")
            except RuntimeError:
                threads.append("worker")
            return real(*args)

        return wrapper

    monkeypatch.setattr(main, "get_password_hash", record_thread(main.get_password_hash))
    monkeypatch.setattr(main, "verify_password", record_thread(main.verify_password))
    create_user()
    login()
    assert threads == ["worker", "worker"]


def test_auth_me_returns_the_current_user():
    create_user()
    r = client.get("/users/me", headers=login())
    assert r.status_code == 200, r.text
    assert r.json() == user_json()


def test_auth_me_without_a_token_is_401():
    r = client.get("/users/me")
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


def in_minutes(minutes):
    return datetime.now(UTC) + timedelta(minutes=minutes)


ADA_CLAIMS = {"sub": "1", "email": ADA["email"]}


@pytest.mark.parametrize(
    "claims",
    [
        {**ADA_CLAIMS, "exp": in_minutes(-1)},
        {"email": ADA["email"], "exp": in_minutes(5)},
        ADA_CLAIMS,
        {**ADA_CLAIMS, "sub": 1, "exp": in_minutes(5)},
        {**ADA_CLAIMS, "sub": ADA["email"], "exp": in_minutes(5)},
        {**ADA_CLAIMS, "sub": "9" * 40, "exp": in_minutes(5)},
        {**ADA_CLAIMS, "sub": "2", "exp": in_minutes(5)},
        {**ADA_CLAIMS, "email": "eve@example.com", "exp": in_minutes(5)},
        {"sub": "1", "exp": in_minutes(5)},
        {**ADA_CLAIMS, "exp": None},
        {**ADA_CLAIMS, "exp": float("inf")},
        {**ADA_CLAIMS, "exp": in_minutes(5), "nbf": [1]},
    ],
    ids=[
        "expired",
        "no-sub",
        "no-exp",
        "int-sub",
        "email-sub",
        "huge-sub",
        "unknown",
        "other-email",
        "no-email",
        "null-exp",
        "infinite-exp",
        "list-nbf",
    ],
)
def test_auth_me_rejects_bad_claims(claims):
    create_user()
    r = client.get("/users/me", headers=token_for(claims))
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        lambda: "not-a-jwt",
        lambda: jwt.encode({**ADA_CLAIMS, "exp": in_minutes(5)}, "another-key", algorithm="HS256"),
        lambda: jwt.encode({**ADA_CLAIMS, "exp": in_minutes(5)}, main.SECRET_KEY, algorithm="HS512"),
        # alg "none": Ada's claims, unsigned
        lambda: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20ifQ.",
    ],
    ids=["garbage", "other-key", "other-alg", "alg-none"],
)
def test_auth_me_rejects_bad_tokens(token):
    create_user()
    r = client.get("/users/me", headers={"Authorization": f"Bearer {token()}"})
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_auth_token_of_a_deleted_user_is_rejected_even_once_the_email_signs_up_again():
    create_user()
    headers = login()
    client.delete("/users/1")
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    create_user(name="Someone else")
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 401, r.text
    assert client.get("/users/me", headers=login()).json() == user_json(user_id=2, name="Someone else")


def test_auth_inactive_user_cannot_log_in_or_use_a_token():
    create_user()
    headers = login()
    client.patch("/users/1", json={"is_active": False})
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Inactive user"}
    r = client.post("/token", data={"username": ADA["email"], "password": ADA["password"]})
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Inactive user"}


def fail_logins(count, username=ADA["email"]):
    for _ in range(count):
        r = client.post("/token", data={"username": username, "password": "wrong-password1"})
        assert r.status_code == 401, r.text


def test_auth_throttle_refuses_after_five_failures_without_checking(monkeypatch):
    create_user()
    fail_logins(5)
    checks = []
    monkeypatch.setattr(main, "verify_password", lambda *args: checks.append(args))
    r = client.post("/token", data={"username": "ADA@example.com", "password": ADA["password"]})
    assert r.status_code == 429, r.text
    assert r.json() == {
        "error": "Application Error",
        "detail": "Too many failed login attempts, try again later",
        "path": "/token",
    }
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert checks == []


def test_auth_throttle_holds_against_a_burst(monkeypatch):
    create_user()
    checks = []

    def counting_verify(*args):
        checks.append(args)
        return main.pwd_context.verify(*args)

    monkeypatch.setattr(main, "verify_password", counting_verify)
    guesses = [{"username": ADA["email"], "password": f"wrong-password{i}"} for i in range(29)]
    responses = send_at_once("POST", "/token", [{"data": form} for form in [*guesses, ADA_FORM]])
    assert len(checks) == 5
    assert [r.status_code for r in responses] == [401] * 5 + [429] * 25


ADA_FORM = {"username": ADA["email"], "password": ADA["password"]}


def test_auth_throttle_counts_every_spelling_of_an_email_as_one():
    create_user()
    for username in [
        "ada@example.com",
        " ada@example.com",
        "ADA@example.com",
        "ada@EXAMPLE.com ",
        "Ada <ada@example.com>",
    ]:
        r = client.post("/token", data={"username": username, "password": "wrong-password1"})
        assert r.status_code == 401, r.text
    r = client.post("/token", data=ADA_FORM)
    assert r.status_code == 429, r.text


def test_auth_throttle_path_is_never_the_host_a_client_sent():
    fail_logins(5, username="nobody@example.com")
    r = client.post(
        "/token", data={"username": "nobody@example.com", "password": "x"}, headers={"Host": "evil.example"}
    )
    assert r.status_code == 429, r.text
    assert r.json()["path"] == "/token"


def test_auth_throttle_spares_other_accounts_and_resets_on_success():
    create_user()
    create_user(email="grace@example.com")
    fail_logins(5, username="grace@example.com")
    assert login()
    fail_logins(4)
    assert login()
    fail_logins(4)
    assert login()


def test_auth_throttle_lets_a_key_in_again_after_the_window(monkeypatch):
    create_user()
    fail_logins(5)
    later = main.time.monotonic() + main.LOGIN_ATTEMPT_WINDOW.total_seconds()
    monkeypatch.setattr(main.time, "monotonic", lambda: later)
    assert login()


def keys(*names):
    return [("testclient", f"{name}@example.com") for name in names]


def test_auth_throttle_memory_is_bounded_in_keys_and_bytes():
    throttle = main.LoginThrottle(max_keys=3)
    for key in keys(*"abcdefg"):
        assert throttle.attempt(key) == 0
    assert list(throttle.attempts) == keys("e", "f", "g")
    throttle = main.LoginThrottle(max_bytes=len("testclient") * 2 + len("a@example.com") * 2)
    for key in keys(*"abc"):
        throttle.attempt(key)
    assert list(throttle.attempts) == keys("b", "c")
    assert throttle.bytes == throttle.max_bytes


def test_auth_throttle_when_full_forgets_expired_keys_first_and_never_a_locked_one(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(main.time, "monotonic", lambda: now[0])
    window = main.LOGIN_ATTEMPT_WINDOW.total_seconds()
    throttle = main.LoginThrottle(max_keys=2)
    throttle.attempt(keys("old")[0])
    now[0] += window
    for _ in range(5):
        throttle.attempt(keys("locked")[0])
    throttle.attempt(keys("new")[0])  # "old" has expired: it goes, though "locked" was tried less recently
    assert list(throttle.attempts) == keys("locked", "new")
    throttle.attempt(keys("newer")[0])  # full again: "new" goes, "locked" stays locked
    assert list(throttle.attempts) == keys("locked", "newer")
    assert throttle.attempt(keys("locked")[0]) > 0
    for _ in range(5):
        throttle.attempt(keys("newer")[0])
    assert throttle.attempt(keys("newest")[0]) == math.ceil(window)  # only locked keys: refused, not forgotten
    assert list(throttle.attempts) == keys("locked", "newer")


# --- Async Database Operations ---


def test_async_get_db_is_an_async_dependency():
    assert inspect.iscoroutinefunction(main.get_db)


def test_async_simultaneous_signups_with_one_email_create_one_user():
    responses = send_at_once("POST", "/users", [{"json": ADA}] * 32)
    assert sorted(r.status_code for r in responses) == [201] + [400] * 31
    assert {r.json()["detail"] for r in responses if r.status_code == 400} == {"Email already registered"}
    assert [u["email"] for u in client.get("/users").json()] == [ADA["email"]]


def test_async_simultaneous_signups_get_distinct_ids():
    responses = send_at_once("POST", "/users", [{"json": {**ADA, "email": f"u{i}@example.com"}} for i in range(64)])
    assert [r.status_code for r in responses] == [201] * 64
    assert sorted(r.json()["id"] for r in responses) == list(range(1, 65))
    assert len(client.get("/users", params={"limit": 100}).json()) == 64


def test_async_the_tables_are_the_articles():
    users = main.Base.metadata.tables["users"]
    assert list(users.columns.keys()) == ["id", "email", "name", "hashed_password", "created_at", "role", "is_active"]
    [email_index] = users.indexes
    assert (email_index.unique, str(email_index.expressions[0])) == (True, "lower(users.email)")
    assert list(main.Base.metadata.tables["items"].columns.keys()) == ["id", "name", "price"]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_async_users_and_tokens_outlive_a_restart(backend):
    create_user()
    headers = login()
    client.__exit__()
    client.__enter__()  # another start-up, on the same database
    assert client.get("/users/me", headers=headers).json() == user_json()
    assert client.get("/items", headers=API_KEY).json() == [item.model_dump() for item in main.CATALOGUE]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_async_a_commit_that_fails_is_a_500_and_keeps_nothing(backend, monkeypatch):
    async def failing_commit(self):
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch:
        patch.setattr(AsyncSession, "commit", failing_commit)
        r = TestClient(app, raise_server_exceptions=False).post("/users", json=ADA)
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    assert client.get("/users").json() == []
    create_user()  # and the email is still free


def selects_sent(*requests):
    """The SELECT statements (and their parameters) the database gets while the requests are answered."""
    statements = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT"):
            statements.append((statement, parameters))

    assert main.engine is not None
    event.listen(main.engine.sync_engine, "before_cursor_execute", record)
    for request in requests:
        request()
    event.remove(main.engine.sync_engine, "before_cursor_execute", record)
    return statements


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_async_pages_are_limit_and_offset_in_sql(backend):
    selects = selects_sent(
        lambda: client.get("/users", params={"skip": 1, "limit": 2, "role": "admin"}),
        lambda: client.get("/items", headers=API_KEY, params={"skip": 1, "limit": 2, "sort_by": "price"}),
    )
    assert len(selects) == 2
    for statement, _ in selects:
        assert re.search(r"ORDER BY .* LIMIT .* OFFSET", statement, re.DOTALL), statement
    assert "WHERE users.role" in selects[0][0]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_async_lookups_by_email_and_by_id_use_indexes(backend):
    create_user()
    [by_email] = selects_sent(lambda: client.post("/token", data={"username": "ADA@example.com", "password": "x"}))
    [by_id] = selects_sent(lambda: client.get("/users/1"))

    async def plan(statement, parameters):
        assert main.engine is not None
        async with main.engine.begin() as connection:
            if backend == "postgresql":
                await connection.exec_driver_sql(
                    "SET LOCAL enable_seqscan = off"
                )  # a table this small: a scan is cheaper
            explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
            return " ".join(str(row) for row in await connection.exec_driver_sql(explain + statement, parameters))

    assert client.portal is not None
    assert "ix_users_email_lower" in client.portal.call(plan, *by_email)
    assert re.search(r"INTEGER PRIMARY KEY|users_pkey", client.portal.call(plan, *by_id))


@pytest.mark.parametrize("backend", ["memory"])  # each starts an app of its own
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "is not usable: Could not parse SQLAlchemy URL from given URL string"),
        ("postgresql://user:hunter2@localhost/dbname", "is not usable: No module named 'psycopg'"),
        ("sqlite:///./app.db", "is not usable: The asyncio extension requires an async driver"),
        ("postgresql+asyncpg://user:hunter2@127.0.0.1:1/dbname", "postgresql+asyncpg://user:***@127.0.0.1:1/dbname"),
        ("sqlite+aiosqlite:////no/such/folder/app.db", "cannot use it: unable to open database file"),
    ],
    ids=["malformed", "no-driver", "sync-driver", "unreachable", "unopenable"],
)
def test_async_a_database_url_that_cannot_work_stops_the_app_with_one_line(backend, url, problem):
    start = "from fastapi.testclient import TestClient; import main; TestClient(main.app).__enter__()"
    env = {**os.environ, "DATABASE_URL": url}
    r = subprocess.run([sys.executable, "-c", start], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    [line] = r.stderr.splitlines()
    assert line.startswith("DATABASE_URL"), line
    assert problem in line
    assert "hunter2" not in line


# --- Error Handling ---


def test_errors_validation_shape_never_echoes_the_input():
    r = client.post("/users", json={"email": "nope", "name": "", "password": "secret-without-digit"})
    assert r.status_code == 422, r.text
    assert r.json() == {
        "error": "Validation Error",
        "details": [
            {"field": "body -> email", "message": ANY, "type": "value_error"},
            {"field": "body -> name", "message": "String should have at least 1 character", "type": "string_too_short"},
            {"field": "body -> password", "message": "Password must contain at least one digit", "type": "value_error"},
        ],
    }
    assert "secret-without-digit" not in r.text


@pytest.mark.parametrize("body", [b"{not json", b'{"email": "a@example.com",', b"\xff\xfe"])
def test_errors_unparseable_body_is_400(body):
    r = client.post("/users", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "There was an error parsing the body"}


@pytest.mark.parametrize(
    ("method", "path", "content_type", "body"),
    [
        (
            "POST",
            "/users",
            "application/x-www-form-urlencoded",
            "email=ada%40example.com&name=Ada&password=analytical1",
        ),
        ("POST", "/users", "text/plain", json.dumps(ADA)),
        ("PATCH", "/users/1", "application/x-www-form-urlencoded", "name=Countess"),
    ],
)
def test_errors_a_body_that_is_not_json_is_415(method, path, content_type, body):
    create_user()
    r = client.request(method, path, content=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert r.json() == {"detail": "Send the body as JSON, with Content-Type: application/json"}
    assert client.get("/users").json() == [user_json()]


@pytest.mark.parametrize("body", [b"[]", b'"ada"', b"null", b""])
def test_errors_body_of_the_wrong_shape_is_422(body):
    r = client.post("/users", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/users?skip=" + "9" * 30, 200),
        ("GET", "/users?limit=" + "9" * 30, 422),
        ("GET", "/users/" + "9" * 40, 404),
        ("GET", f"/users/{2**31}", 404),
        ("PATCH", "/users/" + "9" * 40, 404),
        ("DELETE", "/users/" + "9" * 40, 404),
        ("GET", "/users/-" + "9" * 40, 422),
        ("GET", "/items?skip=" + "9" * 30, 200),
    ],
)
def test_errors_huge_numbers_are_never_a_500(method, path, status):
    create_user()
    r = client.request(method, path, headers=API_KEY, json={"name": "X"} if method == "PATCH" else None)
    assert r.status_code == status, r.text


def test_errors_unexpected_exception_is_a_bare_500():
    async def broken_db():
        raise RuntimeError("database password is hunter2")
        yield

    app.dependency_overrides[main.get_db] = broken_db
    r = TestClient(app, raise_server_exceptions=False).get("/users/1")
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    assert "hunter2" not in r.text


def test_errors_unexpected_exception_still_reaches_the_server():
    async def broken_db():
        raise RuntimeError("boom")
        yield

    app.dependency_overrides[main.get_db] = broken_db
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/users/1")


# --- API Routers and Structure ---


def test_routers_users_answers_without_a_redirect():
    r = client.post("/users", json=ADA, follow_redirects=False)
    assert r.status_code == 201, r.text
    r = client.get("/users", follow_redirects=False)
    assert r.status_code == 200, r.text
    r = client.get("/items", headers=API_KEY, follow_redirects=False)
    assert r.status_code == 200, r.text


def test_routers_users_me_is_not_taken_for_a_user_id():
    create_user()
    assert client.get("/users/me", headers=login()).json() == user_json()


def test_routers_tag_users_and_items():
    paths = client.get("/openapi.json").json()["paths"]
    tags = {(path, method): op.get("tags") for path, ops in paths.items() for method, op in ops.items()}
    assert tags == {
        ("/", "get"): None,
        ("/health", "get"): None,
        ("/token", "post"): ["auth"],
        ("/users/me", "get"): ["users"],
        ("/users", "post"): ["users"],
        ("/users", "get"): ["users"],
        ("/users/{user_id}", "get"): ["users"],
        ("/users/{user_id}", "patch"): ["users"],
        ("/users/{user_id}", "delete"): ["users"],
        ("/items", "get"): ["items"],
    }


# --- Interactive Documentation ---


@pytest.mark.parametrize(("path", "marker"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
def test_docs_pages_are_served(path, marker):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert marker in r.text


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        ("/docs", ["swagger-ui.css", "favicon.png", "swagger-ui-bundle.js"]),
        ("/redoc", ["favicon.png", "redoc.standalone.js"]),
        ("/docs/oauth2-redirect", []),
    ],
)
def test_docs_pages_load_everything_from_the_app(path, assets):
    page = client.get(path).text
    assert "//" not in page, "an address outside the app"
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links == [f"/static-offline-docs/{asset}" for asset in assets]
    for link in links:
        r = client.get(link)
        assert r.status_code == 200, link
        assert len(r.content) > 1000, link


def test_docs_security_schemes_are_declared():
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes == {
        "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"scopes": {}, "tokenUrl": "token"}}},
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }


def test_docs_validation_errors_show_the_app_shape():
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    response = schema["paths"]["/users"]["post"]["responses"]["422"]
    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationErrorResponse"}


def test_docs_authorize_then_try_it_out():
    create_user()
    # What Swagger UI's Authorize dialog posts for the OAuth2 password flow.
    form = {"grant_type": "password", "username": ADA["email"], "password": ADA["password"], "scope": ""}
    token = client.post("/token", data=form).json()["access_token"]
    r = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert client.get("/items", headers=API_KEY).status_code == 200


def schema_name(response):
    """The documented body of one response: a component's name, list[name], a JSON type, or None."""
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None

    def name(schema):
        return schema.get("$ref", "").removeprefix("#/components/schemas/") or schema["type"]

    return f"list[{name(schema['items'])}]" if "items" in schema else name(schema)


INVALID = {"422": "ValidationErrorResponse"}
NOT_JSON = {"415": "Message"}


@pytest.mark.parametrize(
    ("method", "path", "responses"),
    [
        ("get", "/", {"200": "object"}),
        ("get", "/health", {"200": "object"}),
        (
            "post",
            "/token",
            {"200": "Token", "400": "Message", "401": "Message", **INVALID, "429": "ApplicationErrorResponse"},
        ),
        ("get", "/users/me", {"200": "UserResponse", "400": "Message", "401": "Message"}),
        ("post", "/users", {"201": "UserResponse", "400": "Message", **INVALID, **NOT_JSON}),
        ("get", "/users", {"200": "list[UserResponse]", **INVALID}),
        ("get", "/users/{user_id}", {"200": "UserResponse", "404": "Message", **INVALID}),
        (
            "patch",
            "/users/{user_id}",
            {"200": "UserResponse", "400": "Message", "404": "Message", **INVALID, **NOT_JSON},
        ),
        ("delete", "/users/{user_id}", {"204": None, "404": "Message", **INVALID}),
        ("get", "/items", {"200": "list[Item]", "401": "Message", **INVALID}),
    ],
)
def test_docs_routes_declare_every_status_they_return(method, path, responses):
    documented = client.get("/openapi.json").json()["paths"][path][method]["responses"]
    assert {status: schema_name(response) for status, response in documented.items()} == responses


@pytest.mark.parametrize(
    ("method", "path", "status", "header"),
    [
        ("post", "/token", "401", "WWW-Authenticate"),
        ("post", "/token", "429", "Retry-After"),
        ("get", "/users/me", "401", "WWW-Authenticate"),
    ],
)
def test_docs_response_headers_are_declared(method, path, status, header):
    response = client.get("/openapi.json").json()["paths"][path][method]["responses"][status]
    assert list(response["headers"]) == [header]


def test_docs_error_bodies_are_documented_as_sent():
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    def shape(name):
        return sorted(schemas[name]["properties"]), sorted(schemas[name]["required"])

    assert shape("Message") == (["detail"], ["detail"])
    assert shape("ValidationErrorResponse") == (["details", "error"], ["details", "error"])
    assert shape("FieldError") == (["field", "message", "type"], ["field", "message", "type"])
    assert shape("ApplicationErrorResponse") == (["detail", "error", "path"], ["detail", "error", "path"])
    assert shape("UserResponse")[1] == ["created_at", "email", "id", "is_active", "name", "role"]
    assert schemas["ValidationErrorResponse"]["properties"]["error"]["const"] == "Validation Error"
    assert schemas["ApplicationErrorResponse"]["properties"]["error"]["const"] == "Application Error"


def test_docs_schemas_state_the_constraints_the_app_enforces():
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    create = schemas["UserCreate"]["properties"]
    assert create["email"]["format"] == "email"
    assert (create["name"]["minLength"], create["name"]["maxLength"]) == (1, 100)
    password = create["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 72)
    assert password["pattern"] == r"^[^\u0000]*[0-9][^\u0000]*$"
    assert schemas["UserRole"]["enum"] == ["admin", "user", "guest"]
    assert schemas["UserUpdate"]["properties"] == {
        "name": {"type": "string", "minLength": 1, "maxLength": 100, "title": "Name"},
        "role": {"$ref": "#/components/schemas/UserRole"},
        "is_active": {"type": "boolean", "title": "Is Active"},
    }
    assert "required" not in schemas["UserUpdate"]
    parameters = client.get("/openapi.json").json()["paths"]["/items"]["get"]["parameters"]
    assert {p["name"]: p["schema"].get("$ref") for p in parameters}["sort_by"] == "#/components/schemas/ItemField"


README = (Path(__file__).parent / "README.md").read_text()


def readme_walkthrough():
    """(command, what it prints) pairs: each bash block of the Walkthrough and the text block right after it."""
    walkthrough = README.split("## Walkthrough")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)\n```\n(?:```text\n(.*?)```)?", walkthrough, re.DOTALL)


def send_curl(command):
    """Send what a README curl command sends (-s, -X, -H, -d, -w and a localhost:8000 URL) through the client."""
    method, url, headers, data = None, "", {}, None
    args = iter(shlex.split(command.replace("\\\n", " "))[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(": ", 1)
            headers[name] = value
        elif arg == "-d":
            data = next(args)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif arg == "-w":
            next(args)
        elif arg != "-s":
            url = arg
    method = method or ("POST" if data else "GET")
    return client.request(method, url.removeprefix("localhost:8000"), headers=headers, content=data)


def without_times_and_tokens(body):
    return json.loads(re.sub(r'"(created_at|access_token)":"[^"]*"', r'"\1":"..."', body))


def test_docs_readme_links_stay_in_the_repository():
    links = re.findall(r"\]\(([^)]+)\)", README)
    assert links, "the README has lost its links"
    for link in links:
        assert link.startswith("http://localhost:8000/") or (Path(__file__).parent / link).is_file(), link


def test_docs_readme_walkthrough_prints_what_it_shows():
    walkthrough = readme_walkthrough()
    assert len(walkthrough) > 20, "the README's Walkthrough has lost its examples"
    token = ""
    for command, printed in walkthrough:
        if command.startswith("TOKEN=$("):
            r = send_curl(command.removeprefix("TOKEN=$(").split("|")[0])
            token = r.json()["access_token"]
            continue
        r = send_curl(command.replace("$TOKEN", token))
        *body, status = printed.rstrip("\n").split("\n")
        assert f"HTTP {r.status_code}" == status, command
        if body == [""]:
            assert r.content == b"", command
        else:
            assert without_times_and_tokens(r.text) == without_times_and_tokens("\n".join(body)), command
