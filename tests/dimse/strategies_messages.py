"""Hypothesis strategies for every DIMSE message class (reusable by other test modules).

``message(cls)`` builds valid values of one class; ``any_message()`` any class. Values are
what survives an encode/decode round trip unchanged: UIDs per PS3.5 9.1 (digits and dots,
no leading zero in a component, at most 64 characters), AE titles of 1-16 characters without
leading/trailing spaces or backslash, Error Comments of 1-64 default-repertoire characters
without backslash or trailing space, US values 0..65535, Priority 0/1/2 (PS3.7 E.1),
tags 0..0xFFFFFFFF.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

from hypothesis import strategies as st

from aiodimse.dimse.messages import DATASET_ABSENT, MESSAGE_CLASSES, DimseMessage, Priority

__all__ = [
    "ae_titles",
    "any_message",
    "command_data_set_types",
    "error_comments",
    "message",
    "tags",
    "uids",
    "us",
]

us = st.integers(min_value=0, max_value=0xFFFF)
tags = st.integers(min_value=0, max_value=0xFFFFFFFF)

_component = st.one_of(st.just("0"), st.integers(min_value=1, max_value=10**12).map(str))
uids = (
    st.lists(_component, min_size=1, max_size=12).map(".".join).filter(lambda uid: len(uid) <= 64)
)

_AE_CHARS = string.ascii_letters + string.digits + " _-.+*"
ae_titles = st.text(alphabet=_AE_CHARS, min_size=1, max_size=16).filter(
    lambda ae: ae.strip() == ae and ae != ""
)

_LO_CHARS = "".join(c for c in string.printable if c not in "\\\t\n\r\x0b\x0c")
error_comments = st.text(alphabet=_LO_CHARS, min_size=1, max_size=64).filter(
    lambda text: text.rstrip(" ") == text and text != ""
)

#: 0x0101 (no data set) and values that all mean "a data set follows" (ROBUSTNESS 25).
command_data_set_types = st.one_of(
    st.sampled_from([DATASET_ABSENT, 0x0000, 0x0001, 0x0102, 0xFEFE, 0xFFFF]), us
)

_tag_lists = st.lists(tags, min_size=1, max_size=6).map(tuple)

_BY_FIELD: dict[str, st.SearchStrategy[Any]] = {
    "affected_sop_class_uid": uids,
    "requested_sop_class_uid": uids,
    "affected_sop_instance_uid": uids,
    "requested_sop_instance_uid": uids,
    "move_destination": ae_titles,
    "move_originator_application_entity_title": ae_titles,
    "error_comment": error_comments,
    "offending_element": _tag_lists,
    "attribute_identifier_list": _tag_lists,
    "command_data_set_type": command_data_set_types,
    "priority": st.sampled_from([int(p) for p in Priority]),
}


def _field_strategy(field: dataclasses.Field[Any]) -> st.SearchStrategy[Any]:
    base = _BY_FIELD.get(field.name, us)
    if field.default is None:
        return st.none() | base
    return base


def message(cls: type[DimseMessage]) -> st.SearchStrategy[DimseMessage]:
    """Valid instances of ``cls`` with every field (optional ones sometimes None) drawn."""
    kwargs = {f.name: _field_strategy(f) for f in dataclasses.fields(cls)}
    return st.builds(cls, **kwargs)


def any_message() -> st.SearchStrategy[DimseMessage]:
    """A valid instance of any of the 23 message classes."""
    return st.one_of([message(cls) for cls in MESSAGE_CLASSES.values()])
