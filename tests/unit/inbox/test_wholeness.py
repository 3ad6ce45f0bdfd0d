"""missing_end tells a whole file from one still being written, by the end its format needs."""

from __future__ import annotations

import io
import os
import random
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from docproc.inbox.wholeness import jpeg, missing_end

DATA = Path(__file__).resolve().parent.parent.parent / "data" / "wholeness"
WHOLE = [
    "toy.pdf",  # ends in %%EOF with no newline
    "AutoCad_Simple.pdf",  # ends in %%EOF\r
    "encrypted_doc_no_id.pdf",  # whitespace after %%EOF
    "hopper.jpg",
    "flower.jpg",  # an EXIF thumbnail, with its own end-of-image marker, in APP1
    "exif_gps.jpg",
    "hopper.png",
    "hopper.gif",
    "multipage.tiff",  # three IFDs, each after its page's data
    "12bit.cropped.tif",
]
ARTICLE = {".pdf": "a PDF", ".jpg": "a JPEG", ".png": "a PNG", ".gif": "a GIF",
           ".tif": "a TIFF", ".tiff": "a TIFF"}
TINY_PDF = (DATA / "toy.pdf").read_bytes()


def write(folder: Path, name: str, data: bytes) -> Path:
    """Write data to folder/name and return the path."""
    path = folder / name
    path.write_bytes(data)
    return path


def cut_points(name: str, data: bytes) -> list[int]:
    """Return lengths to cut a whole sample to, each short of what its format needs at the end."""
    size = len(data)
    points = [size // 10, size // 2, size * 9 // 10]
    suffix = Path(name).suffix
    if suffix == ".pdf":
        eof = data.rindex(b"%%EOF")
        points += [data.rindex(b"startxref"), eof, eof + 4]
    elif suffix == ".jpg":
        points += [size - 1, size - 2]
    elif suffix == ".png":
        points += [size - 1, size - 12, size - 13]
    elif suffix == ".gif":
        points += [size - 2, size - 3]  # size - 1: see test_a_gif_without_its_trailer_...
    else:
        first_ifd = struct.unpack("<I", data[4:8])[0]
        points += [size - 1, first_ifd + 2, 6]
    return points


@pytest.mark.parametrize("name", WHOLE)
def test_whole_samples_are_whole(name: str) -> None:
    assert missing_end(DATA / name) is None


@pytest.mark.parametrize("name", WHOLE)
def test_samples_cut_short_are_incomplete(tmp_path: Path, name: str) -> None:
    data = (DATA / name).read_bytes()
    article = ARTICLE[Path(name).suffix]
    for length in cut_points(name, data):
        found = missing_end(write(tmp_path, name, data[:length]))
        assert found is not None and found.startswith(article), (length, found)


@pytest.mark.parametrize("name", ["toy.pdf", "exif_gps.jpg", "multipage.tiff"])
def test_every_cut_of_a_small_sample_is_incomplete(tmp_path: Path, name: str) -> None:
    data = (DATA / name).read_bytes()
    missed = [length for length in range(5, len(data))
              if missing_end(write(tmp_path, name, data[:length])) is None]
    assert missed == []


@pytest.mark.parametrize("name", ["truncated_jpeg.jpg", "truncated_end_chunk.png"])
def test_truncated_corpus_images_are_incomplete(name: str) -> None:
    found = missing_end(DATA / name)
    assert found is not None and found.startswith(ARTICLE[Path(name).suffix])


def test_the_first_chunk_of_a_pdf_written_page_by_page_is_incomplete(tmp_path: Path) -> None:
    writer = PdfWriter()
    for _ in range(3):
        writer.add_page(PdfReader(io.BytesIO(TINY_PDF)).pages[0])
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    assert missing_end(write(tmp_path, "scan.pdf", data)) is None
    for length in (len(data) // 3, data.rindex(b"xref")):
        found = missing_end(write(tmp_path, "scan.pdf", data[:length]))
        assert found == "a PDF without %%EOF after its startxref"


def test_a_pdf_with_an_incremental_update_is_whole(tmp_path: Path) -> None:
    previous = int(TINY_PDF.rsplit(b"startxref", 1)[1].split()[0])
    # A signature's worth of bytes: the first %%EOF is no longer near the end.
    body = TINY_PDF + b"\n8 0 obj\n<%s>\nendobj\n" % (b"0f" * 2000)
    update = body + (
        b"xref\n8 1\n%010d 00000 n \ntrailer\n<< /Size 9 /Root 1 0 R /Prev %d >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (len(TINY_PDF) + 1, previous, len(body)))
    path = write(tmp_path, "signed.pdf", update)
    assert missing_end(path) is None
    assert len(PdfReader(path).pages) == 1
    found = missing_end(write(tmp_path, "signed.pdf", update[:-8]))
    assert found == "a PDF without %%EOF after its startxref"


def test_a_pdf_names_a_missing_or_wrong_startxref(tmp_path: Path) -> None:
    no_startxref = TINY_PDF.replace(b"startxref", b"startxrex")
    assert missing_end(write(tmp_path, "a.pdf", no_startxref)) == (
        "a PDF without startxref before its %%EOF")
    past_end = TINY_PDF.replace(b"startxref\n899", b"startxref\n9999")
    assert missing_end(write(tmp_path, "a.pdf", past_end)) == (
        "a PDF whose startxref (9999) lies past the end (file has 1114 bytes)")


def test_a_pdf_may_have_junk_before_its_header_and_padding_after_its_end(tmp_path: Path) -> None:
    assert missing_end(write(tmp_path, "a.pdf", b"\x00junk from a mailer\n" + TINY_PDF)) is None
    assert missing_end(write(tmp_path, "a.pdf", TINY_PDF + b"\r\n" + bytes(500))) is None
    found = missing_end(write(tmp_path, "a.pdf", b"junk\n" + TINY_PDF[:-100]))
    assert found is not None and found.startswith("a PDF")


def test_a_text_file_that_mentions_a_pdf_header_is_not_a_pdf(tmp_path: Path) -> None:
    notes = b"Scanner notes\nThe files start with %PDF-1.4 and end without a trailer.\n"
    assert missing_end(write(tmp_path, "notes.txt", notes)) is None


def test_the_start_of_a_linearized_pdf_is_incomplete(tmp_path: Path) -> None:
    """Its first-page trailer says startxref 0 before %%EOF, early in the file."""
    start = (b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<</Linearized 1/L LENGTH/H[500 100]/O 3"
             b"/E 8000/N 2/T 89000>>\nendobj\nxref\n1 2\n0000000015 00000 n \n0000000100 00000 n"
             b" \ntrailer\n<</Size 4/Root 2 0 R/Prev 88000>>\nstartxref\n0\n%%EOF\n"
             b"2 0 obj\n<</Type/Catalog>>\nendobj\n")
    found = missing_end(write(tmp_path, "web.pdf", start.replace(b"LENGTH", b"90000")))
    assert found == (
        "a PDF shorter than its linearization dictionary says (90000 bytes, file has 232)")
    assert missing_end(write(tmp_path, "web.pdf", start.replace(b"LENGTH", b"00232"))) is None


def test_a_jpeg_with_a_video_appended_is_whole(tmp_path: Path) -> None:
    """Motion Photos append a whole MP4 after the image's end-of-image marker."""
    video = b"\x00\x00\x00\x18ftypmp42" + random.Random(7).randbytes(300 << 10)
    for name in ("hopper.jpg", "flower.jpg"):
        assert missing_end(write(tmp_path, name, (DATA / name).read_bytes() + video)) is None


def test_a_jpeg_cut_in_its_image_data_is_incomplete_despite_its_thumbnail(tmp_path: Path) -> None:
    data = (DATA / "flower.jpg").read_bytes()
    thumbnail_end = data.index(b"\xff\xd9") + 2
    assert thumbnail_end < len(data) // 2 and data.count(b"\xff\xd8") > 1
    for length in (thumbnail_end, len(data) // 2, len(data) - 1):
        found = missing_end(write(tmp_path, "photo.jpg", data[:length]))
        assert found == "a JPEG without its end-of-image marker", length


def test_a_jpeg_may_have_padding_after_its_end(tmp_path: Path) -> None:
    data = (DATA / "hopper.jpg").read_bytes()
    assert missing_end(write(tmp_path, "a.jpg", data + b"\r\n" + bytes(30))) is None
    assert missing_end(write(tmp_path, "a.jpg", data + bytes(8192))) is None


def test_the_search_for_a_jpeg_end_is_bounded(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jpeg, "MAX_SCAN", 1 << 16)
    monkeypatch.setattr(jpeg, "SCAN_CHUNK", 1 << 12)
    data = (DATA / "hopper.jpg").read_bytes()
    start = data[:data.rindex(b"\xff\xd9")]
    assert missing_end(write(tmp_path, "a.jpg", start)) is not None
    # Past the bound the end is not known: not claimed incomplete.
    assert missing_end(write(tmp_path, "a.jpg", start + b"\x55" * (1 << 17))) is None


def test_a_png_may_have_data_after_its_iend_chunk(tmp_path: Path) -> None:
    data = (DATA / "hopper.png").read_bytes()
    assert missing_end(write(tmp_path, "a.png", data + random.Random(3).randbytes(10_000))) is None


def test_a_gif_may_have_data_after_its_trailer(tmp_path: Path) -> None:
    data = (DATA / "hopper.gif").read_bytes()
    assert missing_end(write(tmp_path, "a.gif", data + bytes(100))) is None
    assert missing_end(write(tmp_path, "a.gif", data + b"appended by an editor" * 500)) is None


def test_a_gif_without_its_trailer_after_a_whole_image_is_whole(tmp_path: Path) -> None:
    """Some writers leave the trailer out (Python's idlelib icons): decoders show them."""
    data = (DATA / "hopper.gif").read_bytes()
    assert missing_end(write(tmp_path, "a.gif", data[:-1])) is None
    assert missing_end(write(tmp_path, "a.gif", data[:13 + 768])) == "a GIF without its trailer"


def office_file() -> bytes:
    """Return a small docx-like ZIP."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>" * 50)
        archive.writestr("word/document.xml", random.Random(5).randbytes(20_000).hex())
        archive.writestr("word/media/image1.png", (DATA / "hopper.png").read_bytes())
    return out.getvalue()


def zip64(data: bytes) -> bytes:
    """Return a ZIP rewritten to end in ZIP64 records, as big archives do."""
    entries, size, offset = struct.unpack("<10xHII", data[-22:-2])
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                         entries, entries, size, offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(data) - 22, 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF,
                      0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:-22] + record + locator + end


def test_zip_files_are_whole_with_their_end_of_central_directory(tmp_path: Path) -> None:
    data = office_file()
    assert missing_end(write(tmp_path, "report.docx", data)) is None
    big = write(tmp_path, "big.zip", zip64(data))
    assert zipfile.ZipFile(big).testzip() is None
    assert missing_end(big) is None
    empty = io.BytesIO()
    zipfile.ZipFile(empty, "w").close()
    assert missing_end(write(tmp_path, "empty.zip", empty.getvalue())) is None
    commented = io.BytesIO()
    with zipfile.ZipFile(commented, "w") as archive:
        archive.writestr("a.txt", "a")
        archive.comment = b"c" * 60_000
    assert missing_end(write(tmp_path, "commented.epub", commented.getvalue())) is None


def test_zip_files_cut_short_are_incomplete(tmp_path: Path) -> None:
    data = office_file()
    for length in (len(data) // 10, len(data) // 2, len(data) - 1, len(data) - 22):
        assert missing_end(write(tmp_path, "report.docx", data[:length])) == (
            "a ZIP (Office) file without its end of central directory")
        assert missing_end(write(tmp_path, "book.odt", data[:length])) == (
            "a ZIP (OpenDocument) file without its end of central directory")
    big = zip64(data)
    for length in (len(big) - 22, len(big) - 30, len(big) - 80):
        assert missing_end(write(tmp_path, "x.zip", big[:length])) == (
            "a ZIP file without its end of central directory")


def test_a_zip_cut_after_a_stored_inner_zip_is_incomplete(tmp_path: Path) -> None:
    """The inner archive's end record points to its own directory, not to the outer one's."""
    inner = office_file()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("attachments/report.docx", inner)
    data = out.getvalue()
    cut = data.index(inner) + len(inner)
    assert missing_end(write(tmp_path, "book.epub", data[:cut])) == (
        "a ZIP (EPUB) file without its end of central directory")


def tiff(pixels: bytes, width: int, order: str, big: bool) -> bytes:
    """Return a one-strip grayscale TIFF or BigTIFF holding pixels, its IFD after them."""
    value = "Q" if big else "I"
    start = 16 if big else 8
    header = (b"II" if order == "<" else b"MM") + struct.pack(order + "H", 43 if big else 42)
    header += struct.pack(order + "HHQ" if big else order + "I", *([8, 0] if big else []),
                          start + len(pixels))
    long = 16 if big else 4
    tags = [(256, 3, width), (257, 3, len(pixels) // width), (258, 3, 8), (259, 3, 1),
            (262, 3, 1), (273, long, start), (277, 3, 1), (278, 3, len(pixels) // width),
            (279, long, len(pixels))]
    ifd = struct.pack(order + ("Q" if big else "H"), len(tags))
    for tag, kind, number in tags:
        packed = struct.pack(order + ("H" if kind == 3 else value), number)
        ifd += struct.pack(order + "HH" + value, tag, kind, 1)
        ifd += packed.ljust(struct.calcsize(value), b"\0")
    return header + pixels + ifd + bytes(struct.calcsize(value))


@pytest.mark.parametrize(("order", "big"), [("<", False), (">", False), ("<", True), (">", True)])
def test_tiff_structures_must_lie_inside_the_file(tmp_path: Path, order: str, big: bool) -> None:
    data = tiff(bytes(range(256)) * 4, 32, order, big)
    path = write(tmp_path, "a.tif", data)
    if order == "<" or not big:  # Pillow takes byte 2 for BigTIFF's 43, so only in "II+\0"
        with Image.open(path) as image:
            assert image.size == (32, 32) and image.tobytes() == bytes(range(256)) * 4
    assert missing_end(path) is None
    for length in (7, 12, 200, len(data) - 1):
        found = missing_end(write(tmp_path, "a.tif", data[:length]))
        assert found is not None and found.startswith("a TIFF"), length


def test_pillow_writes_a_tiff_ifd_before_its_image(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("L", (64, 64), 128).save(out, "TIFF")
    data = out.getvalue()
    assert missing_end(write(tmp_path, "pil.tif", data)) is None
    found = missing_end(write(tmp_path, "pil.tif", data[:-10]))
    assert found is not None and found.startswith("a TIFF whose IFD at byte 8 points past the end")


def test_tiff_ifd_chains_that_loop_or_never_start(tmp_path: Path) -> None:
    data = bytearray((DATA / "multipage.tiff").read_bytes())
    last = struct.unpack("<I", data[284 + 2 + 16 * 12:][:4])[0]
    struct.pack_into("<I", data, last + 2 + 16 * 12, 28)  # the last IFD points to the first
    assert missing_end(write(tmp_path, "loop.tiff", bytes(data))) is None
    unlinked = b"II*\x00" + bytes(4) + bytes(range(200))
    assert missing_end(write(tmp_path, "libtiff.tif", unlinked)) == (
        "a TIFF whose first IFD is not written yet")
    reserved = b"II*\x00" + struct.pack("<I", 208) + bytes(range(200)) + bytes(300)
    assert missing_end(write(tmp_path, "reserved.tif", reserved)) == (
        "a TIFF whose IFD at byte 208 is empty (not yet written)")


@pytest.mark.parametrize("name", WHOLE)
def test_a_preallocated_file_filled_halfway_is_incomplete(tmp_path: Path, name: str) -> None:
    """Windows over SMB sets the size first and fills it from the front."""
    data = (DATA / name).read_bytes()
    half = data[:len(data) // 2] + bytes(len(data) - len(data) // 2)
    found = missing_end(write(tmp_path, name, half))
    assert found is not None and found.startswith(ARTICLE[Path(name).suffix]), found


def test_reserved_space_with_nothing_written_yet(tmp_path: Path) -> None:
    zeros = bytes(50_000)
    assert missing_end(write(tmp_path, "scan.pdf", zeros)) == (
        "a PDF whose first bytes are still zeros (space reserved, not yet written)")
    assert missing_end(write(tmp_path, "report.DOCX", zeros)) == (
        "a ZIP (Office) file whose first bytes are still zeros (space reserved, not yet written)")
    assert missing_end(write(tmp_path, "disk.bin", zeros)) is None
    rows = b"id,name\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(1000))
    assert missing_end(write(tmp_path, "export.csv", rows)) is None
    assert missing_end(write(tmp_path, "export.csv", rows + bytes(4096))) == (
        "a text file whose end is still zeros (space reserved, not yet written)")


def test_a_tar_file_ending_in_zeros_is_not_checked(tmp_path: Path) -> None:
    path = tmp_path / "bundle.tar"
    with tarfile.open(path, "w") as archive:
        archive.add(DATA / "toy.pdf", arcname="toy.pdf")
    assert path.read_bytes().endswith(bytes(1024))
    assert missing_end(path) is None


def test_files_that_cannot_be_checked(tmp_path: Path) -> None:
    assert missing_end(write(tmp_path, "empty.pdf", b"")) is None
    assert missing_end(write(tmp_path, "noise.bin", random.Random(1).randbytes(5000))) is None
    assert missing_end(write(tmp_path, "letter.jpg", b"not a picture\n")) is None
    assert missing_end(tmp_path / "gone.pdf") is None
    (tmp_path / "folder.pdf").mkdir()
    assert missing_end(tmp_path / "folder.pdf") is None
    os.mkfifo(tmp_path / "pipe.pdf")
    assert missing_end(tmp_path / "pipe.pdf") is None


def test_a_symlink_is_never_followed(tmp_path: Path) -> None:
    target = write(tmp_path, "cut.pdf", TINY_PDF[:500])
    assert missing_end(target) is not None
    (tmp_path / "link.pdf").symlink_to(target)
    assert missing_end(tmp_path / "link.pdf") is None
    assert missing_end(str(tmp_path / "link.pdf")) is None
