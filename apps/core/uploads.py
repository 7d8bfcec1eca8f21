"""What an uploaded file is, read from its bytes, never from its name or the sender's word.

A photo, selfie or signature must decode as a raster image (JPEG, PNG or WebP); audio must
carry an audio header (WAV, Ogg, MP3, MP4/M4A); a plain attachment may be any of those or a PDF
or plain text, never markup a browser would run (HTML, SVG, XML).
"""

from __future__ import annotations

import io

IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class UploadRefused(ValueError):
    """The content is not what the upload says it is, or is not allowed at all."""


def _image_type(content: bytes) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()  # decodes the structure; a renamed HTML file fails here
            return IMAGE_TYPES.get(image.format or "")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _audio_type(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WAVE":
        return "audio/wav"
    if content[:4] == b"OggS":
        return "audio/ogg"
    if content[:3] == b"ID3" or (len(content) > 1 and content[0] == 0xFF and content[1] >= 0xE0):
        return "audio/mpeg"
    if content[4:8] == b"ftyp":
        return "audio/mp4"
    return None


def _document_type(content: bytes) -> str | None:
    if content.startswith(b"%PDF-"):
        return "application/pdf"
    head = content[:1024].lstrip().lower()
    if head.startswith((b"<", b"\xef\xbb\xbf<")) or b"<svg" in head or b"<script" in head:
        return None  # markup: never served back as an attachment
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def sniff(kind: str, content: bytes) -> str:
    """The content type of `content` if it fits the declared `kind`; UploadRefused otherwise."""
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
        raise UploadRefused(f"a {kind.lower()} upload must be {expected}")
    return found
