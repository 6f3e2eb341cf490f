"""The database settings as a server process opens the database: SQLite keeps a write-ahead log and takes the write
lock when a transaction begins; DATABASE_URL names PostgreSQL or nothing."""

import os
import subprocess
import sys

from django.db import connection

from servers import STEP

JOURNAL_AND_LOCKING = (
    "from django.db import connection; cursor = connection.cursor(); cursor.execute('PRAGMA journal_mode'); "
    "print(cursor.fetchone()[0], connection.settings_dict['OPTIONS'].get('transaction_mode'))"
)


def test_sqlite_keeps_a_write_ahead_log_and_takes_the_write_lock_when_a_transaction_begins(site):
    assert connection.vendor == "sqlite", "run on SQLite: on PostgreSQL neither setting applies"

    journal_mode, transaction_mode = site.manage("shell", "-v", "0", "-c", JOURNAL_AND_LOCKING).stdout.split()

    assert (journal_mode, transaction_mode) == ("wal", "IMMEDIATE")


def test_a_database_url_that_is_not_postgresql_stops_the_project_with_a_message():
    environment = {**os.environ, "DATABASE_URL": "mysql://chat:secret@127.0.0.1/chat"}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=STEP, env=environment, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "DATABASE_URL must start with postgres:// or postgresql://: mysql://" in result.stderr
