"""Hypothesis strategies for every PDU and item, reusable by other test packages.

Everything generated here is *valid*: ``encode_pdu(x)`` (strict) accepts it and
``decode_pdu(encode_pdu(x)) == x``. That means AE titles without leading or trailing
spaces (they are not significant and the decoder strips them), UIDs obeying VR UI, user
information sub-items in increasing item type order with at most one Maximum Length, 58H
only in RQs and 59H only in ACs.
"""

from __future__ import annotations

from hypothesis import strategies as st

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

_component = st.one_of(st.just("0"), st.integers(min_value=1, max_value=999_999).map(str))


@st.composite
def uids(draw: st.DrawFn) -> str:
    """A valid UID (PS3.5 9.1): digits and dots, no leading zeros, at most 64 chars."""
    if draw(st.integers(0, 9)) == 0:
        # The longest allowed: 64 characters.
        return "1.2." + "9" * 60
    return ".".join(draw(st.lists(_component, min_size=1, max_size=8)))


_ae_char = st.characters(min_codepoint=0x21, max_codepoint=0x7E).filter(lambda c: c != "\\")


@st.composite
def ae_titles(draw: st.DrawFn) -> str:
    """A valid AE title without leading/trailing spaces (inner spaces allowed)."""
    first = draw(_ae_char)
    if draw(st.booleans()):
        return first
    middle = draw(
        st.text(
            alphabet=st.one_of(_ae_char, st.just(" ")),
            max_size=14,
        )
    )
    last = draw(_ae_char)
    return (first + middle + last)[:16]


context_ids = st.integers(min_value=0, max_value=127).map(lambda n: 2 * n + 1)

version_names = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != "\\"),
    min_size=1,
    max_size=16,
)

presentation_contexts_rq = st.builds(
    PresentationContextRQ,
    context_id=context_ids,
    abstract_syntax=uids(),
    transfer_syntaxes=st.lists(uids(), min_size=1, max_size=4).map(tuple),
)


@st.composite
def presentation_contexts_ac(draw: st.DrawFn) -> PresentationContextAC:
    result = draw(st.integers(min_value=0, max_value=4))
    ts = draw(uids()) if result == 0 else draw(st.one_of(st.none(), uids()))
    return PresentationContextAC(context_id=draw(context_ids), result=result, transfer_syntax=ts)


maximum_lengths = st.builds(
    MaximumLength, maximum_length=st.integers(min_value=0, max_value=0xFFFFFFFF)
)
implementation_class_uids = st.builds(ImplementationClassUID, uid=uids())
async_windows = st.builds(
    AsynchronousOperationsWindow,
    max_operations_invoked=st.integers(0, 0xFFFF),
    max_operations_performed=st.integers(0, 0xFFFF),
)
role_selections = st.builds(
    RoleSelection, sop_class_uid=uids(), scu_role=st.integers(0, 1), scp_role=st.integers(0, 1)
)
implementation_version_names = st.builds(ImplementationVersionName, name=version_names)
extended_negotiations = st.builds(
    SOPClassExtendedNegotiation,
    sop_class_uid=uids(),
    service_class_application_information=st.binary(max_size=32),
)
common_extended_negotiations = st.builds(
    SOPClassCommonExtendedNegotiation,
    sop_class_uid=uids(),
    service_class_uid=uids(),
    related_general_sop_class_uids=st.lists(uids(), max_size=3).map(tuple),
)


@st.composite
def user_identities_rq(draw: st.DrawFn) -> UserIdentityRQ:
    kind = draw(st.integers(1, 5))
    return UserIdentityRQ(
        identity_type=kind,
        positive_response_requested=draw(st.booleans()),
        primary_field=draw(st.binary(min_size=1, max_size=40)),
        secondary_field=draw(st.binary(max_size=20)) if kind == 2 else b"",
    )


user_identities_ac = st.builds(UserIdentityAC, server_response=st.binary(max_size=40))

_TYPE_ORDER: dict[type, int] = {
    MaximumLength: 0x51,
    ImplementationClassUID: 0x52,
    AsynchronousOperationsWindow: 0x53,
    RoleSelection: 0x54,
    ImplementationVersionName: 0x55,
    SOPClassExtendedNegotiation: 0x56,
    SOPClassCommonExtendedNegotiation: 0x57,
    UserIdentityRQ: 0x58,
    UserIdentityAC: 0x59,
}


@st.composite
def user_informations(draw: st.DrawFn, *, for_rq: bool = True) -> UserInformation:
    """User information with sub-items in increasing type order (as strict encoding writes)."""
    items: list[UserInformationSubItem] = []
    if draw(st.booleans()):
        items.append(draw(maximum_lengths))
    repeated: list[st.SearchStrategy[UserInformationSubItem]] = [
        implementation_class_uids,
        async_windows,
        role_selections,
        implementation_version_names,
        extended_negotiations,
    ]
    if for_rq:
        repeated.append(common_extended_negotiations)
    for strategy in repeated:
        items.extend(draw(st.lists(strategy, max_size=2)))
    identity: st.SearchStrategy[UserInformationSubItem] = (
        user_identities_rq() if for_rq else user_identities_ac
    )
    if draw(st.booleans()):
        items.append(draw(identity))
    items.sort(key=lambda item: _TYPE_ORDER[type(item)])
    return UserInformation(sub_items=tuple(items))


a_associate_rqs = st.builds(
    AAssociateRQ,
    called_ae_title=ae_titles(),
    calling_ae_title=ae_titles(),
    presentation_contexts=st.lists(presentation_contexts_rq, min_size=1, max_size=4).map(tuple),
    user_information=user_informations(for_rq=True),
    application_context=st.one_of(st.just("1.2.840.10008.3.1.1.1"), uids()),
    protocol_version=st.integers(0, 0xFFFF),
)
a_associate_acs = st.builds(
    AAssociateAC,
    called_ae_title=ae_titles(),
    calling_ae_title=ae_titles(),
    presentation_contexts=st.lists(presentation_contexts_ac(), min_size=1, max_size=4).map(tuple),
    user_information=user_informations(for_rq=False),
    application_context=st.one_of(st.just("1.2.840.10008.3.1.1.1"), uids()),
    protocol_version=st.integers(0, 0xFFFF),
)


@st.composite
def a_associate_rjs(draw: st.DrawFn) -> AAssociateRJ:
    source = draw(st.sampled_from([1, 2, 3]))
    reasons = {1: [1, 2, 3, 7], 2: [1, 2], 3: [1, 2]}[source]
    return AAssociateRJ(
        result=draw(st.sampled_from([1, 2])), source=source, reason=draw(st.sampled_from(reasons))
    )


pdvs = st.builds(
    PDV,
    context_id=context_ids,
    is_command=st.booleans(),
    is_last=st.booleans(),
    data=st.binary(max_size=64),
)
p_data_tfs = st.builds(PDataTF, pdvs=st.lists(pdvs, min_size=1, max_size=5).map(tuple))
a_release_rqs = st.just(AReleaseRQ())
a_release_rps = st.just(AReleaseRP())
a_aborts = st.builds(
    AAbort, source=st.sampled_from([0, 2]), reason=st.sampled_from([0, 1, 2, 4, 5, 6])
)

sub_items: st.SearchStrategy[UserInformationSubItem] = st.one_of(
    maximum_lengths,
    implementation_class_uids,
    async_windows,
    role_selections,
    implementation_version_names,
    extended_negotiations,
    common_extended_negotiations,
    user_identities_rq(),
    user_identities_ac,
)

pdus: st.SearchStrategy[PDU] = st.one_of(
    a_associate_rqs,
    a_associate_acs,
    a_associate_rjs(),
    p_data_tfs,
    a_release_rqs,
    a_release_rps,
    a_aborts,
)
