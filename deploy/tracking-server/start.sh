#!/usr/bin/env bash
# Shared MLflow tracking server: PostgreSQL backend store, artifacts proxied by the server.
#
# Clients (laptops, Kubernetes Jobs, Databricks) set only MLFLOW_TRACKING_URI=https://<server>
# (+ MLFLOW_TRACKING_USERNAME/PASSWORD with basic auth). Runs get artifact URIs
# `mlflow-artifacts:/...`: uploads and downloads go through this server, so clients need no
# database or bucket credentials -- only this process has them.
#
# Everything is read from the environment; nothing secret is written to a file or put on a
# command line (argv is visible to every user through `ps`). mlflow itself reads
# MLFLOW_BACKEND_STORE_URI, MLFLOW_ARTIFACTS_DESTINATION, MLFLOW_SERVER_ALLOWED_HOSTS and
# MLFLOW_SERVER_CORS_ALLOWED_ORIGINS from the environment.
#
# Backend store -- either
#   MLFLOW_BACKEND_STORE_URI  a SQLAlchemy URI *without* the password, e.g.
#                             postgresql+psycopg2://mlflow@db.internal:5432/mlflow
#   or the libpq variables    PGHOST, PGPORT (5432), PGUSER, PGDATABASE, PGSSLMODE, ...
#                             (the URI becomes `postgresql+psycopg2://`; libpq fills it in).
#   The password comes from PGPASSWORD or a ~/.pgpass / PGPASSFILE file (mode 0600), both read
#   by libpq at connect time. A URI that contains a password is refused.
# Artifacts (required)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://bucket/prefix, gs://..., wasbs://..., or an absolute
#                                 path on a persistent volume. Bucket credentials: the usual
#                                 AWS_*/GOOGLE_APPLICATION_CREDENTIALS/AZURE_* variables.
# Network
#   MLFLOW_HOST (0.0.0.0)  MLFLOW_PORT (5000)  MLFLOW_WORKERS (4)
#   MLFLOW_SERVER_ALLOWED_HOSTS  Host headers clients use, e.g.
#       mlflow.example.com,mlflow.mlflow.svc.cluster.local:5000 (MLflow's default admits only
#       localhost and private IPs, so a DNS name must be listed).
#   MLFLOW_SERVER_CORS_ALLOWED_ORIGINS  optional, for browser apps on other origins.
#   MLFLOW_BIN  the mlflow executable (default: `mlflow` on PATH, e.g. the venv's).
# Authentication (optional)
#   MLFLOW_APP_NAME=basic-auth with MLFLOW_AUTH_CONFIG_PATH (the auth ini: auth database URI,
#   admin user) and MLFLOW_FLASK_SERVER_SECRET_KEY. Terminate TLS in front of the server.
#
# Usage:  PGHOST=db.internal PGUSER=mlflow PGDATABASE=mlflow PGPASSWORD=... \
#         MLFLOW_ARTIFACTS_DESTINATION=s3://ml-artifacts/mlflow \
#         MLFLOW_SERVER_ALLOWED_HOSTS=mlflow.example.com \
#         deploy/tracking-server/start.sh
set -euo pipefail

die() {
    echo "start.sh: $*" >&2
    exit 2
}

if [[ -z "${MLFLOW_BACKEND_STORE_URI:-}" ]]; then
    [[ -n "${PGHOST:-}" && -n "${PGUSER:-}" && -n "${PGDATABASE:-}" ]] ||
        die "set MLFLOW_BACKEND_STORE_URI, or PGHOST, PGUSER and PGDATABASE (see header)"
    # An empty URI body makes psycopg2 hand every connection parameter to libpq, which reads
    # PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD/PGSSLMODE from the environment.
    export MLFLOW_BACKEND_STORE_URI="postgresql+psycopg2://"
fi
case "${MLFLOW_BACKEND_STORE_URI}" in
    postgresql://* | postgresql+*://*) ;;
    *) die "MLFLOW_BACKEND_STORE_URI must be a postgresql:// URI (a shared server needs a shared database)" ;;
esac
# user:password@ in the authority part => a password in the URI; it would be logged and shown.
if [[ "${MLFLOW_BACKEND_STORE_URI}" =~ ^[^:]+://[^/@]*:[^/@]*@ ]]; then
    die "MLFLOW_BACKEND_STORE_URI contains a password; use PGPASSWORD or a .pgpass file instead"
fi

[[ -n "${MLFLOW_ARTIFACTS_DESTINATION:-}" ]] ||
    die "set MLFLOW_ARTIFACTS_DESTINATION (e.g. s3://bucket/prefix or /srv/mlflow/artifacts)"
case "${MLFLOW_ARTIFACTS_DESTINATION}" in
    *://*) ;;
    /*) mkdir -p "${MLFLOW_ARTIFACTS_DESTINATION}" ;;
    *) die "MLFLOW_ARTIFACTS_DESTINATION must be a URI or an absolute path" ;;
esac
export MLFLOW_ARTIFACTS_DESTINATION

args=(
    server
    --host "${MLFLOW_HOST:-0.0.0.0}"
    --port "${MLFLOW_PORT:-5000}"
    --workers "${MLFLOW_WORKERS:-4}"
    # Proxy artifacts: new experiments get mlflow-artifacts:/ roots resolved against
    # MLFLOW_ARTIFACTS_DESTINATION (this is MLflow's default; stated so it cannot drift).
    --serve-artifacts
)
# The GenAI job runner is an extra process (huey consumer) this workflow never uses.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
if [[ -n "${MLFLOW_APP_NAME:-}" ]]; then
    args+=(--app-name "${MLFLOW_APP_NAME}")
fi

# exec: the server becomes this process, so the supervisor's SIGTERM reaches it directly.
exec "${MLFLOW_BIN:-mlflow}" "${args[@]}"
