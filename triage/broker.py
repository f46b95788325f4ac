"""The embedded broker of the one-machine desk: kombu's filesystem transport, repaired.

kombu's own filesystem transport creates each message file under its final name and
then writes into it, and a consumer renames and reads whatever it finds. Under load a
consumer reads a file that is still empty or half-written, `json.loads` raises, and the
worker dies with "Unrecoverable error: JSONDecodeError" (celery/kombu#1551). The
exchange table is truncated before it is locked, with the same effect on readers.

Here every file is written under a hidden temporary name and renamed into place
(rename is atomic within a directory), a consumer claims a message by renaming it into
a folder on the same filesystem (only one consumer's rename can succeed), and a file
that still cannot be decoded is set aside in `broken/` and logged rather than raised.

Chosen over kombu's SQLAlchemy transport on SQLite by measurement
(bench/embedded_broker.py; figures in the README): both survive the stress test, this one
needs no new dependency and is faster here.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

# Temporary files start with a dot: kombu's own listing (and ours) only takes names
# of the form "<stamp>_<uuid>.<queue>.msg", so a file being written is never seen.
_TEMP_PREFIX = "."


def transport_options(folder: Path, *, polling_interval: float) -> dict:
    """Celery's broker_transport_options for a broker kept under `folder` (created here)."""
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        # Claimed messages are moved here, on the same filesystem, so the move is a rename.
        "processed_folder": str(folder / "claimed"),
        "broken_folder": str(folder / "broken"),
        "store_processed": False,
        "polling_interval": polling_interval,
    }
    for key in ("data_folder_in", "control_folder", "processed_folder", "broken_folder"):
        Path(str(options[key])).mkdir(parents=True, exist_ok=True)
    return options


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so no reader can ever see a partial file."""
    temp = path.with_name(f"{_TEMP_PREFIX}{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as f:
            f.write(data)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    """Filesystem channel whose messages are published and claimed atomically."""

    # kombu's filesystem Channel renames the base's `message` argument; ours keeps that name (passed by position).
    def _put(self, queue, payload, **kwargs):  # type: ignore[override]
        # Same name scheme as kombu's (ordered by a monotonic millisecond stamp), so a
        # broker folder written by kombu's own transport is still read.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = Path(self.data_folder_out) / name
        try:
            _write_atomically(path, str_to_bytes(dumps(payload)))
        except OSError as exc:
            raise ChannelError(f"Cannot add file {str(path)!r} to directory") from exc

    def _get(self, queue, timeout=None):
        # `timeout`: kombu's base signature; a folder is polled, never waited on (kombu passes none).
        wanted = f"{queue}.msg"
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.startswith(_TEMP_PREFIX) or name.partition(".")[2] != wanted:
                continue
            claimed = Path(self.processed_folder) / name
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            try:
                payload = claimed.read_bytes()
                message = loads(bytes_to_str(payload))
            except (OSError, ValueError) as exc:
                self._set_aside(claimed, exc)
                continue
            claimed.unlink(missing_ok=True)
            return message
        raise Empty()

    def _set_aside(self, claimed: Path, exc: Exception) -> None:
        """Keep an undecodable message for a human and carry on; never kill the worker over it."""
        broken = Path(self.transport_options.get("broken_folder", self.processed_folder)) / claimed.name
        try:
            os.replace(claimed, broken)
        except OSError:
            broken = claimed
        logger.error("embedded broker: message file %s could not be read (%r); set aside", broken, exc)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        # The read-modify-write is serialised by a lock file that is never replaced;
        # the table itself is replaced atomically, so readers need no lock at all.
        with open(self.control_folder / f".{exchange}.lock", "a") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                table = self.get_table(exchange)
                if entry not in table:
                    _write_atomically(file, str_to_bytes(dumps([entry, *table])))
            except OSError as exc:
                raise ChannelError(f"Cannot open {file}") from exc
            finally:
                filesystem.unlock(lock_file)

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs):
        # Skip kombu's in-place rewrite of the table; do it under the lock, atomically.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern, *args, **kwargs)
        file = self._exchange_file(exchange)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with open(self.control_folder / f".{exchange}.lock", "a") as lock_file:
            filesystem.lock(lock_file, filesystem.LOCK_EX)
            try:
                table = self.get_table(exchange)
                if entry in table:
                    table.remove(entry)
                    _write_atomically(file, str_to_bytes(dumps(table)))
            finally:
                filesystem.unlock(lock_file)

    def get_table(self, exchange):
        file = self._exchange_file(exchange)
        try:
            return [filesystem.exchange_queue_t(*q) for q in loads(bytes_to_str(file.read_bytes()))]
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as exc:
            # Only a table left half-written by kombu's own transport can get here.
            raise ChannelError(f"Exchange table {file} is corrupt: {exc}") from exc
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
