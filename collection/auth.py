"""Source API keys on the wire: `Authorization: Bearer <key>` authentication and per-key rate limits."""
import hashlib
import logging
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, throttling
from rest_framework.settings import api_settings

KEY_PREFIX = "sieve"
log = logging.getLogger(__name__)


def key_generate() -> tuple[str, str, str]:
    """A new key as (key, prefix, hash): the key is shown once, the prefix and hash are stored."""
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, key_hash(key)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class SourcePrincipal:
    """The `request.user` of a request made with a source key: authenticated, never staff."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, key):
        self.key = key
        self.source = key.source
        self.username = f"source:{key.source.name}"
        self.pk = None

    def __str__(self) -> str:
        return self.username


# Keys (and raters' tokens, labeling/auth.py) are looked up in the shared cache (Redis) before the
# database: every API request needs one. Only a cache all web processes share is used; the per-process
# cache of the embedded demo is not. Each entry carries the credentials generation, a counter in Redis
# that every revocation, deletion or deactivation bumps (`credentials_changed`): an entry of an older
# generation is not used. The generation is read *before* the database, so a lookup that raced a
# revocation stores its (old) answer under the old generation, and the next request asks the database.
CREDENTIALS_CACHE_SECONDS = 60
GENERATION = "sieve:auth:generation"


def _key_cache_name(hashed: str) -> str:
    return f"sieve:key:{hashed}"


def _shared_cache() -> bool:
    return "RedisCache" in settings.CACHES["default"]["BACKEND"]


def credentials_cached(name: str) -> tuple[int | None, object]:
    """(generation, value) for a cache entry of credentials: the value is None unless it was stored under
    the current generation; the generation is None when the cache is not shared or not reachable."""
    if not _shared_cache():
        return None, None
    try:
        found = cache.get_many([GENERATION, name])
    except Exception:  # the cache is down: the database still answers
        return None, None
    generation = found.get(GENERATION, 0)
    entry = found.get(name)
    return generation, (entry[1] if entry is not None and entry[0] == generation else None)


def credentials_cache(name: str, generation: int | None, value) -> None:
    """Store `value` (read from the database after `generation` was read) for the next requests."""
    if generation is None:
        return
    try:
        cache.set(name, (generation, value), CREDENTIALS_CACHE_SECONDS)
    except Exception as exc:
        log.warning("could not cache credentials: %s", exc)


def _bump_generation() -> None:
    try:
        try:
            cache.incr(GENERATION)
        except ValueError:  # not there yet (or evicted)
            if not cache.add(GENERATION, 1, timeout=None):
                cache.incr(GENERATION)
    except Exception as exc:
        log.error("could not invalidate cached credentials (they expire within %ss): %s",
                  CREDENTIALS_CACHE_SECONDS, exc)


def credentials_changed() -> None:
    """A key was revoked or deleted, a user deactivated or a token deleted: no cached answer is used again.

    Bumped at once (this transaction's own requests, and callers outside one) and again after the commit:
    a request that read the database before the commit would otherwise cache its answer under the new
    generation.
    """
    if _shared_cache():
        _bump_generation()
        transaction.on_commit(_bump_generation)


def key_changed(sender, **kwargs) -> None:
    """Receiver of a SourceKey's post_save and post_delete (the admin revokes or deletes keys, deleting a
    source deletes its keys): cached keys are looked up again."""
    credentials_changed()


class SourceKeyAuthentication(authentication.BaseAuthentication):
    """Bearer keys of sources. A revoked or unknown key is refused with 401."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        from .models import SourceKey

        hashed = key_hash(header[1].decode(errors="replace"))
        generation, key = credentials_cached(_key_cache_name(hashed))
        if key is None:
            key = SourceKey.objects.select_related("source").filter(hashed=hashed).first()
            if key is not None:
                credentials_cache(_key_cache_name(hashed), generation, key)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        now = timezone.now()
        # Recording every use would turn each request into a write; a minute's resolution is enough.
        if key.last_used_at is None or now - key.last_used_at > settings.SIEVE_KEY_LAST_USED_RESOLUTION:
            SourceKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
            credentials_cache(_key_cache_name(hashed), generation, key)
        return SourcePrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword


def _count(counter: str, ttl: int) -> int:
    """Add one to a counter that expires; one round trip (SET NX EX, then INCR, pipelined) on Redis."""
    if _shared_cache():
        client = cache._cache.get_client(counter, write=True)
        _, incremented = client.pipeline(transaction=False).set(counter, 0, ex=ttl, nx=True).incr(counter).execute()
        return incremented
    cache.add(counter, 0, timeout=ttl)
    return cache.incr(counter)


class SourceKeyRateThrottle(throttling.BaseThrottle):
    """Rate limit per source key (the key's own rate, else SIEVE_KEY_RATE); over it, 429 with Retry-After.

    A fixed-window counter: one atomic increment in the shared cache (Redis) per request, instead of
    DRF's list of request times, which is read, rewritten and raced by every web process.
    """

    parse_rate = throttling.SimpleRateThrottle.parse_rate

    def allow_request(self, request, view):
        key = getattr(request.user, "key", None)
        if key is None:
            return True
        limit, period = self.parse_rate(key.rate or api_settings.DEFAULT_THROTTLE_RATES["source_key"])
        now = time.time()
        window = int(now // period)
        counter = f"sieve:rate:{key.prefix}:{period}:{window}"
        try:
            count = _count(counter, period + 1)
        except Exception as exc:
            # The cache (Redis) is down: accepting data matters more than counting requests.
            log.warning("rate limit not checked, the cache is unreachable: %s", exc)
            return True
        self.retry_after = (window + 1) * period - now
        return count <= limit

    def wait(self):
        return self.retry_after


class SourceKeyScheme(OpenApiAuthenticationExtension):
    """Documents source keys in the OpenAPI schema, so the docs page can send them."""

    target_class = SourceKeyAuthentication
    name = "sourceKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A source's API key: `Bearer sieve_…`."}
