"""GPU discovery and slot planning (service.executors.gpus, plan_slots): what nvidia-smi says,
CUDA_VISIBLE_DEVICES in every form, --gpus, --workers-per-gpu; errors quote the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.executors.gpus import (
    ALL,
    Device,
    Gpu,
    GpuError,
    choose_pins,
    parse_listing,
    parse_query,
    parse_selectors,
    query_gpus,
    visible_devices,
)
from service.executors.local import plan_slots
from tests.support import fake_gpu_uuid, fake_mig_uuid, fake_nvidia_smi

UUID2 = fake_gpu_uuid(2)
MIG_A, MIG_B = fake_mig_uuid(1, 0), fake_mig_uuid(1, 1)


def h100(index: int, *mig: str) -> Gpu:
    device = Device(str(index), fake_gpu_uuid(index), "NVIDIA H100", 80 * 2**30)
    return Gpu(device, tuple(Device(str(index), m, "NVIDIA H100 MIG 3g.40gb") for m in mig))


FOUR = [h100(0), h100(1), h100(2), h100(3)]
WITH_MIG = [h100(0), h100(1, MIG_A, MIG_B), h100(2), h100(3)]


def visible(pins: list) -> list[str]:
    return [p.visible for p in pins]


# ---- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["0", "2,3", " 1 , 0 ", UUID2, f"0,{MIG_A}", f"MIG-{fake_gpu_uuid(1)}/1/0"],
)
def test_selectors_in_every_form_parse(text: str) -> None:
    assert parse_selectors(text) == [e.strip() for e in text.split(",")]


@pytest.mark.parametrize(
    ("text", "bad"), [("0,x", "'x'"), ("GPU-123", "'GPU-123'"), ("0,,1", "''"), ("-2", "'-2'")]
)
def test_a_bad_selector_is_quoted(text: str, bad: str) -> None:
    with pytest.raises(ValueError, match=f"{bad} is not a GPU index"):
        parse_selectors(text)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, ["2", "3"]),
        ({"CUDA_VISIBLE_DEVICES": UUID2}, [UUID2]),
        ({"CUDA_VISIBLE_DEVICES": ""}, []),
        ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
        ({"CUDA_VISIBLE_DEVICES": "NoDevFiles"}, []),
    ],
)
def test_cuda_visible_devices(environ: dict[str, str], expected: list[str] | None) -> None:
    assert visible_devices(environ) == expected


def test_a_bad_cuda_visible_devices_names_the_variable_and_value() -> None:
    with pytest.raises(GpuError, match=r"CUDA_VISIBLE_DEVICES: 'gpu2' is not a GPU index"):
        visible_devices({"CUDA_VISIBLE_DEVICES": "gpu2"})


def test_query_rows_with_and_without_units() -> None:
    text = f"0, {fake_gpu_uuid(0)}, NVIDIA H100 80GB HBM3, 81559, Disabled\n1, {UUID2}, X, [N/A]\n"
    assert parse_query(text) == [
        Device("0", fake_gpu_uuid(0), "NVIDIA H100 80GB HBM3", 81559 * 2**20),
        Device("1", UUID2, "X", None),
    ]


def test_mig_listing_new_and_old_forms() -> None:
    old = f"MIG-{fake_gpu_uuid(1)}/1/0"
    text = (
        f"GPU 0: NVIDIA A100-SXM4-40GB (UUID: {fake_gpu_uuid(0)})\n"
        f"GPU 1: NVIDIA A100-SXM4-40GB (UUID: {fake_gpu_uuid(1)})\n"
        f"  MIG 3g.20gb     Device  0: (UUID: {MIG_A})\n"
        f"  MIG 1g.5gb Device 1: (UUID: {old})\n"
    )
    listing = parse_listing(text)
    assert listing["0"] == ()
    assert [(d.uuid, d.name) for d in listing["1"]] == [
        (MIG_A, "NVIDIA A100-SXM4-40GB MIG 3g.20gb"),
        (old, "NVIDIA A100-SXM4-40GB MIG 1g.5gb"),
    ]


# ---- choosing -------------------------------------------------------------------------------


def test_without_flags_every_gpu_and_every_mig_instance() -> None:
    pins = choose_pins(None, visible=None, gpus=WITH_MIG)
    assert visible(pins) == ["0", MIG_A, MIG_B, "2", "3"]
    assert [p.label for p in pins] == ["0", "1m0", "1m1", "2", "3"]
    assert pins[0].memory_bytes == 80 * 2**30 and pins[0].name == "NVIDIA H100"


def test_cuda_visible_devices_is_the_allocation_in_its_order() -> None:
    assert visible(choose_pins(None, visible=["3", "1"], gpus=FOUR)) == ["3", "1"]
    assert visible(choose_pins(ALL, visible=[UUID2], gpus=FOUR)) == [UUID2]
    assert visible(choose_pins(None, visible=["2", "3"], gpus=None)) == ["2", "3"]


def test_gpus_picks_within_the_allocation_by_index_or_uuid() -> None:
    assert visible(choose_pins(["3"], visible=["2", "3"], gpus=FOUR)) == ["3"]
    assert visible(choose_pins([UUID2.upper()], visible=["2", "3"], gpus=FOUR)) == [UUID2.upper()]
    assert visible(choose_pins([MIG_B], visible=None, gpus=WITH_MIG)) == [MIG_B]
    assert visible(choose_pins(["1"], visible=[MIG_A, MIG_B], gpus=WITH_MIG)) == [MIG_A, MIG_B]


@pytest.mark.parametrize(
    ("request_", "environ_visible", "gpus", "message"),
    [
        (["0"], ["2", "3"], FOUR, "GPU '0' is outside CUDA_VISIBLE_DEVICES='2,3'"),
        ([fake_gpu_uuid(0)], ["2", "3"], FOUR, "outside CUDA_VISIBLE_DEVICES"),
        (["0"], ["2", "3"], None, "GPU '0' is outside CUDA_VISIBLE_DEVICES='2,3'"),
        (["7"], None, FOUR, "no GPU '7' on this machine \\(nvidia-smi lists 0 \\(GPU-"),
        ([fake_gpu_uuid(9)], None, FOUR, f"no GPU '{fake_gpu_uuid(9)}'"),
        (["2", UUID2], None, FOUR, f"GPU '{UUID2}' is listed twice"),
        (ALL, None, None, "--gpus all: no GPU found \\(nvidia-smi is not installed"),
        (ALL, [], FOUR, "--gpus all: no GPU found \\(CUDA_VISIBLE_DEVICES hides every GPU"),
        (["1"], [MIG_A], WITH_MIG, f"GPU '1' is outside CUDA_VISIBLE_DEVICES='{MIG_A}'"),
    ],
)
def test_impossible_choices_say_why(
    request_: list[str] | str,
    environ_visible: list[str] | None,
    gpus: list[Gpu] | None,
    message: str,
) -> None:
    with pytest.raises(GpuError, match=message):
        choose_pins(request_, visible=environ_visible, gpus=gpus)  # type: ignore[arg-type]


def test_an_allocation_naming_an_unknown_gpu_is_an_error() -> None:
    with pytest.raises(GpuError, match="CUDA_VISIBLE_DEVICES: no GPU '5'"):
        choose_pins(None, visible=["2", "5"], gpus=FOUR)


# ---- plan_slots with a fake nvidia-smi -----------------------------------------------------


@pytest.fixture
def four_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", fake_nvidia_smi(tmp_path / "bin", mig_gpu=1)["PATH"])


def slots(**kwargs: object) -> list[tuple[str, str | None]]:
    return [(s.name, s.gpu) for s in plan_slots(**kwargs)]  # type: ignore[arg-type]


def test_query_gpus_reads_the_fake(four_gpus: None) -> None:
    gpus = query_gpus()
    assert gpus is not None and [g.device.index for g in gpus] == ["0", "1", "2", "3"]
    assert [m.uuid for m in gpus[1].mig] == [MIG_A, MIG_B] and gpus[0].mig == ()
    assert gpus[0].device.memory_bytes == 81559 * 2**20


def test_plan_slots_follows_the_allocation(four_gpus: None) -> None:
    env = {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert slots(gpus=None, cpu_workers=None, environ=env) == [("gpu2", "2"), ("gpu3", "3")]
    assert slots(gpus=None, cpu_workers=None, workers_per_gpu=2, environ=env) == [
        ("gpu2-w0", "2"),
        ("gpu2-w1", "2"),
        ("gpu3-w0", "3"),
        ("gpu3-w1", "3"),
    ]
    assert slots(gpus=[UUID2], cpu_workers=None, environ={}) == [("gpu2", UUID2)]
    assert slots(gpus=ALL, cpu_workers=None, environ={}) == [
        ("gpu0", "0"),
        ("gpu1m0", MIG_A),
        ("gpu1m1", MIG_B),
        ("gpu2", "2"),
        ("gpu3", "3"),
    ]
    assert slots(gpus=None, cpu_workers=2, environ=env) == [("cpu0", None), ("cpu1", None)]
    assert slots(gpus=None, cpu_workers=None, environ={"CUDA_VISIBLE_DEVICES": ""})[0][1] is None


def test_plan_slots_without_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert slots(gpus=["0", "1"], cpu_workers=None, environ={}) == [("gpu0", "0"), ("gpu1", "1")]
    assert slots(gpus=None, cpu_workers=None, environ={"CUDA_VISIBLE_DEVICES": UUID2}) == [
        (f"gpu{UUID2}", UUID2)
    ]
    assert all(gpu is None for _, gpu in slots(gpus=None, cpu_workers=None, environ={}))
    with pytest.raises(GpuError, match="--workers-per-gpu must be at least 1; got 0"):
        plan_slots(gpus=None, cpu_workers=None, workers_per_gpu=0, environ={})
