"""Who a credential belongs to, remembered for a few seconds in each process.

Every API request presents a key (or a session cookie) and used to cost a database round
trip and an ORM load before any work began (2.5 ms of a task cycle's CPU, bench/README.md).
Here the answer is kept for ``HEDGEROW_AUTH_CACHE_SECONDS`` and forgotten at once, in every
process, when anything about it changes:

- Any flush that writes a ``User``, ``ApiKey`` or ``UserSession`` row (an ORM change, or a
  bulk UPDATE/DELETE on those tables, which forgets everyone) publishes the affected users
  on a Redis channel, and again after the commit: the first closes the window before the
  commit, the second the one where another process re-read the old row meanwhile.
- Each process listens on that channel in a thread and uses its cache only while it is
  subscribed: a lost connection to Redis empties the cache and turns it off until the
  subscription is back, so no invalidation can be missed.

Entries are detached snapshots of the user's columns, merged into the request's session
without a query. The secret is checked against the cached hash on every use.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import event, inspect
from sqlalchemy.orm import ORMExecuteState, Session, make_transient_to_detached

from hedgerow.config import get_settings
from hedgerow.models import ApiKey, User, UserSession
from hedgerow.redis_client import get_redis

log = logging.getLogger(__name__)

CHANNEL = "hedgerow:auth:invalidate"
EVERYONE = "*"
# Bulk statements flagged with this execution option change nothing a cache holds (the
# API key's last_used_at, written at most once a minute).
NEUTRAL_OPTION = "hedgerow_auth_neutral"
_CHANGED_KEY = "hedgerow_auth_changed"
_RECONNECT_SECONDS = 1.0


@dataclass
class Credential:
    """What a cached key or session resolved to."""

    user_columns: dict[str, Any]
    expires_at: float  # time.monotonic()
    api_key_id: int | None = None
    secret_hash: str | None = None  # API keys: checked on every use
    revoked: bool = False
    last_used_at: datetime | None = None  # API keys
    session_expires_at: datetime | None = None  # browser sessions

    @property
    def user_id(self) -> int:
        return int(self.user_columns["id"])


_USER_COLUMNS = tuple(column.key for column in inspect(User).column_attrs)


def user_columns(user: User) -> dict[str, Any]:
    return {name: getattr(user, name) for name in _USER_COLUMNS}


def attach(db: Session, columns: dict[str, Any]) -> User:
    """The cached user as a persistent object of `db`, without a query."""
    snapshot = User(**columns)
    make_transient_to_detached(snapshot)
    return db.merge(snapshot, load=False)


class AuthCache:
    def __init__(self) -> None:
        self._entries: dict[str, Credential] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._listener: threading.Thread | None = None

    # --- reading and writing ----------------------------------------------------------

    def get(self, key: str) -> Credential | None:
        if not self._usable():
            return None
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= time.monotonic():
            return None
        return entry

    def put(self, key: str, entry: Credential) -> None:
        if self._usable():
            with self._lock:
                self._entries[key] = entry

    def forget(self, user_ids: set[int] | None) -> None:
        """Drop the entries of these users (None: everyone's)."""
        with self._lock:
            if user_ids is None:
                self._entries.clear()
                return
            for key in [k for k, e in self._entries.items() if e.user_id in user_ids]:
                del self._entries[key]

    def ttl(self) -> float:
        return float(get_settings().auth_cache_seconds)

    def listening(self, timeout: float = 0.0) -> bool:
        """Start listening for invalidations if not yet; whether subscribed (waiting up to
        `timeout` seconds for it). The app starts it when created."""
        if self._listener is None or not self._listener.is_alive():
            self._start_listening()
        return self._subscribed.wait(timeout)

    def _usable(self) -> bool:
        return self.ttl() > 0 and self.listening()

    # --- the invalidation channel ------------------------------------------------------

    def _start_listening(self) -> None:
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(
                target=self._listen_forever, name="auth-cache-invalidation", daemon=True
            )
            self._listener.start()

    def _listen_forever(self) -> None:
        while True:
            try:
                self._listen_once()
            except (redis.RedisError, OSError, ValueError):
                # ValueError: redis-py reading from a socket that another thread closed
                # (a command disconnecting the shared pool before the embedded Redis stops).
                log.warning("auth cache: lost the invalidation channel; cache off until back")
            finally:
                self._subscribed.clear()
                self.forget(None)
            time.sleep(_RECONNECT_SECONDS)

    def _listen_once(self) -> None:
        pubsub = get_redis().pubsub(ignore_subscribe_messages=False)
        try:
            pubsub.subscribe(CHANNEL)
            for message in pubsub.listen():
                if message["type"] == "subscribe":
                    self.forget(None)  # whatever happened while unsubscribed
                    self._subscribed.set()
                elif message["type"] == "message":
                    self._apply(str(message["data"]))
        finally:
            pubsub.close()

    def _apply(self, data: str) -> None:
        if data == EVERYONE:
            self.forget(None)
        else:
            self.forget({int(part) for part in data.split(",") if part})


CACHE = AuthCache()


def publish_change(user_ids: set[int] | None) -> None:
    """Forget these users here and in every other process (None: everyone)."""
    CACHE.forget(user_ids)
    data = EVERYONE if user_ids is None else ",".join(str(i) for i in sorted(user_ids))
    try:
        get_redis().publish(CHANNEL, data)
    except (redis.RedisError, RuntimeError):
        # No Redis: no process can be subscribed, so none is using its cache.
        log.warning("auth cache: could not publish an invalidation", exc_info=True)


# --- noticing changes, in every session of the process ----------------------------------


def _note(session: Session, user_ids: set[int] | None) -> None:
    changed = session.info.get(_CHANGED_KEY, set())
    if user_ids is None or changed is None:
        session.info[_CHANGED_KEY] = None
    else:
        session.info[_CHANGED_KEY] = changed | user_ids


def _owner_id(instance: object) -> int | None:
    if isinstance(instance, User):
        return instance.id
    if isinstance(instance, ApiKey | UserSession):
        return instance.user_id
    return None


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: object) -> None:
    touched = {
        owner
        for instance in (*session.new, *session.dirty, *session.deleted)
        if (owner := _owner_id(instance)) is not None
        and (instance in session.deleted or session.is_modified(instance))
    }
    if touched:
        _note(session, touched)
        publish_change(touched)


@event.listens_for(Session, "do_orm_execute")
def _bulk_change(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.execution_options.get(NEUTRAL_OPTION):
        return
    mapper = state.bind_mapper
    if mapper is not None and mapper.class_ in (User, ApiKey, UserSession):
        _note(state.session, None)
        publish_change(None)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if _CHANGED_KEY in session.info:
        publish_change(session.info.pop(_CHANGED_KEY))


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: object) -> None:
    session.info.pop(_CHANGED_KEY, None)
