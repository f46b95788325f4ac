# Production image for the triage desk: one image, three roles (web, worker,
# beat) chosen by the command; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    TRIAGE_VAR_DIR=/app/var \
    WEB_CONCURRENCY=3

RUN groupadd --system --gid 10001 triage \
    && useradd --system --uid 10001 --gid triage --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin triage

WORKDIR /app

# Dependencies first so a code change does not reinstall them.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# The code stays root-owned: the app user can read it but not rewrite it.
COPY . .

# The manifest storage only exists in production mode, so collect with production
# settings; the secrets are throwaway values that exist for this one command only.
RUN TRIAGE_ENV=production \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    CREDENTIALS_KEYS="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgres://build@127.0.0.1:5432/build \
    CELERY_BROKER_URL=redis://127.0.0.1:6379/0 \
    python manage.py collectstatic --noinput \
    && test -f "$TRIAGE_VAR_DIR/static/staticfiles.json"

# Writable state: beat's schedule (a named volume inherits this ownership) and media.
RUN mkdir -p "$TRIAGE_VAR_DIR/beat" "$TRIAGE_VAR_DIR/media" \
    && chown triage:triage "$TRIAGE_VAR_DIR" "$TRIAGE_VAR_DIR/beat" "$TRIAGE_VAR_DIR/media"

USER triage
EXPOSE 8000

# Workers come from WEB_CONCURRENCY (gunicorn's own default). Heartbeat files on
# /dev/shm because a slow overlay filesystem can make gunicorn kill idle workers;
# no control socket, which would go under $HOME (read-only /app) and is unused.
CMD ["gunicorn", "triage.wsgi", \
     "--config", "python:triage.gunicorn_conf", \
     "--bind", "0.0.0.0:8000", \
     "--timeout", "60", \
     "--graceful-timeout", "30", \
     "--keep-alive", "5", \
     "--max-requests", "1000", \
     "--max-requests-jitter", "100", \
     "--worker-tmp-dir", "/dev/shm", \
     "--no-control-socket", \
     "--access-logfile", "-", \
     "--error-logfile", "-"]
