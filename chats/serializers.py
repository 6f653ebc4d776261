"""Output shapes of the chats REST API, shared by its modules. A message is
the dict of chats.events.message_payload (the same on REST and WebSocket);
`MessageSerializer` describes it for the schema."""

from typing import Any

from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts.models import User
from chats import selectors
from chats.models import ChatMember, Message, Pin
from chats.selectors import ChatDetail, ChatListItem


@extend_schema_serializer(component_name="ChatPerson")
class PersonSerializer(serializers.Serializer):
    """A name as shown in chats: the verified educator badge and the
    look-alike flag always come from the server."""

    id = serializers.IntegerField()
    display_name = serializers.CharField()
    is_verified_educator = serializers.BooleanField()
    is_name_flagged = serializers.BooleanField()


def person_data(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "display_name": str(user.display_name),
        "is_verified_educator": user.is_verified_educator,
        "is_name_flagged": user.is_name_flagged,
    }


@extend_schema_serializer(component_name="ChatMessage")
class MessageSerializer(serializers.Serializer):
    """A message; a deleted one keeps its seq with an empty body."""

    id = serializers.IntegerField()
    chat = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The message's number in its chat: 1, 2, 3… without gaps.")
    kind = serializers.ChoiceField(choices=["text", "poll", "system"])
    author = PersonSerializer(allow_null=True, help_text="None for messages of the system.")
    client_id = serializers.CharField(allow_null=True, help_text="The sender's own id of the message.")
    body = serializers.CharField()
    reply_to = serializers.IntegerField(allow_null=True, help_text="The seq of the message replied to.")
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(allow_null=True)
    is_deleted = serializers.BooleanField()
    requires_acknowledgement = serializers.BooleanField()
    buttons = serializers.ListField(
        child=serializers.ListField(child=serializers.DictField(child=serializers.CharField())),
        required=False,
        help_text=(
            "A bot's inline buttons: rows of {text, callback_data}. Present only on messages that have buttons "
            '(docs/protocol.md, "Bots in chats").'
        ),
    )


@extend_schema_serializer(component_name="ChatLastMessage")
class LastMessageSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    body_preview = serializers.CharField(help_text="The start of the text; empty when deleted.")
    author_name = serializers.CharField(allow_null=True)
    author = PersonSerializer(allow_null=True)
    created_at = serializers.DateTimeField()
    is_deleted = serializers.BooleanField()


def last_message_data(message: Message | None) -> dict[str, Any] | None:
    if message is None:
        return None
    return {
        "seq": message.seq,
        "body_preview": selectors.body_preview(message),
        "author_name": str(message.author.display_name) if message.author else None,
        "author": person_data(message.author),
        "created_at": message.created_at,
        "is_deleted": message.deleted_at is not None,
    }


@extend_schema_serializer(component_name="ChatListItem")
class ChatListItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="chat.pk")
    kind = serializers.CharField(source="chat.kind")
    title = serializers.CharField()
    is_verified = serializers.BooleanField(source="chat.is_verified")
    is_announcement_only = serializers.BooleanField(source="chat.is_announcement_only")
    organisation_id = serializers.IntegerField(source="chat.organisation_id", allow_null=True)
    role = serializers.CharField(source="member.role", help_text="The user's role in the chat.")
    last_seq = serializers.IntegerField(source="chat.last_seq")
    last_read_seq = serializers.IntegerField(source="member.last_read_seq")
    unread_count = serializers.IntegerField()
    muted_until = serializers.DateTimeField(source="member.muted_until", allow_null=True)
    last_message = serializers.SerializerMethodField()
    other_user = serializers.SerializerMethodField(help_text="The other person of a direct chat.")

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, item: ChatListItem) -> dict[str, Any] | None:
        return last_message_data(item.last_message)

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_other_user(self, item: ChatListItem) -> dict[str, Any] | None:
        return person_data(item.other_user)


@extend_schema_serializer(component_name="ChatMember")
class ChatMemberSerializer(serializers.Serializer):
    user = serializers.SerializerMethodField()
    role = serializers.CharField()
    organisation_roles = serializers.SerializerMethodField(
        help_text="The person's roles in the chat's organisation (teacher, parent…): the badges beside the name."
    )
    muted_until = serializers.DateTimeField(allow_null=True)
    is_synced = serializers.BooleanField(help_text="Kept by the directory (class and staff chats).")

    @extend_schema_field(PersonSerializer)
    def get_user(self, member: ChatMember) -> dict[str, Any] | None:
        return person_data(member.user)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_organisation_roles(self, member: ChatMember) -> list[str]:
        return list(self.context.get("organisation_roles", {}).get(member.user_id, []))


@extend_schema_serializer(component_name="ChatPin")
class PinSerializer(serializers.Serializer):
    seq = serializers.IntegerField(source="message.seq")
    body_preview = serializers.SerializerMethodField()
    author = serializers.SerializerMethodField()
    pinned_at = serializers.DateTimeField()

    def get_body_preview(self, pin: Pin) -> str:
        return selectors.body_preview(pin.message)

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_author(self, pin: Pin) -> dict[str, Any] | None:
        return person_data(pin.message.author)


@extend_schema_serializer(component_name="ChatOrganisation")
class OrganisationBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()
    is_verified = serializers.BooleanField()


@extend_schema_serializer(component_name="ChatMe")
class MyMembershipSerializer(serializers.Serializer):
    role = serializers.CharField()
    last_read_seq = serializers.IntegerField()
    muted_until = serializers.DateTimeField(allow_null=True)
    may_moderate = serializers.SerializerMethodField()
    may_see_receipts = serializers.SerializerMethodField()

    def get_may_moderate(self, member: ChatMember) -> bool:
        return selectors.member_may_moderate(member)

    def get_may_see_receipts(self, member: ChatMember) -> bool:
        return selectors.member_may_see_receipts(member)


@extend_schema_serializer(component_name="ChatDetail")
class ChatDetailSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="chat.pk")
    kind = serializers.CharField(source="chat.kind")
    title = serializers.CharField()
    description = serializers.CharField(source="chat.description")
    organisation = serializers.SerializerMethodField()
    study_group_id = serializers.IntegerField(source="chat.study_group_id", allow_null=True)
    is_verified = serializers.BooleanField(source="chat.is_verified")
    is_announcement_only = serializers.BooleanField(source="chat.is_announcement_only")
    opens_at = serializers.TimeField(source="chat.opens_at", format="%H:%M", allow_null=True)
    closes_at = serializers.TimeField(source="chat.closes_at", format="%H:%M", allow_null=True)
    last_seq = serializers.IntegerField(source="chat.last_seq")
    me = MyMembershipSerializer(source="member")
    members = serializers.SerializerMethodField(help_text="Staff first; at most 200 (see members_count).")
    members_count = serializers.IntegerField()
    pins = PinSerializer(many=True)
    other_user = serializers.SerializerMethodField(help_text="The other person of a direct chat.")

    @extend_schema_field(OrganisationBriefSerializer(allow_null=True))
    def get_organisation(self, detail: ChatDetail) -> dict[str, Any] | None:
        organisation = detail.chat.organisation
        if organisation is None:
            return None
        return {"id": organisation.pk, "short_name": organisation.short_name, "is_verified": organisation.is_verified}

    @extend_schema_field(ChatMemberSerializer(many=True))
    def get_members(self, detail: ChatDetail) -> list[Any]:
        return list(
            ChatMemberSerializer(
                detail.members, many=True, context={"organisation_roles": detail.organisation_roles}
            ).data
        )

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_other_user(self, detail: ChatDetail) -> dict[str, Any] | None:
        return person_data(detail.other_user)
