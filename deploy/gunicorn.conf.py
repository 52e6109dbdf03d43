"""gunicorn settings shared by `make run` (bin/run) and docker-compose.yml (docs/operations/deployment.md).

Threaded workers (gthread): a client that sends its headers or its body slowly holds one thread, not a whole
worker process, so a few slow clients cannot keep /healthz or anyone else waiting. The worker's main thread
keeps reporting to the arbiter while its threads serve requests, so `timeout` only ends a worker that hangs:
a maximum-size upload, streamed and checked inside its request, may take longer than it. Behind the nginx of
docker-compose.yml, bodies arrive whole and fast; on the direct path the threads are what protects the server.
"""

worker_class = "gthread"
threads = 8
timeout = 60
graceful_timeout = 30
