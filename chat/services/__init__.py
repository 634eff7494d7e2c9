"""One function per action: the only code that changes chat state.

Each action writes inside a transaction and schedules its push for after the commit,
so that nobody is ever shown something the database does not hold. Actions take
keyword-only arguments and raise Django's own exceptions (Http404, PermissionDenied,
ValidationError); each door maps them its own way.
"""

from chat.services.accounts import (
    change_password,
    check_login_attempt,
    check_signup_attempt,
    close_sockets,
    create_account,
    deactivate_user,
    issue_token,
    revoke_token,
    sign_out_everywhere,
)
from chat.services.membership import (
    add_member,
    create_room,
    get_membership,
    get_visible_chat,
    is_member,
    join_chat,
    leave_chat,
    open_direct_chat,
    remove_member,
    require_room_owner,
    update_room,
)
from chat.services.messages import (
    check_can_delete,
    check_can_edit,
    delete_message,
    edit_message,
    get_visible_message,
    mark_read,
    post_message,
    validate_text,
)

__all__ = [
    "add_member",
    "change_password",
    "check_can_delete",
    "check_can_edit",
    "check_login_attempt",
    "check_signup_attempt",
    "close_sockets",
    "create_account",
    "create_room",
    "deactivate_user",
    "delete_message",
    "edit_message",
    "get_membership",
    "get_visible_chat",
    "get_visible_message",
    "is_member",
    "issue_token",
    "join_chat",
    "leave_chat",
    "mark_read",
    "open_direct_chat",
    "post_message",
    "remove_member",
    "require_room_owner",
    "revoke_token",
    "sign_out_everywhere",
    "update_room",
    "validate_text",
]
