"""Golden byte vectors for every PDU and every item/sub-item type, commented field by field.

Written by hand from PS3.8 9.3 (Tables 9-11 to 9-26), PS3.8 Annex D and PS3.7 D.3.3, and
cross-checked against pynetdicom in ``test_pdu_oracle.py``. Each vector is
``(name, wire bytes, value)``; ``test_pdu_vectors.py`` checks both directions.
"""

from __future__ import annotations

from aiodimse.pdu import (
    PDU,
    PDV,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    AsynchronousOperationsWindow,
    ImplementationClassUID,
    ImplementationVersionName,
    MaximumLength,
    PDataTF,
    PresentationContextAC,
    PresentationContextRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
    UserInformationSubItem,
)

# --- user information sub-items (PS3.8 D.1, PS3.7 D.3.3) ---------------------------------

MAXIMUM_LENGTH = (
    b"\x51"  # item type 51H, Maximum Length (PS3.8 D.1 Table D.1-1)
    b"\x00"  # reserved
    b"\x00\x04"  # item length: always 4
    b"\x00\x00\x40\x00"  # maximum length received: 16384
)
IMPLEMENTATION_CLASS_UID = (
    b"\x52"  # item type 52H, Implementation Class UID (PS3.7 D.3.3.2.1)
    b"\x00"  # reserved
    b"\x00\x07"  # item length 7
    b"1.2.3.4"  # implementation class UID, not padded
)
ASYNC_OPS_WINDOW = (
    b"\x53"  # item type 53H, Asynchronous Operations Window (PS3.7 D.3.3.3.1)
    b"\x00"  # reserved
    b"\x00\x04"  # item length 4
    b"\x00\x05"  # maximum number of operations invoked: 5
    b"\x00\x03"  # maximum number of operations performed: 3
)
ROLE_SELECTION = (
    b"\x54"  # item type 54H, SCP/SCU Role Selection (PS3.7 D.3.3.4.1)
    b"\x00"  # reserved
    b"\x00\x1d"  # item length 29 = 2 + 25 + 1 + 1
    b"\x00\x19"  # UID length 25
    b"1.2.840.10008.5.1.4.1.1.2"  # SOP class UID (CT Image Storage)
    b"\x01"  # SCU role: supported
    b"\x00"  # SCP role: not supported
)
IMPLEMENTATION_VERSION_NAME = (
    b"\x55"  # item type 55H, Implementation Version Name (PS3.7 D.3.3.2.3)
    b"\x00"  # reserved
    b"\x00\x0c"  # item length 12
    b"AIODIMSE_010"  # implementation version name
)
EXTENDED_NEGOTIATION = (
    b"\x56"  # item type 56H, SOP Class Extended Negotiation (PS3.7 D.3.3.5.1)
    b"\x00"  # reserved
    b"\x00\x20"  # item length 32 = 2 + 27 + 3
    b"\x00\x1b"  # SOP class UID length 27
    b"1.2.840.10008.5.1.4.1.2.1.1"  # Patient Root Q/R FIND
    b"\x01\x01\x00"  # service class application information (relational, date-time, -)
)
COMMON_EXTENDED_NEGOTIATION = (
    b"\x57"  # item type 57H, SOP Class Common Extended Negotiation (PS3.7 D.3.3.6.1)
    b"\x00"  # sub-item version 0
    b"\x00\x53"  # item length 83 = (2 + 29) + (2 + 17) + (2 + 31)
    b"\x00\x1d"  # SOP class UID length 29
    b"1.2.840.10008.5.1.4.1.1.88.40"  # Procedure Log Storage
    b"\x00\x11"  # service class UID length 17
    b"1.2.840.10008.4.2"  # Storage Service Class
    b"\x00\x1f"  # related general SOP class identification length 31
    b"\x00\x1d"  # related general SOP class UID length 29 (Table D.3-13)
    b"1.2.840.10008.5.1.4.1.1.88.22"  # Enhanced SR Storage
)
USER_IDENTITY_RQ = (
    b"\x58"  # item type 58H, User Identity (A-ASSOCIATE-RQ) (PS3.7 D.3.3.7.1)
    b"\x00"  # reserved
    b"\x00\x0e"  # item length 14 = 1 + 1 + (2 + 4) + (2 + 4)
    b"\x02"  # user identity type 2: username and passcode
    b"\x01"  # positive response requested
    b"\x00\x04"  # primary field length 4
    b"user"  # primary field: username
    b"\x00\x04"  # secondary field length 4
    b"pass"  # secondary field: passcode
)
USER_IDENTITY_AC = (
    b"\x59"  # item type 59H, User Identity (A-ASSOCIATE-AC) (PS3.7 D.3.3.7.2)
    b"\x00"  # reserved
    b"\x00\x04"  # item length 4 = 2 + 2
    b"\x00\x02"  # server response length 2
    b"OK"  # server response
)

SUB_ITEM_VECTORS: list[tuple[str, bytes, UserInformationSubItem]] = [
    ("maximum_length", MAXIMUM_LENGTH, MaximumLength(maximum_length=16384)),
    ("implementation_class_uid", IMPLEMENTATION_CLASS_UID, ImplementationClassUID(uid="1.2.3.4")),
    (
        "async_ops_window",
        ASYNC_OPS_WINDOW,
        AsynchronousOperationsWindow(max_operations_invoked=5, max_operations_performed=3),
    ),
    (
        "role_selection",
        ROLE_SELECTION,
        RoleSelection(sop_class_uid="1.2.840.10008.5.1.4.1.1.2", scu_role=1, scp_role=0),
    ),
    (
        "implementation_version_name",
        IMPLEMENTATION_VERSION_NAME,
        ImplementationVersionName(name="AIODIMSE_010"),
    ),
    (
        "extended_negotiation",
        EXTENDED_NEGOTIATION,
        SOPClassExtendedNegotiation(
            sop_class_uid="1.2.840.10008.5.1.4.1.2.1.1",
            service_class_application_information=b"\x01\x01\x00",
        ),
    ),
    (
        "common_extended_negotiation",
        COMMON_EXTENDED_NEGOTIATION,
        SOPClassCommonExtendedNegotiation(
            sop_class_uid="1.2.840.10008.5.1.4.1.1.88.40",
            service_class_uid="1.2.840.10008.4.2",
            related_general_sop_class_uids=("1.2.840.10008.5.1.4.1.1.88.22",),
        ),
    ),
    (
        "user_identity_rq",
        USER_IDENTITY_RQ,
        UserIdentityRQ(
            identity_type=2,
            positive_response_requested=True,
            primary_field=b"user",
            secondary_field=b"pass",
        ),
    ),
    ("user_identity_ac", USER_IDENTITY_AC, UserIdentityAC(server_response=b"OK")),
]

# --- variable items of A-ASSOCIATE-RQ/AC (PS3.8 9.3.2.1-9.3.3.3) ---------------------------

APPLICATION_CONTEXT = (
    b"\x10"  # item type 10H, Application Context (PS3.8 9.3.2.1 Table 9-12)
    b"\x00"  # reserved
    b"\x00\x15"  # item length 21
    b"1.2.840.10008.3.1.1.1"  # DICOM application context name
)
PRESENTATION_CONTEXT_RQ = (
    b"\x20"  # item type 20H, Presentation Context (RQ) (PS3.8 9.3.2.2 Table 9-13)
    b"\x00"  # reserved
    b"\x00\x45"  # item length 69 = 4 + (4 + 17) + (4 + 17) + (4 + 19)
    b"\x01"  # presentation context ID 1
    b"\x00\x00\x00"  # reserved x3
    b"\x30"  # sub-item type 30H, Abstract Syntax (Table 9-14)
    b"\x00"  # reserved
    b"\x00\x11"  # item length 17
    b"1.2.840.10008.1.1"  # Verification SOP Class
    b"\x40"  # sub-item type 40H, Transfer Syntax (Table 9-15)
    b"\x00"  # reserved
    b"\x00\x11"  # item length 17
    b"1.2.840.10008.1.2"  # Implicit VR Little Endian
    b"\x40"  # sub-item type 40H, Transfer Syntax
    b"\x00"  # reserved
    b"\x00\x13"  # item length 19
    b"1.2.840.10008.1.2.1"  # Explicit VR Little Endian
)
PRESENTATION_CONTEXT_AC_ACCEPTED = (
    b"\x21"  # item type 21H, Presentation Context (AC) (PS3.8 9.3.3.2 Table 9-18)
    b"\x00"  # reserved
    b"\x00\x1b"  # item length 27 = 4 + (4 + 19)
    b"\x01"  # presentation context ID 1
    b"\x00"  # reserved
    b"\x00"  # result/reason 0: acceptance
    b"\x00"  # reserved
    b"\x40"  # sub-item type 40H, Transfer Syntax (Table 9-19)
    b"\x00"  # reserved
    b"\x00\x13"  # item length 19
    b"1.2.840.10008.1.2.1"  # Explicit VR Little Endian
)
PRESENTATION_CONTEXT_AC_REJECTED = (
    b"\x21"  # item type 21H, Presentation Context (AC)
    b"\x00"  # reserved
    b"\x00\x08"  # item length 8 = 4 + 4
    b"\x03"  # presentation context ID 3
    b"\x00"  # reserved
    b"\x03"  # result/reason 3: abstract-syntax-not-supported (provider rejection)
    b"\x00"  # reserved
    b"\x40"  # sub-item type 40H, Transfer Syntax: not significant, sent empty
    b"\x00"  # reserved
    b"\x00\x00"  # item length 0
)
USER_INFORMATION_RQ = (
    b"\x50"  # item type 50H, User Information (PS3.8 9.3.2.3 Table 9-16)
    b"\x00"  # reserved
    b"\x00\xd9"  # item length 217 = 8 + 11 + 8 + 33 + 16 + 36 + 87 + 18
    + MAXIMUM_LENGTH
    + IMPLEMENTATION_CLASS_UID
    + ASYNC_OPS_WINDOW
    + ROLE_SELECTION
    + IMPLEMENTATION_VERSION_NAME
    + EXTENDED_NEGOTIATION
    + COMMON_EXTENDED_NEGOTIATION
    + USER_IDENTITY_RQ
)
USER_INFORMATION_AC = (
    b"\x50"  # item type 50H, User Information (PS3.8 9.3.3.3 Table 9-20)
    b"\x00"  # reserved
    b"\x00\x78"  # item length 120 = 8 + 11 + 8 + 33 + 16 + 36 + 8
    + MAXIMUM_LENGTH
    + IMPLEMENTATION_CLASS_UID
    + ASYNC_OPS_WINDOW
    + ROLE_SELECTION
    + IMPLEMENTATION_VERSION_NAME
    + EXTENDED_NEGOTIATION
    + USER_IDENTITY_AC
)

CONTEXT_RQ = PresentationContextRQ(
    context_id=1,
    abstract_syntax="1.2.840.10008.1.1",
    transfer_syntaxes=("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"),
)
CONTEXT_AC_ACCEPTED = PresentationContextAC(
    context_id=1, result=0, transfer_syntax="1.2.840.10008.1.2.1"
)
CONTEXT_AC_REJECTED = PresentationContextAC(context_id=3, result=3, transfer_syntax=None)
_SUB = {name: value for name, _, value in SUB_ITEM_VECTORS}
USER_INFO_RQ_VALUE = UserInformation(
    sub_items=tuple(_SUB[n] for n, _, _ in SUB_ITEM_VECTORS if n != "user_identity_ac")
)
USER_INFO_AC_VALUE = UserInformation(
    sub_items=tuple(
        _SUB[n]
        for n, _, _ in SUB_ITEM_VECTORS
        if n not in ("user_identity_rq", "common_extended_negotiation")
    )
)

# --- the seven PDUs (PS3.8 9.3.2-9.3.8) ----------------------------------------------------

A_ASSOCIATE_RQ = (
    b"\x01"  # PDU type 01H, A-ASSOCIATE-RQ (Table 9-11)
    b"\x00"  # reserved
    b"\x00\x00\x01\x83"  # PDU length 387 = 68 + 25 + 73 + 221
    b"\x00\x01"  # protocol version: bit 0 (version 1)
    b"\x00\x00"  # reserved
    b"ANY-SCP         "  # called AE title, space padded to 16
    b"ECHOSCU         "  # calling AE title, space padded to 16
    + bytes(32)  # reserved, 32 zero bytes
    + APPLICATION_CONTEXT
    + PRESENTATION_CONTEXT_RQ
    + USER_INFORMATION_RQ
)
A_ASSOCIATE_AC = (
    b"\x02"  # PDU type 02H, A-ASSOCIATE-AC (Table 9-17)
    b"\x00"  # reserved
    b"\x00\x00\x01\x04"  # PDU length 260 = 68 + 25 + 31 + 12 + 124
    b"\x00\x01"  # protocol version 1
    b"\x00\x00"  # reserved
    b"ANY-SCP         "  # reserved: called AE title echoed from the RQ
    b"ECHOSCU         "  # reserved: calling AE title echoed from the RQ
    + bytes(32)  # reserved
    + APPLICATION_CONTEXT
    + PRESENTATION_CONTEXT_AC_ACCEPTED
    + PRESENTATION_CONTEXT_AC_REJECTED
    + USER_INFORMATION_AC
)
A_ASSOCIATE_RJ = (
    b"\x03"  # PDU type 03H, A-ASSOCIATE-RJ (Table 9-21)
    b"\x00"  # reserved
    b"\x00\x00\x00\x04"  # PDU length 4
    b"\x00"  # reserved
    b"\x01"  # result 1: rejected-permanent
    b"\x01"  # source 1: DICOM UL service-user
    b"\x07"  # reason 7: called-AE-title-not-recognized
)
P_DATA_TF = (
    b"\x04"  # PDU type 04H, P-DATA-TF (Table 9-22)
    b"\x00"  # reserved
    b"\x00\x00\x00\x12"  # PDU length 18 = (4 + 6) + (4 + 4)
    b"\x00\x00\x00\x06"  # PDV item length 6 = context ID + control header + 4 data bytes
    b"\x01"  # presentation context ID 1
    b"\x03"  # message control header: bit 0 command, bit 1 last fragment (Annex E.2)
    b"\x01\x02\x03\x04"  # fragment
    b"\x00\x00\x00\x04"  # PDV item length 4
    b"\x03"  # presentation context ID 3
    b"\x00"  # message control header: data set, not last
    b"\xaa\xbb"  # fragment
)
A_RELEASE_RQ = (
    b"\x05"  # PDU type 05H, A-RELEASE-RQ (Table 9-24)
    b"\x00"  # reserved
    b"\x00\x00\x00\x04"  # PDU length 4
    b"\x00\x00\x00\x00"  # reserved
)
A_RELEASE_RP = (
    b"\x06"  # PDU type 06H, A-RELEASE-RP (Table 9-25)
    b"\x00"  # reserved
    b"\x00\x00\x00\x04"  # PDU length 4
    b"\x00\x00\x00\x00"  # reserved
)
A_ABORT = (
    b"\x07"  # PDU type 07H, A-ABORT (Table 9-26)
    b"\x00"  # reserved
    b"\x00\x00\x00\x04"  # PDU length 4
    b"\x00\x00"  # reserved x2
    b"\x02"  # source 2: DICOM UL service-provider
    b"\x06"  # reason 6: invalid-PDU-parameter value
)

PDU_VECTORS: list[tuple[str, bytes, PDU]] = [
    (
        "a_associate_rq",
        A_ASSOCIATE_RQ,
        AAssociateRQ(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(CONTEXT_RQ,),
            user_information=USER_INFO_RQ_VALUE,
        ),
    ),
    (
        "a_associate_ac",
        A_ASSOCIATE_AC,
        AAssociateAC(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(CONTEXT_AC_ACCEPTED, CONTEXT_AC_REJECTED),
            user_information=USER_INFO_AC_VALUE,
        ),
    ),
    ("a_associate_rj", A_ASSOCIATE_RJ, AAssociateRJ(result=1, source=1, reason=7)),
    (
        "p_data_tf",
        P_DATA_TF,
        PDataTF(
            pdvs=(
                PDV(context_id=1, is_command=True, is_last=True, data=b"\x01\x02\x03\x04"),
                PDV(context_id=3, is_command=False, is_last=False, data=b"\xaa\xbb"),
            )
        ),
    ),
    ("a_release_rq", A_RELEASE_RQ, AReleaseRQ()),
    ("a_release_rp", A_RELEASE_RP, AReleaseRP()),
    ("a_abort", A_ABORT, AAbort(source=2, reason=6)),
]

#: Every PDU vector, concatenated: one stream for the chunking tests.
STREAM = b"".join(v for _, v, _ in PDU_VECTORS)
