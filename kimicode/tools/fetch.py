"""The ``fetch`` tool: a web page as readable Markdown (a PDF as its text), bounded in size and time.

Whether a URL may be read at all is the permission policy's decision (``fetch(URL)`` rules, pages off this
machine ask). The policy and this tool read the URL the same way and judge the same resolved address
(kimicode/security/urls.py): the lookup the policy made is pinned, the request goes to that address itself
(the TLS certificate is still checked against the name), and cloud metadata is refused whatever was allowed. Redirects are followed within the same origin
(and from http to https on the same host); one that leaves it is reported, not followed, so the next URL
passes the policy as a call of its own. Proxy variables are not used: the checks hold only for a
direct connection.

HTML becomes Markdown through trafilatura (main content only: navigation, cookie banners, footers and
scripts left out; code blocks fenced, tables kept), text types are shown as they are, PDFs through pypdf.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from kimicode.tools.base import FETCH_MAX_CHARS, FETCH_MAX_DOWNLOAD_BYTES, Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.params import Int, Str, ToolParams

if TYPE_CHECKING:
    from kimicode.security.urls import Target

DEFAULT_MAX_CHARS = 20_000
MIN_MAX_CHARS = 500
MAX_REDIRECTS = 5
CONNECT_TIMEOUT_S = 10.0
TOTAL_TIMEOUT_S = 30.0
USER_AGENT = "kimicode-fetch/1 (a terminal coding agent reading documentation)"
ACCEPT = "text/html,application/xhtml+xml,text/markdown,text/plain;q=0.9,application/pdf;q=0.8,*/*;q=0.5"
HTML_TYPES = ("text/html", "application/xhtml+xml")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript", "application/x-yaml",
              "application/toml", "application/ld+json")
_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


class FetchProblem(Exception):
    """A fetch that cannot give a page; the message is one line for the model."""


@dataclass
class Download:
    url: str  # where the content finally came from
    status: int
    content_type: str  # media type only, lower case
    charset: str
    body: bytes
    cut: bool  # stopped at FETCH_MAX_DOWNLOAD_BYTES
    redirect: str = ""  # a redirect that was not followed (another origin)


class FetchParams(ToolParams):
    url: Str = Field(description="http:// or https:// URL")
    max_chars: Int = DEFAULT_MAX_CHARS


class FetchTool(Tool):
    name: ClassVar[str] = "fetch"
    description: ClassVar[str] = (
        "Read a web page (http/https) as Markdown, or a PDF's text. For documentation, changelogs, issues. "
        "max_chars bounds the text returned."
    )
    params: ClassVar[type[FetchParams]] = FetchParams
    # It changes nothing on this machine; whether it may reach a URL is decided by the policy.
    read_only: ClassVar[bool] = True

    def summary(self, args: dict[str, Any]) -> str:
        return f"fetch {args.get('url', '')}"

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            given = FetchParams.parse(args)
        except ToolError as exc:
            return ToolResult(str(exc), is_error=True)
        url = given.url.strip()
        if not url:
            return ToolResult("url is empty: give an http:// or https:// URL", is_error=True)
        max_chars = max(MIN_MAX_CHARS, min(given.max_chars or DEFAULT_MAX_CHARS, FETCH_MAX_CHARS))
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT_S):
                download = await download_page(url)
        except TimeoutError:
            return ToolResult(f"fetch {url} gave up after {TOTAL_TIMEOUT_S:g} s without the whole page", is_error=True)
        except FetchProblem as exc:
            return ToolResult(f"fetch {url} failed: {exc}", is_error=True)
        if download.redirect:
            return ToolResult(
                f"{download.url} redirects ({download.status}) to {download.redirect}, another site: not followed. "
                "Fetch that URL if it is the page you want."
            )
        try:
            title, text = to_text(download)
        except FetchProblem as exc:
            return ToolResult(f"fetch {url}: {exc}", is_error=True)
        return render(url, download, title, text, max_chars)


# -- downloading -------------------------------------------------------------------------------------


async def download_page(url: str) -> Download:
    import httpx2

    from kimicode.security import urls

    try:
        target = urls.parse(url)
    except urls.UrlError as exc:
        raise FetchProblem(f"refused: {exc}") from None
    timeout = httpx2.Timeout(TOTAL_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    async with httpx2.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            # The lookup the policy made (pinned), or one made now: either way the address judged is the
            # address connected to.
            addresses = await urls.resolve(target)
            problem = urls.connect_problem(target, addresses)
            if problem:
                raise FetchProblem(f"refused: {problem}")
            current = httpx2.URL(target.url)
            pinned = addresses[0]
            request = client.build_request(
                "GET",
                current.copy_with(host=pinned),  # the address just checked, not a second lookup
                headers={"Host": target.netloc, "User-Agent": USER_AGENT, "Accept": ACCEPT},
                extensions={"sni_hostname": target.host},
            )
            try:
                response = await client.send(request, stream=True)
            except httpx2.HTTPError as exc:
                raise FetchProblem(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
            try:
                if response.is_redirect and "location" in response.headers:
                    location = response.headers["location"]
                    joined = str(current.join(location))
                    try:
                        following = urls.parse(joined)
                    except urls.UrlError:
                        following = None
                    if following is None or not _same_origin(target, following):
                        shown = location if "://" in location else joined  # as the server wrote it
                        return Download(target.url, response.status_code, "", "", b"", False, redirect=shown)
                    target = following
                    continue
                body, cut = await _read_bounded(response)
                media, charset = _content_type(response.headers.get("content-type", ""))
                return Download(target.url, response.status_code, media, charset, body, cut)
            except httpx2.HTTPError as exc:
                raise FetchProblem(f"the connection broke while reading ({type(exc).__name__})") from None
            finally:
                await response.aclose()
    raise FetchProblem(f"more than {MAX_REDIRECTS} redirects")


def _same_origin(current: Target, target: Target) -> bool:
    if (current.scheme, current.host, current.port) == (target.scheme, target.host, target.port):
        return True
    # http → https on the same host with default ports is the same site moving to TLS.
    return (
        current.host == target.host and current.scheme == "http" and target.scheme == "https"
        and current.port == 80 and target.port == 443
    )


async def _read_bounded(response: Any) -> tuple[bytes, bool]:
    """The (decoded) body up to FETCH_MAX_DOWNLOAD_BYTES; a compressed bomb stops there too."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= FETCH_MAX_DOWNLOAD_BYTES:
            return b"".join(chunks)[:FETCH_MAX_DOWNLOAD_BYTES], True
    return b"".join(chunks), False


def _content_type(header: str) -> tuple[str, str]:
    media, _, rest = header.partition(";")
    charset = ""
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


# -- turning it into text ----------------------------------------------------------------------------


def to_text(download: Download) -> tuple[str, str]:
    """(title, text) of a downloaded body; FetchProblem for content that has no text to show."""
    media = download.content_type
    body = download.body
    if media == "application/pdf" or (not media and body.startswith(b"%PDF-")):
        return "", _pdf_text(body, download.cut)
    if media in HTML_TYPES or (not media and body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))):
        return _html_text(_decode(body, download.charset, html=True))
    if media.startswith(TEXT_TYPES) or media.endswith(("+json", "+xml")) or not media:
        return "", _decode(body, download.charset, html=False)
    raise FetchProblem(f"the response is {media} ({len(body):,} bytes), which has no text to show")


def _decode(body: bytes, charset: str, html: bool) -> str:
    if not charset and html:
        match = _CHARSET.search(body[:4096])
        charset = match.group(1).decode("ascii").lower() if match else ""
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _html_text(html: str) -> tuple[str, str]:
    import trafilatura

    title = ""
    match = re.search(r"<title[^>]*>(.*?)</title>", html, re.IGNORECASE | re.DOTALL)
    if match:
        import html as entities

        title = " ".join(entities.unescape(match.group(1)).split())
    text = trafilatura.extract(
        html,
        output_format="markdown",
        include_links=True,
        include_tables=True,
        include_formatting=True,
        include_comments=False,
        favor_recall=True,
    )
    if not text:
        # No main content found (an app shell, a page that is only a table or a form): all of its text.
        text = trafilatura.html2txt(html) or ""
    return title, text.strip()


def _pdf_text(body: bytes, cut: bool) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if cut:
        raise FetchProblem(
            f"the PDF is larger than {FETCH_MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB; download it with bash "
            "(curl -o) and read it with the pdf skill"
        )
    try:
        reader = PdfReader(io.BytesIO(body))
        pages = [f"## Page {number}\n\n{(page.extract_text() or '').strip()}" for number, page in enumerate(reader.pages, 1)]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise FetchProblem(f"the PDF cannot be read ({exc})") from None
    return "\n\n".join(pages) if pages else "(a PDF without pages)"


def render(url: str, download: Download, title: str, text: str, max_chars: int) -> ToolResult:
    where = url if download.url == url else f"{url} (redirected to {download.url})"
    facts = [f"HTTP {download.status}", download.content_type or "unknown type", f"{len(download.body):,} bytes"]
    if download.cut:
        facts.append(f"download stopped at {FETCH_MAX_DOWNLOAD_BYTES // (1024 * 1024)} MB")
    header = f"{where}\n{' · '.join(facts)}" + (f"\ntitle: {title}" if title else "")
    total = len(text)
    if total > max_chars:
        text = text[:max_chars].rstrip() + (
            f"\n\n[cut at {max_chars:,} of {total:,} characters; fetch again with a larger max_chars "
            f"(at most {FETCH_MAX_CHARS:,}) to read on]"
        )
    is_error = download.status >= 400
    return ToolResult(f"{header}\n\n{text or '(no text on this page)'}", is_error=is_error)
