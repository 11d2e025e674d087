"""PNG and TIFF files around pixel data that is already compressed: nothing decoded or re-encoded.

A zlib stream of PNG-filtered rows is a PNG's IDAT data; a Deflate stream of plain rows is a
TIFF strip. Writing the file is then adding a header, so it costs nothing and keeps every byte
(``extract`` keeps a PDF's Flate images this way). Pure byte work: no PDF here.
"""

from __future__ import annotations


def png_from_idat(idat: bytes, width: int, height: int, bits: int, colours: int,
                  icc: bytes | None = None) -> bytes:
    """A PNG file around already-compressed, already-filtered image data (one IDAT chunk).

    Parameters
    ----------
    idat : bytes
        A zlib stream of ``height`` rows, each a PNG filter byte and ``width * colours`` samples.
    bits : int
        8 or 16 (16-bit samples big-endian, as PNG stores them).
    colours : int
        1 (grey) or 3 (RGB).
    icc : bytes, optional
        An ICC profile, stored as the file's ``iCCP`` chunk.
    """
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, bits, 0 if colours == 1 else 2, 0, 0, 0)
    parts = [b"\x89PNG\r\n\x1a\n", chunk(b"IHDR", header)]
    if icc:
        parts.append(chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    parts += [chunk(b"IDAT", idat), chunk(b"IEND", b"")]
    return b"".join(parts)


def tiff_from_deflate(strip: bytes, width: int, height: int, bits: int, colours: int,
                      icc: bytes | None = None, horizontal_predictor: bool = False) -> bytes:
    """A TIFF file of one Deflate-compressed strip of rows (big-endian for 16 bits, as PDF).

    ``horizontal_predictor``: the rows are stored as differences (TIFF predictor 2).
    """
    import io

    import tifffile

    buf = io.BytesIO()
    shape = (height, width) if colours == 1 else (height, width, colours)
    with tifffile.TiffWriter(buf, byteorder=">" if bits == 16 else "<") as tw:
        tw.write(iter([strip]), shape=shape, dtype=f">u{bits // 8}" if bits == 16 else "u1",
                 photometric="minisblack" if colours == 1 else "rgb", compression="adobe_deflate",
                 predictor=2 if horizontal_predictor else None, rowsperstrip=height,
                 iccprofile=icc, metadata=None)
    return buf.getvalue()
