"""Avatars: checked by their header, stored small, and one file per user in storage."""

import io
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.models import User

pytestmark = pytest.mark.django_db


def image_upload(size=(64, 64), *, mode="RGB", fmt="PNG", name="me.png") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def png_with_header_only(width: int, height: int) -> SimpleUploadedFile:
    """A PNG whose chunks are well formed but whose pixel data stops short: only its header is sound."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + chunk(b"IEND", b"")
    )
    return SimpleUploadedFile("bomb.png", data, content_type="image/png")


def stored_files(settings) -> list[Path]:
    return sorted(path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file())


def stored_size(user: User) -> tuple[int, int]:
    with default_storage.open(user.avatar.name) as file, Image.open(file) as image:
        return image.size


def test_seven_avatar_uploads_leave_one_file(signed_in, user, settings, django_capture_on_commit_callbacks):
    # given / when
    for _ in range(7):
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_in.patch("/api/me/", {"avatar": image_upload()}, format="multipart")
        assert response.status_code == 200

    # then
    user.refresh_from_db()
    assert [path.relative_to(settings.MEDIA_ROOT).as_posix() for path in stored_files(settings)] == [user.avatar.name]


def test_replaced_avatar_file_is_deleted_only_after_commit(signed_in, user, django_capture_on_commit_callbacks):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.patch("/api/me/", {"avatar": image_upload()}, format="multipart")
    user.refresh_from_db()
    old_name = user.avatar.name

    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = signed_in.patch("/api/me/", {"avatar": image_upload()}, format="multipart")

    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.avatar.name != old_name
    assert default_storage.exists(old_name), "the old file must outlive an uncommitted change"
    for callback in callbacks:
        callback()
    assert not default_storage.exists(old_name)
    assert default_storage.exists(user.avatar.name)


def test_cleared_avatar_file_is_deleted(signed_in, user, settings, django_capture_on_commit_callbacks):
    # given
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.patch("/api/me/", {"avatar": image_upload()}, format="multipart")

    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.patch("/api/me/", {"avatar": None}, format="json")

    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert not user.avatar
    assert response.json()["avatar_url"] == f"/u/{user.username}/avatar.svg"
    assert stored_files(settings) == []


def test_a_12000_by_12000_png_is_refused(signed_in, user, settings):
    # given: a tiny file that would decode to 144 megapixels
    huge = image_upload((12000, 12000), mode="1")
    assert huge.size < settings.SPACES_AVATAR_MAX_BYTES

    # when
    response = signed_in.patch("/api/me/", {"avatar": huge}, format="multipart")

    # then
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"].startswith("avatar: An avatar may be at most")
    assert "this one is 12000x12000" in body["detail"]
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []


def test_pixel_limit_is_read_from_the_header_before_any_decoding(signed_in, user, settings):
    # given: the header says 10000x10000; the pixel data behind it would not decode
    settings.SPACES_AVATAR_MAX_PIXELS = 1000 * 1000

    # when
    response = signed_in.patch("/api/me/", {"avatar": png_with_header_only(10000, 10000)}, format="multipart")

    # then
    assert response.status_code == 400
    assert "this one is 10000x10000" in response.json()["detail"]
    assert stored_files(settings) == []


def test_pixel_limit_is_inclusive(signed_in, user, settings):
    settings.SPACES_AVATAR_MAX_PIXELS = 100 * 100

    at_limit = signed_in.patch("/api/me/", {"avatar": image_upload((100, 100))}, format="multipart")
    over_limit = signed_in.patch("/api/me/", {"avatar": image_upload((101, 100))}, format="multipart")

    assert at_limit.status_code == 200
    assert over_limit.status_code == 400
    assert "at most 10,000 pixels" in over_limit.json()["detail"]


def test_image_whose_pixels_do_not_decode_is_refused(signed_in, user, settings):
    response = signed_in.patch("/api/me/", {"avatar": png_with_header_only(64, 64)}, format="multipart")

    assert response.status_code == 400
    assert response.json()["detail"] == "avatar: This image could not be read. Upload a JPEG, PNG, GIF or WebP."
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("uploaded", "stored"),
    [((1000, 600), (224, 224)), ((300, 900), (224, 224)), ((64, 64), (64, 64)), ((80, 50), (50, 50))],
)
def test_avatar_is_stored_square_and_at_most_twice_the_largest_size_shown(signed_in, user, uploaded, stored):
    # when
    response = signed_in.patch("/api/me/", {"avatar": image_upload(uploaded)}, format="multipart")

    # then: 112 CSS pixels (.avatar-xl) on a 2x screen; never enlarged
    assert response.status_code == 200
    user.refresh_from_db()
    assert stored_size(user) == stored


def test_jpeg_avatar_is_stored_as_jpeg_without_its_metadata(signed_in, user):
    # given
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    Image.new("RGB", (400, 400), (10, 20, 30)).save(buffer, format="JPEG", exif=exif)
    photo = SimpleUploadedFile("photo.jpeg", buffer.getvalue(), content_type="image/jpeg")

    # when
    response = signed_in.patch("/api/me/", {"avatar": photo}, format="multipart")

    # then
    assert response.status_code == 200
    user.refresh_from_db()
    assert user.avatar.name.endswith(".jpg")
    with default_storage.open(user.avatar.name) as file, Image.open(file) as image:
        assert image.format == "JPEG"
        assert image.size == (224, 224)
        assert dict(image.getexif()) == {}


def test_transparent_avatar_keeps_its_transparency(signed_in, user):
    response = signed_in.patch("/api/me/", {"avatar": image_upload((300, 300), mode="RGBA")}, format="multipart")

    assert response.status_code == 200
    user.refresh_from_db()
    with default_storage.open(user.avatar.name) as file, Image.open(file) as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (224, 224))


def test_profile_page_upload_is_resized_and_replaces_the_old_file(user, settings, django_capture_on_commit_callbacks):
    # given
    browser = Client()
    browser.force_login(user)

    # when
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post("/settings/profile/", {"display_name": "Me", "avatar": image_upload((800, 800))})
        assert response.status_code == 302

    # then
    user.refresh_from_db()
    assert [path.relative_to(settings.MEDIA_ROOT).as_posix() for path in stored_files(settings)] == [user.avatar.name]
    assert stored_size(user) == (224, 224)


def test_profile_page_refuses_an_avatar_over_the_pixel_limit(user, settings):
    # given
    browser = Client()
    browser.force_login(user)

    # when
    response = browser.post(
        "/settings/profile/", {"display_name": "Me", "avatar": image_upload((12000, 12000), mode="1")}
    )

    # then
    assert response.status_code == 200
    assert "An avatar may be at most" in response.content.decode()
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []


def test_profile_page_refuses_an_image_that_does_not_decode(user, settings):
    # given
    browser = Client()
    browser.force_login(user)

    # when
    response = browser.post("/settings/profile/", {"display_name": "Me", "avatar": png_with_header_only(64, 64)})

    # then
    assert response.status_code == 200
    assert "This image could not be read." in response.content.decode()
    user.refresh_from_db()
    assert not user.avatar
    assert stored_files(settings) == []
