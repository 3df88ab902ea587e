"""Sweep specs: a YAML file (one per paper table, plus `proxy`) -> the list of `RunConfig`s it stands for.

    name: proxy
    data: {dataset: proxy}                      # DataConfig fields
    networks: [resnet20]
    teacher: {epochs: 10}                       # TrainConfig fields; the seed comes from `seeds`
    # or a teacher from a file, nothing trained: teacher: {weights: PATH} (or {weights: {resnet50: PATH}}, per net)
    methods:                                    # registered pruners (`tas-bench prune --method`), with options
      - {method: uniform, label: Uniform}
      - {method: l1, label: "L1 (B)", options: {variant: B}, ratios: [0.62]}   # its own ratios
    ratios: [0.7, 0.5]                          # target FLOPs as a share of the unpruned net, in (0, 1]
    # or per network: ratios: {resnet20: [0.550], resnet56: [0.473]}   (each network at its own targets)
    seeds: [0, 1]
    recipes: [{name: finetune, epochs: 10}]     # Recipe fields (recipes.py)

Runs are the product methods x networks x ratios x recipes x seeds; a method entry may replace `networks`,
`ratios`, `recipes` or `shortcut` for itself (L1's paper-faithful variants exist for ResNet-56/110 only).
Any field can be overridden with a dotted path and a YAML value, e.g. `--set seeds=[0,1,2] --set teacher.epochs=2
--set methods.0.options.tolerance=0.02`.

    >>> sweep = load_sweep("proxy", ["seeds=[0]"])   # the shipped benchmarks/proxy.yaml, from any directory
    >>> len(sweep.runs), sweep.runs[0].method, sweep.runs[0].recipe.name   # 3 ratios x 2 recipes x 1 seed
    (6, 'uniform', 'kd')

Every mistake (bad YAML, an unknown key or method, a ratio outside (0, 1], a field of the wrong type, a sweep with
no runs, a run given twice) is a `ConfigError` that names the file and the field. A run given twice (a ratio, seed
or network listed twice, two method entries that differ only in their label) would share one run directory: it
would run once and count twice, or one label would vanish from the outputs (a label is not hashed: it cannot
change a number).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from tasbench.arch import Arch
from tasbench.bounds import MAX_RUNS
from tasbench.data import DataConfig
from tasbench.errors import ConfigError, choice_error
from tasbench.installation import spec_path
from tasbench.presets import PRESETS
from tasbench.pretrained import load_teacher
from tasbench.pruner import check_ratio, get_pruner
from tasbench.recipes import Recipe
from tasbench.runner.experiment import RunConfig
from tasbench.runner.store import config_hash
from tasbench.runner.teacher import TeacherWeights
from tasbench.train import TrainConfig
from tasbench.untrusted import CHECKPOINT, SPEC, YAMLRefused, check_file, load_yaml, read_text, yaml_problem

TOP_KEYS = ("name", "description", "data", "networks", "shortcut", "teacher", "methods", "ratios", "seeds", "recipes")
METHOD_KEYS = ("method", "label", "options", "networks", "ratios", "recipes", "shortcut")


@dataclass(frozen=True)
class Sweep:
    name: str
    runs: list[RunConfig]


def load_sweep(path: str | Path, overrides: list[str] = ()) -> Sweep:
    """Read, override and validate the spec at `path` (or the shipped spec so named: "proxy"), then expand it."""
    path = spec_path(path)
    text = read_text(path, SPEC)
    try:
        spec = load_yaml(text)
    except yaml.YAMLError as e:
        where, problem = yaml_problem(e, text)
        if isinstance(e, YAMLRefused):
            raise ConfigError(f"sweep spec {str(path)!r}{', ' + where if where else ''}: {problem}") from None
        raise ConfigError(
            f"sweep spec {str(path)!r} is not valid YAML{' at ' + where if where else ''}: {problem}"
        ) from None
    if spec is None:
        raise ConfigError(f"sweep spec {str(path)!r} is empty; expected a mapping of keys (name, data, networks, ...)")
    if not isinstance(spec, dict):
        raise ConfigError(f"sweep spec {str(path)!r} must be a mapping of keys (name, data, networks, ...)")
    for pair in overrides:
        apply_override(spec, pair)
    try:
        return expand(spec, default_name=path.stem)
    except ConfigError as e:
        raise ConfigError(f"sweep spec {str(path)!r}: {e}") from None


def apply_override(spec: dict, pair: str) -> None:
    """Set `a.b.0.c=value` in the nested spec; the value is parsed as YAML (`[0, 1]`, `2`, `true`, `B`)."""
    key, sep, raw = pair.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {pair!r} is not of the form key=value (e.g. teacher.epochs=2)")
    try:
        value = load_yaml(raw)
    except YAMLRefused as e:
        raise ConfigError(f"override {pair!r}: {yaml_problem(e, raw)[1]}") from None
    except yaml.YAMLError:
        raise ConfigError(f"override {pair!r}: the value is not valid YAML") from None
    *parents, last = key.split(".")
    node = spec
    for i, part in enumerate([*parents, last]):
        here = ".".join([*parents, last][: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {pair!r}: {here!r} is not an index of a list of {len(node)}")
            part = int(part)
        elif not isinstance(node, dict):
            raise ConfigError(f"override {pair!r}: {here!r} is inside a {type(node).__name__}, not a mapping")
        if i == len(parents):
            node[part] = value
        else:
            if isinstance(node, dict) and part not in node:
                node[part] = {}
            node = node[part]


def expand(spec: dict, default_name: str = "sweep") -> Sweep:
    """The runs a parsed spec stands for, in the order methods, networks, ratios, recipes, seeds."""
    unknown = sorted(set(spec) - set(TOP_KEYS), key=repr)  # keys may be of any YAML type: 1, null, 2.5
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r}; allowed: {', '.join(TOP_KEYS)}")
    name = _text(spec, "name", default_name, "")
    data = build(DataConfig, spec.get("data", {}), "data")
    teacher = spec.get("teacher", {})
    if isinstance(teacher, dict) and "seed" in teacher:
        raise ConfigError("teacher.seed is set per run from 'seeds'; remove it")
    weights = None
    if isinstance(teacher, dict) and "weights" in teacher:
        teacher = dict(teacher)
        weights = teacher.pop("weights")
    teacher = build(TrainConfig, teacher, "teacher")
    teacher_file = _teacher_files(weights)
    seeds = _list(spec, "seeds", int, default=[0])
    shared = _axes(spec, "", {"networks": None, "ratios": [], "recipes": [{}], "shortcut": "official"})
    runs, entries, networks_run = [], [], set()
    for i, entry in enumerate(_list(spec, "methods", dict)):
        where = f"methods[{i}]"
        unknown = sorted(set(entry) - set(METHOD_KEYS), key=repr)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(METHOD_KEYS)}")
        if "method" not in entry:
            raise ConfigError(f"{where} has no 'method' (a pruner name, e.g. uniform)")
        pruner = get_pruner(str(entry["method"]))
        options = build(pruner.options, entry.get("options") or {}, f"{where}.options")
        label = _text(entry, "label", pruner.name, f"{where}.")
        # A method may replace any shared axis, e.g. L1's paper-faithful variants exist for ResNet-56/110 only.
        axes = {**shared, **_axes(entry, f"{where}.", shared)}
        if axes["networks"] is None:
            raise ConfigError(f"missing key 'networks' (at the top or in {where})")
        if not axes["ratios"]:
            raise ConfigError(f"{where} ({pruner.name}) has no ratios: give 'ratios' at the top or in the method")
        if "ratios" in entry:
            _check_ratio_keys(axes["ratios"], axes["networks"], f"{where}.ratios")
        networks_run |= set(axes["networks"])
        for network in axes["networks"]:
            for ratio in _ratios_of(axes["ratios"], network, where):
                for recipe in axes["recipes"]:
                    for seed in seeds:
                        run = RunConfig(
                            data,
                            network,
                            pruner.name,
                            options,
                            ratio,
                            seed,
                            recipe,
                            dataclasses.replace(teacher, seed=seed),
                            axes["shortcut"],
                            label,
                        )
                        run.arch()  # an unknown network, or one for other data, fails here with its name
                        run = teacher_file(run)
                        runs.append(run)
                        entries.append(i)
                        if len(runs) > MAX_RUNS:  # before a typo (seeds: [0, ..., 10**6]) expands for minutes
                            raise ConfigError(
                                f"the spec expands to more than {MAX_RUNS} runs (methods x networks x "
                                "ratios x recipes x seeds); split it into several sweeps"
                            )
    _check_ratio_keys(shared["ratios"], sorted(networks_run), "ratios")
    _check_distinct(runs, entries)
    return Sweep(name, runs)


def _teacher_files(weights: object):
    """`teacher.weights` -> a function giving a run its teacher file (TeacherWeights), if it has one: one PATH for
    every network, or {network: PATH}. Each file is checked once, here: it exists, is within the checkpoint size
    limit, and holds exactly the net its runs prune (loaded, as a run will load it)."""
    if weights is None:
        return lambda run: run
    if isinstance(weights, str):
        per_network = None
    elif isinstance(weights, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in weights.items()):
        per_network = weights
        unknown = sorted(set(weights) - set(PRESETS))
        if unknown:
            raise choice_error("network in teacher.weights", unknown[0], list(PRESETS))
    else:
        raise ConfigError(
            f"teacher.weights must be a path or a mapping network -> path (e.g. {{resnet50: resnet50.pth}}), "
            f"got {weights!r:.80}"
        )
    checked: dict[tuple[str, Arch], TeacherWeights] = {}

    def attach(run: RunConfig) -> RunConfig:
        path = weights if per_network is None else per_network.get(run.network)
        if path is None:  # not named: this network's teacher trains
            return run
        path = str(Path(path).expanduser())
        key = (path, run.arch())
        if key not in checked:
            check_file(path, CHECKPOINT)
            load_teacher(path, run.arch())  # a file of another net fails now, not after the other teachers trained
            checked[key] = TeacherWeights.of(path)
        return dataclasses.replace(run, teacher_weights=checked[key])

    return attach


def _check_distinct(runs: list[RunConfig], entries: list[int]) -> None:
    """No two runs share a run directory (`entries[k]`: the method entry that gave `runs[k]`)."""
    first: dict[str, int] = {}
    for k, run in enumerate(runs):
        j = first.setdefault(config_hash(run.config()), k)
        if j == k:
            continue
        a, b, other = entries[j], entries[k], runs[j]
        what = f"{run.method} {run.network} ratio={run.ratio} recipe={run.recipe.name} seed={run.seed}"
        if a == b:
            raise ConfigError(f"methods[{a}] gives the run {what} twice (two identical recipes?); remove the duplicate")
        if other.label != run.label:
            raise ConfigError(
                f"methods[{a}] and methods[{b}] are the same runs ({run.method}, same options; e.g. "
                f"{what}); labels {other.label!r} and {run.label!r} would share one run "
                f"directory and one label would vanish from the outputs; remove one or change an "
                f"option"
            )
        raise ConfigError(
            f"methods[{a}] and methods[{b}] are the same runs ({run.method}, same options, same label "
            f"{run.label!r}; e.g. {what}): each would count twice; remove one"
        )


def invalid_runs(runs: list[RunConfig]) -> dict[int, str]:
    """The runs whose method options cannot work on their net, by index, with why (each pruner's `check` hook:
    an L1 variant of a net Li et al. did not prune, a ratio below what the method reaches). Nothing trains.

        >>> invalid_runs(load_sweep("benchmarks/proxy.yaml", ["methods.3.options={variant: A}"]).runs)
        {14: "L1 variant 'A' is defined for the full resnet56 and resnet110 only ...", 15: "..."}
    """
    verdicts = {i: _verdict(cfg.method, cfg.options, cfg.arch(), cfg.ratio) for i, cfg in enumerate(runs)}
    return {i: why for i, why in verdicts.items() if why}


def check_runs(runs: list[RunConfig]) -> None:
    """A ConfigError naming the first invalid run (and how many there are), if any: `--fail-fast` stops here."""
    invalid = invalid_runs(runs)
    if invalid:
        i, why = next(iter(invalid.items()))
        more = f" (and {len(invalid) - 1} more invalid runs)" if len(invalid) > 1 else ""
        raise ConfigError(f"{runs[i].name} {runs[i].network} ratio={runs[i].ratio}: {why}{more}")


@functools.lru_cache(maxsize=4096)
def _verdict(method: str, options: object, arch: Arch, ratio: float) -> str:
    """Why `method` cannot prune `arch` to `ratio` ("" if it can); asked once per process (a check of a deep net's
    FLOP matching takes ~0.1 s, and seeds and recipes repeat the same question)."""
    check = get_pruner(method).check
    try:
        if check is not None:
            check(arch, options, ratio)
    except ConfigError as e:
        return str(e)
    return ""


def _axes(spec: dict, where: str, defaults: dict) -> dict:
    """The axes `spec` sets (all of them at the top level, else only those it names), validated."""
    top = where == ""
    out = {}
    if top or "networks" in spec:
        out["networks"] = _list(spec, "networks", str, default=defaults["networks"], where=where)
    if top or "ratios" in spec:
        out["ratios"] = _read_ratios(spec, where, defaults["ratios"])
    if top or "recipes" in spec:
        recipes = _list(spec, "recipes", dict, default=defaults["recipes"], where=where)
        out["recipes"] = [build(Recipe, r, f"{where}recipes[{i}]") for i, r in enumerate(recipes)]
    if top or "shortcut" in spec:
        out["shortcut"] = str(spec.get("shortcut", defaults["shortcut"]))
    return out


def _read_ratios(spec: dict, where: str, default: list) -> list[float] | dict[str, list[float]]:
    """`ratios`: one list for every network, or a mapping network -> list (the reproduce specs give each network
    the ratio of its released TAS shape)."""
    value = spec.get("ratios", default)
    if not isinstance(value, dict):
        ratios = _list(spec, "ratios", (int, float), default=default, where=where)
        return [_ratio(r, f"{where}ratios[{i}]") for i, r in enumerate(ratios)]
    if not value:
        raise ConfigError(f"{where + 'ratios'!r} is empty, so the sweep has no runs")
    out = {}
    for network in value:
        ratios = _list(value, network, (int, float), where=f"{where}ratios.")
        out[str(network)] = [_ratio(r, f"{where}ratios.{network}[{i}]") for i, r in enumerate(ratios)]
    return out


def _check_ratio_keys(ratios: list[float] | dict[str, list[float]], networks: list[str], where: str) -> None:
    """A per-network `ratios` mapping names only networks that are run: a typo must not pass unnoticed."""
    unknown = sorted(set(ratios) - set(networks)) if isinstance(ratios, dict) else []
    if unknown:
        raise ConfigError(
            f"{where!r} names network {unknown[0]!r}, which is not run here; networks: {', '.join(networks)}"
        )


def _ratios_of(ratios: list[float] | dict[str, list[float]], network: str, where: str) -> list[float]:
    if not isinstance(ratios, dict):
        return ratios
    if network not in ratios:
        raise ConfigError(
            f"{where} runs {network!r}, but the per-network 'ratios' name only "
            f"{', '.join(ratios)}; give its ratios there or in the method"
        )
    return ratios[network]


def build(cls: type, values: object, where: str):
    """`cls(**values)` with each key and type checked, and errors that say where in the spec they are."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of {cls.__name__} fields, got {values!r}")
    kinds = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in kinds:
            raise ConfigError(f"unknown key {key!r} in {where}; allowed: {', '.join(kinds)}")
        kind = kinds[key]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok, values = True, {**values, key: float(value)}
        if not ok:
            raise ConfigError(f"{where}.{key} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    try:
        return cls(**values)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _text(spec: dict, key: str, default: str, where: str) -> str:
    """A name shown in tables: a string, or a number read as one (`label: 2019`); a list or mapping is refused
    rather than printed as "['a', 'b']"."""
    value = spec.get(key) or default  # an empty label falls back to the default, as it always has
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfigError(f"{where + key!r} must be a string, got {value!r}")
    return str(value)


def _list(spec: dict, key: str, kind: type | tuple, default: list | None = None, where: str = "") -> list | None:
    if key not in spec:
        if default is None and key != "networks":  # networks may come from each method instead
            raise ConfigError(f"missing key {key!r}")
        return default
    value = spec[key]
    if not isinstance(value, list):
        raise ConfigError(f"{where + key!r} must be a list, got {value!r}")
    if not value:
        raise ConfigError(f"{where + key!r} is empty, so the sweep has no runs")
    for i, item in enumerate(value):
        if not isinstance(item, kind) or isinstance(item, bool):
            raise ConfigError(f"{where + key!r} holds {item!r}, not {_KIND_NAMES[kind]}")
        if kind is not dict and item in value[:i]:  # a recipe or method given twice is caught by _check_distinct
            raise ConfigError(
                f"{where + key!r} lists {item!r} twice ({where}{key}[{value.index(item)}] and "
                f"{where}{key}[{i}]): its runs would run once and count twice; remove one"
            )
    return value


_KIND_NAMES = {int: "an int", str: "a string", dict: "a mapping", (int, float): "a number"}


def _ratio(value: object, where: str) -> float:
    try:
        return check_ratio(value)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
