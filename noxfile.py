"""nox sessions: `nox -s tests`, `nox -s lint`, `nox -s train_proxy` (the main job on the embedded proxy data)."""

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True  # torch is large; reinstall only when asked (`nox -R` off)


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[dev]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "tasbench", "tas", "baselines", "tests", "noxfile.py")


@nox.session
def train_proxy(session: nox.Session) -> None:
    """Train the unpruned ResNet-20 on the proxy data with its default budget (a few minutes on 2 cores)."""
    session.install("-e", ".")
    session.run("tas-bench", "train", "--dataset", "proxy", "--network", "resnet20", *session.posargs)
