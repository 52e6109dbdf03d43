"""How every pipeline step retries: the one list of faults that pass, and the Celery options built on it."""
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerError

# Faults that pass: the database or the broker unreachable, a connection dropped, a timeout talking to them.
TRANSIENT = (OperationalError, InterfaceError, BrokerError, ConnectionError, TimeoutError)

# How every pipeline step runs: it is idempotent (it claims its batch), so it may ack late and be
# redelivered when its worker dies; only faults that pass are retried.
PIPELINE_STEP = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 120,
    "max_retries": 8,
}
