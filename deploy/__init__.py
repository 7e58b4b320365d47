"""Submit the workflow to shared infrastructure: a tracking server, Kubernetes, Databricks.

* :mod:`deploy.export` -- a clean copy of the project: git-tracked files of one commit only.
* :mod:`deploy.checks` -- refuse a submission that could not work remotely, before any run is
  created (local tracking URIs, a job template MLflow would mangle, a bare cluster spec).
* :mod:`deploy.submit` -- ``python -m deploy.submit {kubernetes,databricks} -e <entry point>``.

See ``docs/remote.md`` for the commands and what each target needs from the user.
"""
