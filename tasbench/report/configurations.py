"""A run's configuration: its hashed config (params.json) without the seed; runs of one configuration are its seeds.

A report averages over seeds only: two runs are seeds of one configuration when their configs agree in every field
(data, teacher recipe, method options, recipe, shortcut, ratio, arch) but the seed and what the seed alone changes
(the teacher's seed, and so the teacher's hash). Fields are dotted paths, named as a sweep spec's `--set` names them
(`teacher.epochs`, not `teacher.train.epochs`)::

    >>> config = {"ratio": 0.5, "seed": 1, "recipe": {"name": "kd", "epochs": 1},
    ...           "teacher": {"hash": "51e77754bc97", "train": {"epochs": 1, "seed": 1}}}
    >>> a = configuration(config)
    >>> a
    {'ratio': 0.5, 'recipe.name': 'kd', 'recipe.epochs': 1, 'teacher.epochs': 1}
    >>> b = {**a, "recipe.epochs": 2}
    >>> configuration_id(a), configuration_id(b)
    ('0d37bd9a932c', '739ff08bb240')
    >>> differences([a, b])
    ['recipe.epochs=1', 'recipe.epochs=2']
"""

from __future__ import annotations

import json

from tasbench.runner.store import config_hash

# What only the seed changes: the run's seed, the teacher's (the sweep sets it to the run's) and so the teacher's hash.
SEED_FIELDS = ("seed", "teacher.train.seed", "teacher.hash")
# The unpruned teacher's own config minus its seed, as `configuration` names it (see RunConfig.teacher_config).
TEACHER_PREFIXES = ("data.", "arch.", "teacher.")
# Named elsewhere in a table row (its own column, or a table per dataset and network), or a copy of another field.
SHOWN = ("ratio", "recipe.name", "network", "data.dataset", "arch.shortcut", "arch.num_classes")


def flatten(config: dict, prefix: str = "") -> dict[str, object]:
    """Nested dicts as one level of dotted keys; lists become tuples (hashable, comparable)."""
    flat: dict[str, object] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = tuple(value) if isinstance(value, list) else value
    return flat


def configuration(config: dict) -> dict[str, object]:
    """The flattened config minus the seed fields, with the teacher's recipe under `teacher.` as a spec names it."""
    flat = flatten(config)
    return {_spec_name(k): v for k, v in flat.items() if k not in SEED_FIELDS}


def _spec_name(field: str) -> str:
    return "teacher." + field.removeprefix("teacher.train.") if field.startswith("teacher.train.") else field


def teacher_configuration(fields: dict[str, object]) -> dict[str, object]:
    """The fields of `configuration(...)` that decide the unpruned teacher: data, network and shortcut (and so the
    arch), and the teacher's recipe."""
    return {k: v for k, v in fields.items() if k.startswith(TEACHER_PREFIXES) or k in ("network", "shortcut")}


def configuration_id(fields: dict[str, object]) -> str:
    """12 hex chars naming a configuration (or any set of its fields), as `config_hash` names a run."""
    return config_hash(fields)


def differences(configurations: list[dict[str, object]]) -> list[str]:
    """For each configuration, `field=value` of the fields in which the given configurations differ, joined by ', '
    (the fields a table shows anyway, such as the ratio, left out); '' for each when they agree."""
    keys = sorted({k for c in configurations for k in c} - set(SHOWN))
    varying = [k for k in keys if len({_text(c.get(k)) for c in configurations}) > 1]
    return [", ".join(f"{k}={_text(c.get(k))}" for k in varying) for c in configurations]


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(list(value) if isinstance(value, tuple) else value, separators=(",", ":"))
