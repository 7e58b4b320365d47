"""Every performance figure of docs/performance.md, measured side by side in one command.

    .venv/bin/python benchmarks/run.py --repeats 5

prints one table and writes the raw numbers to benchmarks/results/<timestamp>.json
(git-ignored). Sections (each can be skipped, see --help):

1. **cold / warm vs single file**: ``benchmarks/baseline_single_file.py`` (the fair single-file
   equivalent, MLflow defaults) and ``mlflow run <project> -e main --env-manager local`` on a
   fresh sqlite store (cold), then again on that store with nothing changed (warm). The three
   alternate within each repeat (the order rotates), every process starts from scratch, and
   the ratios are of the medians. Targets: cold <= 0.6x, warm <= 0.35x the single file.
   Also reported: ``-P launcher=projects`` (one process per step, as before), the
   no-comparison start-up of ``python -m steps.compare_and_promote``, and the floors that no
   workflow launched by ``mlflow run`` can go below: for a cold run, ``mlflow run`` on a fresh
   store of an entry point that imports mlflow, scikit-learn, skops and mlxtend, opens the
   store and ends, and of one that also makes the data and fits both models
   (``floor_compute.py``); for a warm run, on an existing store, one that imports mlflow, opens the
   store and ends; and ``mlflow run`` of an entry point that does nothing.
2. **1,000,000 test rows**: compare_and_promote (forest champion vs logistic-regression
   challenger, a full comparison) run in a process that has already run it once, as ``main``
   runs it; the time inside the two models' predict calls vs the rest. Target: rest <= 20%.
3. **10,000,000 test rows from Parquet**: the same in a fresh process; peak RSS. Target <= 1 GB.
4. **1,000 registry versions**: compare_and_promote on a registry with 1,000 versions vs the
   same with 2, alternating in one process: a full comparison that keeps, one that promotes
   (crown included), and the no-challenger fast path. Target: <= 1.2x.

The commands run with this interpreter's directory first on PATH (``mlflow`` of the venv)
and a fresh temporary directory as working directory and store for each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PROBE = BENCH / "compare_probe.py"
PYTHON = sys.executable


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    versions = {}
    for name in ("mlflow", "scikit-learn", "mlxtend", "pandas", "pyarrow", "numpy"):
        from importlib import metadata

        versions[name] = metadata.version(name)
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "kernel": platform.release(),
            "load_avg_at_start": os.getloadavg(), "versions": versions}


def env_for(store: Path) -> dict[str, str]:
    env = os.environ.copy()
    env["PATH"] = f"{Path(PYTHON).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
    env.pop("MLFLOW_EXPERIMENT_ID", None)
    env.pop("MLFLOW_RUN_ID", None)
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str], label: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{label} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def workflow_argv(*params: str) -> list[str]:
    argv = ["mlflow", "run", str(ROOT), "-e", "main", "--env-manager", "local"]
    for param in params:
        argv += ["-P", param]
    return argv


def check_cold(store: Path) -> dict:
    """The cold run's registry outcome and the warm run's cache hits, read back from the store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("classifier", "champion")
    mains = client.search_runs(["0"], "tags.`versioning.step` = 'main'",
                               order_by=["attributes.start_time ASC"])
    return {"champion_family": champion.tags.get("model.family"),
            "champion_stage": champion.current_stage,
            "versions": len(client.search_model_versions("name = 'classifier'")),
            "cache_tags": [{k: v.split(":")[0] for k, v in run.data.tags.items()
                            if k.startswith("versioning.cache.")} for run in mains]}


FLOOR_PROJECT = """name: floor
entry_points:
  noop:
    command: "true"
  mlflow_store:
    command: "python -c 'import gc, mlflow; mlflow.MlflowClient().search_experiments(); gc.freeze()'"
  libraries:
    command: "python -c 'import gc, mlflow; mlflow.MlflowClient().search_experiments(); import sklearn.linear_model, sklearn.ensemble, skops.io, mlxtend.evaluate; gc.freeze()'"
  compute:
    command: "python '%s'"
""" % (BENCH / "floor_compute.py")
# The floors end as the steps do (versioning.step.main): with gc.freeze(), which spares the
# interpreter a final collection over everything imported; without it they would not be floors.


def bench_workflow(repeats: int, projects_repeats: int, scratch: Path) -> dict:
    """Baseline, cold + warm workflow, and the floors of `mlflow run`, rotating within each repeat."""
    floor = scratch / "floor-project"
    floor.mkdir()
    (floor / "MLproject").write_text(FLOOR_PROJECT)
    kinds = ("baseline", "cold", "warm", "floor_noop", "floor_mlflow", "floor_libraries",
             "floor_compute")
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    checks = []
    jobs = ["baseline", "workflow", "floors"]
    for index in range(repeats):
        order = jobs[index % len(jobs):] + jobs[:index % len(jobs)]
        for what in order:
            work = Path(tempfile.mkdtemp(dir=scratch))
            env = env_for(work)
            if what == "baseline":
                took, _ = timed([PYTHON, str(BENCH / "baseline_single_file.py")], work, env, "baseline")
                seconds["baseline"].append(took)
            elif what == "workflow":
                took, _ = timed(workflow_argv(), work, env, "cold mlflow run")
                seconds["cold"].append(took)
                took, out = timed(workflow_argv(), work, env, "warm mlflow run")
                seconds["warm"].append(took)
                checks.append(check_cold(work))
            else:
                # What any `mlflow run` costs on a store that exists: the CLI alone (an entry
                # point that does nothing), and with one Python process that imports mlflow
                # and opens the store, as every step must.
                base = ["mlflow", "run", str(floor), "--env-manager", "local", "-e"]
                timed(base + ["noop"], work, env, "floor store")
                seconds["floor_noop"].append(timed(base + ["noop"], work, env, "floor noop")[0])
                seconds["floor_mlflow"].append(
                    timed(base + ["mlflow_store"], work, env, "floor mlflow")[0])
                # What a cold run cannot avoid: a fresh store, and one process that imports
                # the libraries the steps need (scikit-learn to fit, skops to save, mlxtend
                # to test) besides mlflow. Nothing is fitted, logged or registered.
                # And that, plus making the data and fitting both models (floor_compute.py).
                for entry_point in ("libraries", "compute"):
                    fresh = Path(tempfile.mkdtemp(dir=scratch))
                    seconds[f"floor_{entry_point}"].append(
                        timed(base + [entry_point], fresh, env_for(fresh), f"floor {entry_point}")[0])
                    shutil.rmtree(fresh, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        print(f"  repeat {index + 1}/{repeats}: " + ", ".join(
            f"{kind} {seconds[kind][-1]:.2f}s" for kind in kinds), flush=True)
    projects = []
    for _ in range(projects_repeats):
        work = Path(tempfile.mkdtemp(dir=scratch))
        took, _ = timed(workflow_argv("launcher=projects", "use_cache=false"), work, env_for(work),
                        "projects mlflow run")
        projects.append(took)
        shutil.rmtree(work, ignore_errors=True)
    # Start-up of compare_and_promote with nothing to compare, as its own process.
    work = Path(tempfile.mkdtemp(dir=scratch))
    env = env_for(work)
    timed(workflow_argv(), work, env, "store for the fast path")
    fast = []
    for _ in range(max(repeats, 3)):
        took, _ = timed([PYTHON, "-m", "steps.compare_and_promote"], ROOT, env, "fast path")
        fast.append(took)
    shutil.rmtree(work, ignore_errors=True)
    medians = {kind: statistics.median(values) for kind, values in seconds.items()}
    return {"seconds": seconds, "median": medians,
            "ratio_cold": medians["cold"] / medians["baseline"],
            "ratio_warm": medians["warm"] / medians["baseline"],
            "ratio_floor_noop": medians["floor_noop"] / medians["baseline"],
            "ratio_floor_mlflow": medians["floor_mlflow"] / medians["baseline"],
            "ratio_floor_libraries": medians["floor_libraries"] / medians["baseline"],
            "ratio_floor_compute": medians["floor_compute"] / medians["baseline"],
            "projects_launcher_cold": projects,
            "compare_fast_path_process": fast, "checks": checks}


def probe(*args: str) -> dict:
    """Run compare_probe.py in its own process; the JSON it prints last."""
    done = subprocess.run([PYTHON, str(PROBE), *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"compare_probe {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_scale(rows: int, big_rows: int, iterations: int, scratch: Path) -> dict:
    store = scratch / "scale"
    probe("setup", str(store))
    result: dict = {}
    if rows:
        result["big_test"] = probe("big-test", str(store), "--rows", str(rows))
        result["rows"] = probe("time-scale", str(store), "--rows", str(rows),
                               "--iterations", str(iterations))
        result["rows"]["n"] = rows
    if big_rows:
        result["big_test_10m"] = probe("big-test", str(store), "--rows", str(big_rows))
        result["big_rows"] = probe("time-scale", str(store), "--rows", str(big_rows),
                                   "--iterations", "1", "--no-warmup")
        result["big_rows"]["n"] = big_rows
    shutil.rmtree(store, ignore_errors=True)
    return result


def bench_registry(versions: int, iterations: int, scratch: Path) -> dict:
    small, large = scratch / "registry-2", scratch / "registry-large"
    probe("setup", str(small))
    shutil.copytree(small, large)  # same runs and artifacts (absolute paths into `small`)
    grown = probe("grow", str(large), "--versions", str(versions))
    timing = probe("time-registry", str(small), str(large), "--iterations", str(iterations))
    processes = time_registry_processes({"small": small, "large": large}, iterations)
    medians = timing["median"]
    compare_ratio = medians[str(large)]["compare"] / medians[str(small)]["compare"]
    fast_ratio = medians[str(large)]["fast_path"] / medians[str(small)]["fast_path"]
    promote_ratio = medians[str(large)]["promote"] / medians[str(small)]["promote"]
    shutil.rmtree(small, ignore_errors=True)
    shutil.rmtree(large, ignore_errors=True)
    return {"grow": grown, "timing": timing, "versions": timing["versions"],
            "compare_small": medians[str(small)]["compare"], "compare_large": medians[str(large)]["compare"],
            "fast_small": medians[str(small)]["fast_path"], "fast_large": medians[str(large)]["fast_path"],
            "promote_small": medians[str(small)]["promote"], "promote_large": medians[str(large)]["promote"],
            "ratio_compare": compare_ratio, "ratio_fast_path": fast_ratio, "ratio_promote": promote_ratio,
            "processes": processes,
            "ratio_process": {kind: processes["median"]["large"][kind] / processes["median"]["small"][kind]
                              for kind in ("keep", "promote")}}


def time_registry_processes(stores: dict[str, Path], iterations: int) -> dict:
    """compare_and_promote as a user runs it, its own process (``python -m
    steps.compare_and_promote``, what the entry point runs): keep and promote on each store,
    alternating; the state is set by ``compare_probe.py reset`` in a process of its own, untimed."""
    seconds = {label: {"keep": [], "promote": []} for label in stores}
    labels = list(stores)
    for index in range(iterations):
        for kind in ("keep", "promote"):
            for label in (labels if index % 2 == 0 else list(reversed(labels))):
                store = stores[label]
                probe("reset", str(store), "--to", kind)
                env = {**env_for(store), "PYTHONPATH": str(ROOT)}
                took, out = timed([PYTHON, "-m", "steps.compare_and_promote", "--config",
                                   str(ROOT / "configs" / "default.yaml")], store, env, f"{kind} process")
                if f"compare_and_promote: {kind}." not in out:
                    raise SystemExit(f"expected {kind} on {store}, got:\n{out[-2000:]}")
                seconds[label][kind].append(took)
    return {"seconds": seconds,
            "median": {store: {kind: statistics.median(values) for kind, values in kinds.items()}
                       for store, kinds in seconds.items()}}


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(result: dict) -> str:
    lines = []
    m = result["machine"]
    lines.append(f"Machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gb']} GB RAM, Python {m['python']}, "
                 f"load average at start {', '.join(f'{x:.2f}' for x in m['load_avg_at_start'])}")
    lines.append(f"Libraries: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}")
    lines.append("")
    lines.append(f"{'figure':58s} {'median':>10s} {'ratio':>8s} {'target':>9s}  result")
    lines.append("-" * 100)
    if "workflow" in result:
        w = result["workflow"]
        med = w["median"]
        n = len(w["seconds"]["baseline"])
        lines.append(f"{'single-file script (baseline_single_file.py), n=%d' % n:58s} {med['baseline']:9.2f}s {'1.00':>8s} {'':>9s}")
        lines.append(f"{'1. cold mlflow run -e main (fresh store)':58s} {med['cold']:9.2f}s {w['ratio_cold']:8.2f} {'<= 0.60':>9s}  {verdict(w['ratio_cold'] <= 0.6)}")
        lines.append(f"{'2. warm re-run, nothing changed':58s} {med['warm']:9.2f}s {w['ratio_warm']:8.2f} {'<= 0.35':>9s}  {verdict(w['ratio_warm'] <= 0.35)}")
        if w["projects_launcher_cold"]:
            value = statistics.median(w["projects_launcher_cold"])
            lines.append(f"{'   (cold with -P launcher=projects, n=%d)' % len(w['projects_launcher_cold']):58s} {value:9.2f}s {value / med['baseline']:8.2f} {'info':>9s}")
        lines.append(f"{'   floor of 1: fresh store, entry point that imports mlflow,':58s} {med['floor_libraries']:9.2f}s {w['ratio_floor_libraries']:8.2f} {'info':>9s}")
        lines.append(f"{'     scikit-learn, skops, mlxtend, opens the store, and ends':58s}")
        lines.append(f"{'     ... that also makes the data and fits both models':58s} {med['floor_compute']:9.2f}s {w['ratio_floor_compute']:8.2f} {'info':>9s}")
        lines.append(f"{'     cold beyond that':58s} {med['cold'] - med['floor_compute']:9.2f}s")
        lines.append(f"{'   floor of 2: existing store, entry point that imports':58s} {med['floor_mlflow']:9.2f}s {w['ratio_floor_mlflow']:8.2f} {'info':>9s}")
        lines.append(f"{'     mlflow, opens the store, and ends':58s}")
        lines.append(f"{'     warm beyond that floor':58s} {med['warm'] - med['floor_mlflow']:9.2f}s")
        lines.append(f"{'   (mlflow run of an entry point that does nothing)':58s} {med['floor_noop']:9.2f}s {w['ratio_floor_noop']:8.2f} {'info':>9s}")
        fast = statistics.median(w["compare_fast_path_process"])
        lines.append(f"{'   (python -m steps.compare_and_promote, nothing to compare)':58s} {fast:9.2f}s {'':>8s} {'info':>9s}")
        outcome = {c["champion_family"] for c in w["checks"]}
        lines.append(f"   cold outcome: champion {', '.join(sorted(map(str, outcome)))}; warm cache: "
                     f"{w['checks'][0]['cache_tags'][-1] if w['checks'] else '-'}")
    if "scale" in result and "rows" in result["scale"]:
        s = result["scale"]["rows"]
        ratio = s["median_beyond_over_predict"]
        beyond = statistics.median(r["beyond_predict_seconds"] for r in s["runs"])
        label = f"4a. compare at {s['n']:,} rows: step"
        lines.append(f"{label:58s} {s['median_seconds']:9.2f}s")
        lines.append(f"{'    inside the two models predict calls':58s} {s['median_predict_seconds']:9.2f}s")
        lines.append(f"{'    beyond predict / predict':58s} {beyond:9.2f}s {ratio:8.2f} {'<= 0.20':>9s}  {verdict(ratio <= 0.2)}")
    if "scale" in result and "big_rows" in result["scale"]:
        s = result["scale"]["big_rows"]
        rss = s["vm_hwm_mb"] or s["peak_rss_mb"]
        run = s["runs"][0]
        label = f"4b. compare at {s['n']:,} rows (Parquet, fresh process): step"
        lines.append(f"{label:58s} {run['seconds']:9.2f}s")
        lines.append(f"{'    beyond predict / predict':58s} {run['beyond_predict_seconds']:9.2f}s {run['beyond_over_predict']:8.2f} {'info':>9s}")
        lines.append(f"{'    peak RSS of the process':58s} {rss:8.0f}MB {'':>8s} {'<= 1024MB':>9s}  {verdict(rss <= 1024)}")
    if "registry" in result:
        r = result["registry"]
        counts = sorted(r["versions"].values())
        lines.append(f"{'5. compare, registry of %d vs %d versions' % (counts[-1], counts[0]):58s} "
                     f"{r['compare_large']:9.2f}s {r['ratio_compare']:8.2f} {'<= 1.20':>9s}  {verdict(r['ratio_compare'] <= 1.2)}")
        lines.append(f"{'   (a keep; %d versions: %.3fs)' % (counts[0], r['compare_small']):58s}")
        lines.append(f"{'   a promotion (crown included), %d vs %d versions' % (counts[-1], counts[0]):58s} "
                     f"{r['promote_large']:9.2f}s {r['ratio_promote']:8.2f} {'<= 1.20':>9s}  {verdict(r['ratio_promote'] <= 1.2)}")
        lines.append(f"{'   (%d versions: %.3fs)' % (counts[0], r['promote_small']):58s}")
        lines.append(f"{'   no challenger (fast path), %d vs %d versions' % (counts[-1], counts[0]):58s} "
                     f"{r['fast_large']:9.3f}s {r['ratio_fast_path']:8.2f} {'info':>9s}")
        if "processes" in r:
            for kind in ("keep", "promote"):
                large = r["processes"]["median"]["large"][kind]
                lines.append(f"{'   ' + kind + ' as its own process (python -m steps.…)':58s} "
                             f"{large:9.2f}s {r['ratio_process'][kind]:8.2f} {'<= 1.20':>9s}  {verdict(r['ratio_process'][kind] <= 1.2)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs per figure (>= 5 for the record)")
    parser.add_argument("--projects-repeats", type=int, default=1, help="cold runs with launcher=projects")
    parser.add_argument("--rows", type=int, default=1_000_000, help="test rows of section 2 (0 = skip)")
    parser.add_argument("--big-rows", type=int, default=10_000_000, help="test rows of section 3 (0 = skip)")
    parser.add_argument("--versions", type=int, default=1000, help="registry size of section 4 (0 = skip)")
    parser.add_argument("--skip-workflow", action="store_true", help="skip section 1")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()

    result: dict = {"machine": machine(), "started": dt.datetime.now().isoformat(timespec="seconds"),
                    "args": {k: str(v) for k, v in vars(args).items()}}
    scratch = Path(tempfile.mkdtemp(prefix="versioning-bench-"))
    try:
        if not args.skip_workflow:
            print(f"[1/3] single file vs mlflow run, {args.repeats} alternating repeats", flush=True)
            result["workflow"] = bench_workflow(args.repeats, args.projects_repeats, scratch)
        if args.rows or args.big_rows:
            print(f"[2/3] compare at {args.rows:,} and {args.big_rows:,} test rows", flush=True)
            result["scale"] = bench_scale(args.rows, args.big_rows, args.repeats, scratch)
        if args.versions:
            print(f"[3/3] compare with {args.versions} registry versions vs 2", flush=True)
            result["registry"] = bench_registry(args.versions, args.repeats, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    text = table(result)
    result["table"] = text
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(text)
    print(f"\nraw numbers: {path}")


if __name__ == "__main__":
    main()
