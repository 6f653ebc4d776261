"""Profile photos judged by their content, never by their name or the
browser's word, and re-encoded so that only pixels are kept.

A photo is stored as a fresh JPEG of at most PHOTO_SIDE pixels a side:
whatever the upload carried besides the picture (EXIF with the GPS position
of a child's home, XMP, comments, a polyglot's HTML or script) is not
copied. The file lives under MEDIA_ROOT with a random name but is served
only through organisations.views.user_photo_view, which asks who may see
the profile."""

import io
import warnings
from struct import error as struct_error

from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from common.errors import ApplicationError

PHOTO_MAX_BYTES = 5 * 1024 * 1024
PHOTO_MAX_SIDE = 4096
PHOTO_SIDE = 512
PHOTO_CONTENT_TYPE = "image/jpeg"
# Pillow tries only these decoders: nothing else (EPS, PSD, …) is parsed.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")


def _photo_invalid() -> ApplicationError:
    return ApplicationError(
        _("Upload a photo in JPEG, PNG or WebP format."), code="photo_invalid", extra={"field": "photo"}
    )


def _photo_too_large(message: str) -> ApplicationError:
    return ApplicationError(message, code="photo_too_large", status_code=413, extra={"field": "photo"})


def _photo_too_many_pixels() -> ApplicationError:
    return _photo_too_large(_("The photo is too large: at most %(side)d × %(side)d pixels.") % {"side": PHOTO_MAX_SIDE})


def photo_size_check(*, size: int) -> None:
    """Raises ApplicationError 413 "photo_too_large" for a file over
    PHOTO_MAX_BYTES, before any of it is read."""
    if size > PHOTO_MAX_BYTES:
        raise _photo_too_large(
            _("The photo is too large: at most %(megabytes)d MB.") % {"megabytes": PHOTO_MAX_BYTES // (1024 * 1024)}
        )


def photo_reencode(*, data: bytes) -> bytes:
    """The JPEG to store for the uploaded bytes `data`: upright, on white
    where it was transparent, at most PHOTO_SIDE × PHOTO_SIDE, without any
    metadata.

    Raises ApplicationError "photo_invalid" (not a JPEG, PNG or WebP picture,
    or a damaged one) and 413 "photo_too_large" (more than PHOTO_MAX_BYTES,
    or more than PHOTO_MAX_SIDE pixels a side: decompression bombs are
    refused before any pixel is decoded)."""
    photo_size_check(size=len(data))
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as probe:
                probe_format = probe.format
                probe.verify()
            # verify() leaves the image unusable: open it again to decode.
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as image:
                if image.format not in ACCEPTED_FORMATS or image.format != probe_format:
                    raise _photo_invalid()
                width, height = image.size
                if width > PHOTO_MAX_SIDE or height > PHOTO_MAX_SIDE:
                    raise _photo_too_many_pixels()
                if width < 1 or height < 1:
                    raise _photo_invalid()
                if image.format == "JPEG":
                    # Decode at a reduced scale when the photo is much
                    # larger than what is kept: less memory and time.
                    image.draft("RGB", (PHOTO_SIDE * 2, PHOTO_SIDE * 2))
                image.load()
                picture = _upright_rgb(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _photo_too_many_pixels() from None
    except UnidentifiedImageError:
        raise _photo_invalid() from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error):
        # Truncated or corrupt data that only looks like a picture.
        raise _photo_invalid() from None
    picture.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    # A new image holds the pixels only: nothing of the upload's info
    # (exif, icc_profile, comments, …) can follow it into the file.
    clean = Image.new("RGB", picture.size)
    clean.paste(picture)
    output = io.BytesIO()
    clean.save(output, format="JPEG", quality=85, optimize=True)
    return output.getvalue()


def _upright_rgb(image: Image.Image) -> Image.Image:
    """The picture turned as its EXIF orientation says, in RGB, with
    transparency flattened onto white."""
    upright = ImageOps.exif_transpose(image) or image
    if upright.mode in ("RGBA", "LA", "PA") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return upright.convert("RGB")
