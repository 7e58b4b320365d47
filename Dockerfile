# Dependency image of the workflow: Python 3.11.7 + the pinned requirements + the project code.
#
#   docker build -t statistically-gated-versioning:base .
#
# Kubernetes: deploy/kubernetes/MLproject names this image as its docker_env; MLflow builds
# the Job's image FROM it with the submitted commit copied under /mlflow/projects/code/ (the
# Job's workingDir is /mlflow/projects/code/project), so a Job always runs the submitted
# code, never the copy in /app below (which is not on its sys.path).
# Standalone: the code below lets the image run an entry point by itself, e.g.
#   docker run --rm -e MLFLOW_TRACKING_URI=https://mlflow.example.com \
#     statistically-gated-versioning:base python -m steps.main --config configs/default.yaml
# No tracking store, artifacts or credentials are ever baked in: the tracking URI and the
# MLFLOW_TRACKING_USERNAME/PASSWORD come from the environment at run time.
FROM python:3.11.7-slim

# GIT_PYTHON_REFRESH=quiet: the image has no git binary and needs none (the commit is recorded
# on the submitting side); without it MLflow's optional GitPython import warns on every run.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    GIT_PYTHON_REFRESH=quiet

# Requirements first: this layer is rebuilt only when the pins change, not on code edits.
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

# Non-root user (uid/gid 10001, as the Kubernetes Job's securityContext expects). The
# directory MLflow's kubernetes backend copies the project into is created here, owned by
# that user. Steps write only to temp dirs and the tracking server.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app app \
    && mkdir -p /app /mlflow/projects/code \
    && chown app:app /app /mlflow/projects/code

WORKDIR /app
COPY --chown=app:app MLproject ./MLproject
COPY --chown=app:app configs/ ./configs/
COPY --chown=app:app versioning/ ./versioning/
COPY --chown=app:app steps/ ./steps/

USER app
CMD ["python", "-m", "steps.main", "--config", "configs/default.yaml"]
