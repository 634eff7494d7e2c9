"""Message text as HTML: a safe Markdown subset, rendered once per message version.

Paragraphs and line breaks, bold, italic, strikethrough, inline code, fenced and indented
code blocks (highlighted on the server by Pygments), quotes, lists and links, with bare
URLs made into links. No raw HTML, no images, no headings or tables: what a chat message
needs. Whatever the parser makes then passes nh3's allow-list, which keeps only these
tags, only `http`, `https` and `mailto` links (opening in a new tab, with
`rel="nofollow noopener ugc"`) and only Pygments' class names on code.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from functools import cache
from html import escape

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# "@name" where a name may start: not after a word character or another "@" (an e-mail).
MENTION = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")
# Mentions everyone in the chat.
HERE = "here"
TAGS = {"p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span"}
ATTRIBUTES = {"a": {"href"}, "ol": {"start"}, "span": {"data-mention"}}
SCHEMES = {"http", "https", "mailto"}
# Code blocks longer than this are shown plain: highlighting costs time on every write.
HIGHLIGHT_MAX = 20_000
PREFIX = "hl-"
# Dark code blocks, readable in the light and the dark theme alike.
FORMATTER = HtmlFormatter(nowrap=True, classprefix=PREFIX, style="github-dark")
# Only Pygments' own class names survive: no message can borrow the page's classes.
CLASSES = {
    "span": {"mention"} | {PREFIX + name for name in STANDARD_TYPES.values() if name},
    "code": {"highlight"},
}


def highlight_code(code: str, language: str, _attributes: str) -> str:
    """A fenced block's code, highlighted when its language is known; "" lets the parser
    escape it as plain code."""
    if not language or len(code) > HIGHLIGHT_MAX:
        return ""
    try:
        lexer = get_lexer_by_name(language.split()[0])
    except ClassNotFound:
        return ""
    return f'<pre><code class="highlight">{highlight(code, lexer, FORMATTER)}</code></pre>'


def mention_candidates(text: str) -> set[str]:
    """The names a text may mention: each "@name", also without its trailing punctuation
    ("@bob," mentions bob)."""
    names = set()
    for match in MENTION.finditer(text):
        name = match.group(1)
        names.add(name)
        names.add(name.rstrip(".,+-@"))
    names.discard("")
    return names


def resolve(name: str, mentionable: Mapping[str, int]) -> tuple[str, str] | None:
    """(what the mention points at: a user id or "here", the name as written) for
    "@name", trying it without trailing punctuation too."""
    for candidate in (name, name.rstrip(".,+-@")):
        if candidate == HERE:
            return HERE, candidate
        if candidate in mentionable:
            return str(mentionable[candidate]), candidate
    return None


def split_mentions(state: StateCore) -> None:
    """A core rule: "@name" in text (not in links or code) becomes a mention token, for the
    members given in env["mentionable"] (name -> user id) and for @here."""
    mentionable = state.env.get("mentionable")
    if mentionable is None:
        return
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        in_link = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text" or in_link or "@" not in token.content:
                children.append(token)
            else:
                children.extend(mention_tokens(token.content, mentionable))
        block.children = children


def mention_tokens(text: str, mentionable: Mapping[str, int]) -> list[Token]:
    tokens = []
    position = 0
    for match in MENTION.finditer(text):
        found = resolve(match.group(1), mentionable)
        if found is None or match.start() < position:
            continue
        target, name = found
        if match.start() > position:
            tokens.append(Token("text", "", 0, content=text[position : match.start()]))
        tokens.append(Token("mention", "span", 0, content="@" + name, meta={"target": target}))
        position = match.start() + 1 + len(name)
    if position < len(text):
        tokens.append(Token("text", "", 0, content=text[position:]))
    return tokens


def render_mention(_renderer: object, tokens: list[Token], index: int, *_: object) -> str:
    token = tokens[index]
    return (
        f'<span class="mention" data-mention="{escape(token.meta["target"])}">{escape(token.content)}</span>'
    )


@cache
def parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark", {"html": False, "linkify": True, "breaks": True, "highlight": highlight_code}
    )
    md.enable(["linkify", "strikethrough"])
    md.disable(["image", "heading", "lheading", "html_block", "html_inline", "reference", "hr"])
    md.core.ruler.after("linkify", "mentions", split_mentions)
    md.add_render_rule("mention", render_mention)
    return md


@cache
def cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=TAGS,
        attributes=ATTRIBUTES,
        allowed_classes=CLASSES,
        url_schemes=SCHEMES,
        # A relative link (a path, or "//host") means nothing in a chat: only full URLs.
        url_relative="deny",
        link_rel="nofollow noopener ugc",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def render(text: str, mentionable: Mapping[str, int] | None = None) -> str:
    """The message's HTML: safe to put in any page as it is. "@name" of someone in
    `mentionable` (name -> user id), and "@here", become mention chips."""
    env = {"mentionable": mentionable} if mentionable is not None else {}
    return cleaner().clean(parser().render(text, env)).strip()


def mentions(html: str) -> tuple[set[int], bool]:
    """Whom rendered HTML mentions: user ids, and whether @here."""
    targets = set(re.findall(r'<span class="mention" data-mention="([^"]+)">', html))
    return {int(target) for target in targets if target.isdigit()}, HERE in targets


STYLESHEET_HEAD = """/* The look of message text made by chat.markdown; made by `python -m chat.markdown >
   static/chat/message.css` (a test checks that it is current). */
.message-text p + p, .message-text p + ul, .message-text p + ol, .message-text ul + p, .message-text ol + p,
.message-text blockquote, .message-text pre { margin-top: 0.25rem; }
.message-text ul { list-style: disc; padding-left: 1.25rem; }
.message-text ol { list-style: decimal; padding-left: 1.25rem; }
.message-text blockquote { border-left: 3px solid currentColor; opacity: 0.8; padding-left: 0.5rem; }
/* The theme's indigo: turned round in dark mode by the theme (styles.css). */
.message-text a { color: var(--color-indigo-700); text-decoration: underline; }
.message-text code { font-size: 0.875em; border-radius: 0.25rem; padding: 0 0.25rem;
  background: rgb(100 116 139 / 0.15); }
.message-text pre { overflow-x: auto; border-radius: 0.5rem; padding: 0.5rem 0.75rem;
  background: #0d1117; color: #e6edf3; white-space: pre; }
.message-text pre code { background: none; padding: 0; }
/* "(edited)" follows the last paragraph on its line. */
.message-text > p:has(+ .message-edited:last-child) { display: inline; }
"""


def stylesheet() -> str:
    """static/chat/message.css: message text, and code highlighted in Pygments' classes."""
    return STYLESHEET_HEAD + FORMATTER.get_style_defs("code.highlight") + "\n"


if __name__ == "__main__":
    sys.stdout.write(stylesheet())
