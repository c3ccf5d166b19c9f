"""The companion app for "How to Create REST APIs with FastAPI": the article's nine sections in its order, then what a
real deployment adds, each under a banner of its own. A comment says why wherever the code differs from the article."""

import logging
import math
import os
import secrets
import sys
import time
import traceback
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from operator import attrgetter
from typing import Annotated, Any, ClassVar, Literal, NoReturn

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi.utils import generate_unique_id
from fastapi_offline import FastAPIOffline
from jose import JWTError, jwt
from passlib.context import CryptContext
from pydantic import MISSING, BaseModel, ConfigDict, EmailStr, Field, ValidationError, create_model, field_validator
from pydantic.json_schema import models_json_schema
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import DateTime, Index, String, TypeDecorator, delete, event, func, insert, inspect, select, update
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError, TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.schema import CreateColumn
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message as ASGIMessage, Receive, Scope, Send


# Not in the article: settings from the environment, else a .env file (README.md); first, as every section uses them.
class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")
    database_url: str = ""
    secret_key: str = ""
    api_key: str = "expected-api-key"
    access_token_expire_minutes: int = Field(default=30, gt=0, description="a whole number of minutes, 1 or more")
    bcrypt_rounds: int = Field(default=12, ge=4, le=14, description="a whole number from 4 to 14")
    login_attempts: int = Field(default=5, gt=0, description="a whole number, 1 or more")
    login_attempts_per_client: int = Field(default=100, gt=0, description="a whole number, 1 or more")
    login_window_minutes: int = Field(default=15, gt=0, description="a whole number of minutes, 1 or more")
    sql_echo: bool = Field(default=False, description="true or false")
    database_timeout: float = Field(default=5, gt=0, description="a number of seconds, more than 0")
    cors_origins: str = Field("", pattern=r"^(https?://[^/;]+)*$", description="origins like https://example.com")


try:
    settings = Settings()
except ValidationError as exc:  # one line for each setting that cannot be used, not a traceback
    names = [str(error["loc"][0]) for error in exc.errors()]
    sys.exit("\n".join(f"{n.upper()} is not valid: it takes {Settings.model_fields[n].description}" for n in names))
except UnicodeDecodeError:  # Windows PowerShell 5's > writes UTF-16
    sys.exit(".env is not UTF-8: save it as UTF-8 (Windows PowerShell 5's > and Out-File write UTF-16)")


# --- Basic Application ---
# Not in the article: start-up and shut-down. engine, the database, is None unless DATABASE_URL is set (below).
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if engine is not None:
        await start_database()
    yield
    if engine is not None:
        await engine.dispose()


# FastAPIOffline is the article's FastAPI(...) with /docs and /redoc served by the app itself: they work offline.
app = FastAPIOffline(
    title="My API",
    description="A sample REST API built with FastAPI",
    version="1.0.0",
    lifespan=lifespan,
    # Not in the article: a database route (create_db_user, below) gets its in-memory twin's operationId (create_user)
    generate_unique_id_function=lambda route: generate_unique_id(route).replace("_db_", "_", 1),
    redirect_slashes=False,  # /users/ is a 404, not a redirect to the Host header a client sent, which it can forge
    swagger_ui_parameters={"persistAuthorization": True},  # Not in the article: /docs keeps your token through F5
)


@app.get("/")
async def root() -> dict[str, str]:
    """Root endpoint returning a welcome message."""
    return {"message": "Welcome to My API"}


@app.get("/health")
async def health_check() -> dict[str, str]:
    """Health check endpoint for monitoring."""
    await ping_database()  # Not in the article: with a database, a 503 when it does not answer (see below)
    return {"status": "healthy"}


# Run with: uvicorn main:app --reload. python main.py does the same (uvicorn.run), on Windows too, or from an editor.
if __name__ == "__main__":
    uvicorn.run("main:app", reload=True)


# --- Request and Response Models ---
class UserRole(StrEnum):  # Python 3.11's spelling of the article's (str, Enum)
    """User roles enumeration."""

    ADMIN = "admin"
    USER = "user"
    GUEST = "guest"


class UserBase(BaseModel):
    """Base user model with shared fields."""

    # examples: the README's Ada, whom "Try it out" in /docs fills in. No NUL in a name: PostgreSQL can't keep one.
    email: EmailStr = Field(examples=["ada@example.com"])
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\u0000]*$", examples=["Ada Lovelace"])
    role: UserRole = UserRole.USER


def fits_bcrypt(password: str) -> bool:
    """Not in the article: bcrypt reads only a password's first 72 bytes, and fails on a NUL."""
    return len(password.encode()) <= 72 and "\x00" not in password


class UserCreate(UserBase):
    """Model for creating a new user."""

    model_config = ConfigDict(extra="forbid")  # Not in the article: a field it lacks is a 422 naming it, not ignored
    password: str = Field(
        min_length=8,
        max_length=72,  # Not in the article: bcrypt reads no more than 72 bytes (fits_bcrypt)
        description="8 to 72 characters, at most 72 bytes in UTF-8, with at least one digit (0-9) and no NUL",
        json_schema_extra={"pattern": r"^[^\u0000]*[0-9][^\u0000]*$"},  # password_strength's rule, for /docs
        examples=["analytical1"],
    )

    # Pydantic v2's field_validator. PydanticCustomError keeps the message as written (no "Value error, " before it).
    @field_validator("password")
    @classmethod
    def password_strength(cls, v: str) -> str:
        """Validate password has at least one digit."""
        if not any(c in "0123456789" for c in v):  # 0-9 only, as the pattern: isdigit would also take "²"
            raise PydanticCustomError("value_error", "Password must contain at least one digit")
        if not fits_bcrypt(v):
            raise PydanticCustomError("value_error", "Password must be at most 72 bytes in UTF-8, with no NUL")
        return v


class UserResponse(UserBase):
    """Model for user response (excludes password)."""

    # from_attributes: Pydantic v2's ORM mode. Every response has every field, so the schema marks them all required.
    model_config = ConfigDict(from_attributes=True, json_schema_serialization_defaults_required=True)
    email: str = Field(json_schema_extra={"format": "email"})  # checked at sign-up, not again at every read
    id: int
    created_at: datetime
    is_active: bool = True


class UserInDB(UserResponse):  # Not in the article, which keeps no password: a user with the hash login checks
    hashed_password: str


class UserUpdate(BaseModel):
    """Model for partial user updates."""

    # extra="forbid", as UserCreate: {"bio": ...} before you add a bio is a 422. The example is README.md's.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Countess of Lovelace"}]})
    # MISSING, not the article's None: a null is a 422, not stored. strict: is_active must be true or false, not 0/1.
    name: str | MISSING = Field(default=MISSING, min_length=1, max_length=100, pattern=r"^[^\u0000]*$")
    role: UserRole | MISSING = MISSING
    is_active: bool | MISSING = Field(default=MISSING, strict=True)


# --- CRUD Endpoints ---
# In-memory database for demonstration
users_db: dict[int, UserInDB] = {}
user_id_counter = 1
user_ids_by_email: dict[str, int] = {}  # Not in the article: lower-cased email -> id, so no check scans every user
MAX_ID = 2**31 - 1  # Not in the article: PostgreSQL's largest INTEGER. A larger id or skip is a 422, on every store.
UserId = Annotated[int, Path(gt=0, le=MAX_ID, description="The ID of the user")]

# From Authentication with JWT, up here so CRUD routes can take CurrentUser; the names it uses are defined there.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> UserInDB:
    """Decode JWT and return current user."""
    credentials_exception = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )

    try:
        # require_exp: the article's would take a token that never expires. The sub is the user's id (see login).
        payload = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM], options={"require_exp": True})
        token_data = TokenData.model_validate({"user_id": payload.get("sub")})
    # python-jose raises TypeError or OverflowError for an exp that is null or a list, RecursionError for deep JSON
    except (JWTError, TypeError, OverflowError, RecursionError, ValidationError):
        raise credentials_exception from None

    user = await get_user_from_db(token_data.user_id)
    if user is None or user.email != payload.get("email"):  # the email too: in a fresh store, ids restart at 1
        raise credentials_exception
    if not user.is_active:  # as in FastAPI's tutorial; the article never checks is_active
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")
    return user


CurrentUser = Annotated[UserInDB, Depends(get_current_user)]

# On routers, not the article's app (see API Routers and Structure). "" is the article's /users; "/" would be /users/.
users_router = APIRouter(prefix="/users", tags=["users"])


@users_router.post("", response_model=UserResponse, status_code=status.HTTP_201_CREATED)
async def create_user(user: UserCreate) -> UserInDB:
    """Create a new user."""
    global user_id_counter

    # Check if email already exists, whatever its letter case
    email = user.email.lower()
    if email not in user_ids_by_email:  # no slow hash (in a thread) for a taken email
        hashed_password = await run_in_threadpool(get_password_hash, user.password)
    if email in user_ids_by_email:  # taken before, or by another sign-up while this one hashed
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Email already registered")

    # Create user record: model_dump is Pydantic v2's dict(); the hash is kept, the password never is
    user_data = user.model_dump(exclude={"password"})
    user_data["id"] = user_id_counter
    user_data["created_at"] = datetime.now(UTC)  # not the article's utcnow: deprecated, and it has no timezone
    user_data["is_active"] = True
    user_data["hashed_password"] = hashed_password
    new_user = UserInDB(**user_data)  # a model, not the dict, so that no read has to validate it again

    users_db[user_id_counter] = new_user
    user_ids_by_email[email] = user_id_counter
    user_id_counter += 1

    return new_user


@users_router.get("", response_model=list[UserResponse])
async def list_users(
    skip: Annotated[int, Query(ge=0, le=MAX_ID, description="Number of records to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Max records to return")] = 10,
    role: Annotated[UserRole | None, Query(description="Filter by role")] = None,  # a UserRole: a typo is a 422
) -> list[UserInDB]:
    """List all users with pagination and filtering."""
    users = list(users_db.values())

    # Apply role filter
    if role:
        users = [u for u in users if u.role == role]

    # Apply pagination
    return users[skip : skip + limit]


@users_router.get("/{user_id}", response_model=UserResponse)
async def get_user(user_id: UserId) -> UserInDB:
    """Get a user by ID."""
    if user_id not in users_db:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")
    return users_db[user_id]


@users_router.patch("/{user_id}", response_model=UserResponse)
async def update_user(user_id: UserId, user_update: UserUpdate) -> UserInDB:
    """Partially update a user."""
    if user_id not in users_db:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")

    # Update only provided fields, in a new copy of the stored model
    update_data = user_update.model_dump(exclude_unset=True)
    users_db[user_id] = users_db[user_id].model_copy(update=update_data)

    return users_db[user_id]


# response_class=Response, not JSONResponse: a 204 has no body, so it says no Content-Type either
@users_router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_user(user_id: UserId) -> None:
    """Delete a user."""
    if user_id not in users_db:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")
    del user_ids_by_email[users_db[user_id].email.lower()]
    del users_db[user_id]


# --- Dependency Injection ---
class Item(BaseModel):  # Not in the article, whose list_items reads an Item table it never defines
    id: int
    name: str
    price: float


# Not in the article: the catalogue GET /items lists. A database gets a copy at its first start.
items_db = [
    Item(id=1, name="Keyboard", price=49.99),
    Item(id=2, name="Mouse", price=19.99),
    Item(id=3, name="Monitor", price=189.0),
    Item(id=4, name="Headphones", price=79.5),
    Item(id=5, name="Webcam", price=59.0),
    Item(id=6, name="USB Hub", price=24.99),
]


# Database session dependency: the article's yields a session it never defines; this one returns the catalogue.
async def get_db() -> list[Item]:
    """Get the in-memory catalogue."""
    return items_db


class PaginationParams:
    """Common pagination parameters."""

    def __init__(
        self,
        skip: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,  # the article's takes any integer, negative too
        limit: Annotated[int, Query(ge=1, description="Capped at 100")] = 10,  # 0 or less is a 422
        sort_by: Literal["id", "name", "price"] | None = None,  # Item's fields, for /docs; a typo is a 422
        order: Literal["asc", "desc"] = "asc",  # anything else is a 422, not "asc"
    ) -> None:
        self.skip = skip
        self.limit = min(limit, 100)  # Cap at 100
        self.sort_by = sort_by
        self.order = order


# A security scheme, not the article's Header: /docs offers it under Authorize, and no key is a 401, not a 422.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def verify_api_key(x_api_key: Annotated[str | None, Depends(api_key_header)]) -> str:
    """Verify API key from header."""
    # The key from the settings. compare_digest takes as long wherever two keys differ: no guessing byte by byte.
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), settings.api_key.encode()):
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid API key")
    return x_api_key


items_router = APIRouter(prefix="/items", tags=["items"])


@items_router.get("", response_model=list[Item])
async def list_items(
    pagination: Annotated[PaginationParams, Depends()],
    api_key: Annotated[str, Depends(verify_api_key)],
    db: Annotated[list[Item], Depends(get_db)],
) -> list[Item]:
    """List items with pagination and authentication."""
    items = db

    if pagination.sort_by:
        items = sorted(items, key=attrgetter(pagination.sort_by), reverse=pagination.order == "desc")

    return items[pagination.skip : pagination.skip + pagination.limit]


# --- Authentication with JWT ---
# Configuration, from the settings, not the code. SECRET_KEY unset: a random key (kept in the database, if any).
SECRET_KEY = settings.secret_key or secrets.token_urlsafe(32)
ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = settings.access_token_expire_minutes

# Password hashing
pwd_context = CryptContext(schemes=["bcrypt"], deprecated="auto", bcrypt__rounds=settings.bcrypt_rounds)
# OAuth2 scheme: oauth2_scheme and get_current_user are in CRUD Endpoints (why: see there).


class Token(BaseModel):
    access_token: str
    token_type: str


class TokenData(BaseModel):
    user_id: int = Field(gt=0, le=MAX_ID)  # the article's username: a token's sub is now the user's id


def verify_password(plain_password: str, hashed_password: str) -> bool:
    """Verify a password against its hash."""
    return pwd_context.verify(plain_password, hashed_password)


def get_password_hash(password: str) -> str:
    """Hash a password."""
    return pwd_context.hash(password)


def create_access_token(data: dict[str, Any], expires_delta: timedelta | None = None) -> str:
    """Create a JWT access token."""
    to_encode = data.copy()
    expire = datetime.now(UTC) + (expires_delta or timedelta(minutes=15))  # not the deprecated utcnow
    to_encode.update({"exp": expire})
    return jwt.encode(to_encode, SECRET_KEY, algorithm=ALGORITHM)


async def get_user_from_db(user_id: int) -> UserInDB | None:
    """The user with this id, or None. The article calls it without defining it."""
    if engine is None:
        return users_db.get(user_id)
    async with AsyncSessionLocal() as db:
        user = await db.get(User, user_id)
    return None if user is None else UserInDB.model_validate(user)


async def get_user_by_email(email: str) -> UserInDB | None:
    """Not in the article: the user with this email, whatever its case, or None."""
    if engine is None:
        return users_db.get(user_ids_by_email.get(email.lower(), 0))
    async with AsyncSessionLocal() as db:
        user = await db.scalar(select(User).where(func.lower(User.email) == func.lower(email)))  # as the index folds
    return None if user is None else UserInDB.model_validate(user)


def as_email(username: str) -> str | None:
    """Not in the article: the username as sign-up stores an email (trimmed, its domain lower-cased), else None."""
    try:
        return validate_email(username)[1]  # what EmailStr does
    except PydanticCustomError:
        return None


async def authenticate_user(username: str, password: str) -> UserInDB | None:
    """The user with this email and password, or None. The article calls it without defining it."""
    email = as_email(username)
    user = None if email is None else await get_user_by_email(email)
    # No such user, or a password sign-up refuses: check a dummy hash anyway, to take as long as a wrong password.
    if user is None or not fits_bcrypt(password):
        await run_in_threadpool(pwd_context.dummy_verify)
        return None
    return user if await run_in_threadpool(verify_password, password, user.hashed_password) else None


class LoginForm(BaseModel):  # the article's OAuth2PasswordRequestForm; a username no longer than an email
    username: str = Field(min_length=1, max_length=254, description="Your email", examples=["ada@example.com"])
    password: str = Field(min_length=1, json_schema_extra={"format": "password"}, examples=["analytical1"])


# Login endpoint
@app.post("/token", response_model=Token, tags=["auth"])
async def login(request: Request, form_data: Annotated[LoginForm, Form()]) -> dict[str, str]:
    """Authenticate and return JWT token. The username is the user's email."""
    async with login_throttle.attempt(request, form_data.username):  # Not in the article: a 429 (see below)
        user = await authenticate_user(form_data.username, form_data.password)
        if not user:
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="Incorrect username or password",
                headers={"WWW-Authenticate": "Bearer"},
            )
    if not user.is_active:  # Not in the article, as in get_current_user: a 400
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")

    access_token = create_access_token(
        # Not the article's username: the id, never reused, so the token names one account; the email is for readers.
        data={"sub": str(user.id), "email": user.email},
        expires_delta=timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    )

    return {"access_token": access_token, "token_type": "bearer"}


# Protected endpoint
@app.get("/users/me", response_model=UserResponse, tags=["users"])  # the article's would send the hash too
async def read_users_me(current_user: CurrentUser) -> UserInDB:
    """Get current user profile."""
    return current_user


# --- Async Database Operations ---
# Unset, the data stays in memory, as above; set, the routes below serve it from a database (see API Routers).
DATABASE_URL = settings.database_url


def open_engine(url: str) -> AsyncEngine:
    """The article's create_async_engine, its echo (every statement in the log) off unless SQL_ECHO is set."""
    # Not in the article: no wait outlasts DATABASE_TIMEOUT (PostgreSQL times a statement out itself); a pool of 20.
    wait = settings.database_timeout
    server = {"server_settings": {"statement_timeout": str(round(wait * 1000))}} if url.startswith("postgres") else {}
    try:
        engine = create_async_engine(
            url, echo=settings.sql_echo, pool_size=20, pool_timeout=wait, connect_args={"timeout": wait, **server}
        )
    except (SQLAlchemyError, ImportError, ValueError, TypeError) as exc:  # a malformed URL, a missing driver
        examples = "sqlite+aiosqlite:///./app.db, postgresql+asyncpg://user:password@localhost/dbname"
        raise SystemExit(f"DATABASE_URL is not usable: {exc} (examples: {examples})") from None
    if engine.dialect.name == "sqlite":  # SQLite's lower() folds only A to Z: Python's folds every capital, as memory
        event.listen(
            engine.sync_engine, "connect", lambda con, _: con.create_function("lower", 1, str.lower, deterministic=True)
        )
    return engine


engine = open_engine(DATABASE_URL) if DATABASE_URL else None

# async_sessionmaker: SQLAlchemy 2's spelling of the article's sessionmaker(class_=AsyncSession).
AsyncSessionLocal = async_sessionmaker(engine, expire_on_commit=False)


class UTCDateTime(TypeDecorator[datetime]):  # Not in the article: SQLite keeps no timezone; its times are UTC
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


# DeclarativeBase, Mapped and mapped_column: SQLAlchemy 2's spelling of the article's declarative_base() and Column.
class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}  # every Mapped[datetime], yours too


class User(Base):
    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)  # else SQLite would give a deleted user's id to the next one

    id: Mapped[int] = mapped_column(primary_key=True)  # a primary key has an index: the article's index=True
    email: Mapped[str] = mapped_column(String(254))  # unique whatever its case: the index below
    name: Mapped[str] = mapped_column(String(100))
    hashed_password: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=lambda: datetime.now(UTC))
    role: Mapped[str] = mapped_column(String(10))  # role and is_active: the article's models have them, its table not
    is_active: Mapped[bool] = mapped_column(default=True)


# Ada@example.com and ada@example.com are one address: the database refuses the second, even if sent at once.
email_index = Index("ix_users_email_lower", func.lower(User.email), unique=True)


class ItemRow(Base):  # Not in the article, whose Item table it never defines (here Item is the response model)
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[float]


async def start_database() -> None:
    """Not in the article, which never makes its tables: make them, and fill the catalogue at the first start."""
    async with start_up_checks() as connection:  # Not in the article: engine.begin(), checked (see below)
        await connection.run_sync(Base.metadata.create_all)
        if await connection.scalar(select(func.count()).select_from(ItemRow)) == 0:
            await connection.execute(insert(ItemRow), [item.model_dump() for item in items_db])


# Async dependency. scope="function" (AsyncDb): it commits before the response is sent, so a failed commit is a 500.
async def get_async_db() -> AsyncIterator[AsyncSession]:
    async with AsyncSessionLocal() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise


AsyncDb = Annotated[AsyncSession, Depends(get_async_db, scope="function")]

# Async CRUD operations: the routes of CRUD Endpoints, on the database (API Routers and Structure picks one set).
db_users_router = APIRouter(prefix="/users", tags=["users"])


@db_users_router.get("/{user_id}", response_model=UserResponse)
async def get_db_user(user_id: UserId, db: AsyncDb) -> User:
    """Get user by ID using async database."""
    result = await db.execute(select(User).where(User.id == user_id))
    user = result.scalar_one_or_none()

    if not user:
        raise HTTPException(status_code=404, detail="User not found")

    return user


@db_users_router.post("", response_model=UserResponse, status_code=status.HTTP_201_CREATED)
async def create_db_user(user: UserCreate, db: AsyncDb) -> User:
    """Create a new user using async database."""
    if await get_user_by_email(user.email):  # Not in the article: no hash for a taken email (the index stops the rest)
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Email already registered")
    db_user = User(
        **user.model_dump(exclude={"password"}),  # every field (the article names two, and loses role)
        hashed_password=await run_in_threadpool(get_password_hash, user.password),
    )
    db.add(db_user)
    try:
        await db.commit()
    except IntegrityError as exc:
        if str(email_index.name) not in str(exc):  # another constraint: a bug, so a 500
            raise
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Email already registered") from None
    # No db.refresh(db_user), unlike the article: the insert gave back the id, and created_at was set here.
    return db_user


# Not in the article: the rest of CRUD Endpoints, and /items below, on the database.
@db_users_router.get("", response_model=list[UserResponse])
async def list_db_users(
    db: AsyncDb,
    skip: Annotated[int, Query(ge=0, le=MAX_ID, description="Number of records to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Max records to return")] = 10,
    role: Annotated[UserRole | None, Query(description="Filter by role")] = None,
) -> Sequence[User]:
    query = select(User).order_by(User.id).offset(skip).limit(limit)
    if role:
        query = query.where(User.role == role)
    return (await db.scalars(query)).all()


@db_users_router.patch("/{user_id}", response_model=UserResponse)
async def update_db_user(user_id: UserId, user_update: UserUpdate, db: AsyncDb) -> User:
    update_data = user_update.model_dump(exclude_unset=True)
    if not update_data:
        user = await db.get(User, user_id)
    else:  # one statement, so that a user deleted meanwhile is simply not found
        user = await db.scalar(update(User).where(User.id == user_id).values(update_data).returning(User))
    if not user:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")
    return user


@db_users_router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_db_user(user_id: UserId, db: AsyncDb) -> None:
    if await db.scalar(delete(User).where(User.id == user_id).returning(User.id)) is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")


db_items_router = APIRouter(prefix="/items", tags=["items"])


@db_items_router.get("", response_model=list[Item])
async def list_db_items(
    pagination: Annotated[PaginationParams, Depends()],
    api_key: Annotated[str, Depends(verify_api_key)],
    db: AsyncDb,
) -> Sequence[ItemRow]:
    query = select(ItemRow)
    if pagination.sort_by:
        column = getattr(ItemRow, pagination.sort_by)
        query = query.order_by(column.desc() if pagination.order == "desc" else column)
    query = query.order_by(ItemRow.id).offset(pagination.skip).limit(pagination.limit)
    return (await db.scalars(query)).all()


# --- Error Handling ---
class CustomException(Exception):
    """Custom application exception."""

    def __init__(self, detail: str, status_code: int = 400, headers: Mapping[str, str] | None = None) -> None:
        self.detail = detail
        self.status_code = status_code
        self.headers = headers  # the article's has none; the 429 and 503 send Retry-After


@app.exception_handler(CustomException)
async def custom_exception_handler(request: Request, exc: CustomException) -> JSONResponse:
    """Handle custom exceptions."""
    # The path alone, not the article's str(request.url): that repeats whatever Host header a client sent.
    content = {"error": "Application Error", "detail": exc.detail, "path": request.url.path}
    # Not in the article: OAuth2's error_description too, with any wait in it: the Authorize dialog in /docs shows it.
    wait = (exc.headers or {}).get("Retry-After")
    content["error_description"] = exc.detail if wait is None else f"{exc.detail} (in {wait} seconds)"
    return JSONResponse(status_code=exc.status_code, content=content, headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def validation_exception_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Handle validation errors with custom format."""
    # A body of the wrong kind is no field error: a 415 that says what to send, not "Field required".
    if isinstance(exc.body, bytes):  # a form or text to a JSON route: FastAPI keeps such a body as raw bytes
        return JSONResponse({"detail": "Send the body as JSON, with Content-Type: application/json"}, 415)
    if isinstance(exc.body, FormData) and "form" not in request.headers.get("content-type", ""):  # JSON to login
        detail = "Send the login as a form, with Content-Type: application/x-www-form-urlencoded (OAuth2 says so)"
        return JSONResponse({"detail": detail}, 415)
    # Broken JSON is not a field error either: a 400, as FastAPI answers any other body it cannot parse.
    if any(error["type"] == "json_invalid" for error in exc.errors()):
        return JSONResponse({"detail": "There was an error parsing the body"}, 400)

    details = [  # never the submitted "input": it could be a password
        {"field": " -> ".join(str(loc) for loc in error["loc"]), "message": error["msg"], "type": error["type"]}
        for error in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"error": "Validation Error", "details": details})


@app.exception_handler(Exception)
async def global_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Catch-all exception handler. Starlette still raises the exception afterwards, so the server logs it."""
    content = {"error": "Internal Server Error", "detail": "An unexpected error occurred"}
    return JSONResponse(status_code=500, content=content)


# --- API Routers and Structure ---
# The in-memory routers, or with DATABASE_URL set, the database's: added after /users/me, so "me" is never a user_id.
if engine is None:
    app.include_router(users_router)
    app.include_router(items_router)
else:
    app.include_router(db_users_router)
    app.include_router(db_items_router)


# --- Interactive Documentation ---
# FastAPI builds them from the routes and models above: /docs (Swagger UI), /redoc and /openapi.json.


# --- Login throttle ---
# Not in the article, nor what follows: what a real deployment adds, in the order you would add it.
class LoginFailure(Base):  # the failed logins, with a database: every worker counts them all
    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[float]  # time.time(): the same clock in every worker
    client: Mapped[str]  # no index: it never holds more than a window's password checks
    email: Mapped[str]


class LoginThrottle:  # per client, a 429 past LOGIN_ATTEMPTS failures for an email, or LOGIN_ATTEMPTS_PER_CLIENT
    def __init__(self) -> None:
        self.failures: list[tuple[float, str, str]] = []  # in memory: (time, client, email)

    @asynccontextmanager
    async def attempt(self, request: Request, username: str) -> AsyncIterator[None]:
        """Refuse a login with a 429, or count it as failed before its check (a burst gets no extra guesses). A success
        clears the count; so does a database error, as no password was checked."""
        client = request.client.host if request.client else ""
        email = (as_email(username) or username).lower()
        attempted_at, retry_after = await self.count(client, email)
        if retry_after:
            detail = "Too many failed login attempts, try again later"
            raise CustomException(detail, 429, {"Retry-After": str(retry_after)})
        try:
            yield
        except HTTPException as exc:  # a wrong password stays counted; in the app's error shape, which /docs shows
            raise CustomException(exc.detail, exc.status_code, exc.headers) from None
        except Exception:
            await self.forget(client, email, attempted_at)
            raise
        await self.forget(client, email)

    async def count(self, client: str, email: str) -> tuple[float, int]:
        """Count an attempt as a failure: its time, and 0 if it may go ahead, else the seconds to wait."""
        now = time.time()
        since = now - settings.login_window_minutes * 60
        if engine is None:  # nothing pauses here, so one attempt counts at a time
            self.failures = [failure for failure in self.failures if failure[0] > since]  # a window's checks at most
            if not (wait := self.wait([(at, e) for at, c, e in self.failures if c == client], email, since)):
                self.failures.append((now, client, email))
            return now, wait
        async with engine.begin() as connection:  # one attempt at a time, in every worker: it counts, then adds itself
            lock = "BEGIN IMMEDIATE" if connection.dialect.name == "sqlite" else "LOCK login_failures IN EXCLUSIVE MODE"
            await connection.exec_driver_sql(lock)
            await connection.execute(delete(LoginFailure).where(LoginFailure.at <= since))
            failures = await connection.execute(select(LoginFailure.at, LoginFailure.email).filter_by(client=client))
            if not (wait := self.wait(failures.all(), email, since)):
                await connection.execute(insert(LoginFailure).values(at=now, client=client, email=email))
        return now, wait

    async def forget(self, client: str, email: str, at: float | None = None) -> None:
        """Forget the client's failures for this email (it logged in), or with `at`, that attempt's (never checked)."""
        if engine is None:  # keep other clients' and emails' failures, and with `at`, other attempts'
            self.failures = [f for f in self.failures if f[1:] != (client, email) or (at is not None and f[0] != at)]
            return
        query = delete(LoginFailure).filter_by(client=client, email=email)
        async with engine.begin() as connection:
            await connection.execute(query if at is None else query.filter_by(at=at))

    def wait(self, failures: Sequence[tuple[float, str]], email: str, since: float) -> int:
        """The seconds until a client with these failures (time, email), all after `since`, may try this email."""
        account, client = sorted(at for at, failed in failures if failed == email), sorted(at for at, _ in failures)
        limits = [(settings.login_attempts, account), (settings.login_attempts_per_client, client)]
        # Locked until the limit-th latest failure leaves the window: then fewer than the limit remain.
        return math.ceil(max((times[-limit] - since for limit, times in limits if len(times) >= limit), default=0))


login_throttle = LoginThrottle()


# --- Start-up checks ---
class Setting(Base):  # the key tokens are signed with, if SECRET_KEY is unset: tokens then outlive a restart
    __tablename__ = "settings"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


@asynccontextmanager
async def start_up_checks() -> AsyncIterator[AsyncConnection]:
    """engine.begin() for start_database, checked: workers take turns, lower() folds as Python's, no model column is
    missing, the signing key is kept. A failure ends the server with one line."""
    global SECRET_KEY
    assert engine is not None
    try:
        async with engine.begin() as connection:
            dialect = connection.dialect.name
            lock = "BEGIN IMMEDIATE" if dialect == "sqlite" else "SELECT pg_advisory_xact_lock(1)"
            await connection.exec_driver_sql(lock)  # workers starting at once take turns: the first makes the tables
            if await connection.scalar(select(func.lower("ÅSA"))) != "åsa":  # else ÅSA and åsa would be two emails
                stop("its lower() folds only A to Z (LC_CTYPE C): make it with createdb -T template0 --locale=C.UTF-8")
            yield connection
            if missing := await connection.run_sync(missing_columns):
                fresh = f"delete {engine.url.database} to start afresh, or " if dialect == "sqlite" else ""
                stop(f"the tables lack columns the models have: {fresh}migrate it: {'; '.join(missing)}")
            stored_key = await connection.scalar(select(Setting.value).where(Setting.name == "secret_key"))
            if stored_key is None:
                stored_key = secrets.token_urlsafe(32)
                await connection.execute(insert(Setting).values(name="secret_key", value=stored_key))
    except (OSError, SQLAlchemyError) as exc:  # unreachable, refused, no such database, ...
        stop(f"cannot use it: {exc.orig if isinstance(exc, DBAPIError) else exc}")
    if not settings.secret_key:
        SECRET_KEY = stored_key


async def reset() -> None:
    """Empty the app while uvicorn --reload runs it, on every store (README: In class): it starts again, as new."""
    if engine is not None:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
    os.utime(__file__)  # a change uvicorn --reload sees


def missing_columns(connection: Connection) -> list[str]:
    """The statements that add the models' columns the tables lack: create_all makes tables, never columns."""
    inspector, missing = inspect(connection), []
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        new = [column for column in table.columns if column.name not in present]
        missing += [f"ALTER TABLE {table.name} ADD COLUMN {CreateColumn(column).compile(connection)}" for column in new]
    return missing


def stop(problem: str) -> NoReturn:
    """End the server with one line, the password hidden: an exception here would make uvicorn print a page."""
    assert engine is not None
    print(f"DATABASE_URL {engine.url.render_as_string()}: {problem}", file=sys.stderr, flush=True)
    os._exit(1)


# --- A database that does not answer ---
async def ping_database() -> None:  # with a database, the cheapest question there is, for /health
    if engine is not None:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")


@app.exception_handler(DBAPIError)
@app.exception_handler(PoolTimeoutError)
@app.exception_handler(OSError)  # the driver's own: nothing listening, no answer in time
@app.exception_handler(OverflowError)  # SQLite's own: a number it cannot keep
async def database_error_handler(request: Request, exc: Exception) -> JSONResponse:
    # Only the database is blamed for the database: an OSError or OverflowError that came through no module of
    # SQLAlchemy or its drivers is your own code's, a 500 with its traceback.
    modules = {frame.f_globals.get("__name__", "").split(".")[0] for frame, _ in traceback.walk_tb(exc.__traceback__)}
    if not isinstance(exc, SQLAlchemyError) and not modules & {"sqlalchemy", "asyncpg", "aiosqlite"}:
        raise exc
    # A 503 and one log line: unreachable, no answer in time, or PostgreSQL's connection failure (08), out of resources
    # (53), shutdown (57), lock not available (55P03), and SQLite's like them
    unavailable = ("08", "53", "57", "55P03", "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_FULL")
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    code = str(getattr(reason, "sqlstate", None) or getattr(reason, "sqlite_errorname", ""))
    # A value the database cannot keep (PostgreSQL's "data exception"), an id too large say, on a route you add: 422.
    if code.startswith("22") or isinstance(reason, OverflowError):
        error = {"loc": ("request",), "msg": "A value the database cannot keep", "type": "value_error"}
        return await validation_exception_handler(request, RequestValidationError([error]))
    answered = isinstance(exc, DBAPIError) and exc.statement is not None and not exc.connection_invalidated
    if answered and not isinstance(reason, OSError) and not code.startswith(unavailable):
        raise exc  # a 500 with its traceback: a bug, in a query say
    message = "%s %s: 503, the database did not answer: %r"  # one line, in uvicorn's log
    logging.getLogger("uvicorn.error").warning(message, request.method, request.url.path, reason)
    busy = CustomException("The database is not answering, try again later", 503, {"Retry-After": "5"})
    return await custom_exception_handler(request, busy)


# --- Body limit, and the docs' security policy ---
# A 413 past 1 MiB, counted as the body arrives (FastAPI's max_body_size answers a Content-Length past it in plain
# text, not the documented body); and the docs' Content-Security-Policy. Plain ASGI: faster.
class BodyLimitAndDocsPolicy:
    # /docs and /redoc load nothing from anywhere but the app: they work offline, and a page injected there gets nowhere
    docs_policy = (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0

        async def receive_counted() -> ASGIMessage:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > 1024 * 1024:  # far more than any body this API takes: the route answers 413
                raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "The body is larger than 1 MiB")
            return message

        async def send_with_policy(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Content-Security-Policy"] = self.docs_policy
            await send(message)

        on_docs = scope["type"] == "http" and scope["path"] in ("/docs", "/redoc")
        await self.app(scope, receive_counted, send_with_policy if on_docs else send)


app.add_middleware(BodyLimitAndDocsPolicy)


# --- CORS ---
app.add_middleware(  # pages from this machine or CORS_ORIGINS may call the API; added last, so outermost
    CORSMiddleware,
    allow_origins=settings.cors_origins.replace(",", " ").split(),
    allow_origin_regex=r"https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?",
    allow_methods=["GET", "POST", "PATCH", "DELETE"],
    allow_headers=["Authorization", "X-API-Key", "Content-Type"],
    expose_headers=["Retry-After"],  # a page may read it, to know when to try again after a 429 or a 503
)


# --- OpenAPI additions ---
# The bodies the handlers under Error Handling send, as models, so that /docs shows them as sent (four small models:
# create_model, Pydantic's way to make a model in a line). Message is FastAPI's, for an HTTPException.
Message = create_model("Message", detail=str)
FieldError = create_model("FieldError", field=str, message=str, type=str)
ValidationErrorResponse = create_model(
    "ValidationErrorResponse", error=Literal["Validation Error"], details=list[FieldError]
)
ApplicationErrorResponse = create_model(
    "ApplicationErrorResponse", error=Literal["Application Error"], detail=str, path=str, error_description=str
)


def documented(model: type[BaseModel], description: str, header: str = "") -> dict[str, Any]:
    """A response as the document states it: what FastAPI makes of a `responses` entry."""
    content = {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}
    return {"description": description, "content": content} | ({"headers": {header: TEXT}} if header else {})


# What a route answers for its body, a path parameter, the current user, the API key; the login's; the database's.
REF, TEXT = "#/components/schemas/{model}", {"schema": {"type": "string"}}
LOGIN_ERRORS = {
    "401": documented(ApplicationErrorResponse, "Incorrect username or password", "WWW-Authenticate"),
    "429": documented(ApplicationErrorResponse, "Too many failed logins", "Retry-After"),
}
BODY_ERRORS = {
    "400": documented(Message, "The body cannot be parsed, or a value is taken or refused: Email already registered"),
    "413": documented(Message, "The body is larger than 1 MiB"),
    "415": documented(Message, "The body is not of the type the route takes"),
    "422": documented(ValidationErrorResponse, "Validation Error"),
}
CURRENT_USER_ERRORS = {
    "400": documented(Message, "Inactive user"),
    "401": documented(Message, "Not authenticated, or could not validate credentials", "WWW-Authenticate"),
}
NOT_FOUND, API_KEY_ERRORS = {"404": documented(Message, "Not found")}, {"401": documented(Message, "Invalid API key")}
DATABASE_ERRORS = {"503": documented(ApplicationErrorResponse, "The database is not answering", "Retry-After")}
EXAMPLES = {"/": {"message": "Welcome to My API"}, "/health": {"status": "healthy"}}  # not ReDoc's "property1"


def openapi() -> dict[str, Any]:
    """FastAPI's document, with every error a route answers, the app's error bodies, and one document on every store."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # FastAPI's own method: app.openapi is this function now
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                responses, security = operation["responses"], operation.get("security", [])
                if "422" in responses:  # the app's error shape, not FastAPI's HTTPValidationError
                    responses["422"] = BODY_ERRORS["422"]
                for applies, errors in [
                    (path == "/token", LOGIN_ERRORS),
                    ("{" in path, NOT_FOUND),  # a path parameter: nothing there, say User not found
                    ("requestBody" in operation, BODY_ERRORS),
                    ({"OAuth2PasswordBearer": []} in security, CURRENT_USER_ERRORS),
                    ({"APIKeyHeader": []} in security, API_KEY_ERRORS),
                    (engine is not None and path != "/", DATABASE_ERRORS),
                ]:
                    responses = errors | responses if applies else responses
                operation["responses"] = dict(sorted(responses.items()))
                operation["summary"] = operation["summary"].replace("Db ", "", 1)  # as its operationId
                if path in EXAMPLES:
                    responses["200"]["content"]["application/json"]["example"] = EXAMPLES[path]
        schemas = schema["components"]["schemas"]
        del schemas["HTTPValidationError"], schemas["ValidationError"]
        bodies = [(body, "validation") for body in (Message, ValidationErrorResponse, ApplicationErrorResponse)]
        schemas |= models_json_schema(bodies, ref_template=REF)[1]["$defs"]  # type: ignore[arg-type]
        app.openapi_schema = schema
    return app.openapi_schema


app.openapi = openapi  # type: ignore[method-assign]  # as FastAPI's docs do it, which mypy flags
