"""The companion app for "How to Create REST APIs with FastAPI": the whole article in one module, in its order.

Run with: uvicorn main:app --reload
"""

import math
import os
import secrets
import string
import sys
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from operator import attrgetter
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, FastAPI, Form, HTTPException, Path, Query, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi_offline import FastAPIOffline
from jose import JWTError, jwt
from passlib.context import CryptContext
from pydantic import (
    MISSING,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StrictBool,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError
from sqlalchemy import DateTime, Dialect, Index, String, TypeDecorator, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# --- Basic Application ---


# The article has no start-up code; a database needs its tables before the first request. A lifespan is
# today's spelling of start-up and shut-down (on_event is deprecated).
@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await start_database()
    yield
    await stop_database()


# FastAPIOffline is the article's FastAPI(...) whose /docs and /redoc load Swagger UI and ReDoc from the app itself
# (the fastapi-offline package ships them), not from a CDN: the docs work offline and behind a firewall.
app = FastAPIOffline(
    title="My API",
    description="A sample REST API built with FastAPI",
    version="1.0.0",
    lifespan=lifespan,
)


@app.get("/")
async def root() -> dict[str, str]:
    """Root endpoint returning a welcome message."""
    return {"message": "Welcome to My API"}


@app.get("/health")
async def health_check() -> dict[str, str]:
    """Health check endpoint for monitoring."""
    return {"status": "healthy"}


# --- Request and Response Models ---


class UserRole(StrEnum):  # Python 3.11's spelling of the article's (str, Enum)
    """User roles enumeration."""

    ADMIN = "admin"
    USER = "user"
    GUEST = "guest"


class UserBase(BaseModel):
    """Base user model with shared fields."""

    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    role: UserRole = UserRole.USER


def fits_bcrypt(password: str) -> bool:
    """bcrypt reads only the first 72 bytes and fails on a NUL: any other password would be cut short or crash."""
    return len(password.encode()) <= 72 and "\x00" not in password


class UserCreate(UserBase):
    """Model for creating a new user."""

    # The pattern is the rule password_strength checks: one ASCII digit, and no NUL anywhere.
    password: str = Field(
        min_length=8,
        max_length=72,
        description="8 to 72 characters, at most 72 bytes in UTF-8, with at least one digit (0-9) and no NUL",
        json_schema_extra={"pattern": r"^[^\u0000]*[0-9][^\u0000]*$"},
    )

    # field_validator is Pydantic v2's name for the article's validator. PydanticCustomError keeps the message as
    # written (a ValueError would read "Value error, Password must ...").
    @field_validator("password")
    @classmethod
    def password_strength(cls, v: str) -> str:
        """Validate password has at least one digit and fits bcrypt."""
        # ASCII digits only (isdigit would also take "²"), so the rule is exactly the schema's pattern.
        if not any(c in string.digits for c in v):
            raise PydanticCustomError("value_error", "Password must contain at least one digit")
        if not fits_bcrypt(v):
            raise PydanticCustomError("value_error", "Password must be at most 72 bytes in UTF-8, with no NUL")
        return v


class UserResponse(UserBase):
    """Model for user response (excludes password)."""

    # from_attributes: Pydantic v2's name for the article's orm mode. The other: the schema marks role and
    # is_active required, as every response has them, though they have defaults.
    model_config = ConfigDict(from_attributes=True, json_schema_serialization_defaults_required=True)

    # A stored email was checked at sign-up: read back as it is, since checking it again costs more than the query.
    email: str = Field(json_schema_extra={"format": "email"})
    id: int
    created_at: datetime
    is_active: bool = True


class UserInDB(UserResponse):
    """A stored user: what the response shows, plus the password hash it never shows."""

    hashed_password: str


class UserUpdate(BaseModel):
    """Model for partial user updates."""

    # MISSING rather than the article's None: a field left out stays as it is, and null is a 422. StrictBool:
    # 0, 1 or "yes" is not a boolean.
    name: str | MISSING = Field(default=MISSING, min_length=1, max_length=100)
    role: UserRole | MISSING = MISSING
    is_active: StrictBool | MISSING = MISSING


class Item(BaseModel):
    """A catalogue item, listed by GET /items."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    price: float


class Token(BaseModel):
    access_token: str
    token_type: str


class TokenData(BaseModel):
    # The article's username: a token's sub is now the user's id (see login), never reused.
    user_id: int = Field(gt=0)


# The error bodies the app sends, as models so the OpenAPI document shows them exactly.
ALWAYS_SENT = ConfigDict(json_schema_serialization_defaults_required=True)


class Message(BaseModel):
    """FastAPI's body for an HTTPException."""

    detail: str


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class ValidationErrorResponse(BaseModel):
    model_config = ALWAYS_SENT

    error: Literal["Validation Error"] = "Validation Error"
    details: list[FieldError]


class ApplicationErrorResponse(BaseModel):
    model_config = ALWAYS_SENT

    error: Literal["Application Error"] = "Application Error"
    detail: str
    path: str


class InternalErrorResponse(BaseModel):
    model_config = ALWAYS_SENT

    error: Literal["Internal Server Error"] = "Internal Server Error"
    detail: str = "An unexpected error occurred"


def error_response(model: type[BaseModel], description: str, header: str | None = None) -> dict[str, Any]:
    """One entry of a route's `responses`: the body's model, what it means, and the header it sends."""
    response: dict[str, Any] = {"model": model, "description": description}
    if header:
        response["headers"] = {header: {"schema": {"type": "string"}}}
    return response


VALIDATION_ERROR = error_response(ValidationErrorResponse, "Validation Error")
USER_NOT_FOUND = error_response(Message, "User not found")
BODY_ERROR = error_response(Message, "The body is not valid JSON")
NOT_JSON = error_response(Message, "The body is not JSON: send it with Content-Type: application/json")


# --- CRUD Endpoints ---

# The catalogue GET /items lists; a database gets it once, at its first start.
CATALOGUE = [
    Item(id=1, name="Keyboard", price=49.99),
    Item(id=2, name="Mouse", price=19.99),
    Item(id=3, name="Monitor", price=189.0),
    Item(id=4, name="Headphones", price=79.5),
    Item(id=5, name="Webcam", price=59.0),
    Item(id=6, name="USB Hub", price=24.99),
]
# The largest id PostgreSQL's Integer column holds: a larger id names no user, on every store.
MAX_ID = 2**31 - 1


class StoredUser(Protocol):
    """What the routes read of a stored user, a UserInDB in memory or a User row in a database; UserResponse
    reads the rest."""

    @property
    def id(self) -> int: ...
    @property
    def email(self) -> str: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def hashed_password(self) -> str: ...


class Database(Protocol):
    """What the routes ask of a store: InMemoryDB below, or SQLDatabase under Async Database Operations."""

    async def get_user(self, user_id: int) -> StoredUser | None: ...
    async def get_user_by_email(self, email: str) -> StoredUser | None: ...
    async def add_user(self, user: UserCreate, hashed_password: str) -> StoredUser | None: ...  # None: email taken
    async def list_users(self, skip: int, limit: int, role: UserRole | None) -> Sequence[StoredUser]: ...
    async def update_user(self, user_id: int, changes: dict[str, Any]) -> StoredUser | None: ...
    async def delete_user(self, user_id: int) -> bool: ...
    async def list_items(self, pagination: "PaginationParams") -> list[Item]: ...


class InMemoryDB:
    """In-memory database for demonstration: the article's users_db, an email index and the item catalogue.
    No method awaits anything, so each runs whole before another request's code can."""

    def __init__(self) -> None:
        self.users_db: dict[int, UserInDB] = {}
        # Lower-cased email -> id: a duplicate check is one lookup, not a scan of every user.
        self.user_ids_by_email: dict[str, int] = {}
        self.user_id_counter = 1
        self.items = list(CATALOGUE)

    async def get_user(self, user_id: int) -> UserInDB | None:
        return self.users_db.get(user_id)

    async def get_user_by_email(self, email: str) -> UserInDB | None:
        user_id = self.user_ids_by_email.get(email.lower())
        return None if user_id is None else self.users_db[user_id]

    async def add_user(self, user: UserCreate, hashed_password: str) -> UserInDB | None:
        if user.email.lower() in self.user_ids_by_email:
            return None
        new_user = UserInDB(
            **user.model_dump(exclude={"password"}),
            id=self.user_id_counter,
            created_at=datetime.now(UTC),  # not the article's utcnow: deprecated, and it has no timezone
            hashed_password=hashed_password,
        )
        self.users_db[new_user.id] = new_user
        self.user_ids_by_email[new_user.email.lower()] = new_user.id
        self.user_id_counter += 1
        return new_user

    async def list_users(self, skip: int, limit: int, role: UserRole | None) -> list[UserInDB]:
        users: Iterable[UserInDB] = self.users_db.values()
        if role is not None:
            users = (u for u in users if u.role == role)
        # islice reads only skip + limit records; min() keeps a huge skip within what islice accepts.
        start = min(skip, len(self.users_db))
        return list(islice(users, start, start + limit))

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> UserInDB | None:
        if user_id not in self.users_db:
            return None
        # The stored record is replaced whole, by a copy with the changes.
        updated_user = self.users_db[user_id] = self.users_db[user_id].model_copy(update=changes)
        return updated_user

    async def delete_user(self, user_id: int) -> bool:
        user = self.users_db.pop(user_id, None)
        if user is not None:
            del self.user_ids_by_email[user.email.lower()]
        return user is not None

    async def list_items(self, pagination: "PaginationParams") -> list[Item]:
        items = self.items
        if pagination.sort_by is not MISSING:
            items = sorted(items, key=attrgetter(pagination.sort_by.value), reverse=pagination.order == "desc")
        return items[pagination.skip : pagination.skip + pagination.limit]


# The in-memory store, unless DATABASE_URL names a database (see Async Database Operations).
database: Database = InMemoryDB()


# The article introduces get_db under Dependency Injection; it stands here because the routes below need it.
# The article's yields a session to close it after the request. Here each store method opens its own session
# (SQLDatabase), and a yield dependency costs FastAPI about a quarter of a read, so it returns; an override may
# still yield.
async def get_db() -> Database:
    """Get the database; a test's store takes its place through app.dependency_overrides."""
    return database


Db = Annotated[Database, Depends(get_db)]
UserId = Annotated[int, Path(gt=0, description="The ID of the user")]

# Routes live on APIRouters, included into the app under "API Routers and Structure". The "" paths answer
# /users itself, where the article's "/" would redirect /users to /users/.
users_router = APIRouter(prefix="/users", tags=["users"], responses={422: VALIDATION_ERROR})


def user_or_404(user: StoredUser | None) -> StoredUser:
    if user is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")
    return user


# The article's @app.post("/users")
@users_router.post(
    "",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        400: error_response(Message, "Email already registered, or the body is not valid JSON"),
        415: NOT_JSON,
    },
)
async def create_user(user: UserCreate, db: Db) -> StoredUser:
    """Create a new user."""
    # bcrypt takes a quarter of a second by design: in a thread, so the event loop keeps serving others.
    hashed_password = await run_in_threadpool(get_password_hash, user.password)
    # The store checks the email and adds the user in one step (a unique index, in a database), so concurrent
    # sign-ups with one email can't both get in.
    new_user = await db.add_user(user, hashed_password)
    if new_user is None:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Email already registered")
    return new_user


@users_router.get("", response_model=list[UserResponse])
async def list_users(
    db: Db,
    skip: Annotated[int, Query(ge=0, description="Number of records to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Max records to return")] = 10,
    # A UserRole, not the article's str, so /docs offers a dropdown and a typo is a 422. MISSING, as in
    # UserUpdate: a query string has no null, so the schema shows the enum alone.
    role: Annotated[UserRole | MISSING, Query(description="Filter by role")] = MISSING,
) -> Sequence[StoredUser]:
    """List all users with pagination and filtering."""
    return await db.list_users(skip, limit, None if role is MISSING else role)


@users_router.get("/{user_id}", response_model=UserResponse, responses={404: USER_NOT_FOUND})
async def get_user(user_id: UserId, db: Db) -> StoredUser:
    """Get a user by ID."""
    return user_or_404(await db.get_user(user_id))


@users_router.patch(
    "/{user_id}",
    response_model=UserResponse,
    responses={400: BODY_ERROR, 404: USER_NOT_FOUND, 415: NOT_JSON},
)
async def update_user(user_id: UserId, user_update: UserUpdate, db: Db) -> StoredUser:
    """Partially update a user."""
    # Only the fields sent, already validated by UserUpdate.
    return user_or_404(await db.update_user(user_id, user_update.model_dump(exclude_unset=True)))


@users_router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: USER_NOT_FOUND})
async def delete_user(user_id: UserId, db: Db) -> None:
    """Delete a user."""
    if not await db.delete_user(user_id):
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")


# --- Dependency Injection ---

API_KEY = os.environ.get("API_KEY", "expected-api-key")


class ItemField(StrEnum):
    """The fields GET /items can sort by."""

    ID = "id"
    NAME = "name"
    PRICE = "price"


class PaginationParams:
    """Common pagination parameters."""

    def __init__(
        self,
        skip: Annotated[int, Query(ge=0)] = 0,  # the article's took any integer, negative too
        limit: Annotated[int, Query(ge=1, description="Capped at 100")] = 10,
        sort_by: ItemField | MISSING = MISSING,  # an enum, as role in list_users
        order: Literal["asc", "desc"] = "asc",
    ) -> None:
        self.skip = skip
        self.limit = min(limit, 100)  # Cap at 100
        self.sort_by = sort_by
        self.order = order


# A security scheme rather than the article's plain Header: /docs offers it under Authorize, and a missing
# key is the same 401 as a wrong one instead of a 422.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def verify_api_key(x_api_key: Annotated[str | None, Security(api_key_header)]) -> str:
    """Verify API key from header."""
    # compare_digest takes as long wherever the keys differ, so a key can't be guessed byte by byte.
    if x_api_key is None or not secrets.compare_digest(x_api_key.encode(), API_KEY.encode()):
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid API key")
    return x_api_key


items_router = APIRouter(prefix="/items", tags=["items"], responses={422: VALIDATION_ERROR})


@items_router.get("", response_model=list[Item], responses={401: error_response(Message, "Invalid API key")})
async def list_items(
    pagination: Annotated[PaginationParams, Depends()],
    api_key: Annotated[str, Depends(verify_api_key)],
    db: Db,
) -> list[Item]:
    """List items with pagination and authentication."""
    # The article's db.query(Item)...offset().limit(): each store pages and sorts (SQLDatabase in SQL).
    return await db.list_items(pagination)


# --- Authentication with JWT ---

# When SECRET_KEY is unset: a random key for this process, so tokens end with it as the in-memory users do; with a
# database, one generated once and kept in it (start_database), so tokens last as long as the users.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32)
ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = int(os.environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "30"))
BCRYPT_ROUNDS = int(os.environ.get("BCRYPT_ROUNDS", "12"))
LOGIN_ATTEMPTS_ALLOWED = 5
LOGIN_ATTEMPT_WINDOW = timedelta(minutes=15)
EMAIL_MAX_LENGTH = 254  # the longest address email-validator (and so EmailStr) accepts

# Password hashing
pwd_context = CryptContext(schemes=["bcrypt"], deprecated="auto", bcrypt__rounds=BCRYPT_ROUNDS)

# OAuth2 scheme
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


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


class LoginForm(BaseModel):
    """The login form: the fields of the article's OAuth2PasswordRequestForm that login reads, with a username no
    longer than an email can be, so junk is a 422 before anything is kept."""

    username: str = Field(max_length=EMAIL_MAX_LENGTH, description="Your email")
    password: str = Field(json_schema_extra={"format": "password"})


email_adapter = TypeAdapter(EmailStr)


def as_email(username: str) -> str | None:
    """The username as sign-up stores an email (EmailStr trims it, applies Unicode NFC, lower-cases the domain),
    or None if it is not an email."""
    try:
        return email_adapter.validate_python(username)
    except ValidationError:
        return None


async def authenticate_user(db: Database, email: str | None, password: str) -> StoredUser | None:
    """The user with this email and password, or None. The article calls it without defining it."""
    user = None if email is None else await db.get_user_by_email(email)
    # A password sign-up would refuse can't be right. Check one all the same, so an unknown email takes as
    # long to refuse as a wrong password.
    if user is None or not fits_bcrypt(password):
        await run_in_threadpool(pwd_context.dummy_verify)
        return None
    if not await run_in_threadpool(verify_password, password, user.hashed_password):
        return None
    return user


class LoginThrottle:
    """Login attempts per (client, username) within the window: past the allowed number, refused without a
    password check. Not in the article. Per process: each worker counts its own."""

    def __init__(self, max_keys: int = 10_000, max_bytes: int = 4_000_000) -> None:
        # The latest attempt times of each key, least recently tried first.
        self.attempts: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.bytes = 0  # the keys' size in UTF-8; each username is at most EMAIL_MAX_LENGTH characters

    def attempt(self, key: tuple[str, str]) -> int:
        """Count an attempt, before its password is checked: 0 if it may go ahead, else the seconds to wait."""
        now = time.monotonic()
        window = LOGIN_ATTEMPT_WINDOW.total_seconds()
        attempts = self.attempts.get(key)
        if attempts is None:
            if not self.make_room(key_size(key), now):
                # Every key kept is locked: refuse until the least recently tried one expires.
                oldest = next(iter(self.attempts.values()))
                return math.ceil(oldest[-1] + window - now)
            attempts = self.attempts[key] = deque(maxlen=LOGIN_ATTEMPTS_ALLOWED)
            self.bytes += key_size(key)
        elif len(attempts) == LOGIN_ATTEMPTS_ALLOWED and attempts[0] + window > now:
            return math.ceil(attempts[0] + window - now)
        attempts.append(now)
        self.attempts.move_to_end(key)
        return 0

    def make_room(self, size: int, now: float) -> bool:
        """Forget keys until one more of this size fits: expired keys first, then the least recently tried key
        that is not locked. A locked key is kept for its window; False if only locked keys are left."""
        window = LOGIN_ATTEMPT_WINDOW.total_seconds()
        while self.attempts and self.is_full(size):
            oldest_key, oldest = next(iter(self.attempts.items()))
            if oldest[-1] + window <= now:  # least recently tried first, so the expired keys lead
                self.forget(oldest_key)
                continue
            unlocked = (
                key
                for key, attempts in self.attempts.items()
                if len(attempts) < LOGIN_ATTEMPTS_ALLOWED or attempts[0] + window <= now
            )
            victim = next(unlocked, None)
            if victim is None:
                return False
            self.forget(victim)
        return True

    def is_full(self, size: int) -> bool:
        return len(self.attempts) >= self.max_keys or self.bytes + size > self.max_bytes

    def forget(self, key: tuple[str, str]) -> None:
        if self.attempts.pop(key, None) is not None:
            self.bytes -= key_size(key)


def key_size(key: tuple[str, str]) -> int:
    return sum(len(part.encode()) for part in key)


login_throttle = LoginThrottle()


async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)], db: Db) -> StoredUser:
    """Decode JWT and return current user."""
    credentials_exception = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )

    try:
        # require_exp: the article's would accept a token that never expires.
        payload = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM], options={"require_exp": True})
        token_data = TokenData.model_validate({"user_id": payload.get("sub")})
    # python-jose lets a signed token whose exp, nbf or iat is null, a list or infinite escape as
    # TypeError or OverflowError; that token is as invalid as any other, as is a sub that is no id.
    except (JWTError, TypeError, OverflowError, ValidationError):
        raise credentials_exception from None

    user = await db.get_user(token_data.user_id)  # the article's get_user_from_db, which it never defines
    # The email too: ids start again at 1 when a store starts empty, and then name someone else.
    if user is None or user.email != payload.get("email"):
        raise credentials_exception
    if not user.is_active:  # as in FastAPI's tutorial; the article never checks is_active
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")
    return user


CurrentUser = Annotated[StoredUser, Depends(get_current_user)]


@app.post(
    "/token",
    response_model=Token,
    tags=["auth"],
    responses={
        400: error_response(Message, "Inactive user, or a form that cannot be parsed"),
        401: error_response(Message, "Incorrect username or password", header="WWW-Authenticate"),
        422: VALIDATION_ERROR,
        429: error_response(
            ApplicationErrorResponse, "Too many login attempts: wait Retry-After seconds", header="Retry-After"
        ),
    },
)
async def login(request: Request, form_data: Annotated[LoginForm, Form()], db: Db) -> Token:
    """Authenticate and return JWT token. The username is the user's email."""
    email = as_email(form_data.username)
    throttle_key = (request.client.host if request.client else "", (email or form_data.username).lower())
    # Counted before the password is checked, so requests sent at once can't all get a guess in.
    if retry_after := login_throttle.attempt(throttle_key):
        raise CustomException(
            "Too many failed login attempts, try again later",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(retry_after)},
        )

    user = await authenticate_user(db, email, form_data.password)
    if user is None:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    login_throttle.forget(throttle_key)
    if not user.is_active:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")

    access_token = create_access_token(
        # The article's {"sub": user.username}: the id, never reused, so a token names one account, not whoever
        # registers its email after it is deleted. The email is there for a reader of the token.
        data={"sub": str(user.id), "email": user.email},
        expires_delta=timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    )
    return Token(access_token=access_token, token_type="bearer")


@app.get(
    "/users/me",
    response_model=UserResponse,
    tags=["users"],
    responses={
        400: error_response(Message, "Inactive user"),
        401: error_response(Message, "Not authenticated, or could not validate credentials", header="WWW-Authenticate"),
    },
)
async def read_users_me(current_user: CurrentUser) -> StoredUser:
    """Get current user profile."""
    # response_model=UserResponse: the article returns the stored user as it is, hash included.
    return current_user


# --- Async Database Operations ---
#
# Unset, the app keeps its users in memory (InMemoryDB, above). Set, the same routes read and write a database
# through SQLAlchemy's asyncio extension: sqlite+aiosqlite:///./app.db, or the article's
# postgresql+asyncpg://user:password@localhost/dbname.
DATABASE_URL = os.environ.get("DATABASE_URL", "")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that reads back in UTC with its offset: SQLite keeps none and hands back naive datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


# DeclarativeBase, Mapped and mapped_column: SQLAlchemy 2's spelling of the article's declarative_base() and Column.
class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    # AUTOINCREMENT: SQLite would otherwise give a deleted user's id to the next one; PostgreSQL never reuses one.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)  # the article's index=True: a primary key has one already
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH))  # unique, whatever its case: the index below
    name: Mapped[str] = mapped_column(String(100))
    hashed_password: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=lambda: datetime.now(UTC))
    role: Mapped[str] = mapped_column(String(10))  # role and is_active: the article's models have them, its table not
    is_active: Mapped[bool] = mapped_column(default=True)


# Ada@example.com and ada@example.com are one address: the database itself refuses the second, even from
# sign-ups sent at the same moment, and finds a user by email through this index.
Index("ix_users_email_lower", func.lower(User.email), unique=True)


class ItemRow(Base):
    """The catalogue's table: the article's SQLAlchemy Item, which it never defines (Item is the response model)."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[float]


class Setting(Base):
    """What the app keeps with its data: the key tokens are signed with, if SECRET_KEY is unset. Not in the article."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


def open_engine(url: str) -> AsyncEngine:
    """The article's create_async_engine (without echo=True, which logs every query), or a stop with one line."""
    try:
        # pool_size: SQLAlchemy keeps 5 connections by default, and opens and closes any more a busy worker needs
        # for each request, which costs more than the query.
        return create_async_engine(url, pool_size=20)
    except (SQLAlchemyError, ImportError, ValueError) as exc:  # a malformed URL, a driver that is not installed
        raise SystemExit(
            f"DATABASE_URL is not usable: {exc} "
            "(examples: sqlite+aiosqlite:///./app.db, postgresql+asyncpg://user:password@localhost/dbname)"
        ) from None


engine = open_engine(DATABASE_URL) if DATABASE_URL else None
# async_sessionmaker: SQLAlchemy 2's spelling of the article's sessionmaker(class_=AsyncSession).
AsyncSessionLocal = async_sessionmaker(engine, expire_on_commit=False)


# The article's get_async_db, line for line, but not a yield dependency: today's FastAPI runs the code after a
# yield once the response is on its way, so a commit that failed there would follow a 201 and lose the user.
# Each SQLDatabase method opens it with `async with`, and so commits before the route returns.
@asynccontextmanager
async def get_async_db() -> AsyncIterator[AsyncSession]:
    async with AsyncSessionLocal() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise


class SQLDatabase:
    """The Database the routes use when DATABASE_URL is set: one session, and as few queries as it takes, a call.
    A write opens get_async_db; a read has nothing to commit, so it opens a plain session."""

    async def get_user(self, user_id: int) -> User | None:
        if user_id > MAX_ID:
            return None
        async with AsyncSessionLocal() as db:
            return await db.get(User, user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        async with AsyncSessionLocal() as db:
            return await db.scalar(select(User).where(func.lower(User.email) == func.lower(email)))

    async def add_user(self, user: UserCreate, hashed_password: str) -> User | None:
        new_user = User(**user.model_dump(exclude={"password"}), hashed_password=hashed_password)
        try:
            async with get_async_db() as db:
                db.add(new_user)  # no refresh, as the article has: the insert hands back the new id
        except IntegrityError:  # the email index: taken, if only by a sign-up a moment ago
            return None
        return new_user

    async def list_users(self, skip: int, limit: int, role: UserRole | None) -> Sequence[User]:
        query = select(User).order_by(User.id).offset(min(skip, MAX_ID)).limit(limit)
        if role is not None:
            query = query.where(User.role == role)
        async with AsyncSessionLocal() as db:
            return (await db.scalars(query)).all()

    async def update_user(self, user_id: int, changes: dict[str, Any]) -> User | None:
        if user_id > MAX_ID:
            return None
        if not changes:
            return await self.get_user(user_id)
        async with get_async_db() as db:
            # One statement: a user deleted meanwhile is simply not found.
            return await db.scalar(update(User).where(User.id == user_id).values(changes).returning(User))

    async def delete_user(self, user_id: int) -> bool:
        if user_id > MAX_ID:
            return False
        async with get_async_db() as db:
            return await db.scalar(delete(User).where(User.id == user_id).returning(User.id)) is not None

    async def list_items(self, pagination: "PaginationParams") -> list[Item]:
        query = select(ItemRow).offset(min(pagination.skip, MAX_ID)).limit(pagination.limit)
        if pagination.sort_by is not MISSING:
            column = getattr(ItemRow, pagination.sort_by.value)
            query = query.order_by(column.desc() if pagination.order == "desc" else column)
        query = query.order_by(ItemRow.id)
        async with AsyncSessionLocal() as db:
            return [Item.model_validate(row) for row in await db.scalars(query)]


if engine is not None:
    database = SQLDatabase()


async def start_database() -> None:
    """At start-up, with a database: create the tables, add the catalogue, and use the key kept there."""
    global SECRET_KEY
    if engine is None:
        return
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Workers starting together take turns, so only the first creates and fills the tables.
                await connection.execute(text("SELECT pg_advisory_xact_lock(1)"))
            await connection.run_sync(Base.metadata.create_all)
            if await connection.scalar(select(func.count()).select_from(ItemRow)) == 0:
                await connection.execute(insert(ItemRow), [item.model_dump() for item in CATALOGUE])
            stored_key = await connection.scalar(select(Setting.value).where(Setting.name == "secret_key"))
            if stored_key is None:
                stored_key = secrets.token_urlsafe(32)
                await connection.execute(insert(Setting).values(name="secret_key", value=stored_key))
    except (OSError, SQLAlchemyError) as exc:  # unreachable, refused, no such database, ...
        reason = exc.orig if isinstance(exc, DBAPIError) else exc
        print(f"DATABASE_URL {engine.url.render_as_string()}: cannot use it: {reason}", file=sys.stderr, flush=True)
        # Exit here, on that one line: an exception would have uvicorn print a traceback a page long.
        os._exit(1)
    if not os.environ.get("SECRET_KEY"):
        SECRET_KEY = stored_key


async def stop_database() -> None:
    if engine is not None:
        await engine.dispose()


# --- Error Handling ---


class CustomException(Exception):
    """Custom application exception."""

    def __init__(self, detail: str, status_code: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.headers = headers  # the article's has none; the login throttle sends Retry-After


@app.exception_handler(CustomException)
async def custom_exception_handler(request: Request, exc: CustomException) -> JSONResponse:
    """Handle custom exceptions."""
    # The path alone, not the article's str(request.url): that echoes whatever Host header a client sent.
    body = ApplicationErrorResponse(detail=exc.detail, path=request.url.path)
    return JSONResponse(status_code=exc.status_code, content=body.model_dump(), headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def validation_exception_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Handle validation errors with custom format."""
    # A form or text sent to a JSON route: FastAPI leaves such a body unread, as bytes. Not a field error either.
    if isinstance(exc.body, bytes):
        body = Message(detail="Send the body as JSON, with Content-Type: application/json")
        return JSONResponse(status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, content=body.model_dump())

    errors = exc.errors()
    # Broken JSON is not a field error: a 400, as FastAPI answers any other body it cannot parse.
    if any(error["type"] == "json_invalid" for error in errors):
        body = Message(detail="There was an error parsing the body")
        return JSONResponse(status_code=status.HTTP_400_BAD_REQUEST, content=body.model_dump())

    # Never the submitted "input": it could be a password.
    details = [
        FieldError(
            field=" -> ".join(str(loc) for loc in error["loc"]),
            message=error["msg"],
            type=error["type"],
        )
        for error in errors
    ]
    return JSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        content=ValidationErrorResponse(details=details).model_dump(),
    )


@app.exception_handler(Exception)
async def global_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Catch-all exception handler. Starlette still raises the exception afterwards, so the server logs it."""
    return JSONResponse(status_code=500, content=InternalErrorResponse().model_dump())


# --- API Routers and Structure ---

# Routes are matched in the order they were added: /users/me, added to the app above, comes before
# /users/{user_id}, which would take "me" for an id.
app.include_router(users_router)
app.include_router(items_router)


# --- Interactive Documentation ---
#
# FastAPI builds these from the routes and models above; FastAPIOffline (at the top) serves Swagger UI's and
# ReDoc's files from the app, under /static-offline-docs:
#   Swagger UI:   http://localhost:8000/docs   (Authorize: username is the email; X-API-Key for /items)
#   ReDoc:        http://localhost:8000/redoc
#   OpenAPI JSON: http://localhost:8000/openapi.json
