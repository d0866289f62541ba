"""Files built to be hard on a reader: slow to extract, bombs of pixels, text or nesting, broken page trees,
images that claim more than they hold, and very long documents."""

from __future__ import annotations

import struct

import pymupdf

from tests.support.factories import make_tiff


def make_slow_pdf(text_operations: int, *, off_page: bool = False) -> bytes:
    """A one-page PDF whose content stream has `text_operations` text draws: slow to extract, small to store.

    Extracting 600,000 of them took about 1 s on the 2-core dev machine. `off_page` draws them all
    where they are clipped away: the page then shows (and stores) no text.
    """
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "x")
    font = page.get_fonts()[0][4]
    origin = b"-9000 -9000" if off_page else b"72 720"
    stream = (
        b"BT /" + font.encode() + b" 11 Tf " + origin + b" Td " + b"(slow ) Tj 0.01 0 Td " * text_operations + b"ET"
    )
    document.update_stream(page.get_contents()[0], stream)
    return document.tobytes(deflate=True)


def make_busy_pdf(path_operations: int) -> bytes:
    """A one-page PDF that is slow to read but holds little in memory: `path_operations` line drawings,
    which text extraction interprets and throws away (4,000,000 took about 2 s on the 2-core dev machine).

    Slow text (`make_slow_pdf`) grows MuPDF's memory with the time it takes, so
    on a fast machine it can reach the PDF process's memory cap before a short
    time limit; this one reaches only the time limit.
    """
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "x")
    document.update_stream(page.get_contents()[0], b"q 0 0 m 100 100 l 200 50 l h S Q " * path_operations)
    return document.tobytes(deflate=True)


def cyclic_page_tree_pdf() -> bytes:
    """A PDF whose /Pages node lists itself among its /Kids: MuPDF raises FzErrorFormat ("cycle in page tree")."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref_at)
    return bytes(out)


def text_bomb_pdf(repeats: int = 400_000) -> bytes:
    """One page drawing a 100-letter string `repeats` times at one spot: ~169 KB, 40 M characters of text."""
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((72, 72), "x")
    font = page.get_fonts()[0][4]
    letters = b"abcdefghij" * 10
    stream = b"BT /" + font.encode() + b" 11 Tf 72 720 Td " + (b"0 0 Td (" + letters + b") Tj ") * repeats + b"ET"
    document.update_stream(page.get_contents()[0], stream)
    return document.tobytes(deflate=True, garbage=4)


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid grayscale PNG of `width` × `height` black pixels: under 1 MB stored, `width * height` bytes decoded."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    # Every block of rows compresses to the same bytes after a full flush, so compress one and repeat it.
    row = b"\x00" * (width + 1)  # filter byte + pixels
    rows_per_block = max(1, min(height, 8_000_000 // len(row)))
    blocks, rest = divmod(height, rows_per_block)
    block = row * rows_per_block
    compressor = zlib.compressobj(9)
    first = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) if blocks > 1 else b""
    tail = compressor.compress(row * rest) + compressor.flush(zlib.Z_FINISH)
    checksum = 1
    for _ in range(blocks):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(row * rest, checksum)
    idat = first + repeated * (blocks - 1) + tail[:-4] + struct.pack(">I", checksum)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A baseline JPEG header whose frame claims `width` × `height` (the scan data is a token)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 64 + b"\xff\xd9"


def tiff_claiming(width: int, height: int, pages: int = 1) -> bytes:
    """A TIFF whose last page's header claims `width` × `height` (earlier pages are small and real)."""
    data = bytearray(make_tiff(pages))
    # The last IFD's width and height entries: rewrite their values in place.
    offset = struct.unpack_from("<I", data, 4)[0]
    for _ in range(pages - 1):
        count = struct.unpack_from("<H", data, offset)[0]
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * count)[0]
    count = struct.unpack_from("<H", data, offset)[0]
    for index in range(count):
        entry = offset + 2 + 12 * index
        tag = struct.unpack_from("<H", data, entry)[0]
        if tag in (256, 257):
            struct.pack_into("<I", data, entry + 8, width if tag == 256 else height)
    return bytes(data)


def make_endless_pdf(depth: int = 8, fanout: int = 10) -> bytes:
    """A 2 KB one-page PDF whose page draws fanout**depth line segments through nested forms.

    Reading its text visits every segment: about 2.5 s per million here, so the
    default (10**8) keeps a stage busy for minutes while holding no memory.
    """
    document = pymupdf.open()
    page = document.new_page()
    inner = None
    for _ in range(depth + 1):
        xref = document.get_new_xref()
        resources = f"/XObject << /X {inner} 0 R >>" if inner else ""
        document.update_object(
            xref, f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << {resources} >> >>"
        )
        document.update_stream(xref, b"0 0 m 10 10 l S" if inner is None else b"/X Do " * fanout)
        inner = xref
    contents = document.get_new_xref()
    document.update_object(contents, "<< >>")
    document.update_stream(contents, b"/Top Do")
    document.xref_set_key(page.xref, "Resources", f"<< /XObject << /Top {inner} 0 R >> >>")
    document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return document.tobytes()


def make_long_pdf(pages: int, text_operations: int) -> bytes:
    """A `pages`-page PDF, each page like `make_slow_pdf(text_operations)` but saying its number.

    Long to extract page after page with little memory per page: the stage to interrupt mid-way.
    """
    document = pymupdf.open()
    for number in range(1, pages + 1):
        page = document.new_page()
        page.insert_text((72, 72), "x")
        font = page.get_fonts()[0][4]
        stream = (
            b"BT /"
            + font.encode()
            + b" 11 Tf 72 720 Td (page %d ) Tj " % number
            + b"(slow ) Tj 0.01 0 Td " * text_operations
            + b"ET"
        )
        document.update_stream(page.get_contents()[0], stream)
    return document.tobytes(deflate=True)


def form_bomb(levels: int, fanout: int = 4, pages: int = 1, text: str = "") -> bytes:
    """A PDF whose pages draw a form that draws the next one `fanout` times, `levels` deep (fanout**levels drawings
    of a few lines, for every page); 25 levels of 4 is a 5 KB file MuPDF would draw for ever."""
    document = pymupdf.open()
    below = None
    for _ in range(levels):
        xref = document.get_new_xref()
        resources = f"/Resources << /XObject << /X {below} 0 R >> >>" if below else ""
        document.update_object(xref, f"<< /Type /XObject /Subtype /Form /BBox [0 0 100 100] {resources} >>")
        document.update_stream(xref, b"/X Do " * fanout if below else b"0 0 1 1 re f 10 10 m 20 20 l S")
        below = xref
    for number in range(pages):
        page = document.new_page()
        page.insert_text((72, 72), text or f"page {number + 1}")
        kind, resources = document.xref_get_key(page.xref, "Resources")
        holder, key = (int(resources.split()[0]), "XObject") if kind == "xref" else (page.xref, "Resources/XObject")
        document.xref_set_key(holder, key, f"<< /X {below} 0 R >>")
        contents = page.get_contents()[0]
        document.update_stream(contents, document.xref_stream(contents) + b"\nq /X Do Q\n")
    return document.tobytes(deflate=True)


def milestone_pdf(count: int, every: int) -> bytes:
    """A PDF of `count` pages, textless but for "milestone N" on every `every`-th page N.

    Written as PDF objects directly: made with PyMuPDF's `new_page`, 10,000 pages took 20 s.
    The blank pages share one empty content stream, as a scanner's export often does.
    """
    objects = [
        "<</Type/Catalog/Pages 2 0 R>>",
        "",
        "<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
        "<</Length 0>>stream\n\nendstream",
    ]
    kids = []
    for n in range(1, count + 1):
        contents = 4
        if n % every == 0:
            text = f"BT /F1 12 Tf 72 720 Td (milestone {n}) Tj ET"
            objects.append(f"<</Length {len(text)}>>stream\n{text}\nendstream")
            contents = len(objects)
        objects.append(
            f"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</Font<</F1 3 0 R>>>>/Contents {contents} 0 R>>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<</Type/Pages/Count {count}/Kids[{' '.join(kids)}]>>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<</Size {len(objects) + 1}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
