"""Tests for main.py, in the article's order: the helpers a test of yours would copy first, then each section's tests
under its banner (the article-level ones first: they also check your own app), then the machinery at the end."""

import asyncio
import base64
import contextlib
import copy
import functools
import hashlib
import hmac
import importlib.machinery
import importlib.util
import inspect
import json
import os
import re
import runpy
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import ANY, patch

import anyio
import httpx
import httpx2
import pytest
import sqlalchemy
import uvicorn
from fastapi.testclient import TestClient
from jose import jwt
from pydantic_settings import BaseSettings
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

HERE = Path(__file__).parent
README = (HERE / "README.md").read_text() if (HERE / "README.md").is_file() else ""  # without it, *readme* tests skip
APP = os.environ.get("APP", "")  # your own app, module:attribute as uvicorn takes it: the article-level tests only
# A PostgreSQL database the tests may empty, e.g. postgresql+asyncpg://app:app@localhost/app_test (.ci/run makes one).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
SQL_STORES = ["sqlite", "postgresql"] if TEST_DATABASE_URL else ["sqlite"]

ADA = {"email": "ada@example.com", "name": "Ada Lovelace", "password": "analytical1"}
ADA_FORM = {"username": ADA["email"], "password": ADA["password"]}
API_KEY = {"X-API-Key": "expected-api-key"}


@pytest.fixture(autouse=True)
def client(started, store, monkeypatch):
    """A client of a fresh app: no users, no login attempts, nothing a test before this one left."""
    main, client, stores, rows = started(store)
    fresh_app(main, client, stores, rows, monkeypatch)
    monkeypatch.setattr(client, "request", as_an_admin_if_refused(main, client, client.request))
    yield client
    main.app.dependency_overrides.clear()
    client.headers.pop("Authorization", None)  # signed out (see sign_in)


def create_user(client, **fields):
    r = client.post("/users", json={**ADA, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def login(client, username=ADA["email"], password=ADA["password"]):
    """The Authorization header for a fresh token."""
    r = client.post("/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def sign_in(client, username=ADA["email"], password=ADA["password"]):
    """From here on the client sends this user's token, as a signed-in client would: harmless while a route is
    open, and what it needs once a learner protects it (README: Protect a route). The next test starts signed out."""
    client.headers.update(login(client, username, password))


def user_json(user_id=1, **fields):
    """A user as the API shows it, in the fields the tests know."""
    user = {k: v for k, v in ADA.items() if k != "password"}
    return {**user, "role": "user", "id": user_id, "created_at": ANY, "is_active": True, **fields}


# UserResponse's fields. Tests compare these, not whole bodies, so that a field a learner adds (a bio, say) fails
# one test only, test_models_every_model_has_the_fields_the_tests_know, which says which field is new.
USER_FIELDS = ["email", "name", "role", "id", "created_at", "is_active"]


def known(user):
    """A user from the API, with only the fields the tests know."""
    return {name: user[name] for name in USER_FIELDS}


# --- Basic Application ---


@pytest.mark.parametrize(
    ("path", "body"),
    [("/", {"message": "Welcome to My API"}), ("/health", {"status": "healthy"})],
    ids=["root", "health"],
)
def test_basic_article_answers(client, path, body):
    expect(send(client, "GET", path), f"GET {path}", 200, body)


def test_basic_article_app_is_titled_as_in_the_article(client):
    info = {"title": "My API", "description": "A sample REST API built with FastAPI", "version": "1.0.0"}
    r = send(client, "GET", "/openapi.json")
    expect(r, "GET /openapi.json", 200, holds=lambda r: has(r.json()["info"], info), article=f'200 with "info": {info}')


def test_basic_root_welcomes(client):
    r = client.get("/")
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "Welcome to My API"}


def test_basic_health_is_healthy(client):
    r = client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "healthy"}


def test_basic_app_is_described_as_in_the_article(client):
    info = client.get("/openapi.json").json()["info"]
    assert info == {"title": "My API", "description": "A sample REST API built with FastAPI", "version": "1.0.0"}


@pytest.mark.parametrize("store", ["memory"])
def test_basic_python_main_py_runs_the_articles_uvicorn_line(store, monkeypatch):
    def run(*args, **kwargs):
        raise SystemExit((args, kwargs))  # uvicorn.run would serve until stopped

    monkeypatch.setattr(uvicorn, "run", run)
    with pytest.raises(SystemExit) as ran, patch.dict(os.environ, TEST_SETTINGS):
        runpy.run_path(str(HERE / "main.py"), run_name="__main__")
    assert ran.value.code == (("main:app",), {"reload": True})  # in this process, on 127.0.0.1:8000


@pytest.mark.parametrize("store", ["memory"])
def test_basic_settings_come_from_a_dotenv_file_and_the_environment_wins(store, tmp_path):
    (tmp_path / ".env").write_text("API_KEY=from-dotenv\nSECRET_KEY=dotenv-secret\nLOGIN_ATTEMPTS=2\nOTHER=ignored\n")
    # An empty variable counts as unset, so the .env file's API_KEY and SECRET_KEY apply; LOGIN_ATTEMPTS is set.
    main = import_main("main_dotenv", workdir=tmp_path, API_KEY="", SECRET_KEY="", LOGIN_ATTEMPTS="3")
    assert (main.settings.api_key, main.SECRET_KEY, main.settings.login_attempts) == ("from-dotenv", "dotenv-secret", 3)
    with TestClient(main.app) as client:
        assert client.get("/items", headers={"X-API-Key": "from-dotenv"}).status_code == 200
        assert client.get("/items", headers=API_KEY).status_code == 401


@pytest.mark.parametrize("store", ["memory"])
def test_basic_a_dotenv_file_not_in_utf8_stops_the_app_with_one_line(store, tmp_path):
    (tmp_path / ".env").write_text("API_KEY=from-dotenv\n", encoding="utf-16")  # as Windows PowerShell 5's > writes it
    with pytest.raises(SystemExit) as stopped:
        import_main("main_utf16", workdir=tmp_path)
    assert str(stopped.value.code).startswith(".env is not UTF-8: save it as UTF-8"), stopped.value.code


@pytest.mark.parametrize("store", ["memory"])
def test_basic_an_empty_setting_is_unset(store):
    main = import_main("main_empty", API_KEY="", SECRET_KEY="", BCRYPT_ROUNDS="")
    assert main.settings.api_key == "expected-api-key"
    assert len(main.SECRET_KEY) > 30
    assert main.settings.bcrypt_rounds == 12


@pytest.mark.parametrize("store", ["memory"])
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"BCRYPT_ROUNDS": "40"}, "BCRYPT_ROUNDS is not valid: it takes a whole number from 4 to 14"),
        ({"BCRYPT_ROUNDS": "3"}, "BCRYPT_ROUNDS is not valid: it takes a whole number from 4 to 14"),
        ({"ACCESS_TOKEN_EXPIRE_MINUTES": "abc"}, "ACCESS_TOKEN_EXPIRE_MINUTES is not valid: it takes a whole number"),
        ({"ACCESS_TOKEN_EXPIRE_MINUTES": "0"}, "ACCESS_TOKEN_EXPIRE_MINUTES is not valid: it takes a whole number"),
        ({"LOGIN_ATTEMPTS": "0"}, "LOGIN_ATTEMPTS is not valid: it takes a whole number, 1 or more"),
        ({"LOGIN_WINDOW_MINUTES": "-5"}, "LOGIN_WINDOW_MINUTES is not valid: it takes a whole number of minutes"),
        ({"SQL_ECHO": "loud"}, "SQL_ECHO is not valid: it takes true or false"),
        ({"DATABASE_TIMEOUT": "0"}, "DATABASE_TIMEOUT is not valid: it takes a number of seconds, more than 0"),
        ({"CORS_ORIGINS": "example.com"}, "CORS_ORIGINS is not valid: it takes origins like https://example.com"),
        (
            {"CORS_ORIGINS": "https://example.com/"},
            "CORS_ORIGINS is not valid: it takes origins like https://example.com",
        ),
        ({"CORS_ORIGINS": "https://a.example;https://b.example"}, "CORS_ORIGINS is not valid: it takes origins like"),
    ],
)
def test_basic_a_bad_setting_stops_the_app_with_one_line_naming_it(store, settings, message):
    with pytest.raises(SystemExit) as stopped:
        import_main("main_bad_setting", **settings)
    [line] = str(stopped.value.code).splitlines()
    assert line.startswith(message), line


@pytest.mark.parametrize("store", ["memory"])
def test_basic_two_bad_settings_are_a_line_each(store):
    with pytest.raises(SystemExit) as stopped:
        import_main("main_bad_settings", BCRYPT_ROUNDS="40", ACCESS_TOKEN_EXPIRE_MINUTES="abc")
    assert str(stopped.value.code).splitlines() == [
        "ACCESS_TOKEN_EXPIRE_MINUTES is not valid: it takes a whole number of minutes, 1 or more",
        "BCRYPT_ROUNDS is not valid: it takes a whole number from 4 to 14",
    ]


# --- Request and Response Models ---


def test_models_article_a_new_user_has_an_id_the_role_user_and_no_password(client):
    user = new_user()
    shown = {
        "email": user["email"],
        "name": user["name"],
        "role": "user",
        "id": ANY,
        "created_at": ANY,
        "is_active": True,
    }
    r = send(client, "POST", "/users", json=user)
    article = f"201 (200 from Async Database Operations' create_user) {as_json(shown)}, no password"
    hint = " (response_model=UserResponse keeps the hash out of its answer)" if "hashed_password" in r.text else ""
    expect(r, "POST /users with a new user", (201, 200), shown, no_password, article, hint)


def test_models_article_a_role_can_be_chosen(client):
    r = send(client, "POST", "/users", json=new_user(role="admin"))
    expect(r, 'POST /users with "role": "admin"', (201, 200), {"role": "admin"})


@pytest.mark.parametrize(
    "fields",
    [{"email": "not-an-email"}, {"name": ""}, {"name": "x" * 101}, {"role": "owner"}, {"password": "short12"}],
    ids=["email", "empty-name", "long-name", "unknown-role", "short-password"],
)
def test_models_article_an_invalid_user_is_422(client, fields):
    r = send(client, "POST", "/users", json=new_user(**fields))
    expect(r, f"POST /users with {json.dumps(fields)}", 422)  # its body is the Error Handling section's


def test_models_article_a_password_needs_a_digit(client):
    message = "Password must contain at least one digit"
    r = send(client, "POST", "/users", json=new_user(password="no-digits-here"))
    sent, article = 'POST /users with "password": "no-digits-here"', f'422, saying "{message}"'
    expect(r, sent, 422, holds=lambda r: message in r.text, article=article)


@pytest.mark.parametrize("store", ["memory"])  # the models are the same whatever the store
def test_models_every_model_has_the_fields_the_tests_know(main, store):
    """The one test a new field or column fails, saying which: other tests compare only the fields they are about.
    After adding one on purpose, add it here, and a test of what it does."""
    expected = {
        "UserBase": ["email", "name", "role"],
        "UserCreate": ["email", "name", "role", "password"],
        "UserResponse": ["email", "name", "role", "id", "created_at", "is_active"],
        "UserInDB": ["email", "name", "role", "id", "created_at", "is_active", "hashed_password"],
        "UserUpdate": ["name", "role", "is_active"],
        "Item": ["id", "name", "price"],
        "table users": ["id", "email", "name", "hashed_password", "created_at", "role", "is_active"],
        "table items": ["id", "name", "price"],
        "table settings": ["name", "value"],
    }
    tables = main.Base.metadata.tables
    changes = []
    for model, fields in expected.items():
        kind, _, name = model.rpartition(" ")
        actual = list(tables[name].columns.keys() if kind else getattr(main, name).model_fields)
        new, gone = [f for f in actual if f not in fields], [f for f in fields if f not in actual]
        changes += [f"{model}: {what} {', '.join(f)}" for what, f in [("new", new), ("gone", gone)] if f]
    assert not changes, "; ".join(changes) + ". If you meant it, list it in this test, and test what it does."


def test_models_role_defaults_to_user_and_created_at_is_utc(client):
    user = create_user(client)
    assert known(user) == user_json()
    sign_in(client)
    assert client.get("/users/1").json()["created_at"] == user["created_at"]  # read back from the store, still UTC
    created_at = datetime.fromisoformat(user["created_at"])
    assert created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created_at) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not-an-email"}, "body -> email", ANY),
        ({"name": ""}, "body -> name", "String should have at least 1 character"),
        ({"name": "x" * 101}, "body -> name", "String should have at most 100 characters"),
        ({"name": "Ada\x00"}, "body -> name", "String should match pattern '^[^\\u0000]*$'"),
        ({"role": "owner"}, "body -> role", "Input should be 'admin', 'user' or 'guest'"),
        ({"password": "short1"}, "body -> password", "String should have at least 8 characters"),
        ({"password": "no-digits-here"}, "body -> password", "Password must contain at least one digit"),
        ({"password": "١٢٣٤٥٦٧٨"}, "body -> password", "Password must contain at least one digit"),
        ({"password": "1" + "é" * 36}, "body -> password", "Password must be at most 72 bytes in UTF-8, with no NUL"),
        ({"password": "nul\x00byte1"}, "body -> password", "Password must be at most 72 bytes in UTF-8, with no NUL"),
        ({"password": "1" * 73}, "body -> password", "String should have at most 72 characters"),
    ],
)
def test_models_user_create_validation(client, fields, field, message):
    r = client.post("/users", json={**ADA, **fields})
    assert r.status_code == 422, r.text
    assert r.json() == {"error": "Validation Error", "details": [{"field": field, "message": message, "type": ANY}]}


@pytest.mark.parametrize(
    ("method", "path", "body"), [("POST", "/users", ADA), ("PATCH", "/users/1", {"name": "Countess of Lovelace"})]
)
def test_models_a_field_the_model_lacks_is_a_422_naming_it_not_dropped(client, method, path, body):
    create_user(client, email="grace@example.com")
    sign_in(client, "grace@example.com")
    r = client.request(method, path, json={**body, "nickname": "Enchantress of Numbers"})
    assert r.status_code == 422, r.text
    assert r.json()["details"] == [
        {"field": "body -> nickname", "message": "Extra inputs are not permitted", "type": "extra_forbidden"}
    ]
    assert [user["name"] for user in client.get("/users").json()] == ["Ada Lovelace"]


def test_models_password_of_72_bytes_is_whole_and_accepted(client):
    password = "1" + "é" * 35 + "x"  # 72 bytes in UTF-8
    create_user(client, password=password)
    assert login(client, password=password)
    for wrong in (password[:-1], password + "x", password + "\x00"):
        r = client.post("/token", data={"username": ADA["email"], "password": wrong})
        assert r.status_code == 401, r.text


@pytest.mark.parametrize(
    "update",
    [
        {"name": None},
        {"name": ""},
        {"name": "\x00"},
        {"role": None},
        {"role": "owner"},
        {"is_active": None},
        {"is_active": 0},
        {"is_active": 1},
        {"is_active": "yes"},
        {"is_active": "false"},
    ],
)
def test_models_user_update_rejects_null_and_loose_types(client, update):
    create_user(client)
    sign_in(client)
    r = client.patch("/users/1", json=update)
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == f"body -> {next(iter(update))}"
    assert known(client.get("/users/1").json()) == user_json()


def test_models_the_readmes_new_column_is_kept_and_patched(store, tmp_path):
    """The README's Add a column, as printed, in a copy of main.py: sign-up, PATCH and the database keep a bio."""
    section = README.split("**Add a column.**")[1].split("\n### ")[0]
    source = (HERE / "main.py").read_text()
    for block in re.findall(r"```python\n(.*?)```", section, re.DOTALL):
        source = with_new_lines(source, block)
    (tmp_path / "main.py").write_text(source)
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_bio_{store}", tmp_path / "main.py", DATABASE_URL=url)
    added = []
    if store == "postgresql":  # the suite's own tables: the column is added, as the app says, for this test only
        added = on_database(learner, url, learner.missing_columns)
        run_sql(learner, url, added)
    try:
        with learners_client(learner) as learners:
            assert create_user(learners)["bio"] is None
            sign_in(learners)
            [(command, printed)] = re.findall(r"```bash\n(.*?)\n```\n```text\n(.*?)\n```", section, re.DOTALL)
            r = send_curl(learners, command.replace("$TOKEN", learners.headers["Authorization"].split()[1]))
            *body, status = printed.split("\n")
            assert f"HTTP {r.status_code}" == status, r.text
            assert shown(r.json(), without_times_and_tokens("\n".join(body))), r.text
            assert learners.get("/users/1").json()["bio"] == "Poet of science"
            assert learners.patch("/users/1", json={"bio": None}).json()["bio"] is None
    finally:
        if added:
            run_sql(learner, url, [statement.replace(" ADD ", " DROP ").rsplit(" ", 1)[0] for statement in added])


# --- CRUD Endpoints ---


def test_crud_article_a_new_user_is_found_by_id(client):
    user = new_user()
    created = sign_up(client, user)
    r = send(client, "GET", f"/users/{created.get('id')}")
    shown = as_the_article_shows(user, id=created.get("id"))
    expect(r, "GET /users/{id} of a new user", 200, shown, no_password, f"200 {as_json(shown)}, no password")


def test_crud_article_an_email_already_registered_is_400(client):
    user = new_user()
    sign_up(client, user)
    r = send(client, "POST", "/users", json=user | {"name": "Someone else"})
    expect(r, "POST /users with an email already registered", 400, {"detail": "Email already registered"})


def test_crud_article_list_filters_by_role_and_pages(client):
    guest = new_user(role="guest")
    sign_up(client, guest)
    sign_up(client, new_user())
    r = send(client, "GET", "/users", params={"role": "guest", "limit": 100})

    def only_guests(r):
        listed = [user for user in r.json() if has(user, as_the_article_shows(guest))]
        return len(listed) == 1 and {user["role"] for user in r.json()} == {"guest"} and no_password(r)

    expect(r, "GET /users?role=guest&limit=100", 200, holds=only_guests, article="200 with the guests only")
    r = send(client, "GET", "/users", params={"limit": 1})
    expect(r, "GET /users?limit=1", 200, holds=lambda r: len(r.json()) == 1, article="200 with one user")


@pytest.mark.parametrize("query", ["skip=-1", "limit=0", "limit=101"])
def test_crud_article_list_refuses_bad_paging(client, query):
    expect(send(client, "GET", f"/users?{query}"), f"GET /users?{query}", 422)


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_crud_article_an_unknown_user_is_404(client, method):
    user = new_user()
    sign_up(client, user)
    body = {"name": "X"} if method == "PATCH" else None
    r = send(client, method, f"/users/{2**31 - 1}", json=body, headers=signed_in(client, user))
    sent = f"{method} /users/{{id}} of a user who does not exist"
    expect(r, sent, 404, {"detail": "User not found"}, article='404 {"detail": "User not found"}')


def test_crud_article_a_user_id_is_positive(client):
    article = "422 (Path(gt=0)), or 404 from Async Database Operations' get_user, whose user_id is a plain int"
    expect(send(client, "GET", "/users/0"), "GET /users/0", (422, 404), article=article)


def test_crud_article_patch_changes_only_what_is_sent(client):
    user = new_user()
    created = sign_up(client, user)
    r = send(client, "PATCH", f"/users/{created.get('id')}", json={"name": "Countess"}, headers=signed_in(client, user))
    shown = as_the_article_shows(user, id=created.get("id"), name="Countess")
    expect(r, 'PATCH /users/{id} with {"name": "Countess"}', 200, shown)


def test_crud_article_delete_is_204_and_frees_the_email(client):
    user = new_user()
    created = sign_up(client, user)
    r = send(client, "DELETE", f"/users/{created['id']}", headers=signed_in(client, user))
    expect(r, "DELETE /users/{id}", 204, holds=lambda r: not r.content, article="204 with no body")
    r = send(client, "POST", "/users", json=user)
    expect(r, "POST /users with the email of a deleted user", (201, 200))


def test_crud_create_stores_a_bcrypt_hash_and_never_shows_it(client, main):
    r = client.post("/users", json=ADA)
    assert r.status_code == 201, r.text
    assert known(r.json()) == user_json()
    assert "password" not in r.text
    hashed_password = on_app_loop(client, main.get_user_from_db, 1).hashed_password
    assert hashed_password.startswith("$2b$")
    assert main.verify_password(ADA["password"], hashed_password)


@pytest.mark.parametrize(
    ("signed_up", "taken"),
    [
        ("ada@example.com", "ADA@Example.COM"),
        ("ÅSA@example.com", "åsa@example.com"),  # SQLite's own lower() folds only A to Z
        ("åsa@example.com", "ÅSA@example.com"),
        ("ÉLODIE@example.com", "Élodie@example.com"),
    ],
)
def test_crud_duplicate_email_is_refused_whatever_its_case(client, signed_up, taken):
    create_user(client, email=signed_up)
    r = client.post("/users", json={**ADA, "email": taken})
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Email already registered"}
    sign_in(client, signed_up)
    assert [user["email"] for user in client.get("/users").json()] == [signed_up]


def test_crud_a_taken_email_is_refused_before_any_hash_is_made(client, main, monkeypatch):
    create_user(client)
    hashed: list[str] = []
    monkeypatch.setattr(main, "get_password_hash", hashed.append)
    r = client.post("/users", json={**ADA, "email": "ADA@example.com"})
    assert r.status_code == 400, r.text
    assert hashed == []


def test_crud_list_pages_in_creation_order_and_filters_by_role(client):
    for i, role in enumerate(["user", "guest", "user", "guest", "user"]):
        create_user(client, email=f"u{i}@example.com", role=role)
    sign_in(client, "u0@example.com")

    assert [u["id"] for u in client.get("/users").json()] == [1, 2, 3, 4, 5]
    assert [u["id"] for u in client.get("/users", params={"skip": 1, "limit": 2}).json()] == [2, 3]
    assert [u["id"] for u in client.get("/users", params={"role": "guest"}).json()] == [2, 4]
    assert [u["id"] for u in client.get("/users", params={"role": "guest", "skip": 1}).json()] == [4]
    assert client.get("/users", params={"skip": 5}).json() == []


def test_crud_list_shows_ten_by_default(client):
    for i in range(12):
        create_user(client, email=f"u{i}@example.com")
    sign_in(client, "u0@example.com")
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
def test_crud_list_rejects_bad_paging(client, params, field):
    create_user(client)
    sign_in(client)
    r = client.get("/users", params=params)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_crud_get_user(client):
    create_user(client)
    sign_in(client)
    r = client.get("/users/1")
    assert r.status_code == 200, r.text
    assert known(r.json()) == user_json()


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_crud_unknown_user_is_404(client, method):
    create_user(client)
    sign_in(client)
    r = client.request(method, "/users/7", json={"name": "X"} if method == "PATCH" else None)
    assert r.status_code == 404, r.text
    assert r.json() == {"detail": "User not found"}


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", "1.5"])
def test_crud_user_id_must_be_a_positive_integer(client, user_id):
    r = client.get(f"/users/{user_id}")
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == "path -> user_id"


def test_crud_patch_changes_only_the_fields_sent(client):
    created = create_user(client)
    sign_in(client)
    r = client.patch("/users/1", json={"name": "Countess", "role": "admin"})
    assert r.status_code == 200, r.text
    assert r.json() == {**created, "name": "Countess", "role": "admin"}
    assert client.patch("/users/1", json={}).json() == r.json()
    r = client.patch("/users/1", json={"is_active": False})
    assert r.json() == {**created, "name": "Countess", "role": "admin", "is_active": False}
    assert client.get("/users/1").json() == r.json()


def test_crud_patch_cannot_change_fields_the_model_does_not_own(client, main):
    created = create_user(client)
    sign_in(client)
    hashed_password = on_app_loop(client, main.get_user_from_db, 1).hashed_password
    r = client.patch(
        "/users/1",
        json={"id": 9, "email": "eve@example.com", "created_at": "2000-01-01T00:00:00Z", "hashed_password": "x"},
    )
    assert r.status_code == 422, r.text
    assert [(d["field"], d["type"]) for d in r.json()["details"]] == [
        (f"body -> {field}", "extra_forbidden") for field in ("id", "email", "created_at", "hashed_password")
    ]
    assert client.get("/users/1").json() == created
    assert on_app_loop(client, main.get_user_from_db, 1).hashed_password == hashed_password
    assert on_app_loop(client, main.get_user_by_email, "eve@example.com") is None


def test_crud_delete_then_gone_and_email_free_and_id_not_reused(client):
    create_user(client)
    create_user(client, email="grace@example.com")
    sign_in(client)
    r = client.delete("/users/2")
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert "content-type" not in r.headers
    assert client.get("/users/2").status_code == 404
    assert create_user(client, email="grace@example.com")["id"] == 3


# --- Dependency Injection ---


def test_deps_article_items_with_the_api_key(client):
    r = send(client, "GET", "/items", headers=READERS_KEY)
    expect(r, "GET /items with X-API-Key: expected-api-key", 200, holds=lambda r: isinstance(r.json(), list))
    r = send(client, "GET", "/items?limit=1", headers=READERS_KEY)
    expect(r, "GET /items?limit=1 with the API key", 200, holds=lambda r: len(r.json()) <= 1, article="200, one item")


def test_deps_article_a_wrong_api_key_is_401(client):
    r = send(client, "GET", "/items", headers={"X-API-Key": "wrong-key"})
    expect(r, "GET /items with X-API-Key: wrong-key", 401, {"detail": "Invalid API key"})


def test_deps_article_no_api_key_is_refused(client):
    r = send(client, "GET", "/items")  # the article's Header(...) makes it a 422; this app's is a 401
    expect(r, "GET /items with no X-API-Key", (422, 401), article="422: its Header(...) requires it (a 401 will do)")


def test_deps_items_list_the_catalogue_with_the_api_key(client, main):
    r = client.get("/items", headers=API_KEY)
    assert r.status_code == 200, r.text
    assert r.json() == [item.model_dump() for item in main.items_db]
    assert r.json()[0] == {"id": 1, "name": "Keyboard", "price": 49.99}


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": ""}, {"X-API-Key": "ключ"}])
def test_deps_items_need_the_right_api_key(client, headers):
    r = client.get("/items", headers={k: v.encode() for k, v in headers.items()})
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Invalid API key"}


def test_deps_api_key_comes_from_the_settings(client, main, monkeypatch):
    monkeypatch.setattr(main.settings, "api_key", "class-key")
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
        ({"skip": 2**31 - 1}, []),
    ],
)
def test_deps_items_paginate_and_sort(client, params, ids):
    r = client.get("/items", headers=API_KEY, params=params)
    assert r.status_code == 200, r.text
    assert [item["id"] for item in r.json()] == ids


def test_deps_pagination_caps_limit_at_100(main):
    assert main.PaginationParams(limit=1000).limit == 100
    assert main.PaginationParams(limit=7).limit == 7


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"skip": -1}, "query -> skip"),
        ({"skip": 10**30}, "query -> skip"),
        ({"limit": 0}, "query -> limit"),
        ({"sort_by": "secret"}, "query -> sort_by"),
        ({"order": "sideways"}, "query -> order"),
    ],
)
def test_deps_items_reject_bad_pagination(client, params, field):
    r = client.get("/items", headers=API_KEY, params=params)
    assert r.status_code == 422, r.text
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_deps_the_database_dependency_can_be_overridden(client, main, tmp_path):
    """As FastAPI's testing guide does: the routes get their data from another source."""
    if main.engine is None:

        async def get_other_db():
            yield [main.Item(id=42, name="Override", price=1.0)]

        app_dependency = main.get_db
    else:
        other = main.open_engine(f"sqlite+aiosqlite:///{tmp_path}/other.db")

        async def get_other_db():
            async with other.begin() as connection:
                await connection.run_sync(main.Base.metadata.create_all)
                await connection.execute(main.insert(main.ItemRow).values(id=42, name="Override", price=1.0))
            async with main.AsyncSession(other) as session:
                yield session
            await other.dispose()

        app_dependency = main.get_async_db
    main.app.dependency_overrides[app_dependency] = get_other_db
    assert client.get("/items", headers=API_KEY).json() == [{"id": 42, "name": "Override", "price": 1.0}]
    main.app.dependency_overrides.clear()
    assert len(client.get("/items", headers=API_KEY).json()) == 6


# --- Authentication with JWT ---


def test_auth_article_login_gives_a_bearer_token(client):
    user = new_user()
    sign_up(client, user)
    r = send(client, "POST", "/token", data={"username": user["email"], "password": user["password"]})
    expect(r, "POST /token with a user's email and password", 200, {"access_token": ANY, "token_type": "bearer"})


@pytest.mark.parametrize("who", ["wrong-password", "unknown-email"])
def test_auth_article_a_wrong_login_is_401(client, who):
    user = new_user()
    sign_up(client, user)
    form = {"username": user["email"], "password": "wrong-password1"}
    if who == "unknown-email":
        form = {"username": new_user()["email"], "password": user["password"]}
    r = send(client, "POST", "/token", data=form)
    sent = f"POST /token with {'a wrong password' if who == 'wrong-password' else 'an email nobody signed up with'}"
    article = '401 {"detail": "Incorrect username or password"} and WWW-Authenticate: Bearer'
    bearer = {"detail": "Incorrect username or password"}
    expect(r, sent, 401, bearer, lambda r: r.headers.get("WWW-Authenticate") == "Bearer", article)


def test_auth_article_me_is_the_user_the_token_names(client):
    user = new_user()
    sign_up(client, user)
    r = send(client, "GET", "/users/me", headers=log_in(client, user))
    sent, article = "GET /users/me with the user's token", "200 with that user"
    expect(r, sent, 200, holds=lambda r: user["email"] in r.json().values(), article=article)


@pytest.mark.parametrize(
    ("headers", "detail"),
    [({}, "Not authenticated"), ({"Authorization": "Bearer not-a-token"}, "Could not validate credentials")],
    ids=["no-token", "bad-token"],
)
def test_auth_article_me_needs_a_valid_token(client, headers, detail):
    sent = f"GET /users/me with {'no token' if not headers else 'a token that is not one'}"
    expect(send(client, "GET", "/users/me", headers=headers), sent, 401, {"detail": detail})


def test_auth_login_returns_a_bearer_token_naming_the_user(client, main):
    create_user(client)
    r = client.post("/token", data=ADA_FORM)
    assert r.status_code == 200, r.text
    assert r.json() == {"access_token": ANY, "token_type": "bearer"}
    claims = jwt.decode(r.json()["access_token"], main.SECRET_KEY, algorithms=["HS256"])
    assert claims == {"sub": "1", "email": "ada@example.com", "exp": ANY}
    expires_in = datetime.fromtimestamp(claims["exp"], UTC) - datetime.now(UTC)
    assert timedelta(minutes=29) < expires_in <= timedelta(minutes=30)


def test_auth_username_is_case_insensitive(client):
    create_user(client)
    r = client.get("/users/me", headers=login(client, username="ADA@example.COM"))
    assert r.status_code == 200, r.text
    assert known(r.json()) == user_json()


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
def test_auth_wrong_password_and_unknown_user_look_the_same(client, username, password):
    create_user(client)
    r = client.post("/token", data={"username": username, "password": password})
    if not username or not password:
        assert r.status_code == 422, r.text
        return
    assert r.status_code == 401, r.text
    assert r.json() == {
        "error": "Application Error",
        "detail": "Incorrect username or password",
        "path": "/token",
        "error_description": "Incorrect username or password",  # what the Authorize dialog in /docs shows
    }
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("username", ["nobody@example.com", "not an email"])
def test_auth_unknown_user_still_checks_a_password(client, main, monkeypatch, username):
    checks = []
    monkeypatch.setattr(main.pwd_context, "dummy_verify", lambda: checks.append("dummy"))
    r = client.post("/token", data={"username": username, "password": "analytical1"})
    assert r.status_code == 401, r.text
    assert checks == ["dummy"]


@pytest.mark.parametrize("store", ["memory"])
def test_auth_a_hash_made_before_libpass_still_verifies(main, store):
    assert main.verify_password(ADA["password"], HASH_BEFORE_LIBPASS)
    assert not main.verify_password("analytical2", HASH_BEFORE_LIBPASS)


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
        ("ÅSA@example.com", "ÅSA@example.com"),
        ("ÅSA@example.com", "åsa@example.com"),
    ],
)
def test_auth_the_email_that_signed_up_logs_in(client, signed_up, logs_in):
    email = create_user(client, email=signed_up)["email"]
    r = client.get("/users/me", headers=login(client, username=logs_in))
    assert r.status_code == 200, r.text
    assert r.json()["email"] == email


def test_auth_a_username_longer_than_an_email_is_422_and_not_kept(client, main):
    r = client.post("/token", data={"username": "a" * 250 + "@example.com", "password": "x"})
    assert r.status_code == 422, r.text
    assert r.json()["details"] == [
        {"field": "body -> username", "message": "String should have at most 254 characters", "type": "string_too_long"}
    ]
    assert failed_logins(client, main) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(json.dumps(ADA_FORM), "application/json"), (json.dumps(ADA_FORM), "text/plain"), ("", None)],
)
def test_auth_login_that_is_not_a_form_is_415_saying_to_send_one(client, body, content_type):
    create_user(client)
    r = client.post("/token", content=body, headers={"Content-Type": content_type} if content_type else {})
    assert r.status_code == 415, r.text
    assert r.json() == {
        "detail": "Send the login as a form, with Content-Type: application/x-www-form-urlencoded (OAuth2 says so)"
    }


def test_auth_hashing_and_checking_run_off_the_event_loop(client, main, monkeypatch):
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
    create_user(client)
    login(client)
    assert threads == ["worker", "worker"]


def test_auth_me_returns_the_current_user(client):
    create_user(client)
    r = client.get("/users/me", headers=login(client))
    assert r.status_code == 200, r.text
    assert known(r.json()) == user_json()


def test_auth_me_without_a_token_is_401(client):
    r = client.get("/users/me")
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


def in_minutes(minutes):
    return datetime.now(UTC) + timedelta(minutes=minutes)


ADA_CLAIMS = {"sub": "1", "email": ADA["email"]}


DEEP = b"[" * 5000 + b"]" * 5000  # JSON nested 5,000 deep


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
def test_auth_me_rejects_bad_claims(client, main, claims):
    create_user(client)
    r = client.get("/users/me", headers=token_for(main, claims))
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        lambda main: "not-a-jwt",
        lambda main: jwt.encode({**ADA_CLAIMS, "exp": in_minutes(5)}, "another-key", algorithm="HS256"),
        lambda main: jwt.encode({**ADA_CLAIMS, "exp": in_minutes(5)}, main.SECRET_KEY, algorithm="HS512"),
        # alg "none": Ada's claims, unsigned
        lambda main: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiZW1haWwiOiJhZGFAZXhhbXBsZS5jb20ifQ.",
        lambda main: b64(DEEP) + ".e30.x",  # where the header should be
        lambda main: b64(b'{"alg": "HS256", "x": ' + DEEP + b"}") + ".e30.x",
        lambda main: signed(main, b'{"sub": "1", "x": ' + DEEP + b"}"),  # with the right key
        lambda main: "x" * 100_000,
    ],
    ids=["garbage", "other-key", "other-alg", "alg-none", "deep-header", "deep-in-header", "deep-claims", "huge"],
)
def test_auth_me_rejects_bad_tokens(client, main, token):
    create_user(client)
    r = client.get("/users/me", headers={"Authorization": f"Bearer {token(main)}"})
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    assert r.headers["WWW-Authenticate"] == "Bearer"


def test_auth_token_of_a_deleted_user_is_rejected_even_once_the_email_signs_up_again(client):
    create_user(client)
    headers = login(client)
    assert client.delete("/users/1", headers=headers).status_code == 204
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"detail": "Could not validate credentials"}
    create_user(client, name="Someone else")
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 401, r.text
    assert known(client.get("/users/me", headers=login(client)).json()) == user_json(user_id=2, name="Someone else")


def test_auth_inactive_user_cannot_log_in_or_use_a_token(client):
    create_user(client)
    headers = login(client)
    assert client.patch("/users/1", json={"is_active": False}, headers=headers).status_code == 200
    r = client.get("/users/me", headers=headers)
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Inactive user"}
    r = client.post("/token", data=ADA_FORM)
    assert r.status_code == 400, r.text
    assert r.json() == {"detail": "Inactive user"}


def test_auth_the_readmes_recipe_protects_a_route_and_the_document_says_so(client, main, store, tmp_path):
    """The README's next steps tell a learner how to protect delete_user and, for a database, delete_db_user."""
    recipe = re.search(r"\*\*Protect a route\.\*\*.*?\n```python\n(.*?)\n```", README, re.DOTALL)
    assert recipe, "the README has lost its recipe"
    source = with_signatures((HERE / "main.py").read_text(), recipe[1])
    (tmp_path / "main.py").write_text(source)
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_protected_{store}", tmp_path / "main.py", DATABASE_URL=url)
    with learners_client(learner) as learners:
        create_user(learners)
        r = learners.delete("/users/1")
        assert r.status_code == 401, r.text
        assert r.json() == {"detail": "Not authenticated"}
        assert learners.delete("/users/1", headers=login(learners)).status_code == 204
        responses = learners.get("/openapi.json").json()["paths"]["/users/{user_id}"]["delete"]["responses"]
        assert {"400", "401"} <= set(responses)
        assert list(responses["401"]["headers"]) == ["WWW-Authenticate"]


def test_auth_the_readmes_admin_only_recipe_holds(store, tmp_path):
    """The README's Admin-only, as printed, in a copy of main.py: no one makes themselves an admin, at sign-up or
    with PATCH, and only an admin changes or deletes users."""
    section = README.split("**Admin-only.**")[1].split("\n**")[0]
    *after_their_first_lines, signatures = re.findall(r"```python\n(.*?)\n```", section, re.DOTALL)
    source = (HERE / "main.py").read_text()
    for block in after_their_first_lines:  # each block's first line is main.py's; the lines after it are new
        first, new = block.split("\n", 1)
        assert source.count(first + "\n") == 1, first
        if new not in source:  # a main.py that has the recipe already keeps it as it is
            source = source.replace(first + "\n", first + "\n" + new + "\n")
    source = with_signatures(source, signatures)
    (tmp_path / "main.py").write_text(source)
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_admin_{store}", tmp_path / "main.py", DATABASE_URL=url)
    with TestClient(learner.app) as learners:
        r = learners.post("/users", json={**ADA, "role": "admin"})
        assert r.status_code == 422, r.text
        assert r.json()["details"][0]["message"] == "Only an admin can make an admin"
        create_user(learners)
        create_user(learners, email="grace@example.com", name="Grace Hopper")
        [make_admin] = re.findall(r'sqlite3 app.db "(.*?)"', section)  # the first admin: Ada, user 1
        if store == "memory":
            learner.users_db[1] = learner.users_db[1].model_copy(update={"role": "admin"})
        else:
            run_sql(learner, url, [make_admin])
        assert learners.delete("/users/2").status_code == 401
        sign_in(learners, "grace@example.com")
        for method, body in [("PATCH", {"role": "admin"}), ("PATCH", {"name": "Amazing Grace"}), ("DELETE", None)]:
            r = learners.request(method, "/users/1", json=body)
            assert r.status_code == 403, r.text
            assert r.json() == {"detail": "Admins only"}
        sign_in(learners)
        assert learners.patch("/users/2", json={"role": "admin"}).json()["role"] == "admin"
        assert learners.delete("/users/2").status_code == 204


def test_auth_throttle_refuses_after_five_failures_without_checking(client, main, monkeypatch):
    create_user(client)
    fail_logins(client, 5)
    checks = []
    monkeypatch.setattr(main, "verify_password", lambda *args: checks.append(args))
    r = client.post("/token", data={"username": "ADA@example.com", "password": ADA["password"]})
    assert r.status_code == 429, r.text
    wait = r.headers["Retry-After"]
    assert 0 < int(wait) <= 15 * 60
    assert r.json() == {
        "error": "Application Error",
        "detail": "Too many failed login attempts, try again later",
        "path": "/token",
        "error_description": f"Too many failed login attempts, try again later (in {wait} seconds)",  # for /docs
    }
    assert checks == []


def test_auth_throttle_holds_against_a_burst(client, main, monkeypatch):
    create_user(client)
    checks = []

    def counting_verify(*args):
        checks.append(args)
        return main.pwd_context.verify(*args)

    monkeypatch.setattr(main, "verify_password", counting_verify)
    guesses = [{"data": {"username": ADA["email"], "password": f"wrong-password{i}"}} for i in range(12)]
    responses = send_at_once(client, "POST", "/token", guesses)
    assert len(checks) == 5
    assert sorted(r.status_code for r in responses) == [401] * 5 + [429] * 7
    [r] = send_at_once(client, "POST", "/token", [{"data": ADA_FORM}])  # from the burst's client
    assert r.status_code == 429, r.text


def test_auth_throttle_counts_every_spelling_of_an_email_as_one(client):
    create_user(client)
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


def test_auth_throttle_path_is_never_the_host_a_client_sent(client):
    fail_logins(client, 5, username="nobody@example.com")
    r = client.post(
        "/token", data={"username": "nobody@example.com", "password": "x"}, headers={"Host": "evil.example"}
    )
    assert r.status_code == 429, r.text
    assert r.json()["path"] == "/token"


def test_auth_throttle_spares_other_accounts_and_resets_on_success(client):
    create_user(client)
    create_user(client, email="grace@example.com")
    fail_logins(client, 5, username="grace@example.com")
    assert login(client)
    fail_logins(client, 4)
    assert login(client)
    fail_logins(client, 4)
    assert login(client)


def test_auth_throttle_lets_a_key_in_again_after_the_window(client, main, monkeypatch):
    create_user(client)
    fail_logins(client, 5)
    later = main.time.time() + 15 * 60
    monkeypatch.setattr(main.time, "time", lambda: later)
    assert login(client)


def test_auth_throttle_attempts_and_window_are_settings(client, main, monkeypatch):
    monkeypatch.setattr(main.settings, "login_attempts", 2)
    monkeypatch.setattr(main.settings, "login_window_minutes", 1)
    create_user(client)
    fail_logins(client, 2)
    r = client.post("/token", data=ADA_FORM)
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["Retry-After"]) <= 60


def test_auth_throttle_does_not_count_a_login_whose_password_was_never_checked(client, main, monkeypatch):
    async def database_gone(email, password):
        raise main.DBAPIError(None, None, ConnectionRefusedError("the database went away"))

    monkeypatch.setattr(main, "authenticate_user", database_gone)
    r = client.post("/token", data=ADA_FORM)
    assert r.status_code == 503, r.text
    assert failed_logins(client, main) == []


def test_auth_throttle_keeps_no_refused_attempt_and_nothing_past_its_window(client, main, monkeypatch):
    fail_logins(client, 5)
    for _ in range(10):
        assert client.post("/token", data=ADA_FORM).status_code == 429
    assert failed_logins(client, main) == [("testclient", ADA["email"])] * 5
    later = main.time.time() + 15 * 60
    monkeypatch.setattr(main.time, "time", lambda: later)
    fail_logins(client, 1, username="grace@example.com")
    assert failed_logins(client, main) == [("testclient", "grace@example.com")]


def test_auth_throttle_gives_a_client_a_budget_across_all_emails(client, main, monkeypatch):
    """Password spraying: one password tried on many emails, from one client."""
    assert main.settings.login_attempts_per_client == 100  # by default; 10 here, for speed
    monkeypatch.setattr(main.settings, "login_attempts_per_client", 10)
    create_user(client)
    for i in range(5):
        fail_logins(client, 1, username=f"user{i}@example.com")
        fail_logins(client, 1, username=f"other{i}@example.com")
        if i == 2:
            assert login(client)  # a success is not a failure
    r = client.post("/token", data={"username": "user99@example.com", "password": "analytical1"})
    assert r.status_code == 429, r.text
    assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert client.post("/token", data=ADA_FORM).status_code == 429
    [r] = send_at_once(client, "POST", "/token", [{"data": ADA_FORM}])  # another client has its own budget
    assert r.status_code == 200, r.text


def test_auth_throttle_budget_per_client_is_a_setting(client, main, monkeypatch):
    monkeypatch.setattr(main.settings, "login_attempts_per_client", 3)
    for name in ("a", "b", "c"):
        fail_logins(client, 1, username=f"{name}@example.com")
    r = client.post("/token", data={"username": "d@example.com", "password": "x"})
    assert r.status_code == 429, r.text


@pytest.mark.parametrize("store", SQL_STORES)
def test_auth_throttle_is_one_for_every_worker_on_a_database(client, store):
    """Two workers: two imports of main.py, each with its own engine, on one database."""
    other = import_main(f"main_other_worker_{store}", DATABASE_URL=database_url(store))
    with TestClient(other.app) as other_worker:
        create_user(client)
        fail_logins(client, 4)
        assert login(other_worker)  # a success on one worker clears the count on every one
        fail_logins(client, 3)
        fail_logins(other_worker, 2)
        for worker in (client, other_worker):
            r = worker.post("/token", data=ADA_FORM)
            assert r.status_code == 429, r.text


@pytest.mark.parametrize("store", SQL_STORES)
def test_auth_throttle_holds_against_a_burst_on_two_workers(client, main, store, monkeypatch):
    other = import_main(f"main_other_worker_{store}", DATABASE_URL=database_url(store))
    checks = []
    for module in (main, other):
        monkeypatch.setattr(module, "verify_password", lambda *args: checks.append(args))
    guesses = [{"data": {"username": ADA["email"], "password": f"wrong-password{i}"}} for i in range(6)]
    with TestClient(other.app) as other_worker, ThreadPoolExecutor(2) as pool:
        create_user(client)
        bursts = pool.map(lambda worker: send_at_once(worker, "POST", "/token", guesses), [client, other_worker])
        statuses = sorted(r.status_code for burst in bursts for r in burst)
    assert len(checks) == 5
    assert statuses == [401] * 5 + [429] * 7


# --- Async Database Operations ---


def test_async_article_a_new_user_is_kept_in_the_database(client, main):
    user = new_user()
    r = send(client, "POST", "/users", json=user)
    created = expect(r, "POST /users with a new user", (201, 200))
    in_the_database(client, main, user["email"], f"your POST /users answered {r.status_code}")
    shown = as_the_article_shows(user, id=created.get("id"))
    expect(send(client, "GET", f"/users/{created.get('id')}"), "GET /users/{id} of a new user", 200, shown)


def test_async_article_a_new_user_logs_in_with_the_password_it_sent(client, main):
    user = new_user()
    sign_up(client, user)
    in_the_database(client, main, user["email"], "your POST /users answered")
    log_in(client, user)


def test_async_get_db_and_get_async_db_are_async_dependencies(main):
    assert inspect.iscoroutinefunction(main.get_db)
    assert inspect.isasyncgenfunction(main.get_async_db)


def test_async_simultaneous_signups_with_one_email_create_one_user(client):
    responses = send_at_once(client, "POST", "/users", [{"json": ADA}] * 16)
    assert sorted(r.status_code for r in responses) == [201] + [400] * 15
    assert {r.json()["detail"] for r in responses if r.status_code == 400} == {"Email already registered"}
    sign_in(client)
    assert [u["email"] for u in client.get("/users").json()] == [ADA["email"]]


def test_async_simultaneous_signups_get_distinct_ids(client):
    signups = [{"json": {**ADA, "email": f"u{i}@example.com"}} for i in range(16)]
    responses = send_at_once(client, "POST", "/users", signups)
    assert [r.status_code for r in responses] == [201] * 16
    assert sorted(r.json()["id"] for r in responses) == list(range(1, 17))
    sign_in(client, "u0@example.com")
    assert len(client.get("/users", params={"limit": 100}).json()) == 16


def test_async_emails_are_unique_whatever_their_case(main):
    [email_index] = main.Base.metadata.tables["users"].indexes
    assert (email_index.unique, str(email_index.expressions[0])) == (True, "lower(users.email)")


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_users_and_tokens_outlive_a_restart(client, main, store):
    create_user(client)
    headers = login(client)
    client.__exit__()
    client.__enter__()  # another start-up, on the same database
    assert known(client.get("/users/me", headers=headers).json()) == user_json()
    assert client.get("/items", headers=API_KEY).json() == [item.model_dump() for item in main.items_db]


@pytest.mark.parametrize("store", SQL_STORES)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/users", ADA), ("PATCH", "/users/1", {"name": "X"}), ("DELETE", "/users/1", None)],
)
def test_async_a_commit_that_fails_is_a_500_and_keeps_nothing(client, main, store, monkeypatch, method, path, body):
    if method != "POST":
        create_user(client)  # the user the request changes
    create_user(client, email="grace@example.com")
    sign_in(client, "grace@example.com")
    before = client.get("/users").json()

    async def failing_commit(self):
        raise RuntimeError("the database went away")

    with monkeypatch.context() as patch_commit:
        patch_commit.setattr(AsyncSession, "commit", failing_commit)
        r = request_a_500(main, client, method, path, json=body)
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    assert client.get("/users").json() == before
    if method == "POST":
        create_user(client)  # the email is still free


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_pages_are_limit_and_offset_in_sql(client, main, store):
    selects = selects_sent(
        main,
        lambda: client.get("/users", params={"skip": 1, "limit": 2, "role": "admin"}),
        lambda: client.get("/items", headers=API_KEY, params={"skip": 1, "limit": 2, "sort_by": "price"}),
    )
    assert len(selects) == 2
    for statement, _ in selects:
        assert re.search(r"ORDER BY .* LIMIT .* OFFSET", statement, re.DOTALL), statement
    assert "WHERE users.role" in selects[0][0]


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_lookups_by_email_and_by_id_use_indexes(client, main, store):
    create_user(client)
    login_selects = selects_sent(
        main, lambda: client.post("/token", data={"username": "ADA@example.com", "password": "x"})
    )
    [by_email] = [select for select in login_selects if "FROM users" in select[0]]
    [by_id] = selects_sent(main, lambda: client.get("/users/1"))

    async def plan(statement, parameters):
        async with main.engine.begin() as connection:
            if store == "postgresql":
                await connection.exec_driver_sql(
                    "SET LOCAL enable_seqscan = off"
                )  # a table this small: a scan is cheaper
            explain = "EXPLAIN QUERY PLAN " if store == "sqlite" else "EXPLAIN "
            return " ".join(str(row) for row in await connection.exec_driver_sql(explain + statement, parameters))

    assert "ix_users_email_lower" in on_app_loop(client, plan, *by_email)
    assert re.search(r"INTEGER PRIMARY KEY|users_pkey", on_app_loop(client, plan, *by_id))


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_sql_echo_shows_the_statements(main, store):
    assert main.engine.echo is False  # SQL_ECHO=false
    assert same_database(main, sql_echo=True).echo is True


@pytest.mark.parametrize("store", ["memory"])
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "DATABASE_URL is not usable: Could not parse SQLAlchemy URL from given URL string"),
        ("postgresql://user:hunter2@localhost/dbname", "DATABASE_URL is not usable: No module named 'psycopg'"),
        ("sqlite:///./app.db", "DATABASE_URL is not usable: The asyncio extension requires an async driver"),
    ],
    ids=["malformed", "no-driver", "sync-driver"],
)
def test_async_a_database_url_that_cannot_work_stops_the_app_with_one_line(store, url, problem):
    with pytest.raises(SystemExit) as stopped:
        import_main("main_bad_url", DATABASE_URL=url)
    [line] = str(stopped.value.code).splitlines()
    assert line.startswith(problem), line
    assert "hunter2" not in line


@pytest.mark.parametrize("store", ["memory"])
def test_async_a_database_that_cannot_be_reached_stops_the_server_with_one_line(store, monkeypatch, capsys):
    main = import_main("main_unreachable", DATABASE_URL="postgresql+asyncpg://user:hunter2@127.0.0.1:1/dbname")
    line = start_stopping(main, monkeypatch, capsys)
    assert line.startswith("DATABASE_URL postgresql+asyncpg://user:***@127.0.0.1:1/dbname: cannot use it: "), line


@pytest.mark.parametrize("store", ["memory"])
def test_async_a_database_file_that_cannot_be_opened_stops_the_app_with_one_line(store, monkeypatch, capsys):
    main = import_main("main_unopenable", DATABASE_URL="sqlite+aiosqlite:////no/such/folder/app.db")
    line = start_stopping(main, monkeypatch, capsys)
    assert (
        line == "DATABASE_URL sqlite+aiosqlite:////no/such/folder/app.db: cannot use it: unable to open database file"
    )


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_a_column_the_database_lacks_stops_the_app_with_one_line(main, store, tmp_path, monkeypatch, capsys):
    """A learner adds a column to User (a motto: a name none has yet), and restarts on the database made before."""
    column, field = (
        "    is_active: Mapped[bool] = mapped_column(default=True)\n",
        "    role: UserRole = UserRole.USER\n",
    )
    source = (HERE / "main.py").read_text().replace(column, column + "    motto: Mapped[str | None]\n")
    (tmp_path / "main.py").write_text(source.replace(field, field + "    motto: str | None = None\n"))
    learner = import_main(f"main_motto_{store}", tmp_path / "main.py", DATABASE_URL=database_url(store))
    line = start_stopping(learner, monkeypatch, capsys)
    fresh = f"delete {NO_DOTENV}/test.db to start afresh, or " if store == "sqlite" else ""
    assert line.endswith(f": the tables lack columns the models have: {fresh}migrate it: {ALTER}"), line

    async def alter(sql):
        engine = learner.open_engine(database_url(store))
        async with engine.begin() as connection:
            await connection.exec_driver_sql(sql)
        await engine.dispose()

    asyncio.run(alter(ALTER))  # the statement it gives works
    try:
        learner = import_main(f"main_motto_{store}", tmp_path / "main.py", DATABASE_URL=database_url(store))
        with TestClient(learner.app) as learners_client:
            r = learners_client.post("/users", json={**ADA, "email": "motto@example.com", "motto": "Ad astra"})
            assert (r.status_code, r.json()["motto"]) == (201, "Ad astra"), r.text
    finally:
        asyncio.run(alter("ALTER TABLE users DROP COLUMN motto"))


@pytest.mark.skipif("postgresql" not in SQL_STORES, reason="PostgreSQL's alone: set TEST_DATABASE_URL to run it")
@pytest.mark.parametrize("store", ["postgresql"])
def test_async_a_database_whose_lower_folds_only_a_to_z_stops_the_app_with_one_line(store, monkeypatch, capsys):
    """A PostgreSQL database made with LC_CTYPE C: its lower() would make ÅSA and åsa two emails."""
    url = f"{TEST_DATABASE_URL}_c"  # .ci/run makes it: createdb -T template0 --lc-ctype=C --lc-collate=C app_test_c
    line = start_stopping(import_main("main_c_ctype", DATABASE_URL=url), monkeypatch, capsys)
    if "does not exist" in line:
        pytest.skip(f"no database {url.rsplit('/', 1)[1]} with LC_CTYPE C")
    assert line.endswith(
        ": its lower() folds only A to Z (LC_CTYPE C): make it with createdb -T template0 --locale=C.UTF-8"
    )


@pytest.mark.parametrize("store", ["sqlite"])
def test_async_several_workers_start_cleanly_on_a_fresh_sqlite_file(store, tmp_path, monkeypatch, capsys):
    """uvicorn --workers 3: three imports of main.py, started at once on one new file. They take turns: the first
    makes the tables and fills the catalogue, and none stops."""
    monkeypatch.setattr(os, "_exit", lambda code: pytest.fail(capsys.readouterr().err))
    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    workers = [import_main(f"main_worker_{number}", DATABASE_URL=url) for number in range(3)]
    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(lambda worker: TestClient(worker.app).__enter__(), workers))
    for client in started:
        assert client.get("/health").json() == {"status": "healthy"}
        client.__exit__(None, None, None)
    with contextlib.closing(sqlite3.connect(tmp_path / "fresh.db")) as database:
        assert database.execute("SELECT count(*) FROM items").fetchone() == (6,)


OUTAGES = [("sqlite", "unopenable"), ("postgresql", "nothing listening"), ("postgresql", "turned away")]


@pytest.mark.parametrize(("store", "outage"), [(store, outage) for store, outage in OUTAGES if store in SQL_STORES])
def test_async_a_database_out_of_reach_is_a_503_for_a_while_and_no_lockout(
    client, main, store, outage, monkeypatch, tmp_path, caplog
):
    create_user(client)
    sign_in(client)
    headers = login(client)
    with database_down(client, main, monkeypatch, outage, tmp_path):
        for method, path, kwargs in [
            ("GET", "/health", {}),
            ("GET", "/users", {}),
            ("GET", "/users/1", {}),
            ("POST", "/users", {"json": {**ADA, "email": "grace@example.com"}}),
            ("PATCH", "/users/1", {"json": {"name": "X"}}),
            ("DELETE", "/users/1", {}),
            ("GET", "/users/me", {"headers": headers}),
            ("GET", "/items", {"headers": API_KEY}),
            *[("POST", "/token", {"data": ADA_FORM})] * 6,
        ]:
            caplog.clear()
            r = client.request(method, path, **kwargs)
            assert r.status_code == 503, (path, r.text)
            assert r.json() == {**UNAVAILABLE, "path": path}
            assert r.headers["Retry-After"] == "5"
            [record] = caplog.records
            assert record.getMessage().startswith(f"{method} {path}: 503, the database did not answer: ")
            assert record.exc_info is None
    assert client.get("/health").json() == {"status": "healthy"}
    assert known(client.get("/users/me", headers=login(client)).json()) == user_json()


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_a_locked_table_is_a_503_after_database_timeout(client, main, store, monkeypatch):
    """A migration, say, holds the users table for a minute: a read waits DATABASE_TIMEOUT, not the minute."""
    create_user(client)
    client.__exit__()
    use_engine(main, monkeypatch, same_database(main, database_timeout=0.15))
    client.__enter__()
    locked = asyncio.Event()

    async def lock_users():
        async with main.engine.begin() as connection:
            lock = "BEGIN EXCLUSIVE" if store == "sqlite" else "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"
            await connection.exec_driver_sql(lock)
            locked.set()
            await asyncio.sleep(60)

    async def read_while_locked():
        locking = asyncio.create_task(lock_users())
        await locked.wait()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=main.app), base_url="http://test") as ac:
            start = time.monotonic()
            r = await ac.get("/users/1")
            waited = time.monotonic() - start
        locking.cancel()  # the lock ends with its transaction
        with contextlib.suppress(asyncio.CancelledError):
            await locking
        return r, waited

    r, waited = on_app_loop(client, read_while_locked)
    assert r.status_code == 503, r.text
    assert 0.15 <= waited < 5
    assert known(client.get("/users/1").json()) == user_json()
    client.__exit__()  # closes this engine's connections; the next test starts the app again


@pytest.mark.parametrize("store", SQL_STORES)
def test_async_an_error_that_is_not_about_reaching_the_database_stays_a_500(client, main, store):
    async def drop_items_table():
        async with main.engine.begin() as connection:
            await connection.exec_driver_sql("DROP TABLE items")

    on_app_loop(client, drop_items_table)
    try:
        r = request_a_500(main, client, "GET", "/items", headers=API_KEY)
        assert r.status_code == 500, r.text
        with pytest.raises(main.DBAPIError, match="items"):
            client.get("/items", headers=API_KEY)
    finally:
        on_app_loop(client, main.start_database)  # makes and fills it again


# --- Error Handling ---


def test_errors_article_validation_errors_have_the_articles_shape(client):
    r = send(client, "POST", "/users", json=new_user(password="short1"))
    details = [
        {"field": "body -> password", "message": "String should have at least 8 characters", "type": "string_too_short"}
    ]
    expect(r, 'POST /users with "password": "short1"', 422, {"error": "Validation Error", "details": details})


def test_errors_validation_shape_never_echoes_the_input(client):
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
def test_errors_unparseable_body_is_400(client, body):
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
def test_errors_a_body_that_is_not_json_is_415(client, method, path, content_type, body):
    create_user(client)
    sign_in(client)
    r = client.request(method, path, content=body, headers={"Content-Type": content_type})
    assert r.status_code == 415, r.text
    assert r.json() == {"detail": "Send the body as JSON, with Content-Type: application/json"}
    assert [known(user) for user in client.get("/users").json()] == [user_json()]


@pytest.mark.parametrize("body", [b"[]", b'"ada"', b"null", b""])
def test_errors_body_of_the_wrong_shape_is_422(client, body):
    r = client.post("/users", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/users?skip={2**31 - 1}", 200),
        ("GET", "/users?skip=" + "9" * 30, 422),
        ("GET", "/users?limit=" + "9" * 30, 422),
        ("GET", f"/users/{2**31 - 1}", 404),
        ("GET", f"/users/{2**31}", 422),
        ("GET", "/users/" + "9" * 40, 422),
        ("PATCH", "/users/" + "9" * 40, 422),
        ("DELETE", "/users/" + "9" * 40, 422),
        ("GET", "/users/-" + "9" * 40, 422),
        ("GET", "/items?skip=" + "9" * 30, 422),
    ],
)
def test_errors_huge_numbers_are_never_a_500(client, method, path, status):
    create_user(client)
    sign_in(client)
    r = client.request(method, path, headers=API_KEY, json={"name": "X"} if method == "PATCH" else None)
    assert r.status_code == status, r.text


def test_errors_unexpected_exception_is_a_bare_500(client, main):
    path, headers = break_the_database_dependency(main)
    r = request_a_500(main, client, "GET", path, headers=headers)
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    assert "hunter2" not in r.text


@pytest.mark.parametrize(
    "error",
    [FileNotFoundError("notes.txt"), OverflowError("math range error"), ConnectionRefusedError("another service")],
    ids=["file-not-found", "overflow", "connection-refused"],
)
def test_errors_a_learners_own_error_is_a_500_never_blamed_on_the_database(client, main, error, caplog):
    path, headers = break_the_database_dependency(main, error)
    r = request_a_500(main, client, "GET", path, headers=headers)
    assert r.status_code == 500, r.text
    assert r.json() == {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    assert "503" not in caplog.text
    with pytest.raises(type(error)):  # its traceback reaches the server's log
        client.get(path, headers=headers)


def test_errors_unexpected_exception_still_reaches_the_server(client, main):
    path, headers = break_the_database_dependency(main)
    with pytest.raises(RuntimeError, match="hunter2"):
        client.get(path, headers=headers)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "path"), [("POST", "/users"), ("PATCH", "/users/1"), ("POST", "/token")])
def test_errors_a_body_over_1_mib_is_413_and_changes_nothing(client, method, path, chunked):
    create_user(client)
    body = body_of_size(path, MIB + 1)
    content_type = "application/x-www-form-urlencoded" if path == "/token" else "application/json"
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    r = client.request(method, path, content=content, headers={"Content-Type": content_type})
    assert r.status_code == 413, r.text
    assert r.json() == TOO_LARGE
    sign_in(client)
    assert [known(user) for user in client.get("/users").json()] == [user_json()]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_errors_a_body_of_1_mib_is_taken(client, chunked):
    body = body_of_size("/users", MIB)
    content = iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    r = client.post("/users", content=content, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    assert known(r.json()) == user_json()


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_errors_a_large_body_is_refused_before_it_is_read_whole(client, announced):
    pulled = []

    async def twenty_mib():
        yield b'{"padding": "'
        for _ in range(320):
            pulled.append(65536)
            yield b"x" * 65536

    async def post():
        headers = {"Content-Type": "application/json"} | ({"Content-Length": str(20 * MIB + 13)} if announced else {})
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as ac:
            return await ac.post("/users", content=twenty_mib(), headers=headers)

    r = on_app_loop(client, post)
    assert r.status_code == 413, r.text
    assert sum(pulled) <= MIB + 65536


# --- API Routers and Structure ---


def test_routers_users_answers_without_a_redirect(client):
    r = client.post("/users", json=ADA, follow_redirects=False)
    assert r.status_code == 201, r.text
    sign_in(client)
    r = client.get("/users", follow_redirects=False)
    assert r.status_code == 200, r.text
    r = client.get("/items", headers=API_KEY, follow_redirects=False)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/users/", "/users/1/", "/items/", "/health/"])
def test_routers_a_trailing_slash_is_a_404_never_a_redirect_to_the_clients_host(client, path):
    create_user(client)
    r = client.get(path, headers={"Host": "evil.example", **API_KEY}, follow_redirects=False)
    assert r.status_code == 404, r.text
    assert "evil.example" not in str(r.headers) + r.text


def test_routers_users_me_is_not_taken_for_a_user_id(client):
    create_user(client)
    assert known(client.get("/users/me", headers=login(client)).json()) == user_json()


def test_routers_tag_each_route_by_its_router(client):
    """/docs groups routes by tag: each router's routes (a router you add too) under its prefix, login under auth."""
    paths = client.get("/openapi.json").json()["paths"]
    tags = {(method.upper(), path): op.get("tags") for path, ops in paths.items() for method, op in ops.items()}
    for (method, path), tag in tags.items():
        expected = {"/": None, "/health": None, "/token": ["auth"]}.get(path, [path.split("/")[1]])
        assert tag == expected, f"{method} {path}"
    assert {("POST", "/users"), ("GET", "/users/me"), ("GET", "/items")} <= set(tags)


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_routers_the_readmes_router_in_its_own_file_works(store, tmp_path, monkeypatch):
    code = readme_code("### A router in a file of its own")
    (tmp_path / "routers").mkdir()
    (tmp_path / "routers" / "__init__.py").write_text("")
    (tmp_path / "routers" / "orders.py").write_text(code["routers/orders.py"])
    source = (HERE / "main.py").read_text()
    anchor = "    app.include_router(db_items_router)\n"
    assert source.count(anchor) == 1
    if code["main.py"].strip() not in source:  # a main.py that has it already keeps it
        source = source.replace(anchor, anchor + "\n" + code["main.py"])
    (tmp_path / "main.py").write_text(source)
    for name in ("main", "routers", "routers.orders"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    url = "" if store == "memory" else database_url(store, tmp_path)
    with patch.dict(os.environ, {**TEST_SETTINGS, "DATABASE_URL": url}), contextlib.chdir(tmp_path):
        learners = importlib.import_module("main")
    try:
        with TestClient(learners.app) as learner:
            create_user(learner)
            assert learner.get("/orders").status_code == 401
            r = learner.get("/orders", headers=login(learner))
            assert r.status_code == 200, r.text
            assert r.json() == []
    finally:
        for name in ("main", "routers", "routers.orders"):
            sys.modules.pop(name, None)


@pytest.mark.parametrize("store", ["sqlite"])  # one database's routes are any database's
def test_routers_every_route_is_the_same_in_memory_and_on_a_database(started, store):
    assert not twins_missing(started("memory")[0], started(store)[0])


def test_routers_the_readmes_resource_of_your_own(store, tmp_path):
    """The README's posts, as printed, in a copy of main.py, with their tests, each run twice, after the others: a
    fresh app each time (no posts, ids from 1), on every store."""
    section = README.split("\n### A resource of your own\n")[1].split("\n### ")[0]
    (tmp_path / "main.py").write_text(at_the_end_of_sections((HERE / "main.py").read_text(), section))
    tests = readme_tests(section)
    assert len(tests) == 3
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_posts_{store}", tmp_path / "main.py", DATABASE_URL=url)
    stores = stores_at_import(learner)
    if store != "memory":
        assert not twins_missing(import_main("main_posts_memory", tmp_path / "main.py"), learner)
    try:
        with TestClient(learner.app) as learners:
            rows = on_app_loop(learners, rows_at_start_up, learner) if store != "memory" else None
            for test in [*tests.values(), *tests.values()]:
                with pytest.MonkeyPatch.context() as monkeypatch:
                    fresh_app(learner, learners, stores, rows, monkeypatch)
                    test(learners)
                    learners.headers.pop("Authorization", None)
            create_user(learners)
            sign_in(learners)
            created_at = learners.post("/posts", json={"title": "Sketch"}).json()["created_at"]
            assert [post["created_at"] for post in learners.get("/posts").json()] == [created_at]  # read back: UTC
            for post_id in (99999999999, 10**20):  # past PostgreSQL's INTEGER, past SQLite's: never a 500
                r = learners.get(f"/posts/{post_id}")
                assert r.status_code in (404, 422), r.text
            assert routes_of(learner)["POST /posts"]["statuses"] == ["201", "400", "401", "413", "415", "422"]
    finally:
        if store == "postgresql":  # the suite's database: as it was
            run_sql(learner, url, ["DROP TABLE posts"])


# --- Interactive Documentation ---


@pytest.mark.parametrize(
    ("path", "shows"),
    [("/docs", "swagger-ui"), ("/redoc", "redoc"), ("/openapi.json", '"openapi"')],
    ids=["swagger-ui", "redoc", "openapi-json"],
)
def test_docs_article_the_documentation_is_served(client, path, shows):
    expect(send(client, "GET", path), f"GET {path}", 200, holds=lambda r: shows in r.text, article=f"200, with {shows}")


@pytest.mark.parametrize("store", ["memory"])
def test_docs_pytest_k_runs_one_section_and_no_other(request, store):
    """pytest -k auth runs the tests of Authentication with JWT, and none whose name or parameters merely say "auth"."""
    if request.config.option.keyword:
        pytest.skip("it checks every test this file has: run it without -k")
    for section in SECTIONS:
        leaks = [item.nodeid for item in request.session.items if section in item.nodeid.split("::")[-1].lower()]
        leaks = [nodeid for nodeid in leaks if not nodeid.split("::")[-1].startswith(f"test_{section}_")]
        assert not leaks, f"pytest -k {section} also runs {leaks[0]}: rename it, or give its parameters ids"


@pytest.mark.parametrize(("path", "marker"), [("/docs", "swagger-ui"), ("/redoc", "redoc")])
def test_docs_pages_are_served(client, path, marker):
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert marker in r.text


def test_docs_pages_keep_the_token_through_a_reload(client):
    assert '"persistAuthorization": true' in client.get("/docs").text  # Swagger UI keeps it, until Logout


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        ("/docs", ["swagger-ui.css", "favicon.png", "swagger-ui-bundle.js"]),
        ("/redoc", ["favicon.png", "redoc.standalone.js"]),
        ("/docs/oauth2-redirect", []),
    ],
    ids=["docs", "redoc", "docs-redirect"],  # not oauth2-redirect: pytest -k auth runs Authentication with JWT's
)
def test_docs_pages_load_everything_from_the_app(client, path, assets):
    page = client.get(path).text
    assert "//" not in page, "an address outside the app"
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links == [f"/static-offline-docs/{asset}" for asset in assets]
    for link in links:
        r = client.get(link)
        assert r.status_code == 200, link
        assert len(r.content) > 1000, link


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_tell_the_browser_to_load_nothing_from_elsewhere(client, path):
    policy = client.get(path).headers["Content-Security-Policy"]
    directives = dict(directive.split(" ", 1) for directive in policy.split("; "))
    assert directives["default-src"] == "'self'"
    assert all("'self'" in sources and "//" not in sources for sources in directives.values())
    assert "Content-Security-Policy" not in client.get("/").headers


def test_docs_security_schemes_are_declared(client):
    schemes = client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert schemes == {
        "OAuth2PasswordBearer": {"type": "oauth2", "flows": {"password": {"scopes": {}, "tokenUrl": "token"}}},
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }


def test_docs_a_422_shows_the_app_shape(client):
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    response = schema["paths"]["/users"]["post"]["responses"]["422"]
    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationErrorResponse"}


def test_docs_the_padlock_then_try_it_out(client):
    create_user(client)
    # What Swagger UI's Authorize dialog posts for the OAuth2 password flow.
    form = {"grant_type": "password", "username": ADA["email"], "password": ADA["password"], "scope": ""}
    token = client.post("/token", data=form).json()["access_token"]
    r = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert client.get("/items", headers=API_KEY).status_code == 200


INVALID = {"422": "ValidationErrorResponse"}


JSON_BODY = {"400": "Message", "413": "Message", "415": "Message"}


CURRENT_USER = {"400": "Message", "401": "Message"}


@pytest.mark.parametrize(
    ("method", "path", "responses"),
    [
        ("get", "/", {"200": "object"}),
        ("get", "/health", {"200": "object"}),
        (
            "post",
            "/token",
            {
                "200": "Token",
                "400": "Message",
                "401": "ApplicationErrorResponse",
                "413": "Message",
                "415": "Message",
                **INVALID,
                "429": "ApplicationErrorResponse",
            },
        ),
        ("get", "/users/me", {"200": "UserResponse", **CURRENT_USER}),
        ("post", "/users", {"201": "UserResponse", **JSON_BODY, **INVALID}),
        ("get", "/users", {"200": "list[UserResponse]", **INVALID}),
        ("get", "/users/{user_id}", {"200": "UserResponse", "404": "Message", **INVALID}),
        (
            "patch",
            "/users/{user_id}",
            {"200": "UserResponse", "404": "Message", **JSON_BODY, **INVALID},
        ),
        ("delete", "/users/{user_id}", {"204": None, "404": "Message", **INVALID}),
        ("get", "/items", {"200": "list[Item]", "401": "Message", **INVALID}),
    ],
)
def test_docs_routes_declare_every_status_they_return(client, main, method, path, responses):
    """And with a database, a 503 on every route that uses it: all but /; a 400 and 401 where it takes the current
    user, as a route you protect does (README: Protect a route)."""
    operation = client.get("/openapi.json").json()["paths"][path][method]
    documented = operation["responses"]
    if {"OAuth2PasswordBearer": []} in operation.get("security", []):
        responses = {**responses, **CURRENT_USER}
    if main.engine is not None and path != "/":
        responses = {**responses, "503": "ApplicationErrorResponse"}
    assert {status: schema_name(response) for status, response in documented.items()} == responses
    assert list(documented) == sorted(documented)


@pytest.mark.parametrize(
    ("method", "path", "status", "header"),
    [
        ("post", "/token", "401", "WWW-Authenticate"),
        ("post", "/token", "429", "Retry-After"),
        ("get", "/users/me", "401", "WWW-Authenticate"),
        ("get", "/users/me", "503", "Retry-After"),
    ],
    ids=["token-401", "token-429", "me-401", "me-503"],  # not "auth": pytest -k auth runs the auth section
)
def test_docs_response_headers_are_declared(client, main, method, path, status, header):
    responses = client.get("/openapi.json").json()["paths"][path][method]["responses"]
    if status == "503" and main.engine is None:
        assert status not in responses
        return
    assert list(responses[status]["headers"]) == [header]


def test_docs_error_bodies_are_documented_as_sent(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]

    def shape(name):
        return sorted(schemas[name]["properties"]), sorted(schemas[name]["required"])

    assert shape("Message") == (["detail"], ["detail"])
    assert shape("ValidationErrorResponse") == (["details", "error"], ["details", "error"])
    assert shape("FieldError") == (["field", "message", "type"], ["field", "message", "type"])
    fields = ["detail", "error", "error_description", "path"]
    assert shape("ApplicationErrorResponse") == (fields, fields)
    assert shape("UserResponse")[1] == shape("UserResponse")[0]  # every response has every field
    assert schemas["ValidationErrorResponse"]["properties"]["error"]["const"] == "Validation Error"
    assert schemas["ApplicationErrorResponse"]["properties"]["error"]["const"] == "Application Error"


def test_docs_schemas_state_the_constraints_the_app_enforces(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    create = schemas["UserCreate"]["properties"]
    assert create["email"]["format"] == "email"
    assert (create["name"]["minLength"], create["name"]["maxLength"]) == (1, 100)
    password = create["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 72)
    assert password["pattern"] == r"^[^\u0000]*[0-9][^\u0000]*$"
    assert schemas["UserRole"]["enum"] == ["admin", "user", "guest"]
    update = schemas["UserUpdate"]["properties"]
    assert update["name"] == {
        "type": "string",
        "minLength": 1,
        "maxLength": 100,
        "pattern": "^[^\\u0000]*$",
        "title": "Name",
    }
    assert update["role"] == {"$ref": "#/components/schemas/UserRole"}
    assert update["is_active"] == {"type": "boolean", "title": "Is Active"}
    assert "required" not in schemas["UserUpdate"]
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/items"]["get"]["parameters"]}
    assert {"enum": ["id", "name", "price"], "type": "string"} in parameters["sort_by"]["anyOf"]  # /docs: a drop-down
    user_id = document["paths"]["/users/{user_id}"]["get"]["parameters"][0]["schema"]
    assert (user_id["exclusiveMinimum"], user_id["maximum"]) == (0, 2**31 - 1)


def test_docs_readme_links_stay_in_the_repository():
    """A link goes to the app, a file of this repository, or a heading of the README: no ../ path, nothing else."""
    links = re.findall(r"\]\(([^)]+)\)", README)
    headings = {
        "#" + re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", README, re.M)
    }
    assert links, "the README has lost its links"
    for link in links:
        assert link.startswith("http://localhost:8000/") or link in headings or (HERE / link).is_file(), link
        assert "../" not in link, link
    commit = r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b"  # hex, with letters and digits
    assert not re.search(rf"\.\./|{commit}", README), "a path outside the repository, or a commit"


def test_docs_readme_walkthrough_prints_what_it_shows(client):
    run_the_walkthrough(client)


@pytest.mark.parametrize("store", ["memory"])
def test_docs_readme_reads_in_order(store):
    """Run it, then the section map within the first 60 lines, and Check your own code within the first 150; at
    most 4,000 words, in all."""
    lines = README.splitlines()
    assert lines.index("## Section map") < 60 and lines.index("## Check your own code as you follow the article") < 150
    assert len(README.split()) <= 4000, f"{len(README.split())} words"


@pytest.mark.parametrize("store", ["memory"])
def test_docs_readme_in_class_settings_start_the_app(store, tmp_path):
    """README: In class's .env, as printed: the app starts on its SQLite file, with its token minutes and attempts."""
    [dotenv] = re.findall(r"```text\n(DATABASE_URL=.*?)```", README.split("\n## In class\n")[1], re.DOTALL)
    (tmp_path / ".env").write_text(dotenv)
    learner = import_main(
        "main_in_class", workdir=tmp_path, DATABASE_URL="", ACCESS_TOKEN_EXPIRE_MINUTES="", LOGIN_ATTEMPTS=""
    )
    settings = learner.settings
    assert settings.database_url.startswith("sqlite+aiosqlite:///./"), settings.database_url
    assert (settings.access_token_expire_minutes, settings.login_attempts) == (120, 50)


@pytest.mark.parametrize("store", ["memory"])
def test_docs_readme_walkthrough_reads_the_same_in_powershell(store):
    """README: in PowerShell, curl.exe where it says curl, and the rest the same: a command on one line, in double
    quotes but for the JSON that echo pipes in, with no variable but $TOKEN, which PowerShell's own block sets."""
    walkthrough = README.split("## Walkthrough")[1].split("\n## ")[0]
    for command, _ in readme_walkthrough():
        if command.startswith("TOKEN=$("):
            continue
        assert "\n" not in command and "$(" not in command, command
        assert set(re.findall(r"\$\w+", command)) <= {"$TOKEN"}, command
        assert "'" not in command.removeprefix("echo '").split("' | ", 1)[-1], command
        assert command.startswith(("curl ", "echo '")), command
    assert "\n$TOKEN = (curl.exe -s localhost:8000/token -d " in walkthrough


def test_docs_readme_without_the_deployment_part_the_walkthrough_still_runs(store, tmp_path):
    source = without_the_deployment_part((HERE / "main.py").read_text())
    assert "login_throttle" not in source and "ping_database" not in source
    (tmp_path / "main.py").write_text(source)
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_article_only_{store}", tmp_path / "main.py", DATABASE_URL=url)
    with learners_client(learner) as learners:
        run_the_walkthrough(learners, unshown=("error", "path", "error_description"))  # the login throttle's 401


def test_docs_readme_token_carries_the_claims_a_fresh_token_does(client):
    [shown] = re.findall(r'"access_token":"([^"]+)"', README.split("## Walkthrough")[1])
    create_user(client)
    fresh = client.post("/token", data=ADA_FORM).json()["access_token"]
    assert {**claims(shown), "exp": 0} == {**claims(fresh), "exp": 0}
    assert jwt.get_unverified_header(shown) == jwt.get_unverified_header(fresh)


def test_docs_readme_configuration_lists_every_setting(main):
    table = README.split("## Configuration")[1].split("\n## ")[0]
    listed = re.findall(r"^\| `([A-Z_]+)` \|", table, re.MULTILINE)
    assert listed == [name.upper() for name in main.Settings.model_fields] + ["TEST_DATABASE_URL"]
    assert ".env" in table


@pytest.mark.parametrize("store", ["memory"])
def test_docs_readme_postgresql_makes_the_databases_it_uses(store):
    """README: the psql line makes every database the section's commands use: none is missing, none is shared."""
    section = README.split("\n## PostgreSQL, tests and tools\n")[1].split("\n## ")[0]
    made = set(re.findall(r"CREATE DATABASE (\w+) OWNER app", section))
    used = re.findall(r"postgresql\+asyncpg://app:password@localhost/(\w+)", section)
    assert used and set(used) <= made and len(set(used)) == len(used), f"uses {used}, makes {sorted(made)}"


def test_docs_every_store_has_the_same_document_but_its_503s(client, main):
    """Same operation ids, summaries, parameters, bodies and responses: a client generated on one store works on all.
    An operation's description is its docstring, which may differ."""

    def contract(document):
        for operations in document["paths"].values():
            for operation in operations.values():
                operation.pop("description", None)
                operation["responses"].pop("503", None)
        return document

    document = client.get("/openapi.json").json()
    documented_503 = {
        path for path, ops in document["paths"].items() for op in ops.values() if "503" in op["responses"]
    }
    assert documented_503 == (set() if main.engine is None else set(document["paths"]) - {"/"})
    changes = differences(contract(TestClient(MAIN.app).get("/openapi.json").json()), contract(document))
    assert not changes, f"in memory, then with DATABASE_URL: {changes[0]} (and {len(changes) - 1} more)"


def test_docs_try_it_out_fills_in_the_readmes_ada(client):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]

    def example(name):
        return {
            field: schema["examples"][0]
            for field, schema in schemas[name]["properties"].items()
            if "examples" in schema
        }

    assert example("UserCreate") == ADA
    assert client.post("/users", json=example("UserCreate")).status_code == 201
    assert example("LoginForm") == ADA_FORM
    assert client.post("/token", data=example("LoginForm")).status_code == 200
    [update] = schemas["UserUpdate"]["examples"]
    sign_in(client)
    assert known(client.patch("/users/1", json=update).json()) == user_json(name="Countess of Lovelace")
    for path in ["/", "/health"]:  # their exact bodies, not ReDoc's "property1"
        assert document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"] == (
            client.get(path).json()
        )


@pytest.mark.parametrize(
    "origin",
    [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "http://localhost",
        "https://localhost:3000",
        "http://[::1]:4200",
    ],
)
def test_docs_a_page_from_this_machine_may_call_every_route(client, origin):
    for method, path in [
        ("GET", "/users/me"),
        ("POST", "/users"),
        ("PATCH", "/users/1"),
        ("DELETE", "/users/1"),
        ("GET", "/items"),
    ]:
        r = cors_preflight(client, origin, method, path)
        assert r.status_code == 200, r.text
        assert r.headers["Access-Control-Allow-Origin"] == origin
        assert method in r.headers["Access-Control-Allow-Methods"]
    page = {"Origin": origin}
    answers = [
        client.post("/users", json=ADA, headers=page),
        client.post("/token", data=ADA_FORM, headers=page),
        client.get("/users/me", headers={**page, **login(client)}),
        client.get("/users/me", headers=page),  # 401
        client.post("/users", content=body_of_size("/users", MIB + 1), headers=page),  # 413
    ]
    assert [r.status_code for r in answers] == [201, 200, 200, 401, 413]
    assert {r.headers.get("Access-Control-Allow-Origin") for r in answers} == {origin}
    assert answers[-1].headers["Access-Control-Expose-Headers"] == "Retry-After"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example:80",
        "null",
        "http://localhost:80/x",
    ],
)
def test_docs_another_origin_gets_no_access_control_allow_origin(client, origin):
    r = cors_preflight(client, origin, "GET")
    assert r.status_code == 400, r.text
    assert "Access-Control-Allow-Origin" not in r.headers
    r = client.get("/", headers={"Origin": origin})
    assert r.status_code == 200, r.text
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("store", ["memory"])
def test_docs_cors_origins_lets_the_origins_it_lists_call_too(store):
    main = import_main("main_cors", CORS_ORIGINS="https://app.example.com, https://admin.example.com:8443")
    with TestClient(main.app) as client:
        for origin in ["https://app.example.com", "https://admin.example.com:8443", "http://localhost:5173"]:
            assert client.get("/", headers={"Origin": origin}).headers["Access-Control-Allow-Origin"] == origin
            assert cors_preflight(client, origin, "DELETE").status_code == 200
        for origin in ["https://other.example.com", "http://app.example.com", "https://admin.example.com"]:
            assert "Access-Control-Allow-Origin" not in client.get("/", headers={"Origin": origin}).headers


def test_docs_no_tool_cache_is_kept_in_the_repository():
    ignored = (HERE / ".gitignore").read_text().split()
    assert {".env", ".schemathesis/", ".hypothesis/"} <= set(ignored)
    assert (
        not shutil.which("git")
        or not subprocess.run(
            ["git", "ls-files", ".schemathesis", ".hypothesis"], cwd=HERE, capture_output=True, text=True
        ).stdout
    )


def test_docs_readme_in_class_resets_the_app_on_every_store(client, main, store, tmp_path):
    """The reset of README's In class, as printed, from another process, while the app runs: it empties the app and
    touches main.py, so that uvicorn --reload starts it again, as new, failed logins and all."""
    [command] = re.findall(r'^(python -c ".*")$', README.split("\n## In class\n")[1].split("\n## ")[0], re.MULTILINE)
    shutil.copytree(HERE, tmp_path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*", "*.db", "__pycache__"))
    url = "" if store == "memory" else database_url(store, tmp_path)
    learner = import_main(f"main_class_{store}", tmp_path / "main.py", DATABASE_URL=url)
    with learners_client(learner) as learners:
        create_user(learners)
        fail_logins(learners, 1)
        touched = (tmp_path / "main.py").stat().st_mtime_ns
        time.sleep(0.01)
        if store == "memory":  # no database: starting again empties it
            asyncio.run(learner.reset())
        else:
            r = run_python(shlex.split(command)[2], cwd=tmp_path, DATABASE_URL=url)
            assert r.returncode == 0, r.stderr
        assert (tmp_path / "main.py").stat().st_mtime_ns > touched  # uvicorn --reload sees a change
    learner = import_main(f"main_class_{store}", tmp_path / "main.py", DATABASE_URL=url)  # as --reload starts it
    with learners_client(learner) as learners:
        assert create_user(learners)["id"] == 1
        assert login(learners)
        assert learners.get("/items", headers=API_KEY).status_code == 200


@pytest.mark.parametrize("store", ["memory"])
def test_docs_readme_check_your_own_code_runs_as_printed(store, readers_runs):
    """Its two commands, as printed, from a reader's folder holding the article's Basic Application: with a slip, and
    without. Each run imports the app in the folder it runs in. (CI also runs APP=main:app pytest on this app.)"""
    if readers_runs is None:
        pytest.skip("the README's commands are bash's")
    folder, runs = readers_runs
    output = {name: run.communicate(timeout=120)[0].splitlines() for name, run in runs.items()}
    for name, returncode in [("pointed", 1), ("copied", 0)]:
        assert runs[name].returncode == returncode, "\n".join(output[name][-20:])
        first = f"APP=main:app ({folder}/{name}/main.py): only the article-level tests run, on your app: 3 (basic 3;"
        assert any(line.startswith(first) for line in output[name]), "\n".join(output[name][:5])
    assert (
        'GET /: the article answers 200 {"message": "Welcome to My API"}; your app answered 200 {"message": '
        '"Welcome to my API"}' in output["pointed"]
    )
    assert " 3 passed, " in output["copied"][-1], output["copied"][-1]


@pytest.fixture(scope="session", autouse=True)
def readers_runs(request, tmp_path_factory):
    """The README's two Check-your-own-code commands, run at the start, beside the other tests, as they take a second
    or two (test_docs_readme_check_your_own_code_runs_as_printed reads them): the pointed one on a slip."""
    selected = [item.name for item in request.session.items]
    wanted = not APP and README and any(name.startswith("test_docs_readme_check_your_own") for name in selected)
    if not wanted or os.name == "nt" or not shutil.which("bash"):  # Windows' bash may be WSL's, not this Python's
        yield None
        return
    section = README.split("\n## Check your own code as you follow the article\n")[1].split("\n## ")[0]
    commands = dict(zip(["pointed", "copied"], re.findall(r"```bash\n(.*?)\n```", section), strict=True))
    folder = tmp_path_factory.mktemp("readers")
    for name, app in [("pointed", ARTICLES_BASIC_APPLICATION.replace("to My API", "to my API")), ("copied", None)]:
        (folder / name).mkdir()
        (folder / name / "main.py").write_text(app or ARTICLES_BASIC_APPLICATION)
    env = {**{k: v for k, v in os.environ.items() if k != "APP"}, **TEST_SETTINGS}
    runs = {
        name: subprocess.Popen(
            ["bash", "-c", command.replace("/path/to/this/repository", str(HERE)).replace(" pytest ", PYTEST)],
            cwd=folder / name,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, command in commands.items()
    }
    yield folder, runs
    for run in runs.values():
        run.kill()
        run.communicate()


# === The machinery: stores, a fresh app for every test, and what tests share ===


# The settings every import of main.py gets, whatever the environment and any .env file say. bcrypt's real cost (12)
# takes a quarter of a second a hash; 4 keeps the suite fast and still runs bcrypt.
TEST_SETTINGS = {
    "DATABASE_URL": "",
    "SECRET_KEY": "",
    "API_KEY": "expected-api-key",
    "ACCESS_TOKEN_EXPIRE_MINUTES": "30",
    "BCRYPT_ROUNDS": "4",
    "LOGIN_ATTEMPTS": "5",
    "LOGIN_ATTEMPTS_PER_CLIENT": "100",
    "LOGIN_WINDOW_MINUTES": "15",
    "SQL_ECHO": "false",
    "DATABASE_TIMEOUT": "5",
    "CORS_ORIGINS": "",
}


# Where the tests import main.py from: a folder with no .env file in it.
NO_DOTENV = Path(tempfile.mkdtemp())


def import_main(name, path=HERE / "main.py", workdir=None, **settings):
    """main.py (or a copy of it) as a module of its own, with TEST_SETTINGS and these; it reads a .env file only in
    workdir, if given."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with patch.dict(os.environ, {**TEST_SETTINGS, **settings}), contextlib.chdir(workdir or NO_DOTENV):
        spec.loader.exec_module(module)
    return module


# main.py in memory, imported as uvicorn imports it: as `main`, the name a learner's routers may import it by.
if not APP:  # with APP set, `main` may be the reader's module: imported from their folder (at the end of this file)
    MAIN = import_main("main", DATABASE_URL="")


@pytest.fixture(params=["memory", *SQL_STORES])
def store(request):
    return request.param


def database_url(store, folder=NO_DOTENV):
    return TEST_DATABASE_URL if store == "postgresql" else f"sqlite+aiosqlite:///{folder}/test.db"


@pytest.fixture(scope="session")
def started():
    """For each store, main.py as uvicorn starts it, and a client that started it: its lifespan made the tables.
    With it, what a test restores to give the next one a fresh app (see fresh_app)."""
    apps = {}

    def start(store):
        if store not in apps:
            main = import_main(f"main_{store}", DATABASE_URL=database_url(store)) if store != "memory" else MAIN
            if store == "postgresql":
                asyncio.run(drop_tables(main))  # tables as the models have them now
            if store == "sqlite":  # the tests' file, written without waiting for the disk: a third of the time
                event.listen(main.engine.sync_engine, "connect", without_waiting_for_the_disk)
            client = TestClient(main.app)
            client._transport = OneCallTransport(client, client._transport)
            apps[store] = main, client, stores_at_import(main), None
        main, client, stores, rows = apps[store]
        if client.portal is None:  # every request of a test shares the loop of this start
            client.__enter__()
            if rows is None and main.engine is not None:
                rows = on_app_loop(client, rows_at_start_up, main)
                apps[store] = main, client, stores, rows
        return main, client, stores, rows

    yield start
    for _, client, _, _ in apps.values():
        if client.portal is not None:
            client.__exit__()


class OneCallTransport(httpx2.BaseTransport):
    """Starlette's TestClient hands a request to the app's event loop in eight calls, so that it can stream a body; one
    call will do for the tests' requests, whose bodies are all there: the suite takes a fifth less time."""

    def __init__(self, client, streaming):
        self.client, self.streaming = client, streaming

    def handle_request(self, request):
        if self.client.portal is None or not isinstance(request.stream, httpx2.ByteStream):
            return self.streaming.handle_request(request)
        status, headers, body = self.client.portal.call(self.exchange, request)
        return httpx2.Response(status, headers=headers, content=body, request=request)

    async def exchange(self, request):
        url, sent, done = request.url, [], anyio.Event()
        headers = [(b"host", url.netloc)] * ("host" not in request.headers) + request.headers.raw
        scope = {"type": "http", "http_version": "1.1", "method": request.method, "scheme": url.scheme}
        scope |= {"path": urllib.parse.unquote(url.path), "raw_path": url.raw_path.split(b"?")[0], "root_path": ""}
        scope |= {"query_string": url.query, "headers": [(name.lower(), value) for name, value in headers]}
        scope |= {"client": ("testclient", 50000), "server": (url.host, url.port or 80)}
        scope |= {"state": self.client.app_state.copy()}
        body = [{"type": "http.request", "body": request.read()}]

        async def receive():
            if body:
                return body.pop()
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await self.client.app(scope, receive, send)
        [start] = [message for message in sent if message["type"] == "http.response.start"]
        content = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
        return start["status"], [(name.decode(), value.decode()) for name, value in start["headers"]], content


def without_waiting_for_the_disk(connection, record):
    for pragma in ("synchronous = OFF", "journal_mode = MEMORY"):
        connection.execute(f"PRAGMA {pragma}")


@pytest.fixture
def main(started, store):
    return started(store)[0]


# A fresh app, found generically, not from a list of names, so that the dicts, lists and counters a learner adds
# (a posts_db, say) and the tables of their models start afresh in every test too.
def stores_at_import(main):
    """Copies of main.py's module-level stores: each dict, list, set, deque or number, and each object of a class
    main.py defines (its LoginThrottle), but not its settings, which tests change with monkeypatch."""
    return {
        name: copy.deepcopy(value)
        for name, value in vars(main).items()
        if not name.startswith("__")
        and not isinstance(value, BaseSettings)
        and (isinstance(value, dict | list | set | deque | int) or type(value).__module__ == main.__name__)
    }


async def rows_at_start_up(main):
    """Every table's rows as start-up left them (the catalogue, the key tokens are signed with)."""
    async with main.engine.connect() as connection:
        result = {table: await connection.execute(table.select()) for table in tables_of(main)}
        return {table: [dict(row) for row in rows.mappings()] for table, rows in result.items()}


def tables_of(main):
    return main.Base.metadata.sorted_tables


def fresh_app(main, client, stores, rows, monkeypatch):
    """Every store back to what it held at import, every table to what start-up left, its ids restarted."""
    for name, value in stores.items():
        monkeypatch.setattr(main, name, copy.deepcopy(value))
    if main.engine is not None:
        on_app_loop(client, restore_tables, main, rows)


async def restore_tables(main, rows):
    async with main.engine.begin() as connection:
        for table in reversed(tables_of(main)):  # DELETE, not TRUNCATE: ten times as fast on tables this small
            await connection.execute(table.delete())
        if connection.dialect.name == "sqlite":  # its AUTOINCREMENT counters
            await connection.exec_driver_sql("DELETE FROM sqlite_sequence")
        else:
            ids = [(t.name, t.autoincrement_column.name) for t in tables_of(main) if t.autoincrement_column is not None]
            restart = ", ".join(f"setval(pg_get_serial_sequence('{t}', '{c}'), 1, false)" for t, c in ids)
            await connection.exec_driver_sql(f"SELECT {restart}")
        for table, table_rows in rows.items():
            if table_rows:
                await connection.execute(table.insert(), table_rows)


def use_engine(main, monkeypatch, engine):
    monkeypatch.setattr(main, "engine", engine)
    monkeypatch.setattr(main, "AsyncSessionLocal", async_sessionmaker(engine, expire_on_commit=False))


def same_database(main, **settings):
    """A new engine on the database main uses, made with these settings."""
    with patch.multiple(main.settings, **settings):
        return main.open_engine(main.engine.url.render_as_string(hide_password=False))


async def drop_tables(main):
    async with main.engine.begin() as connection:
        await connection.run_sync(main.Base.metadata.drop_all)
    await main.engine.dispose()  # its connections belong to this loop


def on_app_loop(client, function, *args):
    """Call an async function on the app's event loop: on_app_loop(client, main.get_user_from_db, 1)."""
    assert client.portal is not None
    return client.portal.call(function, *args)


def send_at_once(client, method, path, requests, raise_app_exceptions=True):
    """Send the requests all at once, as separate clients would, and return the responses in order."""

    async def send():
        transport = httpx.ASGITransport(app=client.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=client.headers) as ac:
            return await asyncio.gather(*(ac.request(method, path, **request) for request in requests))

    return on_app_loop(client, send)


def request_a_500(main, client, method, path, **kwargs):
    """The response to a request whose exception reaches the server (as under uvicorn, which logs it)."""
    [response] = send_at_once(client, method, path, [kwargs], raise_app_exceptions=False)
    if response.status_code == 403:  # README's Admin-only: as an admin, as the client fixture would
        with an_admin(main, client) as admin:
            [response] = send_at_once(client, method, path, [kwargs | {"headers": admin}], raise_app_exceptions=False)
    return response


@contextlib.contextmanager
def learners_client(learner):
    """A client of a learner's copy of main.py, started as uvicorn starts it, and sending as the tests' own does."""
    with TestClient(learner.app) as client:
        client._transport = OneCallTransport(client, client._transport)
        client.request = as_an_admin_if_refused(learner, client, client.request)  # type: ignore[method-assign]
        yield client


def as_an_admin_if_refused(main, client, send):
    """The client's request(), which sends again as an admin what a route refuses with a 403: so that the tests still
    check what a route does once a learner makes it admin-only (README: Admin-only), as the recipe's first admin."""

    def request(method, url, **kwargs):
        r = send(method, url, **kwargs)
        if r.status_code != 403:
            return r
        with an_admin(main, client) as admin:
            return send(method, url, **kwargs | {"headers": {**(kwargs.get("headers") or {}), **admin}})

    return request


@contextlib.contextmanager
def an_admin(main, client):
    """The headers of an admin made in the store for a moment, with an id no sign-up takes (README: Admin-only)."""
    admin = {"id": 2**31 - 2, "email": "admin-for-tests@example.com", "name": "Admin", "role": "admin"}
    admin |= {"created_at": datetime.now(UTC), "is_active": True, "hashed_password": "not a hash"}
    if main.engine is None:
        main.users_db[admin["id"]] = main.UserInDB(**admin)
        main.user_ids_by_email[admin["email"]] = admin["id"]
    else:
        sequence = on_app_loop(client, admin_row, main, admin, None)
    try:
        yield token_for(main, {"sub": str(admin["id"]), "email": admin["email"], "exp": in_minutes(5)})
    finally:
        if main.engine is None:
            main.users_db.pop(admin["id"], None)
            main.user_ids_by_email.pop(admin["email"], None)
        else:
            on_app_loop(client, admin_row, main, admin, sequence)


async def admin_row(main, admin, sequence):
    """Add the admin's row (and give back SQLite's counter of ids), or with the counter, take it away again."""
    users = main.Base.metadata.tables["users"]
    sqlite = main.engine.dialect.name == "sqlite"
    async with main.engine.begin() as connection:
        if sequence is None:
            if sqlite:
                read = "SELECT seq FROM sqlite_sequence WHERE name = 'users'"
                sequence = (await connection.exec_driver_sql(read)).scalar() or 0
            await connection.execute(users.insert().values(**admin))
            return sequence or 0
        await connection.execute(users.delete().where(users.c.id == admin["id"]))
        if sqlite:  # ids go on from where they were: an explicit id moves SQLite's counter
            await connection.exec_driver_sql(f"UPDATE sqlite_sequence SET seq = {int(sequence)} WHERE name = 'users'")


def run_python(code, cwd=HERE, **settings):
    """Run Python code in a process of its own, with TEST_SETTINGS and these."""
    env = {**os.environ, **TEST_SETTINGS, **settings}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def token_for(main, claims, key=None, algorithm="HS256"):
    return {"Authorization": f"Bearer {jwt.encode(claims, key or main.SECRET_KEY, algorithm=algorithm)}"}


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(main, claims):
    """A token of these claims (JSON bytes), signed with the app's key."""
    signing_input = b64(b'{"alg": "HS256", "typ": "JWT"}') + "." + b64(claims)
    signature = hmac.new(main.SECRET_KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


# Made by passlib 1.7.4 with bcrypt 4.0.1, the releases this app used before libpass and bcrypt 5.
HASH_BEFORE_LIBPASS = "$2b$04$mwt9CDTC5zJuc0LsXM4bn.3e8WCL2WcNhVlyxFpeeY5ApPhjpxsdC"


def fail_logins(client, count, username=ADA["email"]):
    for _ in range(count):
        r = client.post("/token", data={"username": username, "password": "wrong-password1"})
        assert r.status_code == 401, r.text


def failed_logins(client, main):
    """The failed logins the throttle keeps, as (client, email) pairs, on any store."""
    if main.engine is None:
        return [(client_host, email) for _, client_host, email in main.login_throttle.failures]

    async def read():
        async with main.engine.connect() as connection:
            rows = await connection.exec_driver_sql("SELECT client, email FROM login_failures ORDER BY at")
            return [tuple(row) for row in rows]

    return on_app_loop(client, read)


def selects_sent(main, *requests):
    """The SELECT statements (and their parameters) the database gets while the requests are answered."""
    statements = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(main.engine.sync_engine, "before_cursor_execute", record)
    for request in requests:
        request()
    event.remove(main.engine.sync_engine, "before_cursor_execute", record)
    return statements


def start_stopping(main, monkeypatch, capsys):
    """Start the app, which must stop as os._exit(1) does, with one line: that line."""

    def exit(code):
        raise RuntimeError(f"exit {code}")

    monkeypatch.setattr(os, "_exit", exit)
    with pytest.raises(RuntimeError, match="exit 1"), TestClient(main.app):
        pass
    [line] = capsys.readouterr().err.splitlines()
    return line


ALTER = "ALTER TABLE users ADD COLUMN motto VARCHAR"


@contextlib.contextmanager
def database_down(client, main, monkeypatch, outage, tmp_path):
    """Everything as it was, but the database out of reach: nothing listening where it should, a server that turns
    the app away, a file that cannot be opened."""
    engine, sessions = main.engine, main.AsyncSessionLocal
    if outage == "turned away":  # the test database with a wrong password, whatever its role and password
        url = make_url(TEST_DATABASE_URL).set(password="wrong-password").render_as_string(hide_password=False)
    else:
        url = {
            "nothing listening": "postgresql+asyncpg://app:app@127.0.0.1:1/app",
            "unopenable": f"sqlite+aiosqlite:///{tmp_path}/no/such/folder.db",
        }[outage]
    use_engine(main, monkeypatch, main.open_engine(url))
    try:
        yield
    finally:  # even when the test fails: a connection left open would fail a later test on a ResourceWarning
        on_app_loop(client, main.engine.dispose)
        monkeypatch.setattr(main, "engine", engine)
        monkeypatch.setattr(main, "AsyncSessionLocal", sessions)


UNAVAILABLE = {
    "error": "Application Error",
    "detail": "The database is not answering, try again later",
    "path": ANY,
    "error_description": "The database is not answering, try again later (in 5 seconds)",
}


def break_the_database_dependency(main, error=None):
    """The route that fails, once its database dependency raises what a bug would."""

    async def broken():
        raise error or RuntimeError("database password is hunter2")
        yield

    main.app.dependency_overrides[main.get_db if main.engine is None else main.get_async_db] = broken
    return ("/items", API_KEY) if main.engine is None else ("/users/1", {})


MIB = 1024 * 1024


TOO_LARGE = {"detail": "The body is larger than 1 MiB"}


def body_of_size(path, size):
    """A body the route would take, padded to `size` bytes: a form field it ignores, or JSON's white space."""
    if path == "/token":
        body = f"username={ADA['email']}&password={ADA['password']}&padding=".encode()
        return body + b"x" * (size - len(body))
    body = json.dumps(ADA).encode()
    return body + b" " * (size - len(body))


def schema_name(response):
    """The documented body of one response: a component's name, list[name], a JSON type, or None."""
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return None

    def name(schema):
        return schema.get("$ref", "").removeprefix("#/components/schemas/") or schema["type"]

    return f"list[{name(schema['items'])}]" if "items" in schema else name(schema)


def cors_preflight(client, origin, method, path="/users/me"):
    """What a browser asks before a request a page makes with a token, a key or a JSON body."""
    request = {
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type,x-api-key",
    }
    return client.options(path, headers={"Origin": origin, **request})


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def on_database(main, url, work):
    """work(connection)'s result, run in a transaction on the database at url, with an engine of its own."""

    async def run():
        engine = main.open_engine(url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def run_sql(main, url, statements):
    on_database(main, url, lambda connection: [connection.exec_driver_sql(statement) for statement in statements])


# === README recipes, applied as printed to a copy of main.py ===


def with_new_lines(source, block):
    """main.py's source with a README block's lines marked `# new` added where the block shows them: in the class
    its first line names, after the line the block shows before them."""
    lines = block.splitlines()
    new = [line for line in lines if line.endswith("# new")]
    if all(line + "\n" in source for line in new):  # a main.py that has them already
        return source
    after = lines[lines.index(new[0]) - 1] + "\n"
    at = source.index(after, source.index(lines[0] + "\n")) + len(after)
    return source[:at] + "".join(line + "\n" for line in new) + source[at:]


def with_signatures(source, signatures):
    """main.py's source with each of these `async def` lines in place of the one that defines the same function."""
    for line in signatures.splitlines():
        name = line.removeprefix("async def ").split("(")[0]
        source, found = re.subn(rf"^async def {name}\(.*:$", line, source, flags=re.MULTILINE)
        assert found == 1, f"main.py has no one line that defines {name}"
    return source


def readme_code(heading):
    """The code blocks of a README section: {the file named on the block's first line, or the language: code}."""
    section = re.split(r"\n##+ ", README.split(f"\n{heading}\n")[1])[0]
    blocks = re.findall(r"```(\w+)\n(?:# (\S+\.py)\b.*?\n)?(.*?)```", section, re.DOTALL)
    return {name or language: code for language, name, code in blocks}


def at_the_end_of_sections(source, section):
    """main.py's source with each of a README section's `# main.py, at the end of <heading>` blocks added there."""
    blocks = re.findall(r"```python\n# main\.py, at the end of (.+?)\n(.*?)```", section, re.DOTALL)
    assert blocks, "the README section has lost its code"
    for heading, code in blocks:
        if code.strip() in source:  # a main.py that has it already
            continue
        start = source.index(f"# --- {heading} ---\n")
        end = source.find("\n# --- ", start + 1) % (len(source) + 1)  # the next heading, or the end of the file
        source = source[:end].rstrip("\n") + "\n\n\n" + code + "\n" + source[end:]
    return source


def routes_of(main):
    """Each route as the OpenAPI document has it: what it takes, and the statuses it answers (503 aside)."""
    paths = main.app.openapi()["paths"]
    return {
        f"{method.upper()} {path}": {
            "parameters": sorted((p["in"], p["name"]) for p in operation.get("parameters", [])),
            "body": operation.get("requestBody"),
            "statuses": sorted(set(operation["responses"]) - {"503"}),
            "names": (operation["operationId"], operation["summary"]),
        }
        for path, operations in paths.items()
        for method, operation in operations.items()
    }


def twins_missing(in_memory, on_database):
    """The routes of one store that the other lacks or answers otherwise: with DATABASE_URL set, the database's
    routes answer, so a route added in memory only is a 404 there."""
    memory_routes, database_routes = routes_of(in_memory), routes_of(on_database)
    return [
        f"{route} is in memory only: add its twin under Async Database Operations"
        if route not in database_routes
        else f"{route} is on the database only: add it in memory too"
        if route not in memory_routes
        else f"{route} differs in memory and on the database: "
        + "; ".join(differences(memory_routes[route], database_routes[route]))
        for route in sorted(memory_routes.keys() | database_routes.keys())
        if memory_routes.get(route) != database_routes.get(route)
    ]


def differences(before, after, where=""):
    """Where two JSON documents differ, a line each: the way to the field (paths /users post operationId), and both."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = sorted(before.keys() | after.keys(), key=str)
        return [line for key in keys for line in differences(before.get(key), after.get(key), f"{where} {key}")]
    return [] if before == after else [f"{where.strip()}: {json.dumps(before)} != {json.dumps(after)}"]


def readme_tests(section):
    """The test functions of a README section's `# test_main.py, at the end` block, run as if in this file."""
    [code] = re.findall(r"```python\n# test_main\.py, at the end\n(.*?)```", section, re.DOTALL)
    namespace = dict(globals())
    exec(code, namespace)
    return {
        name: test for name, test in namespace.items() if name.startswith("test_") and test is not globals().get(name)
    }


def readme_walkthrough():
    """(command, what it prints) pairs: each bash block of the Walkthrough and the text block right after it."""
    walkthrough = README.split("## Walkthrough")[1].split("\n## ")[0]
    return re.findall(r"```bash\n(.*?)\n```\n(?:```text\n(.*?)```)?", walkthrough, re.DOTALL)


def send_curl(client, command):
    """Send what a README curl command sends (-s, -X, -H, -d, --data-binary "@-" with what `echo` pipes into it, -w,
    and a localhost:8000 URL) through the client."""
    method, url, headers, data, echoed = None, "", {}, None, None
    if command.startswith("echo "):
        [_, echoed], command = shlex.split(command.split(" | ", 1)[0]), command.split(" | ", 1)[1]
    args = iter(shlex.split(command)[1:])
    for arg in args:
        if arg == "-X":
            method = next(args)
        elif arg == "-H":
            name, value = next(args).split(": ", 1)
            headers[name] = value
        elif arg in ("-d", "--data-binary"):
            data = next(args) if arg == "-d" else echoed if next(args) == "@-" else None
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif arg == "-w":
            next(args)
        elif arg != "-s":
            url = arg
    method = method or ("POST" if data else "GET")
    return client.request(method, url.removeprefix("localhost:8000"), headers=headers, content=data)


def without_times_and_tokens(body):
    return json.loads(re.sub(r'"(created_at|access_token)":"[^"]*"', r'"\1":"..."', body))


def shown(body, printed):
    """Whether a body has what the README printed: the same values in every field it shows, maybe more fields."""
    if isinstance(printed, dict):
        return isinstance(body, dict) and all(name in body and shown(body[name], printed[name]) for name in printed)
    if isinstance(printed, list):
        return isinstance(body, list) and len(body) == len(printed) and all(map(shown, body, printed))
    return printed == "..." or body == printed  # "...": a time or a token, which differ every run


def run_the_walkthrough(client, unshown=()):
    """The README's walkthrough, sent as printed, each answer compared with what it prints but the fields `unshown`."""
    walkthrough = readme_walkthrough()
    assert len(walkthrough) >= 20, "the README's Walkthrough has lost its examples"
    token = ""
    for command, printed in walkthrough:
        if command.startswith("TOKEN=$("):
            r = send_curl(client, command.removeprefix("TOKEN=$(").split("|")[0])
            token = r.json()["access_token"]
            continue
        r = send_curl(client, command.replace("$TOKEN", token))
        *body, status = printed.rstrip("\n").split("\n")
        if r.status_code == 401 and status != "HTTP 401":
            pytest.fail(
                f"{r.request.method} {r.request.url.path} now answers 401: it wants a token, so the README's "
                f'command wants -H "Authorization: Bearer $TOKEN" (and to come after TOKEN=...): {command}'
            )
        assert f"HTTP {r.status_code}" == status, command
        if body == [""]:
            assert r.content == b"", command
        else:  # the fields the README shows: a field you add (a bio, say) need not be in it
            printed = without_times_and_tokens("\n".join(body))
            if isinstance(printed, dict):
                printed = {name: value for name, value in printed.items() if name not in unshown}
            assert shown(r.json(), printed), (command, r.text)


def without_the_deployment_part(source):
    """main.py as a learner leaves it who deletes what follows Interactive Documentation, and the lines that point
    into it, marked "(see below)": a line of its own goes, an `async with` line's block moves left, and
    start_up_checks() becomes engine.begin()."""
    lines = source[: source.index("\n# --- Login throttle ---")].splitlines()
    for number, line in reversed(list(enumerate(lines))):
        if "(see below)" in line and "start_up_checks()" in line:
            lines[number] = line.replace("start_up_checks()", "engine.begin()")
        elif "(see below)" in line:
            indent = len(line) - len(line.lstrip())
            block = range(number + 1, len(lines))
            end = next(
                (i for i in block if lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) <= indent), None
            )
            if line.lstrip().startswith("async with"):
                lines[number + 1 : end] = [body.removeprefix("    ") for body in lines[number + 1 : end]]
            del lines[number]
    return "\n".join(lines) + "\n"


# The article's Basic Application, as printed: a reader's main.py, for the README's commands.
ARTICLES_BASIC_APPLICATION = """
from fastapi import FastAPI

app = FastAPI(title="My API", description="A sample REST API built with FastAPI", version="1.0.0")

@app.get("/")
async def root():
    return {"message": "Welcome to My API"}

@app.get("/health")
async def health_check():
    return {"status": "healthy"}
"""


PYTEST = f" {sys.executable} -m pytest -p no:cacheprovider "  # the README's `pytest`, in this venv, writing no cache


# === The article-level tests' helpers, and APP: your own app in place of this one ===


def new_user(**fields):
    """A sign-up no other test sends: its own email."""
    return {
        "email": f"reader-{uuid.uuid4().hex[:12]}@example.com",
        "name": "Ada Lovelace",
        "password": "analytical1",
    } | fields


def send(client, method, path, **request):
    """The app's answer. An exception the app raises is the 500 a server would send: it says what was raised."""
    try:
        return client.request(method, path, **request)
    except Exception as exc:
        return httpx.Response(500, text=f"(it raised {type(exc).__name__}: {str(exc).splitlines()[0]})")


def answered(r):
    try:
        body = json.dumps(r.json())
    except ValueError:
        body = r.text
    return f"{r.status_code} {body}".strip()


def as_json(body):
    return json.dumps(body, default=lambda value: "...")  # ANY, any value: "..."


def has(body, expected):
    """The body is `expected`, or for a dict, has its keys with its values (ANY: any value)."""
    if isinstance(expected, dict):
        return isinstance(body, dict) and all(key in body and body[key] == value for key, value in expected.items())
    return expected is ANY or body == expected


def expect(r, sent, status, body=ANY, holds=None, article="", hint=""):
    """Fail, in a reader's words, unless the app answered as the article does: `status` (or one of a tuple), a body
    that `has` `body`, and `holds(r)` if given. `article` says what the article answers, where the rest can't."""
    statuses = status if isinstance(status, tuple) else (status,)
    try:
        shown = r.json() if body is not ANY and r.content else None
        ok = r.status_code in statuses and has(shown, body) and (holds is None or holds(r))
    except (ValueError, TypeError, KeyError, AttributeError):  # a body of another shape
        ok = False
    if not ok:
        if not article:
            article = " or ".join(map(str, statuses)) + ("" if body is ANY else f" {as_json(body)}")
        hint = hint or next((why for slip, why in SLIPS if slip(sent, r)), "")
        pytest.fail(f"{sent}: the article answers {article}; your app answered {answered(r)}{hint}", pytrace=False)
    return r.json() if r.content and "json" in r.headers.get("content-type", "") else None


# A usual slip, told by what was sent and answered, and what to do about it: one line in a failure's message.
SLIPS = [
    (
        lambda sent, r: "/users/me" in sent and r.status_code == 422 and "user_id" in r.text,
        ' (a /users/{user_id} route above /users/me takes "me" for an id: define /users/me first)',
    ),
    (
        lambda sent, r: r.status_code == 500 and ("no such table" in r.text or "does not exist" in r.text),
        " (the article never creates its tables: call Base.metadata.create_all at start-up, in a lifespan)",
    ),
    (
        lambda sent, r: "UnknownHashError" in r.text,
        " (is the password kept as sign-up sent it? create_user keeps get_password_hash(user.password))",
    ),
    (
        lambda sent, r: sent.startswith("POST /token") and r.status_code == 401,
        " (does authenticate_user find the user who signed up, where sign-up keeps users, and check its hash?)",
    ),
]


def sign_up(client, user):
    """POST /users with `user`; the user the app shows. The article's async create_user answers 200, its CRUD 201."""
    return expect(send(client, "POST", "/users", json=user), "POST /users with a new user", (201, 200))


def signed_in(client, user):
    """`user`'s token once the app has a login, so that a route a reader protects still answers; before, nothing."""
    r = send(client, "POST", "/token", data={"username": user["email"], "password": user["password"]})
    token = r.json().get("access_token") if r.status_code == 200 else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def log_in(client, user):
    r = send(client, "POST", "/token", data={"username": user["email"], "password": user["password"]})
    token = expect(r, "POST /token with the email and password of a user who signed up", 200)
    return {"Authorization": f"Bearer {token.get('access_token')}"}


def as_the_article_shows(user, **fields):
    """A user as the article's UserResponse shows it: what was sent but the password; role, id, created_at, is_active"""
    shown = {"email": user["email"], "name": user["name"], "role": user.get("role", "user"), "id": ANY}
    return shown | {"created_at": ANY, "is_active": True} | fields


def no_password(r):
    return "password" not in r.text


def in_the_database(client, main, email, answered):
    """Fail, in one line, unless the app's database (its engine, or DATABASE_URL) holds a user with this email."""
    engine = getattr(main, "engine", None)
    if engine is None and os.environ.get("DATABASE_URL") and APP:
        engine = create_async_engine(os.environ["DATABASE_URL"])
    if engine is None:
        if APP:
            pytest.skip(f"APP={APP} has no database: its engine is None (set DATABASE_URL)")
        return  # this app in memory: its store is a dict

    async def users_with(email):
        async with engine.connect() as connection:
            if not await connection.run_sync(lambda sync: sqlalchemy.inspect(sync).has_table("users")):
                return None
            query = sqlalchemy.text("SELECT count(*) FROM users WHERE email = :email")
            return await connection.scalar(query, {"email": email})

    where = engine.url.render_as_string()
    try:
        found = on_app_loop(client, users_with, email)
    except Exception as exc:
        pytest.fail(f"{answered}, but your database at {where} does not answer: {type(exc).__name__}: {exc}", False)
    if found is None:
        why = "the article never creates it; call Base.metadata.create_all at start-up (README: Check your own code)"
        pytest.fail(f"{answered}, but your database at {where} has no users table: {why}", pytrace=False)
    if not found:
        why = "in one module, the route defined first answers: let the async section's routes take over (README)"
        pytest.fail(f"{answered}, but your database at {where} has no user {email}: {why}", pytrace=False)


READERS_KEY = {"X-API-Key": "expected-api-key"}


@functools.cache
def import_app(app):
    """The module and the app that `app` (module:attribute) names, imported from the current folder as uvicorn imports
    them; or the run stops, with one line that says why."""
    module_name, _, attribute = app.partition(":")
    if not module_name or not attribute:
        pytest.exit(f"APP={app}: name your app as uvicorn takes it, module:attribute (APP=main:app)", returncode=4)
    folder = Path.cwd()
    if importlib.machinery.PathFinder.find_spec(module_name.split(".")[0], [str(folder)]) is None:
        pytest.exit(f"APP={app}: there is no {module_name} in {folder}: run pytest in your app's folder", returncode=4)
    sys.path.insert(0, str(folder))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # a deprecation in the reader's code is shown, not an error
            warnings.filterwarnings("ignore", "'crypt' is deprecated", DeprecationWarning)  # passlib's: see .pytest.ini
            module = importlib.import_module(module_name)
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).is_relative_to(folder)]
        at = f" ({Path(frames[-1].filename).relative_to(folder)}, line {frames[-1].lineno})" if frames else ""
        pytest.exit(f"APP={app}: importing {module_name} failed: {type(exc).__name__}: {exc}{at}", returncode=4)
    if not hasattr(module, attribute):
        pytest.exit(f"APP={app}: {module.__file__} has no {attribute}", returncode=4)
    return module, getattr(module, attribute)


SECTIONS = ["basic", "models", "crud", "deps", "auth", "async", "errors", "routers", "docs"]  # pytest -k SECTION


if APP:
    pytestmark = pytest.mark.filterwarnings("default")  # the reader's deprecations are shown, not errors
    pytest_plugins = [__name__]  # pytest calls a test module's hooks only once it is a plugin

    def pytest_report_collectionfinish(config, start_path, items):
        """The run's first line: the app, and that only the article-level tests run on it, how many of each section."""
        module, _ = import_app(APP)
        counts = {
            section: sum(item.name.startswith(f"test_{section}_article_") for item in items) for section in SECTIONS
        }
        shown = ", ".join(f"{section} {count}" for section, count in counts.items() if count)
        return (
            f"APP={APP} ({module.__file__}): only the article-level tests run, on your app: {sum(counts.values())}"
            f" ({shown or 'none selected'}; routers has none: that section of the article is a layout); unset APP"
            " for this repository's own tests"
        )

    @pytest.fixture(scope="session")
    def readers_client():
        _, app = import_app(APP)
        started_client = TestClient(app)
        try:
            started_client.__enter__()  # its lifespan runs, as under uvicorn
        except Exception as exc:
            why = str(exc).splitlines()[0]
            pytest.exit(f"APP={APP} did not start (its lifespan: its database, say): {type(exc).__name__}: {why}", 4)
        yield started_client
        started_client.__exit__(None, None, None)

    del client, main  # the companion's own fixtures; the reader's app and module stand in their place:

    @pytest.fixture(autouse=True, name="client")
    def readers_app(readers_client):
        return readers_client

    @pytest.fixture(name="main")
    def readers_module():
        return import_app(APP)[0]


def skip_what_cannot_run(tests):
    """With APP set, every test but the article-level ones; without README.md, the tests named *readme*."""
    for name, test in list(tests.items()):
        if APP and name.startswith("test_") and "_article_" not in name:
            tests[name] = pytest.mark.skip(reason=f"checks this repository's main.py, not APP={APP}")(test)
        elif not README and name.startswith("test_") and "readme" in name:
            tests[name] = pytest.mark.skip(reason="needs README.md beside test_main.py")(test)


skip_what_cannot_run(globals())
