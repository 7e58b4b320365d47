"""The fair single-file equivalent of ``mlflow run . -e main``: the yardstick of benchmarks/run.py.

Same steps and data as the workflow, written the way a single script would, with MLflow's
defaults: generate the same 10,000 rows (``make_classification``, seed 16), the same stratified
80/20 split (both splits logged as Parquet artifacts), fit the same logistic regression
(standardized, C=1, max_iter=1000) and random forest (100 trees, all cores, seed 16), log and
register both with ``mlflow.sklearn.log_model`` defaults (no ``pip_requirements``: MLflow infers
them in a subprocess; default serialization, skops, with the forest's tree type trusted as it
must be to save at all), reload both from the registry, McNemar's test
with mlxtend on the test split, and the stage transitions (first version to Production, the
forest to Staging, then to Production with the others archived if it wins).

Run it on a fresh store, e.g.::

    MLFLOW_TRACKING_URI=sqlite:////tmp/b/mlflow.db python benchmarks/baseline_single_file.py
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.tracking import MlflowClient
from mlxtend.evaluate import mcnemar, mcnemar_table
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

NAME = "classifier"
SEED = 16
ALPHA = 0.05


def main() -> None:
    warnings.simplefilter("ignore", FutureWarning)  # stage transitions are deprecated
    features, labels = make_classification(n_samples=10_000, n_features=20, n_informative=9,
                                           n_classes=2, random_state=SEED)
    frame = pd.DataFrame(features, columns=[f"x{i:02d}" for i in range(20)])
    frame["label"] = labels
    train, test = train_test_split(frame, test_size=0.2, stratify=frame["label"], random_state=SEED)
    train_x, train_y = train.drop(columns=["label"]), train["label"].to_numpy()
    test_x, test_y = test.drop(columns=["label"]), test["label"].to_numpy()
    client = MlflowClient()

    with mlflow.start_run(run_name="single-file"):
        with tempfile.TemporaryDirectory() as tmp:
            for name, split in (("train", train), ("test", test)):
                path = Path(tmp) / f"{name}.parquet"
                split.to_parquet(path, index=False)
                mlflow.log_artifact(str(path), artifact_path="data")

        models = {
            "logistic_regression": make_pipeline(
                StandardScaler(), LogisticRegression(C=1.0, max_iter=1000, random_state=SEED)),
            "random_forest": RandomForestClassifier(n_estimators=100, max_depth=None,
                                                    min_samples_leaf=1, n_jobs=-1,
                                                    random_state=SEED),
        }
        # MLflow 3's default serialization is skops; a forest cannot be saved without naming
        # its tree type as trusted (the one argument beyond the defaults).
        trusted = {"logistic_regression": None, "random_forest": ["sklearn.tree._tree.Tree"]}
        versions = {}
        for family, model in models.items():
            model.fit(train_x, train_y)
            info = mlflow.sklearn.log_model(model, name=family, registered_model_name=NAME,
                                            skops_trusted_types=trusted[family])
            versions[family] = info.registered_model_version
        champion, challenger = versions["logistic_regression"], versions["random_forest"]
        client.transition_model_version_stage(NAME, champion, "Production")
        client.transition_model_version_stage(NAME, challenger, "Staging")

        loaded = {v: mlflow.pyfunc.load_model(f"models:/{NAME}/{v}") for v in (champion, challenger)}
        y_champion = loaded[champion].predict(test_x)
        y_challenger = loaded[challenger].predict(test_x)
        table = mcnemar_table(y_target=test_y, y_model1=y_champion, y_model2=y_challenger)
        statistic, p_value = mcnemar(table, corrected=True)
        accuracy_champion = float((y_champion == test_y).mean())
        accuracy_challenger = float((y_challenger == test_y).mean())
        promote = p_value < ALPHA and accuracy_challenger > accuracy_champion
        if promote:
            client.transition_model_version_stage(NAME, challenger, "Production",
                                                  archive_existing_versions=True)
        mlflow.log_metrics({"p_value": p_value, "statistic": statistic,
                            "champion_accuracy": accuracy_champion,
                            "challenger_accuracy": accuracy_challenger})
    print(f"baseline: {'promoted' if promote else 'kept'} v{challenger if promote else champion} "
          f"(accuracy {accuracy_challenger:.4f} vs {accuracy_champion:.4f}, p = {p_value:.3g})")


if __name__ == "__main__":
    main()
