"""The shared cache: Redis, with one redis client per pool, still behaves as Django's cache."""
import threading

from django.core.cache import cache, caches


def test_the_cache_is_redis_and_reuses_one_client():
    backend = caches["default"]
    assert type(backend).__module__ == "config.cache"
    first = backend._cache.get_client("a", write=True)
    assert backend._cache.get_client("b", write=True) is first
    cache.set("sieve:test:shared", {"n": 1}, 30)
    assert cache.get("sieve:test:shared") == {"n": 1}
    cache.delete("sieve:test:shared")
    assert cache.get("sieve:test:shared") is None


def test_threads_share_the_client_safely():
    errors = []

    def work(number: int):
        try:
            for i in range(200):
                cache.set(f"sieve:test:t{number}", i, 30)
                assert cache.get(f"sieve:test:t{number}") == i
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    cache.delete_many([f"sieve:test:t{n}" for n in range(8)])
