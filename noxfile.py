"""nox sessions: `nox -s tests`, `nox -s lint`, `nox -s train_proxy` (the main job on the embedded proxy data), and
the paper's tables: `nox -s reproduce_proxy` (minutes on a CPU), `reproduce_cifar`, `reproduce_cifar100`,
`reproduce_imagenet`, `reproduce_ablation` (GPU budgets), then `compare`; the regression checks `bench` and `regress`
(their stored baselines are rewritten only by `bench_update` and `regress -- --update`).

Arguments after `--` go to `tas-bench sweep`:

    nox -s reproduce_cifar -- --data-dir ~/data --workers 4 --set seeds=[0]
    nox -s reproduce_cifar -- --data-dir ~/data --executor ray --address auto --gpus-per-run 1
    nox -s reproduce_cifar -- --data-dir ~/data --set data.subset=5000 --dry-run
"""

import platform
import re
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True  # torch is large; reinstall only when asked (`nox -R` off)

# Where each data set is looked for when no --data-dir is given, and what must be inside.
DATA = {
    "cifar10": ("data", "cifar-10-batches-py", "the python version of CIFAR-10 (cifar-10-python.tar.gz)"),
    "cifar100": ("data", "cifar-100-python", "the python version of CIFAR-100 (cifar-100-python.tar.gz)"),
    "imagenet": ("data/imagenet", "train", "ImageNet as train/<class>/*.JPEG and val/<class>/*.JPEG"),
}
SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


LINTED = ("tasbench", "tas", "baselines", "tests", "benchmarks", "noxfile.py")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff==0.17.6")  # as pyproject's dev extra
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


# `nox -s bench` fails when a benchmark's median, as a ratio to the reference workload, is more than this much
# above the stored baseline's. Two idle runs here differed by up to 18% (the 2.5 ms augmentation), most by < 8%.
BENCH_TOLERANCE = "35%"
# CI's check allows more: its machine may be busier than the idle one the baseline came from; a 2x slowdown fails.
BENCH_TOLERANCE_CI = "75%"
# One baseline per CPU model: the ratios to the reference workload (matmuls) hold across loads and clock speeds, not
# across CPU designs (the same code's ratios were 1.75x higher on an AVX-512 Intel Xeon than on an AMD EPYC).
BASELINES = Path("benchmarks/baselines")


def cpu_model() -> str:
    """This machine's CPU model, as /proc/cpuinfo names it ("AMD EPYC", "Intel(R) Xeon(R) Processor").

    The same reading as `tasbench.runner.store`' device name, repeated: nox's own interpreter need not have tas-bench.
    """
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def baseline_path() -> Path:
    """benchmarks/baselines/<cpu model>.json, e.g. amd-epyc.json, intel-xeon-processor.json."""
    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower().replace("(r)", "").replace("(tm)", "")).strip("-")
    return BASELINES / f"{slug or 'unknown-cpu'}.json"


@nox.session
def bench(session: nox.Session) -> None:
    """The pytest-benchmark suites in benchmarks/, compared with this CPU model's stored baseline."""
    _bench(session, BENCH_TOLERANCE)


@nox.session
def bench_ci(session: nox.Session) -> None:
    """`bench` with CI's wider tolerance (what .ci/run runs)."""
    _bench(session, BENCH_TOLERANCE_CI)


def _bench(session: nox.Session, tolerance: str) -> None:
    session.install("-e", ".[dev]")
    baseline = baseline_path()
    if not baseline.is_file():
        # A baseline of another CPU model compares nothing meaningful: run the suites (they must still pass), say so.
        stored = ", ".join(sorted(p.stem for p in BASELINES.glob("*.json"))) or "none"
        session.warn(
            f"no benchmark baseline for this CPU ({cpu_model()!r}: {baseline}); stored: {stored}. Running "
            f"without a comparison; `nox -s bench_update` on an idle machine of this kind stores one."
        )
        session.run("pytest", "benchmarks/", "--benchmark-only", *session.posargs)
        return
    session.run(
        "pytest",
        "benchmarks/",
        "--benchmark-only",
        f"--benchmark-compare={baseline}",
        f"--benchmark-compare-fail=median:{tolerance}",
        *session.posargs,
    )


@nox.session
def bench_update(session: nox.Session) -> None:
    """Rewrite this CPU model's stored baseline (run it on an idle machine, then commit the file it names)."""
    session.install("-e", ".[dev]")
    session.run("pytest", "benchmarks/", "--benchmark-only", f"--benchmark-json={baseline_path()}", *session.posargs)


@nox.session
def regress(session: nox.Session) -> None:
    """The proxy regression check (benchmarks/regression.yaml vs .json); `nox -s regress -- --update` rewrites it."""
    session.install("-e", ".")
    session.run("tas-bench", "regress", *session.posargs)


@nox.session
def train_proxy(session: nox.Session) -> None:
    """Train the unpruned ResNet-20 on the proxy data with its default budget (a few minutes on 2 cores)."""
    session.install("-e", ".")
    session.run("tas-bench", "train", "--dataset", "proxy", "--network", "resnet20", *session.posargs)


@nox.session
def reproduce_proxy(session: nox.Session) -> None:
    """benchmarks/proxy.yaml end to end (teachers, pruning, retraining), then results/proxy.{md,tex} and the plot."""
    _reproduce(session, "proxy")


@nox.session
def reproduce_cifar(session: nox.Session) -> None:
    """The paper's CIFAR-10 table (benchmarks/cifar10.yaml); needs CIFAR-10 (see DATA) and a GPU budget."""
    _reproduce(session, "cifar10")


@nox.session
def reproduce_cifar100(session: nox.Session) -> None:
    _reproduce(session, "cifar100")


@nox.session
def reproduce_imagenet(session: nox.Session) -> None:
    _reproduce(session, "imagenet")


@nox.session
def reproduce_ablation(session: nox.Session) -> None:
    """The paper's Tables 1/2 (benchmarks/cifar100-ablation.yaml): CIFAR-100 ResNet-32, pre-defined / random / TAS
    shapes, each retrained with and without KD; needs CIFAR-100 (see DATA)."""
    _reproduce(session, "cifar100-ablation", dataset="cifar100")


@nox.session
def gpu_check(session: nox.Session) -> None:
    """The GPU check, on any CUDA machine in a few minutes: the tests marked `cuda`, then `tas-bench bench gpu`
    (images/s of ResNet-20/56/110 training and TAS search steps at batch 256, eager and compiled; peak memory; a
    proxy ResNet-20 training) into results/gpu-throughput.json, and with CIFAR-10 at hand (data/ or `-- --data-dir
    DIR`) the GPU-hours of benchmarks/cifar10.yaml from it. `-- --cpu`: its CPU mode (small batches, one proxy
    epoch, no accuracy bar; into results/gpu-throughput-cpu.json), which CI runs."""
    args = list(session.posargs)
    cpu = "--cpu" in args
    if cpu:
        args.remove("--cpu")
    session.install("-e", ".[dev]")
    session.run("pytest", "-m", "cuda", "-rs", "-p", "no:cacheprovider", "tests/")
    out = "results/gpu-throughput-cpu.json" if cpu else "results/gpu-throughput.json"
    bench = ["--device", "cpu", "--batch-size", "16", "--steps", "2", "--warmup", "1"] if cpu else ["--device", "cuda"]
    if cpu:
        bench += ["--proxy-epochs", "1", "--proxy-top1", "0"]
    session.run("tas-bench", "bench", "gpu", *bench, "--out", out)
    data = args[args.index("--data-dir") + 1] if "--data-dir" in args else DATA["cifar10"][0]
    if (Path(data) / DATA["cifar10"][1]).is_dir():
        session.run("tas-bench", "sweep", "cifar10", "--dry-run", "--throughput", out, "--data-dir", data)
    else:
        session.log(f"no CIFAR-10 under {data}/: the GPU-hours of cifar10.yaml need it (-- --data-dir DIR)")


@nox.session
def compare(session: nox.Session) -> None:
    """Our runs against logged W&B runs: `nox -s compare -- --wandb-dir runs/wandb` or `-- --project entity/project`."""
    session.install("-e", ".")
    session.run("tas-bench", "compare", *session.posargs)


def _reproduce(session: nox.Session, spec: str, dataset: str | None = None) -> None:
    args = list(session.posargs)
    dataset = dataset or spec
    if spec == "proxy" and "--workers" not in args:
        args += ["--workers", "2", "--threads", "1"]  # two 1-thread runs at a time: best on 2 shared cores
    if dataset in DATA and "--data-dir" not in args:
        default, inside, what = DATA[dataset]
        # Stop before installing anything: a reproduction never silently runs on other data.
        if not (Path(default) / inside).is_dir():
            session.error(
                f"no {spec} data: looked for {Path(default) / inside}/. Put {what} under {default}/ "
                f"(CIFAR: {SOURCE}), or pass its directory: nox -s {session.name} -- --data-dir DIR"
            )
        args += ["--data-dir", default]
    session.install("-e", ".[torch-pruning]" if spec == "proxy" else ".")  # the proxy table has a Torch-Pruning row
    runs = "runs"
    for i, arg in enumerate(args[:-1]):
        if arg == "--out":
            runs = args[i + 1]
    session.run("tas-bench", "sweep", f"benchmarks/{spec}.yaml", *args)
    if "--dry-run" not in args:
        session.run("tas-bench", "report", "--runs", runs, "--out", "results")
