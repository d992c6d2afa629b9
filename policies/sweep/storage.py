"""Where a study lives: an SQLite file beside the trials by default, a journal file, or any database server.

    (default)                          runs/sweeps/NAME/study.db (SQLite; several workers on one machine)
    --storage journal:PATH             Optuna's journal file (append-only; several processes on one machine)
    --storage postgresql://u:p@host/db any SQLAlchemy URL: workers on several machines join one study by
                                       running the same command against it

With a database (SQLite or a server) every running trial sends a heartbeat; a worker killed mid-trial
(kill -9, a power cut) stops sending it, and the next worker to start a trial marks that trial failed and
queues its settings again (RetryHeartbeatStaleTrialCallback), so the study stays consistent and nothing is lost but
the killed run's time. Optuna's journal storage has no heartbeat: a trial killed there stays RUNNING and is
only ignored.
"""
from __future__ import annotations

import time
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend


def open_storage(url: str | None, sweep_dir: Path, heartbeat_s: int = 10) -> optuna.storages.BaseStorage:
    """The study's storage; ValueError naming the URL when it cannot be opened."""
    if url is None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{(sweep_dir / 'study.db').resolve()}"
    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(f"--storage {url!r}: expected a database URL (sqlite:///PATH, postgresql://USER@HOST/DB, "
                         "mysql://...) or journal:PATH")
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        # the psycopg (3) driver, installed with the train extra, whatever SQLAlchemy's default for the scheme
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # Workers started together on an empty database race to create Optuna's tables and stamp their schema
    # version; the loser's CREATE or INSERT fails (a unique violation: in the server's catalog, or on SQLite's
    # alembic_version row; or SQLite's lock held by the winner) although the tables are then there: try again.
    for attempt in range(4):
        try:
            return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                              heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
                              engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)
        except Exception as exc:  # SQLAlchemy raises its own error types for every kind of bad URL or server
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if attempt < 3 and _lost_creation_race(exc, first):
                time.sleep(0.5 + attempt)
                continue
            raise ValueError(f"--storage {_redact(url)}: cannot open the study database: {first[:300]}") from None
    raise AssertionError("unreachable")


def _lost_creation_race(exc: Exception, first_line: str) -> bool:
    """Did opening fail only because another worker was creating the same tables at the same moment?"""
    return (isinstance(exc, sqlalchemy.exc.IntegrityError) or "UniqueViolation" in first_line
            or "already exists" in first_line or "database is locked" in first_line)


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url
