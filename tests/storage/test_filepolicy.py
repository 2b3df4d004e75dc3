"""The central file-name policy (ROBUSTNESS 32-33) under POSIX and Windows path rules."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiodimse.services.filepolicy import (
    Layout,
    UnsafePathError,
    derived_name,
    is_temporary_name,
    is_valid_uid,
    relative_parts,
    relative_path,
    resolve_inside,
    safe_patient_component,
    safe_uid_component,
    temporary_name,
)

#: ROBUSTNESS 32: the hostile strings, each one a way some stack got it wrong.
HOSTILE = [
    "../../x",
    "/etc/passwd",
    "..",
    ".",
    "",
    "1." + "2" * 70,  # 65+ characters
    "1.2\x00.3",
    "1.2\\3",
    "C:\\x",
    "a:b",
    "1.2.3.ä",
    "CON",
    "nul.txt",
    "COM1",
    "1.2.3.",
    "1.2.3 x",
    "1.2\n3",
    "\\\\server\\share",
    "1.2/3",
    "...",
]

_WIN_FORBIDDEN = set('<>:"/\\|?*')


def assert_safe_component(name: str) -> None:
    """One component, safe as a file or directory name under POSIX and Windows rules."""
    assert 0 < len(name) <= 68
    assert name not in (".", "..")
    assert not (set(name) & _WIN_FORBIDDEN)
    assert all(32 <= ord(c) < 127 for c in name)
    assert not name.endswith((".", " "))
    assert name.split(".", 1)[0].upper() not in {
        "CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
        *(f"LPT{i}" for i in range(10)),
    }  # fmt: skip
    for flavour in (PurePosixPath, PureWindowsPath):
        p = flavour(name)
        assert p.parts == (name,), (flavour, name)
        assert not p.is_absolute() and not p.anchor and not p.drive


def assert_safe_parts(parts: tuple[str, ...]) -> None:
    for part in parts:
        assert_safe_component(part)
    for flavour in (PurePosixPath, PureWindowsPath):
        p = flavour(*parts)
        assert p.parts == parts
        assert not p.is_absolute() and not p.anchor
        assert ".." not in p.parts


def test_valid_uid_is_used_as_is() -> None:
    uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    assert is_valid_uid(uid)
    assert relative_path(sop_instance_uid=uid) == PurePosixPath(uid + ".dcm")
    # PS3.5 6.2: trailing NUL/space padding is not part of the value.
    assert safe_uid_component(uid + "\x00") == uid


@pytest.mark.parametrize(
    ("uid", "ok"),
    [
        ("1.2.3", True),
        ("0", True),
        ("1.0.3", True),
        ("1.02.3", False),  # leading zero
        ("1..3", False),
        (".1.3", False),
        ("1.2.3.", False),
        ("1.2.a", False),
        ("1." + "2" * 62, True),  # 64 characters
        ("1." + "2" * 63, False),  # 65 characters
        ("", False),
    ],
)
def test_uid_validity_ps35_9_1(uid: str, ok: bool) -> None:
    assert is_valid_uid(uid) is ok


@pytest.mark.parametrize("value", HOSTILE)
def test_robustness_32_hostile_sop_instance_uid_gets_a_derived_safe_name(value: str) -> None:
    parts = relative_parts(sop_instance_uid=value)
    assert parts == (derived_name(value) + ".dcm",)
    assert_safe_parts(parts)


@pytest.mark.parametrize("value", HOSTILE)
def test_robustness_33_hostile_tree_values_get_derived_safe_names(value: str) -> None:
    parts = relative_parts(
        sop_instance_uid=value,
        layout=Layout.TREE,
        patient_id=value,
        study_instance_uid=value,
        series_instance_uid=value,
    )
    assert len(parts) == 4
    assert_safe_parts(parts)
    assert parts[0] == derived_name(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_robustness_32_resolves_inside_root(tmp_path: Path, value: str) -> None:
    parts = relative_parts(
        sop_instance_uid=value, layout=Layout.TREE, patient_id=value, study_instance_uid=value
    )
    target = resolve_inside(tmp_path, parts)
    assert tmp_path.resolve() in target.parents


def test_resolve_inside_refuses_escapes_and_links(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UnsafePathError):
        resolve_inside(root, ("..", "x.dcm"))
    with pytest.raises(UnsafePathError):
        resolve_inside(root, ())
    outside = tmp_path / "outside"
    outside.mkdir()
    try:
        (root / "evil").symlink_to(outside, target_is_directory=True)
    except OSError:  # pragma: no cover - no symlink privilege (Windows)
        pytest.skip("cannot create symlinks here")
    with pytest.raises(UnsafePathError):
        resolve_inside(root, ("evil", "x.dcm"))


def test_patient_id_rules() -> None:
    assert safe_patient_component("AIODIMSE-0001") == "AIODIMSE-0001"
    assert safe_patient_component("pat_1.2") == "pat_1.2"
    for bad in ["Müller", "a b", "con", "LPT9.x", "x.", "_x", "-x", "a" * 65, None]:
        name = safe_patient_component(bad)
        assert name == derived_name(bad or "")
        assert_safe_component(name)


def test_derived_names_never_collide_with_raw_names() -> None:
    # Raw names start with a digit or letter; derived names with "_".
    assert derived_name("x").startswith("_")
    assert safe_patient_component(derived_name("x")) != derived_name("x")
    assert derived_name("a") != derived_name("b")
    assert derived_name("1.2.3") == derived_name("1.2.3")


def test_tree_layout_with_valid_values() -> None:
    p = relative_path(
        sop_instance_uid="1.2.3.4",
        layout=Layout.TREE,
        patient_id="PID7",
        study_instance_uid="1.2.3",
        series_instance_uid="1.2.3.1",
    )
    assert p == PurePosixPath("PID7/1.2.3/1.2.3.1/1.2.3.4.dcm")


def test_temporary_names() -> None:
    name = temporary_name()
    assert is_temporary_name(name)
    assert name.startswith(".")
    assert_safe_component(name)
    assert not is_temporary_name("1.2.3.dcm")
    assert not is_temporary_name(".aiodimse-zz.part")
    assert name != temporary_name()
    with pytest.raises(ValueError):
        temporary_name("../x")


@settings(max_examples=300, deadline=None)
@given(
    sop=st.text(max_size=80),
    pid=st.one_of(st.none(), st.text(max_size=80)),
    study=st.one_of(st.none(), st.text(alphabet="0123456789.\\/:\x00 .a", max_size=70)),
    series=st.text(max_size=70),
)
def test_every_output_is_a_safe_relative_path(
    sop: str, pid: str | None, study: str | None, series: str
) -> None:
    for layout in Layout:
        parts = relative_parts(
            sop_instance_uid=sop,
            layout=layout,
            patient_id=pid,
            study_instance_uid=study,
            series_instance_uid=series,
        )
        assert_safe_parts(parts)
        assert not is_temporary_name(parts[-1])


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"[1-9][0-9]{0,5}(\.(0|[1-9][0-9]{0,5})){0,8}", fullmatch=True))
def test_valid_uids_round_trip(uid: str) -> None:
    assert is_valid_uid(uid)
    assert relative_parts(sop_instance_uid=uid) == (uid + ".dcm",)
