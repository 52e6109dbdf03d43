# Sieve application image: one image for every Python process of the stack
# (gunicorn web, celery worker, celery beat, the one-shot migrate job);
# docker-compose.yml picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings \
    SIEVE_DATA_DIR=/data

# requirements.txt is the only source of dependencies; it asks for a
# virtualenv (pip --require-virtualenv), so the image has one too.
# Copied alone first so code changes do not reinstall the dependencies.
RUN python -m venv "$VIRTUAL_ENV"
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-virtualenv -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Unprivileged user; /data is where SIEVE_DATA_DIR lives (a named volume in
# compose), created here so a fresh volume is initialised owned by that user.
RUN groupadd --system --gid 10001 sieve \
    && useradd --system --uid 10001 --gid sieve --home-dir /app --shell /usr/sbin/nologin sieve \
    && mkdir -p /app /data \
    && chown sieve:sieve /data

WORKDIR /app
COPY . /app

# Static files are baked into the image (whitenoise serves them). The values
# below exist only for this RUN step: collectstatic needs settings to import,
# never a database, broker or real secret.
RUN SECRET_KEY=collectstatic-build-only-not-secret \
    DEBUG=false \
    ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://build:build@localhost:5432/build \
    REDIS_URL=redis://localhost:6379/0 \
    SIEVE_PSEUDONYM_SECRET=collectstatic-build-only-not-secret \
    SIEVE_DATA_DIR=/tmp/sieve-build-data \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/sieve-build-data

USER sieve

EXPOSE 8000

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
