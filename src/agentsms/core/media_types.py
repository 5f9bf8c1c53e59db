"""Which media agentsms stores and how ``/media/{token}`` serves it.

Stored media is served from an address a browser may open, by default on the dashboard's
own origin. So only the media types carriers carry are accepted (``problem``): raster and
camera images, audio, video, vCard and PDF; never SVG, HTML, XHTML, XML, script or an
unknown type. The bytes are sniffed too: content that starts like markup (``<`` after an
optional byte-order mark and whitespace) is refused whatever type it claims, since no
accepted format starts that way.

Serving (``disposition``): raster images inline, everything else as a download, and
anything stored before these rules that breaks them as ``application/octet-stream``.
"""

from __future__ import annotations

import codecs

OCTET_STREAM = "application/octet-stream"

# Shown inline: browsers decode these as pictures and nothing else.
RASTER_IMAGES = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/pjpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/x-ms-bmp",
    }
)
IMAGES = RASTER_IMAGES | {
    "image/heic",
    "image/heif",
    "image/heic-sequence",
    "image/heif-sequence",
    "image/avif",
    "image/tiff",
}
DOCUMENTS = frozenset({"text/vcard", "text/x-vcard", "text/directory", "application/pdf"})
# Every subtype of these families (vendors name video as video/mpg, audio as audio/amr-nb,
# ...), except XML-based ones (SMIL, TTML and the like).
FAMILIES = ("audio/", "video/")
ACCEPTED = "images (JPEG, PNG, GIF, WebP, BMP, HEIC/HEIF, TIFF), audio, video, vCard or PDF"

_WHITESPACE = b" \t\r\n\x0c"
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def normalise(content_type: str) -> str:
    """``content_type`` in lower case without parameters (``Image/PNG; x=1`` → ``image/png``)."""
    return content_type.split(";")[0].strip().lower()


def type_problem(content_type: str) -> str | None:
    """Why media of ``content_type`` (lower case, no parameters) is refused, or None."""
    if content_type in IMAGES or content_type in DOCUMENTS:
        return None
    subtype = content_type.partition("/")[2]
    is_xml = subtype == "xml" or subtype.endswith("+xml")
    if content_type.startswith(FAMILIES) and not is_xml:
        return None
    return f"{content_type} is not accepted; send {ACCEPTED}"


def looks_like_markup(data: bytes) -> bool:
    """Whether ``data`` starts like HTML, XML or SVG (what a browser could run as a page)."""
    head = data[:512]
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    for bom, encoding in _UTF16_BOMS:
        if head.startswith(bom):
            head = head[len(bom) :].decode(encoding, "ignore").encode("ascii", "ignore")
            break
    return head.lstrip(_WHITESPACE).startswith(b"<")


def problem(content_type: str, data: bytes) -> str | None:
    """Why media declared as ``content_type`` with these bytes is refused, or None."""
    refused = type_problem(content_type)
    if refused is None and looks_like_markup(data):
        refused = f"the content is HTML or XML, not {content_type}"
    return refused


def disposition(content_type: str, data: bytes) -> tuple[str, str]:
    """How to serve stored media: its ``Content-Type`` and ``Content-Disposition``."""
    content_type = normalise(content_type)
    if problem(content_type, data) is not None:
        return OCTET_STREAM, "attachment"
    return content_type, "inline" if content_type in RASTER_IMAGES else "attachment"
