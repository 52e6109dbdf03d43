"""Source API keys on the wire: `Authorization: Bearer <key>` authentication and per-key rate limits."""
import hashlib
import logging
import secrets
import time

from django.conf import settings
from django.core.cache import cache
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


# Keys are looked up in the shared cache (Redis) before the database: every API request needs one.
# Only a cache all web processes share is used, so that revoking (which deletes the entry) takes
# effect everywhere at once; the per-process cache of the embedded demo is not.
KEY_CACHE_SECONDS = 60


def _key_cache_name(hashed: str) -> str:
    return f"sieve:key:{hashed}"


def _shared_cache() -> bool:
    return "RedisCache" in settings.CACHES["default"]["BACKEND"]


def _cached_key(hashed: str):
    if not _shared_cache():
        return None
    try:
        return cache.get(_key_cache_name(hashed))
    except Exception:
        return None


def _cache_key(key) -> None:
    if _shared_cache():
        try:
            cache.set(_key_cache_name(key.hashed), key, KEY_CACHE_SECONDS)
        except Exception as exc:
            log.warning("could not cache an API key: %s", exc)


def key_forget(hashed: str) -> None:
    """Drop a key from the cache, so that a revocation is seen by the next request."""
    cache.delete(_key_cache_name(hashed))


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
        key = _cached_key(hashed)
        if key is None:
            key = SourceKey.objects.select_related("source").filter(hashed=hashed).first()
            if key is not None:
                _cache_key(key)
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if not key.is_active:
            raise exceptions.AuthenticationFailed("This API key was revoked.")
        now = timezone.now()
        # Recording every use would turn each request into a write; a minute's resolution is enough.
        if key.last_used_at is None or now - key.last_used_at > settings.SIEVE_KEY_LAST_USED_RESOLUTION:
            SourceKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
            _cache_key(key)
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
