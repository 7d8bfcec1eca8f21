"""What an uploaded file is, read from its bytes, never from its name or the sender's word.

A photo, selfie or signature must be a raster image (JPEG, PNG or WebP) that ends where its
format says it ends; audio must parse as WAV, Ogg, MP3 or MP4 audio (an ``ID3`` header before
text is not MP3); a plain attachment may be any of those or a PDF or plain text. Nothing that
carries markup a browser would run (HTML, SVG, XML, script) is kept, whatever else it claims
to be: a PNG with a page appended is refused. Sizes are read from headers before anything is
decoded: an image over MAX_IMAGE_PIXELS (a decompression bomb: a few hundred KB that decode to
gigabytes) and audio over MAX_AUDIO_SECONDS are refused.
"""

from __future__ import annotations

import io
import re
import struct
import unicodedata
import warnings
from pathlib import PurePosixPath

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
AUDIO_TYPES = {"WAVE": "audio/wav", "MP3": "audio/mpeg", "MP4": "audio/mp4"}
# 6000 x 4000: a phone camera's full-size photo; a selfie is far smaller.
MAX_IMAGE_PIXELS = 24_000_000
MAX_AUDIO_SECONDS = 10 * 60
MAX_NAME_CHARS = 200
# Markup a browser would run if the file were ever served as a page.
_MARKUP = re.compile(
    rb"<\s*(script|html|body|svg|iframe|object|embed|!doctype|\?xml)|javascript:", re.IGNORECASE
)


class UploadRefused(ValueError):
    """The content is not what the upload says it is, or is not allowed at all."""


def image_size(content: bytes) -> tuple[str, int, int]:
    """The image's format and dimensions, read from its header (nothing is decoded);
    UploadRefused when they are over MAX_IMAGE_PIXELS; ValueError when it is no image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():  # Pillow warns of bombs; this refuses them below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:  # reads the header only
                found = (image.format or "", *image.size)
    except Image.DecompressionBombError as exc:
        raise UploadRefused(f"the image has too many pixels: {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ValueError(f"not an image: {exc}") from None
    width, height = found[1], found[2]
    if width * height > MAX_IMAGE_PIXELS:
        raise UploadRefused(
            f"the image is {width}x{height} pixels; at most {MAX_IMAGE_PIXELS} pixels"
        )
    return found


def _image_type(content: bytes) -> str | None:
    """The image's content type, once its dimensions are within MAX_IMAGE_PIXELS (before
    any decoding), its structure checks out and nothing follows its end."""
    from PIL import Image, UnidentifiedImageError

    try:
        image_format, _, _ = image_size(content)
        with Image.open(io.BytesIO(content)) as image:
            image.verify()  # walks the structure; a renamed HTML file fails here
    except UploadRefused:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error):
        return None
    found = IMAGE_TYPES.get(image_format)
    if found is None or _bytes_after_image(found, content):
        return None
    return found


def _bytes_after_image(content_type: str, content: bytes) -> bool:
    """Whether anything follows the end of the image (a page appended to a photo)."""
    if content_type == "image/png":
        offset = 8
        while offset + 8 <= len(content):
            length = int.from_bytes(content[offset : offset + 4], "big")
            chunk = content[offset + 4 : offset + 8]
            offset += 12 + length
            if chunk == b"IEND":
                return offset != len(content)
        return True
    if content_type == "image/jpeg":
        return not content.rstrip(b"\x00").endswith(b"\xff\xd9")
    # WebP: a RIFF container whose size field covers the whole file.
    size = int.from_bytes(content[4:8], "little")
    return size + 8 + (size & 1) < len(content)


def _audio_type(content: bytes) -> str | None:
    """The audio's content type, once it parses as audio (headers and frames, not samples)
    lasting at most MAX_AUDIO_SECONDS."""
    import mutagen

    try:
        found = mutagen.File(io.BytesIO(content))
    except (mutagen.MutagenError, struct.error, ValueError, EOFError, IndexError):
        return None
    if found is None:
        return None
    name = type(found).__name__
    content_type = "audio/ogg" if name.startswith("Ogg") else AUDIO_TYPES.get(name)
    if content_type is None:
        return None
    seconds = float(getattr(found.info, "length", 0) or 0)
    if seconds > MAX_AUDIO_SECONDS:
        raise UploadRefused(f"the audio lasts {seconds:.0f} s; at most {MAX_AUDIO_SECONDS} s")
    return content_type


def _document_type(content: bytes) -> str | None:
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    head = content[:1024].lstrip().lower()
    if head.startswith((b"<", b"\xef\xbb\xbf<")):
        return None  # markup: never served back as an attachment
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def sniff(kind: str, content: bytes) -> str:
    """The content type of `content` if it fits the declared `kind`; UploadRefused otherwise."""
    if _MARKUP.search(content):
        raise UploadRefused(f"{_a(kind.lower())} upload must not carry markup (HTML, SVG, script)")
    if kind in ("PHOTO", "SELFIE", "SIGNATURE"):
        found = _image_type(content)
        expected = "a JPEG, PNG or WebP image"
    elif kind == "AUDIO":
        found = _audio_type(content)
        expected = "audio (WAV, Ogg, MP3 or MP4)"
    else:
        found = _image_type(content) or _audio_type(content) or _document_type(content)
        expected = "an image, audio, a PDF or plain text"
    if found is None:
        raise UploadRefused(f"{_a(kind.lower())} upload must be {expected}")
    return found


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def safe_name(filename: str) -> str:
    """The last part of a name a device gave, fit to store: no folders (either slash), no
    control characters (NUL among them), no leading dots, composed Unicode, at most
    MAX_NAME_CHARS characters; "upload" when nothing is left."""
    name = unicodedata.normalize("NFC", filename).replace("\\", "/")
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = PurePosixPath(name).name.lstrip(". ").strip()
    return name[-MAX_NAME_CHARS:] or "upload"
