"""Untrusted files are read with bounds (tasbench/untrusted.py): regular files only, a size limit per kind, YAML
without aliases or duplicate keys, checkpoints whose zip entries are checked before anything inflates, and net
shapes (from a .config or a model file) within Arch's bounds.

Every kind of file a user hands tas-bench gets a FIFO, a character device and an oversized (sparse) file; none may
hang, be read, or fill memory. A FIFO row would block in open() if the type check came after it, so every row runs
under an alarm that turns a hang into a failure.
"""

import dataclasses
import os
import signal
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
import torch
from test_bad_files import CIFAR10, CONFIG, PAPER, RESNET20_CONFIG, SPEC, SWEEP, WEIGHTS, cifar10, config, model_file
from test_bad_files import text as spec_text
from test_report import fake_run

import tasbench.checkpoint
from tasbench import untrusted
from tasbench.arch import MAX_BLOCKS, MAX_CLASSES, MAX_WIDTH
from tasbench.checkpoint import load_checkpoint
from tasbench.errors import ConfigError
from tasbench.presets import resnet20
from tasbench.runner.spec import load_sweep
from tasbench.untrusted import CHECKPOINT, GB, MB, FileKind, human_size, load_yaml, read_bytes

from helpers import assert_one_line_error

REGRESS = ["regress", "--expected", "{f}"]
REPORT_RUNS = ["report", "--runs", "{f}", "--paper", "none"]
SECONDS = 20  # far more than any row needs; a row that blocks fails instead of hanging the suite


@pytest.fixture(autouse=True)
def no_hang():
    def fail(*_):
        raise TimeoutError(f"blocked for {SECONDS} s: a FIFO or device was opened or read")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def fifo(name: str):
    def make(d):
        os.mkfifo(d / name)
        return d / name

    return make


def dev_zero(d):
    return Path("/dev/zero")


def link_to_dev_zero(name: str):
    def make(d):
        (d / name).symlink_to("/dev/zero")
        return d / name

    return make


def sparse(name: str, size: int):
    """A file of `size` bytes that takes no disk (a hole): its size is all a reader may look at."""

    def make(d):
        with open(d / name, "wb") as f:
            f.truncate(size)
        return d / name

    return make


def cifar_batch(name: str, replace):
    """A CIFAR-10 directory whose batch `name` is replaced by `replace(path)` (a FIFO, a hole, a directory)."""

    def make(d):
        cifar10()(d)
        path = d / "cifar-10-batches-py" / name
        path.unlink()
        replace(path)
        return d

    return make


def results_with(replace):
    """A results root with one finished run whose metrics.json is replaced by `replace(path)`."""

    def make(d):
        run = fake_run(d / "runs", "Uniform", 0.5, 0, 91.0, 62_000_000)
        (run / "metrics.json").unlink()
        replace(run / "metrics.json")
        return d / "runs"

    return make


def sparse_file(size: int):
    def replace(path):
        with open(path, "wb") as f:
            f.truncate(size)

    return replace


def set_arch(**fields):
    def apply(ckpt):
        ckpt["arch"].update(fields)

    return apply


def xchannels(first: int = 3, stem: int = 16) -> list[int]:
    return [first, stem, *resnet20().xchannels[2:]]


def zip_bomb(path: Path, entries: int, entry_size: int) -> Path:
    """A zip of `entries` deflated entries of `entry_size` zeros each, written by hand from one compressed copy:
    96 x 64 MiB (6.4 GB declared) costs 6 MB of disk and one 64 MiB compression."""
    zeros = bytes(entry_size)
    crc = zlib.crc32(zeros)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, as zip stores it
    packed = packer.compress(zeros) + packer.flush()
    del zeros
    local, central = bytearray(), bytearray()
    for i in range(entries):
        name = f"bomb/data/{i}".encode()
        offset = len(local)
        local += (
            struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(packed), entry_size, len(name), 0)
            + name
            + packed
        )
        central += (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(packed),
                entry_size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, entries, entries, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + end))
    return path


def deflated_checkpoint(path: Path, numel: int) -> Path:
    """A real torch.save checkpoint of `numel` zeros, re-zipped deflated: tiny on disk, `4 * numel` bytes inflated."""
    torch.save({"zeros": torch.zeros(numel)}, path.with_suffix(".stored"))
    with zipfile.ZipFile(path.with_suffix(".stored")) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in src.infolist():
            out.writestr(entry.filename, src.read(entry))
    return path


def rezipped(method: int):
    def make(d):
        model_file()(d)
        with zipfile.ZipFile(d / "model.pt") as src, zipfile.ZipFile(d / "m.pt", "w", method) as out:
            for entry in src.infolist():
                out.writestr(entry.filename, src.read(entry))
        return d / "m.pt"

    return make


UNTRUSTED = [
    # sweep specs
    (SWEEP, fifo("s.yaml"), "sweep spec '{f}' is a FIFO (named pipe), not a YAML file"),
    (SWEEP, dev_zero, "sweep spec '/dev/zero' is a character device, not a YAML file"),
    (SWEEP, link_to_dev_zero("s.yaml"), "sweep spec '{f}' is a character device, not a YAML file"),
    (SWEEP, sparse("s.yaml", 3_200_000), "sweep spec '{f}' is 3.2 MB; specs are limited to 1 MB"),
    (
        SWEEP,
        spec_text(
            'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nname: *b\n" + SPEC,
            "s.yaml",
        ),
        "sweep spec '{f}', line 2, column 8: YAML aliases (*a) are not allowed; write the value out",
    ),
    (
        SWEEP,
        spec_text("name: &n bomb\ndescription: *n\n" + SPEC, "s.yaml"),
        "sweep spec '{f}', line 2, column 14: YAML aliases (*n) are not allowed",
    ),
    (
        SWEEP,
        spec_text(SPEC + "seeds: [0]\nseeds: [1]\n", "s.yaml"),
        "sweep spec '{f}', line 5, column 1: duplicate key 'seeds'",
    ),
    (
        SWEEP,
        spec_text(SPEC.replace("{method: uniform}", "{method: uniform, method: l1}"), "s.yaml"),
        "sweep spec '{f}', line 2, column 29: duplicate key 'method'",
    ),
    (
        SWEEP,
        spec_text("name: a\x07b\n" + SPEC, "s.yaml"),
        "sweep spec '{f}' is not valid YAML at line 1, column 8: control character '\\x07' is not allowed",
    ),
    (
        SWEEP,
        spec_text(SPEC + "description: x\x1by\n", "s.yaml"),
        "sweep spec '{f}' is not valid YAML at line 4, column 15: control character '\\x1b' is not allowed",
    ),
    (
        SWEEP,
        spec_text("name: " + "[" * 5000 + "]" * 5000 + "\n" + SPEC, "s.yaml"),
        "sweep spec '{f}': nested too deeply (lists or mappings some 1000 levels deep)",
    ),
    (
        SWEEP + ["--set", "seeds=[&s 0, *s]"],
        spec_text(SPEC, "s.yaml"),
        "override 'seeds=[&s 0, *s]': YAML aliases (*s) are not allowed; write the value out",
    ),
    (
        SWEEP + ["--set", "data={{dataset: proxy, dataset: cifar10}}"],
        spec_text(SPEC, "s.yaml"),
        "override 'data={{dataset: proxy, dataset: cifar10}}': duplicate key 'dataset'",
    ),
    # official TAS .config imports
    (CONFIG, fifo("t.config"), "TAS config file '{f}' is a FIFO (named pipe), not a .config file"),
    (CONFIG, dev_zero, "TAS config file '/dev/zero' is a character device, not a .config file"),
    (CONFIG, sparse("t.config", 2 * MB), "TAS config file '{f}' is 2 MB; TAS configs are limited to 1 MB"),
    (
        CONFIG,
        spec_text("[" * 100_000, "t.config"),
        "TAS config file '{f}': not a TAS config: JSON nested some 1000 levels deep (the format nests 3)",
    ),
    (
        CONFIG,
        config(r'\["3", "16"', '["4", "16"'),
        "TAS config file '{f}': xchannels[0] is the input image's channels and must be 3 (RGB), got 4",
    ),
    (
        CONFIG,
        config(r'\["3", "16"', '["3", "1000000"'),
        f"TAS config file '{{f}}': xchannels[1]=1000000; tas-bench builds convs of at most {MAX_WIDTH} channels",
    ),
    (
        CONFIG,
        config(r'("depth"\s*:\s*\[\s*"int"\s*,\s*)"20"', r'\1"6000002"'),
        f"TAS config file '{{f}}': arch layers asks for 1000000 blocks in a stage; tas-bench builds at most "
        f"{MAX_BLOCKS}",
    ),
    (
        CONFIG,
        config(r'("class_num"\s*:\s*\[\s*"int"\s*,\s*)"10"', r'\1"1000000000"'),
        f"TAS config file '{{f}}': num_classes 1000000000; tas-bench builds classifiers of at most {MAX_CLASSES} "
        f"classes",
    ),
    # checkpoints and model files
    (WEIGHTS, fifo("m.pt"), "checkpoint '{f}' is a FIFO (named pipe), not a checkpoint file"),
    (WEIGHTS, dev_zero, "checkpoint '/dev/zero' is a character device, not a checkpoint file"),
    (WEIGHTS, sparse("m.pt", 5 * GB), "checkpoint '{f}' is 5 GB; checkpoints are limited to 4 GB"),
    (
        WEIGHTS,
        lambda d: zip_bomb(d / "bomb.pt", 96, 64 * 2**20),
        "checkpoint '{f}' (6.3 MB) inflates to 6.4 GB; checkpoints are limited to 4 GB",
    ),
    (
        WEIGHTS,
        rezipped(zipfile.ZIP_LZMA),
        "checkpoint '{f}' is not a PyTorch file (entry 'archive/data.pkl' uses zip method 14; torch.save stores",
    ),
    (
        WEIGHTS,
        model_file(lambda ckpt: ckpt.pop("arch")),
        "model file '{f}' has no 'arch' entry (it holds 'format', 'state_dict'); was it written by tas-bench?",
    ),
    (
        WEIGHTS,
        model_file(set_arch(xchannels=xchannels(first=4))),
        "model file '{f}': xchannels[0] is the input image's channels and must be 3 (RGB), got 4",
    ),
    (
        WEIGHTS,
        model_file(set_arch(xchannels=xchannels(first=1))),
        "model file '{f}': xchannels[0] is the input image's channels and must be 3 (RGB), got 1",
    ),
    (
        WEIGHTS,
        model_file(set_arch(xchannels=xchannels(stem=10**6))),
        f"model file '{{f}}': xchannels[1]=1000000; tas-bench builds convs of at most {MAX_WIDTH} channels",
    ),
    (
        ["train", "--teacher", "{f}", "--epochs", "1"],
        fifo("t.pt"),
        "checkpoint '{f}' is a FIFO (named pipe), not a checkpoint file",
    ),
    # CIFAR batches
    (
        CIFAR10,
        cifar_batch("data_batch_1", os.mkfifo),
        "CIFAR-10 batch '{f}/cifar-10-batches-py/data_batch_1' is a FIFO (named pipe), not a CIFAR batch file",
    ),
    (
        CIFAR10,
        cifar_batch("data_batch_2", sparse_file(250 * MB)),
        "CIFAR-10 batch '{f}/cifar-10-batches-py/data_batch_2' is 250 MB; CIFAR batches are limited to 200 MB",
    ),
    (
        CIFAR10,
        cifar_batch("test_batch", Path.mkdir),
        "CIFAR-10 batch '{f}/cifar-10-batches-py/test_batch' is a directory, not a CIFAR batch file",
    ),
    # the paper's numbers, stored regression results, a results root's run files
    (PAPER, fifo("p.csv"), "paper results '{f}' is a FIFO (named pipe), not a CSV file"),
    (PAPER, dev_zero, "paper results '/dev/zero' is a character device, not a CSV file"),
    (PAPER, sparse("p.csv", 20 * MB), "paper results '{f}' is 20 MB; paper results files are limited to 10 MB"),
    (REGRESS, fifo("r.json"), "stored regression results '{f}' is a FIFO (named pipe), not a JSON file"),
    (REGRESS, dev_zero, "stored regression results '/dev/zero' is a character device, not a JSON file"),
    (
        REGRESS,
        sparse("r.json", 60 * MB),
        "stored regression results '{f}' is 60 MB; stored regression results are limited to 50 MB",
    ),
    (REPORT_RUNS, results_with(os.mkfifo), "metrics.json' is damaged: it is a FIFO (named pipe), not a JSON file"),
    (
        REPORT_RUNS,
        results_with(sparse_file(60 * MB)),
        "metrics.json' is damaged: it is 60 MB; run files are limited to 50 MB",
    ),
]


@pytest.mark.parametrize("argv,make,message", UNTRUSTED, ids=[m[:50] for _, _, m in UNTRUSTED])
def test_an_untrusted_file_is_one_clear_line(capsys, monkeypatch, tmp_path, argv, make, message):
    monkeypatch.chdir(tmp_path)
    path = str(make(tmp_path))
    argv = [a.format(f=path) for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "out")]
    assert_one_line_error(capsys, argv, message.format(f=path))


def test_a_fifo_config_is_refused_at_once_by_the_console_script(tmp_path):
    """As a real process, which a hang would leave running: the refusal comes before any open()."""
    os.mkfifo(tmp_path / "t.config")
    result = subprocess.run(
        [sys.executable, "-m", "tasbench.cli", "flops", "--tas-config", str(tmp_path / "t.config")],
        capture_output=True,
        text=True,
        timeout=SECONDS - 5,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert (
        result.stderr == f"tas-bench: error: TAS config file '{tmp_path / 't.config'}' is a FIFO (named pipe), "
        "not a .config file\n"
    )


def test_the_checkpoint_limit_is_4_gb_and_bounds_what_entries_inflate_to(tmp_path, monkeypatch):
    """The real limit, 4 GB (training checkpoints of ResNet-50 weigh ~100-300 MB), on a 64 MiB-entry zip bomb; and
    torch.load is never reached: the entries are refused from the central directory alone."""
    assert CHECKPOINT.limit == 4 * GB and human_size(CHECKPOINT.limit) == "4 GB"
    bomb = zip_bomb(tmp_path / "bomb.pt", 70, 64 * 2**20)  # 4.7 GB declared
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load inflated a zip bomb"))
    with pytest.raises(ConfigError, match=r"\(4.6 MB\) inflates to 4.7 GB; checkpoints are limited to 4 GB$"):
        load_checkpoint(bomb)


def test_a_deflated_checkpoint_loads_within_the_limit_and_is_refused_past_it(tmp_path, monkeypatch):
    """A deflated archive is a valid checkpoint (torch reads it); what counts is what it inflates to, not its size."""
    path = deflated_checkpoint(tmp_path / "z.pt", 1_000_000)  # 4 MB of zeros in a few kB
    assert path.stat().st_size < 100_000
    assert load_checkpoint(path)["zeros"].shape == (1_000_000,)
    monkeypatch.setattr(tasbench.checkpoint, "CHECKPOINT", dataclasses.replace(CHECKPOINT, limit=1 * MB))
    with pytest.raises(ConfigError, match=r"inflates to 4 MB; checkpoints are limited to 1 MB$"):
        load_checkpoint(path)


ALLOCATOR_FAILED = RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 6442450944 bytes"
)  # torch's own words


@pytest.mark.parametrize("error", [MemoryError(), ALLOCATOR_FAILED])
def test_running_out_of_memory_is_not_called_truncated(tmp_path, monkeypatch, error):
    model_file()(tmp_path)

    def load(*args, **kwargs):
        raise error

    monkeypatch.setattr(torch, "load", load)
    with pytest.raises(ConfigError) as caught:
        load_checkpoint(tmp_path / "model.pt")
    assert "truncated" not in str(caught.value)
    assert str(caught.value).startswith(
        f"checkpoint '{tmp_path / 'model.pt'}' (1.1 MB of entries) does not fit in "
        f"memory: loading it ran out; free memory"
    )


def test_a_file_that_grows_past_its_limit_while_read_is_cut_off(tmp_path):
    """/proc files report size 0 and hold more: the read stops at limit + 1 bytes and the limit is named."""
    kind = FileKind("probe", "probes", "a probe file", 100)
    assert os.stat("/proc/self/status").st_size == 0
    with pytest.raises(
        ConfigError,
        match=r"^probe '/proc/self/status' is over 100 bytes; probes are limited to "
        r"100 bytes$",
    ):
        read_bytes("/proc/self/status", kind)
    (tmp_path / "ok").write_bytes(b"x" * 100)
    assert read_bytes(tmp_path / "ok", kind) == b"x" * 100


def test_missing_and_unreadable_files_say_so(tmp_path):
    kind = FileKind("probe", "probes", "a probe file", 100)
    with pytest.raises(ConfigError, match=r"^probe '.*nope' does not exist$"):
        read_bytes(tmp_path / "nope", kind)
    (tmp_path / "dangling").symlink_to(tmp_path / "nope")
    with pytest.raises(ConfigError, match=r"^probe '.*dangling' does not exist$"):
        read_bytes(tmp_path / "dangling", kind)
    with pytest.raises(ConfigError, match=r"^probe '.*plain-file/x' cannot be read \(Not a directory\)$"):
        (tmp_path / "plain-file").write_text("")
        read_bytes(tmp_path / "plain-file" / "x", kind)


def test_a_socket_is_refused_as_a_socket(tmp_path):
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "s.yaml"))
    try:
        with pytest.raises(ConfigError, match=r"^sweep spec '.*s.yaml' is a socket, not a YAML file$"):
            load_sweep(tmp_path / "s.yaml")
    finally:
        server.close()


def test_scientific_notation_is_a_float_as_in_yaml_1_2(tmp_path):
    """YAML 1.1 reads `5e-1` as a string ("not a number"); specs read it as 0.5. Integers stay integers."""
    (tmp_path / "s.yaml").write_text(SPEC.replace("[0.5]", "[5e-1]") + "teacher: {lr: 1e-1, epochs: 2}\n")
    sweep = load_sweep(tmp_path / "s.yaml")
    assert [run.ratio for run in sweep.runs] == [0.5]
    assert sweep.runs[0].teacher.lr == 0.1 and sweep.runs[0].teacher.epochs == 2
    assert load_yaml("[5e-1, 1E6, -2.5e+3, .5e1, 5, 1_000, e5, 5e, 0x10]") == [
        0.5,
        1e6,
        -2500.0,
        5.0,
        5,
        1000,
        "e5",
        "5e",
        16,
    ]
    assert load_sweep(tmp_path / "s.yaml", ["ratios=[25e-2]"]).runs[0].ratio == 0.25


def test_anchors_without_aliases_and_distinct_keys_still_load():
    assert load_yaml("a: &x 1\nb: {c: 1, d: 2}\n") == {"a": 1, "b": {"c": 1, "d": 2}}


def test_a_shipped_spec_and_config_read_within_their_limits():
    """The limits leave room: every shipped spec and .config is far below them."""
    from tasbench.installation import SPECS_DIR

    for path in [*SPECS_DIR.glob("*.yaml")]:
        assert path.stat().st_size < untrusted.SPEC.limit // 100
        load_sweep(path)
    assert len(RESNET20_CONFIG.encode()) < untrusted.TAS_CONFIG.limit // 100


def test_a_search_checkpoint_without_its_model_is_one_clear_error(tmp_path):
    from test_tas_search import FAST

    from tas.search import run_search
    from tasbench.data import DataConfig, load_data

    from helpers import tiny_arch

    proxy = load_data(DataConfig("proxy", proxy_train=128, proxy_test=16))
    cfg = dataclasses.replace(FAST, epochs=1, batch_size=64)
    run_search(tiny_arch(), proxy, cfg, 0.5, progress=False, checkpoint_path=tmp_path / "c.pt")
    state = torch.load(tmp_path / "c.pt", weights_only=True)
    del state["model"]
    torch.save(state, tmp_path / "c.pt")
    with pytest.raises(ConfigError, match=r"^search checkpoint '.*c.pt' has no 'model' entry \(it holds 'a_opt', "):
        run_search(tiny_arch(), proxy, cfg, 0.5, progress=False, checkpoint_path=tmp_path / "c.pt")


def test_the_wandb_reader_is_bounded_too(tmp_path):
    from tasbench.report.compare import logged_runs
    from tasbench.report.wandb_log import LOGGED

    (tmp_path / "offline-run-x").mkdir()
    os.mkfifo(tmp_path / "offline-run-x" / LOGGED)
    with pytest.raises(ConfigError, match=r"tas-bench-logged.json.* it is a FIFO \(named pipe\)"):
        logged_runs(tmp_path)
    (tmp_path / "offline-run-x" / LOGGED).unlink()
    sparse(f"offline-run-x/{LOGGED}", 2 * GB)(tmp_path)
    with pytest.raises(ConfigError, match=r"tas-bench-logged.json.* 2 GB; run files are limited to 50 MB"):
        logged_runs(tmp_path)
