#!/usr/bin/env python3
"""png_stats.py PNG: print "WIDTH HEIGHT VARIANCE NONWHITE COLORS" of a PNG.

VARIANCE is the variance of the pixels' luminance (0..255), NONWHITE the
fraction of pixels that are not near white, COLORS how many distinct
colours there are (capped at 100000). test/test_html.c uses it to check
that Chromium's screenshot of the report is not blank. Standard library
only (zlib): 8-bit RGB or RGBA, non-interlaced, as Chromium writes them.
"""
import struct
import sys
import zlib


def read_png(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("%s: not a PNG" % path)
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise SystemExit("%s: unsupported PNG (depth %d, colour type %d)"
                         % (path, depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        base = y * (stride + 1)
        ftype = raw[base]
        line = bytearray(raw[base + 1:base + 1 + stride])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pr) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def main():
    w, h, bpp, rows = read_png(sys.argv[1])
    n = s = s2 = nonwhite = 0
    colors = set()
    for line in rows:
        for i in range(0, len(line), bpp * 2):  # every other pixel
            r, g, b = line[i], line[i + 1], line[i + 2]
            y = (299 * r + 587 * g + 114 * b) / 1000
            n += 1
            s += y
            s2 += y * y
            nonwhite += y < 240
            if len(colors) < 100000:
                colors.add((r, g, b))
    mean = s / n
    print("%d %d %.2f %.4f %d" % (w, h, s2 / n - mean * mean, nonwhite / n,
                                  len(colors)))


if __name__ == "__main__":
    main()
