"""Avatar images: checked by their header, then stored as one small square.

An upload is refused on its byte count and on its pixel count, the latter read
from the image header before any pixel is decoded, so a small file that would
decompress to gigabytes costs nothing. What passes is decoded once, turned
upright, cropped to a centred square (pages show avatars as circles with
`object-fit: cover`, so nothing visible is lost) and re-encoded at no more than
`AVATAR_SIDE` pixels a side, which also leaves its EXIF metadata (GPS, camera)
behind.
"""

import io
import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from PIL import Image, ImageOps

# `.avatar-xl` (static/css/site.css) is 112 CSS pixels, the largest a page shows; twice that is sharp on 2x screens.
AVATAR_SIDE = 224
# Only these decoders may read an upload: they are the formats the avatar field accepts.
DECODERS = ("JPEG", "PNG", "GIF", "WEBP")
UNREADABLE = "This image could not be read. Upload a JPEG, PNG, GIF or WebP."


def avatar_validate(file: File) -> None:
    """Refuse `file` if it has too many bytes, or if its header gives more pixels than allowed.

    Only the header is read; the pixels stay undecoded. Raises `ValidationError`.
    """
    limit = settings.SPACES_AVATAR_MAX_BYTES
    if file.size > limit:
        raise ValidationError(
            f"An avatar may be at most {limit // 1024} KB; this one is {file.size // 1024} KB.", code="avatar_too_big"
        )
    with _opened(file):
        pass
    file.seek(0)


def avatar_resized(file: File) -> ContentFile:
    """The upload as it is stored: validated, upright, square, at most `AVATAR_SIDE` a side.

    Transparent images stay PNG, the rest become JPEG; the colour profile is kept.
    Raises `ValidationError` for a file that is too big or does not decode.
    """
    avatar_validate(file)
    with _opened(file) as original:
        try:
            # JPEG decodes straight to a smaller scale (never below the size asked for).
            original.draft(None, (AVATAR_SIDE, AVATAR_SIDE))
            image = ImageOps.exif_transpose(original)
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA" if transparent else "RGB")
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise ValidationError(UNREADABLE, code="avatar_unreadable") from error
        icc_profile = original.info.get("icc_profile")
    side = min(*image.size, AVATAR_SIDE)
    square = ImageOps.fit(image, (side, side), method=Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if transparent:
        square.save(buffer, format="PNG", optimize=True, icc_profile=icc_profile)
        return ContentFile(buffer.getvalue(), name="avatar.png")
    square.save(buffer, format="JPEG", quality=88, optimize=True, icc_profile=icc_profile)
    return ContentFile(buffer.getvalue(), name="avatar.jpg")


def _opened(file: File) -> Image.Image:
    """`file` opened lazily by Pillow, its header read and its pixel count checked."""
    limit = settings.SPACES_AVATAR_MAX_PIXELS
    file.seek(0)
    try:
        with warnings.catch_warnings():
            # Pillow warns of big images as it opens them; the limit below is the stricter rule.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(file, formats=DECODERS)
    except Image.DecompressionBombError as error:
        raise ValidationError(
            f"An avatar may be at most {limit:,} pixels; this one has over {Image.MAX_IMAGE_PIXELS * 2:,}.",
            code="avatar_too_many_pixels",
        ) from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ValidationError(UNREADABLE, code="avatar_unreadable") from error
    width, height = image.size
    if width * height > limit:
        image.close()
        raise ValidationError(
            f"An avatar may be at most {limit:,} pixels; this one is {width}x{height}.",
            code="avatar_too_many_pixels",
        )
    return image
