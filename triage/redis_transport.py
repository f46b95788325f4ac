"""kombu's Redis transport, with one fault of its own turned into a connection error.

When Redis dies while a task runs (``kill -9``, a restart), the worker closes its channel to
reconnect; the channel, its transport already closed, then asks for a client to restore the
unacknowledged message and raises ``AttributeError: 'NoneType' object has no attribute
'hostname'`` (kombu ``Channel._connparams``). That is not a connection error, so Celery treats it
as unrecoverable and the worker exits. Raised as redis' ``ConnectionError`` instead, it is the
fault it really is: Celery logs it, reconnects and carries on; the late ack of the task that was
running fails the same way and is logged. Nothing is lost: the run's state is in the database
(the run's claim makes a redelivered message a no-op, and the sweeper recovers what the broker
dropped).

Selected by ``CELERY_BROKER_TRANSPORT`` for ``redis://`` broker URLs (triage/settings.py).
"""

from __future__ import annotations

from kombu.transport import redis as kombu_redis
from redis import exceptions as redis_errors


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection is None or self.connection.client is None:
            raise redis_errors.ConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
