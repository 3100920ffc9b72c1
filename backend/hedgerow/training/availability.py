"""Whether a run can start: the training libraries where it runs, and a trainer to run it.

A run queued from the web or the nightly schedule executes on a trainer (`hedgerow train`,
the compose `trainer` service), usually another machine than the web server's, with
other packages installed. So the web cannot look at its own packages; it looks at the
trainers instead. A trainer imports the training libraries before it starts (it refuses
to start without them), then says it is there: a Redis key that it renews every few
seconds and that expires when it stops renewing it. No trainer there: the run would wait
in the queue forever (or fail on a worker without the libraries), so it is refused
before anything is registered, with the commands that enable training.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import redis

from hedgerow.errors import AppError
from hedgerow.i18n import gettext as _

# The `train` extra of pyproject.toml, by import name.
TRAINING_MODULES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")
INSTALL_TRAIN = "make install-train"
PIP_INSTALL_TRAIN = ".venv/bin/pip install -e '.[train]'"
START_TRAINER = ".venv/bin/hedgerow train"

TRAINER_NAMES_KEY = "hedgerow:trainers"
TRAINER_KEY_PREFIX = "hedgerow:trainer:"
# A trainer renews its key this often, and the key outlives a few missed renewals (a busy
# machine); a trainer that died is forgotten after TRAINER_TTL_SECONDS.
TRAINER_RENEW_SECONDS = 10
TRAINER_TTL_SECONDS = 45


def missing_training_libraries() -> list[str]:
    """The training libraries this process cannot import (imported for real: an
    installed but broken torch is as missing as an absent one)."""
    missing = []
    for name in TRAINING_MODULES:
        try:
            importlib.import_module(name)
        except (ImportError, OSError):
            missing.append(name)
    return missing


def libraries_missing_error(missing: list[str]) -> AppError:
    return AppError(
        "training_libraries_missing",
        _(
            "This machine lacks the training libraries (%(missing)s), so it cannot train. "
            "Install them with `%(install)s` (or `%(pip)s`) and try again.",
            missing=", ".join(missing),
            install=INSTALL_TRAIN,
            pip=PIP_INSTALL_TRAIN,
        ),
        409,
    )


def require_training_libraries() -> None:
    missing = missing_training_libraries()
    if missing:
        raise libraries_missing_error(missing)


def no_trainer_message() -> str:
    return _(
        "No trainer is running, so a run would never start. To enable training, install the "
        "training libraries with `%(install)s` (or `%(pip)s`) and start a trainer with "
        "`%(start)s` (Docker Compose: the `trainer` service). `hedgerow train-run` trains "
        "one version in the foreground instead.",
        install=INSTALL_TRAIN,
        pip=PIP_INSTALL_TRAIN,
        start=START_TRAINER,
    )


@dataclass(frozen=True)
class Trainer:
    name: str
    hardware: str


def live_trainers(client: redis.Redis) -> list[Trainer]:
    """The trainers that renewed their key lately, by name."""
    names = sorted(client.smembers(TRAINER_NAMES_KEY))
    if not names:
        return []
    values = client.mget([TRAINER_KEY_PREFIX + name for name in names])
    trainers = []
    for name, value in zip(names, values, strict=True):
        if value is None:
            # Its key expired: the trainer stopped without saying so (killed).
            client.srem(TRAINER_NAMES_KEY, name)
            continue
        trainers.append(Trainer(name=name, hardware=json.loads(value)["hardware"]))
    return trainers


def require_trainer(client: redis.Redis) -> None:
    if not live_trainers(client):
        raise AppError("no_trainer", no_trainer_message(), 409)


def announce_trainer(client: redis.Redis, name: str, hardware: str) -> None:
    with client.pipeline() as pipe:
        pipe.set(TRAINER_KEY_PREFIX + name, json.dumps({"hardware": hardware}))
        pipe.expire(TRAINER_KEY_PREFIX + name, TRAINER_TTL_SECONDS)
        pipe.sadd(TRAINER_NAMES_KEY, name)
        pipe.execute()


def withdraw_trainer(client: redis.Redis, name: str) -> None:
    with client.pipeline() as pipe:
        pipe.delete(TRAINER_KEY_PREFIX + name)
        pipe.srem(TRAINER_NAMES_KEY, name)
        pipe.execute()


@contextlib.contextmanager
def announced(client: redis.Redis, name: str, hardware: str) -> Iterator[None]:
    """Say that trainer `name` is there for as long as the block runs: renewed from a
    thread, as the worker's own thread trains for minutes or hours at a time."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(TRAINER_RENEW_SECONDS):
            # A Redis hiccup must not end the trainer; the next renewal may get through.
            with contextlib.suppress(redis.RedisError):
                announce_trainer(client, name, hardware)

    renewer = threading.Thread(target=renew, name="trainer-announcer", daemon=True)
    # Withdrawn however the block ends, even by a signal between announcing and yielding.
    try:
        announce_trainer(client, name, hardware)
        renewer.start()
        yield
    finally:
        stop.set()
        if renewer.ident is not None:
            renewer.join()
        with contextlib.suppress(redis.RedisError):
            withdraw_trainer(client, name)
