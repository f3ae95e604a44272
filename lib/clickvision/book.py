"""The executed workbook as a static book: navigation, a table of contents by paper, search.

    python -m clickvision.report site        (or ``make site``) -> _site/index.html

Built from the committed notebooks' outputs (nothing re-runs) with nbconvert and a template
of our own (``book_template/book``, extending JupyterLab's ``lab`` template, so pages look
like the notebooks in Lab) plus the project's docs (``docs/*.md``, rendered with mistune,
nbconvert's own Markdown renderer). Every page gets

* a sidebar: the book's table of contents by paper (the current page marked), and a search box;
* its own title (the notebook's first heading), and previous / next links in reading order;
* typeset equations: MathJax from the npm package ``mathjax`` (fetched with ``npm pack`` like
  the emoji vendors, kept under ``data/raw/npm``) is copied into the book so it works offline;
  without npm the pages fall back to MathJax's CDN (equations then need a network).

Search needs no server (the book works from ``file://``): the builder cuts every page into
its headed sections (read back from the HTML it wrote, so anchors match) and writes the
texts to ``static/search-index.js``; ``static/book.js`` matches every query term in a
section's title and text and ranks by counts (title hits first). ``search.html?q=...``
lists the results; the box in the sidebar shows the best ones as you type.
Tests: the structure in Python, the search function under Node, and a page rendered in
headless Chromium (``tests/test_book.py``; the browser tests skip where no browser is
installed: ``apt-get install chromium``).
"""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from . import paths

TEMPLATE_DIR = Path(__file__).parent / "book_template"
STATIC_DIR = TEMPLATE_DIR / "static"
MATHJAX_PACKAGE = ("mathjax", "3.2.2")
MATHJAX_FILE = "tex-svg.js"  # self-contained (no font files), the SVG output
MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3.2.2/es5/tex-svg.js"
DOCS = (("docs/DESIGN.md", "Design: data flow, profiles, verdict engine"),
        ("docs/READING-NOTES.md", "Reading notes: ambiguities and choices"),
        ("docs/REFERENCES.md", "References"))
SECTION_NAMES = {"front": "The workbook", "00": "Workbook", "A": "Paper A. MTMDD-VM",
                 "B": "Paper B. Click CF retrieval", "C": "Paper C. CHTN",
                 "D": "Paper D. Collaborative image understanding"}
SECTION_TEXT_CHARS = 4000
MATHJAX_CONFIG = json.dumps({"tex": {"inlineMath": [["$", "$"], ["\\(", "\\)"]],
                                     "displayMath": [["$$", "$$"], ["\\[", "\\]"]],
                                     "processEscapes": True, "processEnvironments": True, "tags": "ams"},
                             "svg": {"fontCache": "global"}})


@dataclass
class Page:
    """One page of the book: ``href`` relative to the book's root, ``section`` a SECTION_NAMES key."""

    href: str
    title: str
    section: str
    source: Path | None = None
    kind: str = "notebook"  # notebook | doc | index | search

    @property
    def root(self) -> str:
        """The relative path from this page back to the book's root ('' or '../')."""
        return "../" * self.href.count("/")


def notebook_title(nb) -> str:
    """The notebook's first Markdown heading (without '#'), else its file name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return ""


def book_pages() -> list[Page]:
    """Every page in reading order: front page, docs, then the notebooks folder by folder."""
    import nbformat

    from .workbook import notebooks

    pages = [Page("index.html", "clickvision: the executed workbook", "front", kind="index")]
    for name, title in DOCS:
        src = paths.PROJ_ROOT / name
        if src.exists():
            pages.append(Page(f"docs/{Path(name).stem}.html", title, "front", src, "doc"))
    for nb_path in notebooks():
        rel = nb_path.relative_to(paths.NOTEBOOKS_DIR)
        title = notebook_title(nbformat.read(nb_path, as_version=4)) or rel.stem
        section = "00" if rel.parts[0].startswith("00") else rel.parts[0].split("-", 1)[0]
        pages.append(Page(rel.with_suffix(".html").as_posix(), title, section, nb_path))
    return pages


# --- navigation --------------------------------------------------------------------------

def nav_html(pages: list[Page], current: Page) -> str:
    """The sidebar: search box and table of contents by section, ``current`` marked."""
    root = current.root
    parts = [f'<nav class="cv-nav" aria-label="Table of contents" data-root="{root}">',
             f'<a class="cv-home" href="{root}index.html">clickvision</a>',
             f'<form class="cv-search" action="{root}search.html" method="get" role="search">'
             '<input id="cv-search-input" name="q" type="search" placeholder="Search the workbook" '
             'autocomplete="off" aria-label="Search the workbook"></form>',
             '<div id="cv-search-results" class="cv-search-results" hidden></div>']
    for key, name in SECTION_NAMES.items():
        members = [p for p in pages if p.section == key and p.kind in ("notebook", "doc")]
        if not members:
            continue
        parts.append(f'<h3>{html.escape(name)}</h3><ol>')
        for p in members:
            mark = ' aria-current="page" class="cv-current"' if p is current else ""
            parts.append(f'<li><a href="{root}{p.href}"{mark}>{html.escape(p.title)}</a></li>')
        parts.append("</ol>")
    parts.append("</nav>")
    return "".join(parts)


def pager_html(pages: list[Page], current: Page) -> str:
    """Previous / next links in reading order (the search page has none)."""
    order = [p for p in pages if p.kind != "search"]
    if current not in order:
        return ""
    i = order.index(current)
    root = current.root
    prev = (f'<a class="cv-prev" rel="prev" href="{root}{order[i - 1].href}">&larr; {html.escape(order[i - 1].title)}</a>'
            if i > 0 else "<span></span>")
    nxt = (f'<a class="cv-next" rel="next" href="{root}{order[i + 1].href}">{html.escape(order[i + 1].title)} &rarr;</a>'
           if i + 1 < len(order) else "<span></span>")
    return f'<nav class="cv-pager" aria-label="Previous and next page">{prev}{nxt}</nav>'


def _shell(pages: list[Page], page: Page, body: str, mathjax_url: str) -> str:
    """A non-notebook page (front page, docs, search) in the book's frame."""
    root = page.root
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1.0'>"
            f"<title>{html.escape(page.title)} | clickvision</title>"
            f"<link rel='stylesheet' href='{root}static/book.css'>"
            f"<script>window.MathJax = {MATHJAX_CONFIG};</script>"
            f"<script defer src='{mathjax_url}'></script></head>"
            f"<body class='cv-book cv-{page.kind}'>{nav_html(pages, page)}<main class='cv-main'>{body}"
            f"{pager_html(pages, page)}</main>"
            f"<script src='{root}static/search-index.js'></script><script src='{root}static/book.js'></script>"
            "</body></html>")


# --- search index ---------------------------------------------------------------------------

class _Sections(HTMLParser):
    """Split an HTML page into (anchor id, heading, text) sections at its h1-h4 headings."""

    SKIP = frozenset({"script", "style", "nav", "head", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[dict] = [{"id": "", "heading": "", "text": []}]
        self._skip = 0
        self._heading: dict | None = None

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif re.fullmatch(r"h[1-4]", tag) and not self._skip:
            self._heading = {"id": dict(attrs).get("id") or "", "heading": [], "text": []}
        elif tag == "a" and self._heading is not None and "anchor-link" in (dict(attrs).get("class") or ""):
            self._skip += 1  # the pilcrow nbconvert appends to headings

    def handle_endtag(self, tag):
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        elif tag == "a" and self._heading is not None and self._skip:
            self._skip -= 1
        elif re.fullmatch(r"h[1-4]", tag) and self._heading is not None:
            h = self._heading
            h["heading"] = " ".join("".join(h["heading"]).split())
            self.sections.append(h)
            self._heading = None

    def handle_data(self, data):
        if self._skip:
            return
        (self._heading["heading"] if self._heading is not None else self.sections[-1]["text"]).append(data)


def page_sections(page_html: str) -> list[dict]:
    """``[{"id", "heading", "text"}]`` of a page's headed sections (text whitespace-collapsed, capped)."""
    parser = _Sections()
    parser.feed(page_html)
    out = []
    for s in parser.sections:
        text = " ".join(" ".join(s["text"]).split())[:SECTION_TEXT_CHARS]
        if s["heading"] or text:
            out.append({"id": s["id"], "heading": s["heading"], "text": text})
    return out


# --- MathJax ----------------------------------------------------------------------------------

def local_mathjax(static_out: Path, npm_dir: Path | None = None) -> bool:
    """Copy MathJax's self-contained SVG build into ``static_out``; False when npm cannot fetch it."""
    target = static_out / MATHJAX_FILE
    if target.exists():
        return True
    npm_dir = npm_dir or paths.PROJ_ROOT / "data" / "raw" / "npm"
    name, version = MATHJAX_PACKAGE
    tarball = npm_dir / f"{name}-{version}.tgz"
    if not tarball.exists():
        if shutil.which("npm") is None:
            return False
        npm_dir.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=npm_dir, check=True,
                           capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return False
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(f"package/es5/{MATHJAX_FILE}")
        if member is None:
            return False
        target.write_bytes(member.read())
    return True


# --- the build --------------------------------------------------------------------------------

def _front_page(pages: list[Page]) -> str:
    from .claims import VERDICTS
    from .report import PAPER_NAMES, claims_summary

    summary = claims_summary()
    head = "".join(f"<th>{v}</th>" for v in VERDICTS)
    rows = "".join(f"<tr><td>{html.escape(PAPER_NAMES.get(r['paper'], r['paper']))}</td><td>{r['judged']}</td>"
                   + "".join(f"<td>{r[v]}</td>" for v in VERDICTS) + "</tr>" for r in summary.to_dict("records"))
    toc = []
    for key, name in SECTION_NAMES.items():
        members = [p for p in pages if p.section == key and p.kind in ("notebook", "doc")]
        if members:
            toc.append(f"<h2>{html.escape(name)}</h2><ul>"
                       + "".join(f'<li><a href="{p.href}">{html.escape(p.title)}</a></li>' for p in members) + "</ul>")
    return ("<h1 id='clickvision'>clickvision: the executed workbook</h1>"
            "<p>Four papers on user clicks and collaborative signals for understanding images, reproduced "
            "section by section, with the papers' numbers beside ours and every claim judged by one verdict "
            "engine. The pages show the committed <code>default</code> runs; simulated data (clicks, "
            "interactions) is marked as simulated in every notebook. Each notebook's first cell gives its "
            "paper's reference and link.</p>"
            f"<h2 id='claims-judged'>Claims judged</h2><table class='cv-claims'><tr><th>paper</th><th>judged</th>"
            f"{head}</tr>{rows}</table>" + "".join(toc))


def build_book(out: Path | None = None, mathjax: str = "auto") -> Path:
    """Write the book to ``out`` (default ``_site/``); return the front page's path.

    ``mathjax``: ``"auto"`` (a local copy when npm can fetch it, else the CDN), ``"local"``
    (raise when it cannot), or ``"cdn"``.
    """
    import mistune
    import nbformat
    from nbconvert import HTMLExporter

    if mathjax not in ("auto", "local", "cdn"):
        raise ValueError(f"mathjax must be 'auto', 'local' or 'cdn', got {mathjax!r}")
    out = Path(out) if out is not None else paths.PROJ_ROOT / "_site"
    static = out / "static"
    static.mkdir(parents=True, exist_ok=True)
    for f in STATIC_DIR.iterdir():
        shutil.copyfile(f, static / f.name)
    is_local = mathjax != "cdn" and local_mathjax(static)
    if mathjax == "local" and not is_local:
        raise RuntimeError("MathJax could not be fetched with npm (npm pack mathjax@3.2.2); use mathjax='cdn'")

    pages = book_pages()
    pages.append(Page("search.html", "Search", "front", kind="search"))
    exporter = HTMLExporter(template_name="book", extra_template_basedirs=[str(TEMPLATE_DIR)])
    index: list[dict] = []
    for page in pages:
        mj = f"{page.root}static/{MATHJAX_FILE}" if is_local else MATHJAX_CDN
        if page.kind == "notebook":
            nb = nbformat.read(page.source, as_version=4)
            nb.metadata["title"] = f"{page.title} | clickvision"
            exporter.mathjax_url = mj
            text, _ = exporter.from_notebook_node(nb, resources={"cv_book": {
                "nav": nav_html(pages, page), "pager": pager_html(pages, page), "root": page.root,
                "mathjax_config": MATHJAX_CONFIG}})
        elif page.kind == "doc":
            body = mistune.html(page.source.read_text())
            body = _anchor_headings(body)
            text = _shell(pages, page, f"<article class='cv-doc'>{body}</article>", mj)
        elif page.kind == "index":
            text = _shell(pages, page, _front_page(pages), mj)
        else:
            text = _shell(pages, page, "<h1 id='search'>Search</h1><p id='cv-search-summary'></p>"
                                       "<ol id='cv-search-page' class='cv-search-page'></ol>", mj)
        target = out / page.href
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(relink(text, page))
        if page.kind != "search":
            index.append({"url": page.href, "title": page.title,
                          "section": SECTION_NAMES.get(page.section, ""), "sections": page_sections(text)})
    for name in ("CITATION.cff", "LICENSE", "DATA-LICENSES.md"):
        if (paths.PROJ_ROOT / name).exists():
            shutil.copyfile(paths.PROJ_ROOT / name, out / name)
    (static / "search-index.js").write_text("window.CV_SEARCH = " + json.dumps(index, ensure_ascii=False) + ";\n")
    return out / "index.html"


def relink(text: str, page: Page) -> str:
    """Links written for the repository (a notebook's relative links to the docs folder's
    Markdown files and to the citation file) pointed at the book's own pages and copies."""
    depth = r"(?:\.\./)*"
    text = re.sub(rf'href="{depth}docs/([A-Za-z0-9_-]+)\.md(#[^"]*)?"',
                  lambda m: f'href="{page.root}docs/{m.group(1)}.html{m.group(2) or ""}"', text)
    return re.sub(rf'href="{depth}(CITATION\.cff|LICENSE|DATA-LICENSES\.md)"',
                  lambda m: f'href="{page.root}{m.group(1)}"', text)


def _anchor_headings(body: str) -> str:
    """Give mistune's headings ids (nbconvert's notebooks have them) so search results can link to them."""
    used: set[str] = set()

    def add(m: re.Match) -> str:
        text = re.sub(r"<[^>]+>", "", m.group(3))
        slug = re.sub(r"[^a-z0-9]+", "-", html.unescape(text).lower()).strip("-") or "section"
        base, n = slug, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        return f'<h{m.group(1)}{m.group(2)} id="{slug}">{m.group(3)}</h{m.group(1)}>'

    return re.sub(r"<h([1-4])([^>]*)>(.*?)</h\1>", add, body, flags=re.DOTALL)
