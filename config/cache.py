"""Django's Redis cache with one redis client per connection pool instead of one per call.

Django's RedisCacheClient builds a new `redis.Redis` for every get or set; building one fills its
table of response callbacks (about 170 entries), which costs more than the round trip to Redis on
the API's hot paths (every request reads its key or token and counts its rate here). A redis
client is safe to share between threads and holds no connection itself: the pool does, and the
pool reconnects after a fork.
"""
from django.core.cache.backends import redis as django_redis


class _PooledClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = _PooledClient
