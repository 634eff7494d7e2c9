"""Tags for a message's reactions and pin, as chat/message_reactions.html and
chat/message_actions_react.html show them."""

from __future__ import annotations

from django import template
from django.core.exceptions import ObjectDoesNotExist

from chat.models import Message
from chat.services.reactions import QUICK_REACTIONS, ReactionGroup, reactions_of

register = template.Library()


def is_new(context: template.Context) -> bool:
    """A message rendered as it is posted (chat_detail.html#message_oob) has no reactions
    and no pin yet: nothing is read for it, so that a post costs no query to push."""
    return bool(context.get("new_message"))


@register.simple_tag(takes_context=True)
def message_reactions(context: template.Context, message: Message) -> list[ReactionGroup]:
    """`{% message_reactions message as groups %}`: the message's reactions by emoji."""
    return [] if is_new(context) else reactions_of(message)


@register.simple_tag(takes_context=True)
def message_pinned(context: template.Context, message: Message) -> bool:
    """`{% message_pinned message as pinned %}`: whether the message is pinned in its chat."""
    if is_new(context):
        return False
    try:
        return message.pin is not None
    except ObjectDoesNotExist:
        return False


@register.simple_tag
def quick_reactions() -> tuple[str, ...]:
    """The picker's emoji."""
    return QUICK_REACTIONS
