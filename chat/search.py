"""Searching messages: one function, over PostgreSQL's full-text search or SQLite's FTS5.

What a search may find: the messages of the chats the user may see, by the rule every
other door follows (Chat.objects.visible_to: the chats they are a member of, and public
rooms, which anyone signed in may read), never a deleted one; newest first.

What a query may say, on both databases alike: words, all of which must occur; "a
phrase" in double quotes; `-word` (or `-"a phrase"`) for what must not occur; `or`
between two words or phrases for either of them. A word matches whole words only, in any
case, in any script (the "simple" configuration and FTS5's unicode61 tokenizer: no
stemming, no language to guess, so English and Russian words match alike). Everything
else in a query is text: the characters that the databases' own query languages treat
specially (FTS5's `*`, `^`, `:`, `NEAR(`, quotes; tsquery's `&`, `|`, `!`, `:*`) never
reach them unquoted.

The indexes are made by migration 0008_search: on PostgreSQL, a GIN index on the
expression `to_tsvector('simple', text)`, which follows every edit by itself; on SQLite,
an FTS5 table over chat_message kept current by triggers. A later migration that
rebuilds chat_message on SQLite (as Django does for most field changes there) drops its
triggers; searching puts them back and rebuilds the index, so nothing is missed for long.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchVectorField
from django.core.exceptions import ValidationError
from django.db import connections, router
from django.db.models import Case, F, Func, Q, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Length, Replace
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy, ngettext

from chat import services
from chat.models import Chat, Message, MessageQuerySet

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler

logger = logging.getLogger(__name__)

QUERY_MAX_LENGTH = 200
EMPTY_QUERY = gettext_lazy("Type what to search for.")
# The text search configuration of PostgreSQL: words as written, lower-cased, in any language.
CONFIG = "simple"
# How much context a snippet shows around the match, in words.
SNIPPET_WORDS = 24
# The snippet marks the matched words with these two characters (from Unicode's private
# use area), which snippet_html() turns into <mark> after escaping everything else.
OPEN, CLOSE = "\ue000", "\ue001"
# PostgreSQL's parser takes "<b>" for an HTML tag, and its headline leaves tags out: a
# character after each "<" (which the headline drops) keeps the text as it was written.
TAG_BREAK = "\ue002"

# --- The query ----------------------------------------------------------------------

# A term: an optional "-", then "a phrase" (an unclosed quote runs to the end) or a word.
TERM = re.compile(r'(-?)(?:"([^"]*)"?|(\S+))')


@dataclass(frozen=True)
class Terms:
    """A query, parsed: every group must match (a group matches when any of its phrases
    does), and no excluded phrase may. A phrase is one or more words, in order."""

    groups: tuple[tuple[str, ...], ...]
    excluded: tuple[str, ...]


def parse_query(query: str) -> Terms:
    """The terms of a query, or ValidationError (for `q`) when it is empty or too long."""
    # Control characters (NUL among them, which PostgreSQL refuses in text) are spaces.
    query = "".join(" " if unicodedata.category(char) == "Cc" else char for char in query).strip()
    if not query:
        raise ValidationError({"q": str(EMPTY_QUERY)})
    if len(query) > QUERY_MAX_LENGTH:
        raise ValidationError(
            {
                "q": ngettext(
                    "A search can have at most %(limit)s character (it has %(length)s).",
                    "A search can have at most %(limit)s characters (it has %(length)s).",
                    QUERY_MAX_LENGTH,
                )
                % {"limit": QUERY_MAX_LENGTH, "length": len(query)}
            }
        )
    groups: list[list[str]] = []
    excluded: list[str] = []
    either = last_was_group = False
    for match in TERM.finditer(query):
        negated, phrase, word = match.groups()
        text = phrase if phrase is not None else word
        if phrase is None and not negated and word.casefold() == "or":
            # Either the last word or the next; after an excluded word (or none) it means nothing.
            either = last_was_group
            continue
        # Punctuation alone is no word to either database: such a term is left out.
        if not has_words(text):
            continue
        if negated:
            excluded.append(text)
        elif either:
            groups[-1].append(text)
        else:
            groups.append([text])
        either, last_was_group = False, not negated
    return Terms(tuple(tuple(group) for group in groups), tuple(excluded))


def fts5_query(terms: Terms) -> str:
    """The terms in FTS5's query syntax, each phrase quoted so that nothing in it is syntax."""

    def quoted(phrase: str) -> str:
        return '"' + phrase.replace('"', '""') + '"'

    # Explicit ANDs: FTS5 joins bare phrases implicitly, but not parenthesised groups.
    query = " AND ".join(f"({' OR '.join(map(quoted, group))})" for group in terms.groups)
    return "".join([f"({query})", *(f" NOT {quoted(phrase)}" for phrase in terms.excluded)])


def tsquery(terms: Terms) -> SearchQuery:
    """The terms as PostgreSQL's tsquery, each phrase passed as a parameter to phraseto_tsquery."""

    def phrase(text: str) -> SearchQuery:
        return SearchQuery(text, search_type="phrase", config=CONFIG)

    query = reduce(and_, (reduce(or_, map(phrase, group)) for group in terms.groups))
    return reduce(and_, (~phrase(text) for text in terms.excluded), query)


# --- The search ---------------------------------------------------------------------


def search_messages(
    *, user: User, query: str, chat_id: int | None = None, author: str | None = None
) -> MessageQuerySet:
    """The messages the user may see that match the query, newest first.

    `chat_id` keeps to one chat (Http404 if the user may not see it); `author` to the
    messages of one person, by username or id. Each message has its chat and author at
    hand, and `search_headline`: the text around the match, whose HTML snippet_html() makes;
    they are ordered by `recency` (the id).
    Raises ValidationError for an empty or overlong query.
    """
    terms = parse_query(query)
    # Newest first, by `recency` (the id, as an expression): ordered by the id itself,
    # PostgreSQL read its primary key backwards, testing every message until enough matched:
    # all of them for a rare word or a typo (272 ms over 220,000 messages). Sorting what the
    # GIN index found took 1 ms (12 ms for a word in 20,000 messages).
    messages = Message.objects.not_deleted().select_related("user", "chat").annotate(recency=F("pk") + 0)
    if chat_id is not None:
        messages = messages.filter(chat=services.get_visible_chat(user=user, chat_id=chat_id))
    else:
        messages = messages.filter(chat__in=Chat.objects.visible_to(user).values("pk"))
    if author:
        messages = messages.filter(by_author(author))
    if not terms.groups:
        return messages.none()
    connection = connections[router.db_for_read(Message)]
    if connection.vendor == "postgresql":
        found = tsquery(terms)
        messages = messages.alias(document=Document("text")).filter(document=found)
        messages = messages.alias(text_length=Length("text"))
        headline: Func | Case = postgresql_headline(found)
    else:
        ensure_fts5_index(connection)
        match = fts5_query(terms)
        messages = messages.filter(
            pk__in=RawSQL(FTS_MATCHES, (match,))  # noqa: S611 (a constant; the query is a parameter)
        )
        headline = Fts5Snippet(match)
    return messages.annotate(search_headline=headline).order_by("-recency")


def by_author(author: str) -> Q:
    """Messages by the person of this username, or of this id when it is a number."""
    if "\x00" in author:
        return Q(pk__in=[])
    condition = Q(user__username=author)
    if author.isascii() and author.isdigit() and len(author) <= 18:
        condition |= Q(user_id=int(author))
    return condition


def snippet_html(message: Message) -> SafeString:
    """The text around the match as HTML: all of it escaped, the matched words in <mark>,
    with "…" where the text goes on before or after."""
    headline: str = (getattr(message, "search_headline", None) or "").replace(TAG_BREAK, "")
    text = message.text
    plain = headline.replace(OPEN, "").replace(CLOSE, "")
    # A text that holds the marking characters itself would mark words of its own choosing.
    if OPEN in text or CLOSE in text:
        headline = plain
    parts, marking = [], False
    for piece in re.split(f"([{OPEN}{CLOSE}])", headline):
        if piece == OPEN and not marking:
            parts.append("<mark>")
            marking = True
        elif piece == CLOSE and marking:
            parts.append("</mark>")
            marking = False
        elif piece not in (OPEN, CLOSE):
            parts.append(str(escape(piece)))
    if marking:
        parts.append("</mark>")
    start = text.find(plain) if plain else -1
    before = "… " if start > 0 and has_words(text[:start]) else ""
    after = " …" if start >= 0 and has_words(text[start + len(plain) :]) else ""
    return mark_safe(before + "".join(parts).strip() + after)  # noqa: S308 (escaped piece by piece)


def has_words(text: str) -> bool:
    return any(char.isalnum() for char in text)


# --- PostgreSQL ---------------------------------------------------------------------

# A text this short is shown whole; a longer one, by the fragment around its match.
SHORT_TEXT = 200


def postgresql_headline(query: SearchQuery) -> Case:
    """The text with the matched words marked: whole when it is short, else one fragment
    stretched to both sides of the match (which leaves out punctuation at its ends)."""
    text = Replace("text", Value("<"), Value("<" + TAG_BREAK))
    options: dict[str, Any] = {"config": CONFIG, "start_sel": OPEN, "stop_sel": CLOSE}
    return Case(
        When(Q(text_length__lte=SHORT_TEXT), then=SearchHeadline(text, query, highlight_all=True, **options)),
        default=SearchHeadline(
            text,
            query,
            max_words=SNIPPET_WORDS,
            min_words=SNIPPET_WORDS // 2,
            max_fragments=1,
            **options,
        ),
    )


class Document(Func):
    """A message's words, exactly as the GIN index of migration 0008 has them, so that the
    planner can use it (the configuration is written into the SQL, not passed as a parameter)."""

    template = f"to_tsvector('{CONFIG}'::regconfig, %(expressions)s)"
    output_field = SearchVectorField()


# --- SQLite -------------------------------------------------------------------------

# The FTS5 table and its triggers, as migration 0008 makes them (a test checks that the two agree).
SQLITE_SCHEMA = {
    "chat_message_fts": (
        "CREATE VIRTUAL TABLE chat_message_fts USING fts5(text, content='chat_message', "
        "content_rowid='id', tokenize='unicode61 remove_diacritics 0')"
    ),
    "chat_message_fts_insert": (
        "CREATE TRIGGER chat_message_fts_insert AFTER INSERT ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END"
    ),
    "chat_message_fts_delete": (
        "CREATE TRIGGER chat_message_fts_delete AFTER DELETE ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) VALUES ('delete', old.id, old.text); END"
    ),
    "chat_message_fts_update": (
        "CREATE TRIGGER chat_message_fts_update AFTER UPDATE OF text ON chat_message BEGIN "
        "INSERT INTO chat_message_fts(chat_message_fts, rowid, text) VALUES ('delete', old.id, old.text); "
        "INSERT INTO chat_message_fts(rowid, text) VALUES (new.id, new.text); END"
    ),
}
FTS_REBUILD = "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')"
FTS_MATCHES = "SELECT rowid FROM chat_message_fts WHERE chat_message_fts MATCH %s"
# snippet(): the column, the marks, no ellipsis (snippet_html() adds its own), the words.
FTS_SNIPPET = (
    "(SELECT snippet(chat_message_fts, 0, %s, %s, '', %s) FROM chat_message_fts "
    "WHERE chat_message_fts MATCH %s AND rowid = {message_id})"
)


def ensure_fts5_index(connection: BaseDatabaseWrapper) -> None:
    """Make the FTS5 table and its triggers where they are missing, and then index every message.

    Django rebuilds a SQLite table for most changes of its fields, and the triggers go with
    the old table; a database made without migrations has neither.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE name LIKE 'chat\\_message\\_fts%' ESCAPE '\\'")
        present = {name for (name,) in cursor.fetchall()} & set(SQLITE_SCHEMA)
        if present == set(SQLITE_SCHEMA):
            return
        logger.warning(
            "The search index lacked %s: made again and rebuilt.", sorted(set(SQLITE_SCHEMA) - present)
        )
        for name, sql in SQLITE_SCHEMA.items():
            if name not in present:
                cursor.execute(sql)
        cursor.execute(FTS_REBUILD)


class Fts5Snippet(Func):
    """The text around the match, by FTS5's snippet(), for the message of the outer query."""

    output_field = TextField()

    def __init__(self, match: str) -> None:
        super().__init__(F("pk"))
        self.match = match

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[Any, ...]]:
        pk_sql, pk_params = compiler.compile(self.source_expressions[0])
        return FTS_SNIPPET.format(message_id=pk_sql), (OPEN, CLOSE, SNIPPET_WORDS, self.match, *pk_params)
