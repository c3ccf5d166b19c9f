"""The companion app for "How to Create REST APIs with FastAPI": the whole article in one module, in its order.

Run with: uvicorn main:app --reload
"""

import math
import os
import secrets
import string
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import islice
from operator import attrgetter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer, OAuth2PasswordRequestForm
from jose import JWTError, jwt
from passlib.context import CryptContext
from pydantic import MISSING, BaseModel, ConfigDict, EmailStr, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

# --- Basic Application ---

app = FastAPI(
    title="My API",
    description="A sample REST API built with FastAPI",
    version="1.0.0",
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

    id: int
    name: str
    price: float


class Token(BaseModel):
    access_token: str
    token_type: str


class TokenData(BaseModel):
    username: str | None = None


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


# --- CRUD Endpoints ---


class InMemoryDB:
    """In-memory database for demonstration: the article's users_db, an email index and the item catalogue."""

    def __init__(self) -> None:
        self.users_db: dict[int, UserInDB] = {}
        # Lower-cased email -> id: a duplicate check is one lookup, not a scan of every user.
        self.user_ids_by_email: dict[str, int] = {}
        self.user_id_counter = 1
        self.items = [
            Item(id=1, name="Keyboard", price=49.99),
            Item(id=2, name="Mouse", price=19.99),
            Item(id=3, name="Monitor", price=189.0),
            Item(id=4, name="Headphones", price=79.5),
            Item(id=5, name="Webcam", price=59.0),
            Item(id=6, name="USB Hub", price=24.99),
        ]

    def get_user_by_email(self, email: str) -> UserInDB | None:
        user_id = self.user_ids_by_email.get(email.lower())
        return None if user_id is None else self.users_db[user_id]

    def add_user(self, user: UserCreate, hashed_password: str) -> UserInDB:
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

    def delete_user(self, user_id: int) -> None:
        user = self.users_db.pop(user_id)
        del self.user_ids_by_email[user.email.lower()]


database = InMemoryDB()


# The article introduces get_db under Dependency Injection; it stands here because the routes below need it.
# The article's yields a session to close it after the request. This store has nothing to close, and a yield
# dependency costs FastAPI about a quarter of a read, so it returns; an override may still yield.
async def get_db() -> InMemoryDB:
    """Get the database; a test or a real database session takes its place through app.dependency_overrides."""
    return database


Db = Annotated[InMemoryDB, Depends(get_db)]
UserId = Annotated[int, Path(gt=0, description="The ID of the user")]

# Routes live on APIRouters, included into the app under "API Routers and Structure". The "" paths answer
# /users itself, where the article's "/" would redirect /users to /users/.
users_router = APIRouter(prefix="/users", tags=["users"], responses={422: VALIDATION_ERROR})


def get_user_or_404(db: InMemoryDB, user_id: int) -> UserInDB:
    if user_id not in db.users_db:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="User not found")
    return db.users_db[user_id]


@users_router.post(
    "",
    response_model=UserResponse,
    status_code=status.HTTP_201_CREATED,
    responses={400: error_response(Message, "Email already registered, or the body is not valid JSON")},
)
async def create_user(user: UserCreate, db: Db) -> UserInDB:
    """Create a new user."""
    # bcrypt takes a quarter of a second by design: in a thread, so the event loop keeps serving others.
    hashed_password = await run_in_threadpool(get_password_hash, user.password)
    # No await between the check and the insert, so concurrent sign-ups with one email can't both get in.
    if db.get_user_by_email(user.email) is not None:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Email already registered")
    return db.add_user(user, hashed_password)


@users_router.get("", response_model=list[UserResponse])
async def list_users(
    db: Db,
    skip: Annotated[int, Query(ge=0, description="Number of records to skip")] = 0,
    limit: Annotated[int, Query(ge=1, le=100, description="Max records to return")] = 10,
    # A UserRole, not the article's str, so /docs offers a dropdown and a typo is a 422. MISSING, as in
    # UserUpdate: a query string has no null, so the schema shows the enum alone.
    role: Annotated[UserRole | MISSING, Query(description="Filter by role")] = MISSING,
) -> list[UserInDB]:
    """List all users with pagination and filtering."""
    users: Iterable[UserInDB] = db.users_db.values()
    if role is not MISSING:
        users = (u for u in users if u.role == role)
    # islice reads only skip + limit records; min() keeps a huge skip within what islice accepts.
    start = min(skip, len(db.users_db))
    return list(islice(users, start, start + limit))


@users_router.get("/{user_id}", response_model=UserResponse, responses={404: USER_NOT_FOUND})
async def get_user(user_id: UserId, db: Db) -> UserInDB:
    """Get a user by ID."""
    return get_user_or_404(db, user_id)


@users_router.patch("/{user_id}", response_model=UserResponse, responses={400: BODY_ERROR, 404: USER_NOT_FOUND})
async def update_user(user_id: UserId, user_update: UserUpdate, db: Db) -> UserInDB:
    """Partially update a user."""
    user = get_user_or_404(db, user_id)
    # Only the fields sent, already validated by UserUpdate; the stored record is replaced whole.
    updated_user = user.model_copy(update=user_update.model_dump(exclude_unset=True))
    db.users_db[user_id] = updated_user
    return updated_user


@users_router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: USER_NOT_FOUND})
async def delete_user(user_id: UserId, db: Db) -> None:
    """Delete a user."""
    get_user_or_404(db, user_id)
    db.delete_user(user_id)


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
    items = db.items
    if pagination.sort_by is not MISSING:
        items = sorted(items, key=attrgetter(pagination.sort_by.value), reverse=pagination.order == "desc")
    return items[pagination.skip : pagination.skip + pagination.limit]


# --- Authentication with JWT ---

# A random key per process when SECRET_KEY is unset: tokens then end with the process, as the users do.
SECRET_KEY = os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32)
ALGORITHM = "HS256"
ACCESS_TOKEN_EXPIRE_MINUTES = int(os.environ.get("ACCESS_TOKEN_EXPIRE_MINUTES", "30"))
BCRYPT_ROUNDS = int(os.environ.get("BCRYPT_ROUNDS", "12"))
LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW = timedelta(minutes=15)

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


async def authenticate_user(db: InMemoryDB, email: str, password: str) -> UserInDB | None:
    """The user with this email and password, or None. The article calls it without defining it."""
    user = db.get_user_by_email(email)
    # A password sign-up would refuse can't be right. Check one all the same, so an unknown email takes as
    # long to refuse as a wrong password.
    if user is None or not fits_bcrypt(password):
        await run_in_threadpool(pwd_context.dummy_verify)
        return None
    if not await run_in_threadpool(verify_password, password, user.hashed_password):
        return None
    return user


class LoginThrottle:
    """Failed logins per (client, username): after too many within the window, refuse without checking."""

    def __init__(self, max_keys: int = 10_000) -> None:
        # The latest failure times of each key, least recently failed first; at most max_keys keys.
        self.failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self.max_keys = max_keys

    def retry_after(self, key: tuple[str, str]) -> int:
        """Seconds until this key may try again; 0 if it may now."""
        failures = self.failures.get(key)
        if failures is None or len(failures) < LOGIN_FAILURES_ALLOWED:
            return 0
        window_ends = failures[0] + LOGIN_FAILURE_WINDOW.total_seconds()
        return max(0, math.ceil(window_ends - time.monotonic()))

    def record_failure(self, key: tuple[str, str]) -> None:
        self.failures.setdefault(key, deque(maxlen=LOGIN_FAILURES_ALLOWED)).append(time.monotonic())
        self.failures.move_to_end(key)
        if len(self.failures) > self.max_keys:
            self.failures.popitem(last=False)

    def reset(self, key: tuple[str, str]) -> None:
        self.failures.pop(key, None)


login_throttle = LoginThrottle()


async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)], db: Db) -> UserInDB:
    """Decode JWT and return current user."""
    credentials_exception = HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )

    try:
        # require_exp: the article's would accept a token that never expires.
        payload = jwt.decode(token, SECRET_KEY, algorithms=[ALGORITHM], options={"require_exp": True})
    # python-jose lets a signed token whose exp, nbf or iat is null, a list or infinite escape as
    # TypeError or OverflowError; that token is as invalid as any other.
    except (JWTError, TypeError, OverflowError):
        raise credentials_exception from None
    token_data = TokenData(username=payload.get("sub"))
    if token_data.username is None:
        raise credentials_exception

    user = db.get_user_by_email(token_data.username)  # the article's get_user_from_db, which it never defines
    if user is None:
        raise credentials_exception
    if not user.is_active:  # as in FastAPI's tutorial; the article never checks is_active
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")
    return user


CurrentUser = Annotated[UserInDB, Depends(get_current_user)]


@app.post(
    "/token",
    response_model=Token,
    tags=["auth"],
    responses={
        400: error_response(Message, "Inactive user, or a form that cannot be parsed"),
        401: error_response(Message, "Incorrect username or password", header="WWW-Authenticate"),
        422: VALIDATION_ERROR,
        429: error_response(
            ApplicationErrorResponse, "Too many failed logins: wait Retry-After seconds", header="Retry-After"
        ),
    },
)
async def login(request: Request, form_data: Annotated[OAuth2PasswordRequestForm, Depends()], db: Db) -> Token:
    """Authenticate and return JWT token. The username is the user's email."""
    throttle_key = (request.client.host if request.client else "", form_data.username.lower())
    if retry_after := login_throttle.retry_after(throttle_key):
        raise CustomException(
            "Too many failed login attempts, try again later",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(retry_after)},
        )

    user = await authenticate_user(db, form_data.username, form_data.password)
    if user is None:
        login_throttle.record_failure(throttle_key)
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    login_throttle.reset(throttle_key)
    if not user.is_active:
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="Inactive user")

    access_token = create_access_token(
        data={"sub": user.email},  # the article's user.username: here the email is the username
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
async def read_users_me(current_user: CurrentUser) -> UserInDB:
    """Get current user profile."""
    # response_model=UserResponse: the article returns the stored user as it is, hash included.
    return current_user


# --- Async Database Operations ---
#
# The store above is in memory, so there is no engine or session to create. get_db is the seam: every route
# gets the store from it, so the article's get_async_db, a yield dependency handing out an AsyncSession,
# takes its place with app.dependency_overrides[get_db] = get_async_db (the routes' bodies would then
# await the session's queries instead of reading the dicts).
#
# Every route is `async def` and each request runs on one event loop: code between two awaits runs alone.
# That is why create_user checks the email and inserts with no await in between, and why bcrypt, which
# would stop that loop for a quarter of a second, runs in a thread (run_in_threadpool).


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
    body = ApplicationErrorResponse(detail=exc.detail, path=str(request.url))
    return JSONResponse(status_code=exc.status_code, content=body.model_dump(), headers=exc.headers)


@app.exception_handler(RequestValidationError)
async def validation_exception_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Handle validation errors with custom format."""
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
# FastAPI builds these from the routes and models above; nothing to write:
#   Swagger UI:   http://localhost:8000/docs   (Authorize: username is the email; X-API-Key for /items)
#   ReDoc:        http://localhost:8000/redoc
#   OpenAPI JSON: http://localhost:8000/openapi.json
