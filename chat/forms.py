"""Validation shared by the form post and the WebSocket frame."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib.auth.models import User
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from chat.models import (
    ID_MAX,
    MESSAGE_MAX_LENGTH,
    ROOM_NAME_MAX_LENGTH,
    TOPIC_MAX_LENGTH,
    VISIBILITY_ERROR,
    Chat,
)


class Form(forms.Form):
    def all_errors(self) -> list[str]:
        """Every error of the form as one flat list of messages."""
        return [str(error) for errors in self.errors.values() for error in errors]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Any number of files under one name. Types only: how many, how large and what they
    may be are chat.attachments' rules, the same for the page and the API."""

    widget = MultipleFileInput

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        files = data if isinstance(data, (list, tuple)) else [data]
        return [file for file in files if file]


class MessageForm(Form):
    # Types only: what a message may hold is the service's rule (services.validate_text),
    # so that the page, the socket and the API answer the same words.
    text = forms.CharField(
        label=_("Message"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 1, "maxlength": MESSAGE_MAX_LENGTH}),
    )
    # Chosen by the page, so that a retried send makes one message.
    client_id = forms.UUIDField(required=False, widget=forms.HiddenInput)
    # The message this one answers (set by its Reply action).
    reply_to = forms.IntegerField(required=False, min_value=1, max_value=ID_MAX, widget=forms.HiddenInput)

    # The message being answered, shown above the composer (set by the page's view).
    replying: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Files sent with the message (a multipart post; the socket takes none). Added here:
        # as a class attribute its name would hide the form's own `files` (request.FILES).
        self.fields["files"] = MultipleFileField(label=_("Attach files"), required=False)

    @classmethod
    def fresh(cls, replying: Any = None) -> MessageForm:
        """An empty composer with a new client id (answering `replying`, if given)."""
        form = cls(initial={"client_id": uuid.uuid4(), "reply_to": replying.pk if replying else None})
        form.replying = replying
        return form

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> MessageForm:
        """Bind the fields of a WebSocket frame; anything not a string counts as missing."""
        form = cls(
            data={
                name: frame[name]
                for name in ("text", "client_id", "reply_to")
                if isinstance(frame.get(name), str)
            }
        )
        if "text" in frame and not isinstance(frame["text"], str):
            form.full_clean()
            form.errors["text"] = form.error_class([gettext("The message must be text.")])
        return form


class RoomForm(forms.Form):
    # Types only, as for messages: services.create_room checks the name and the visibility.
    name = forms.CharField(
        label=_("Name"), required=False, widget=forms.TextInput(attrs={"maxlength": ROOM_NAME_MAX_LENGTH})
    )
    visibility = forms.ChoiceField(
        label=_("Visibility"),
        choices=Chat.Visibility.choices,
        initial=Chat.Visibility.PUBLIC,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": VISIBILITY_ERROR, "required": VISIBILITY_ERROR},
        help_text=_("Anyone can find and join a public room; a private one only by invitation."),
    )


class PersonForm(Form):
    """Someone to add to a room or to write to directly, by username."""

    username = forms.CharField(max_length=150, label=_("Username"))

    def clean_username(self) -> User:
        username = self.cleaned_data["username"].strip()
        try:
            return User.objects.get(username=username, is_active=True)
        except User.DoesNotExist:
            raise forms.ValidationError(
                gettext("Nobody is called %(username)s.") % {"username": username}
            ) from None


class RoomSettingsForm(Form):
    # Types only, as for a new room: services.update_room checks the name, the topic and
    # the visibility with the rules that create_room uses.
    name = forms.CharField(
        label=_("Name"), required=False, widget=forms.TextInput(attrs={"maxlength": ROOM_NAME_MAX_LENGTH})
    )
    topic = forms.CharField(
        label=_("Topic"),
        required=False,
        widget=forms.TextInput(attrs={"maxlength": TOPIC_MAX_LENGTH}),
        help_text=_("One line, shown under the room's name."),
    )
    visibility = forms.ChoiceField(
        label=_("Visibility"),
        choices=Chat.Visibility.choices,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": VISIBILITY_ERROR, "required": VISIBILITY_ERROR},
        help_text=_("Anyone can find and join a public room; a private one only by invitation."),
    )

    @classmethod
    def of(cls, chat: Chat) -> RoomSettingsForm:
        """The form filled with the room's settings as they are."""
        return cls(initial={"name": chat.name, "topic": chat.topic, "visibility": chat.visibility})
