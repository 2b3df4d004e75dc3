"""A Dataset's own UID values go into the C-STORE command unchanged, even hostile ones."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from aiodimse.services.storage_scu import DatasetInstance


def test_multi_valued_sop_instance_uid_is_sent_as_on_the_wire() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    with pytest.warns(UserWarning):
        ds.SOPInstanceUID = "C:\\x"  # a backslash makes pydicom see two values
    assert DatasetInstance.from_dataset(ds).sop_instance_uid == "C:\\x"


def test_plain_uid_unchanged() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    inst = DatasetInstance.from_dataset(ds)
    assert (inst.sop_class_uid, inst.sop_instance_uid) == ("1.2.840.10008.5.1.4.1.1.7", "1.2.3.4")
