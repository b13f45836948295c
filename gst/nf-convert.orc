# nf-convert.orc — ORC row kernels between 4-byte u8 pixels and planar float.
#
# What it does: per pixel of a row, splits a 4-byte pixel into three float planes
# (value = byte * scale + offset) and one byte plane (alpha or padding), and the way
# back: byte = clamp (round (y * ya + x * xa + b), 0, 255) for three planes (y: the
# network output, x: the input frame, for the strength blend), the fourth byte copied
# from a byte plane. "3a" kernels: bytes 0..2 colour, byte 3 alpha/padding; "a3": byte
# 0 alpha/padding, bytes 1..3 colour. Which colour is which (RGB or BGR) is decided by
# the caller, which passes the float planes in byte order.
# What it does not: 3-byte pixels, YUV (the element repacks or converts first), or
# anything about rows, strides and padding (gst/nf-convert.c).
# The plain C twins in nf-convert.c must compute the same operations in the same order.

.function nf_orc_unpack_3a
.dest 4 d0 float
.dest 4 d1 float
.dest 4 d2 float
.dest 1 da guint8
.source 4 s guint32
.floatparam 4 scale
.floatparam 4 offset
.temp 2 lo
.temp 2 hi
.temp 1 b0
.temp 1 b1
.temp 1 b2
.temp 2 w
.temp 4 l
.temp 4 f

splitlw hi, lo, s
splitwb b1, b0, lo
splitwb da, b2, hi
convubw w, b0
convuwl l, w
convlf f, l
mulf f, f, scale
addf d0, f, offset
convubw w, b1
convuwl l, w
convlf f, l
mulf f, f, scale
addf d1, f, offset
convubw w, b2
convuwl l, w
convlf f, l
mulf f, f, scale
addf d2, f, offset

.function nf_orc_unpack_a3
.dest 4 d0 float
.dest 4 d1 float
.dest 4 d2 float
.dest 1 da guint8
.source 4 s guint32
.floatparam 4 scale
.floatparam 4 offset
.temp 2 lo
.temp 2 hi
.temp 1 b0
.temp 1 b1
.temp 1 b2
.temp 2 w
.temp 4 l
.temp 4 f

splitlw hi, lo, s
splitwb b0, da, lo
splitwb b2, b1, hi
convubw w, b0
convuwl l, w
convlf f, l
mulf f, f, scale
addf d0, f, offset
convubw w, b1
convuwl l, w
convlf f, l
mulf f, f, scale
addf d1, f, offset
convubw w, b2
convuwl l, w
convlf f, l
mulf f, f, scale
addf d2, f, offset

.function nf_orc_pack_3a
.dest 4 d guint32
.source 4 y0 float
.source 4 y1 float
.source 4 y2 float
.source 4 x0 float
.source 4 x1 float
.source 4 x2 float
.source 1 a guint8
.floatparam 4 ya
.floatparam 4 xa
.floatparam 4 bias
.temp 4 t
.temp 4 u
.temp 4 l
.temp 2 w
.temp 1 c0
.temp 1 c1
.temp 1 c2
.temp 2 lo
.temp 2 hi

mulf t, y0, ya
mulf u, x0, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c0, w
mulf t, y1, ya
mulf u, x1, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c1, w
mulf t, y2, ya
mulf u, x2, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c2, w
mergebw lo, c0, c1
mergebw hi, c2, a
mergewl d, lo, hi

.function nf_orc_pack_a3
.dest 4 d guint32
.source 4 y0 float
.source 4 y1 float
.source 4 y2 float
.source 4 x0 float
.source 4 x1 float
.source 4 x2 float
.source 1 a guint8
.floatparam 4 ya
.floatparam 4 xa
.floatparam 4 bias
.temp 4 t
.temp 4 u
.temp 4 l
.temp 2 w
.temp 1 c0
.temp 1 c1
.temp 1 c2
.temp 2 lo
.temp 2 hi

mulf t, y0, ya
mulf u, x0, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c0, w
mulf t, y1, ya
mulf u, x1, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c1, w
mulf t, y2, ya
mulf u, x2, xa
addf t, t, u
addf t, t, bias
maxf t, t, 0.0
minf t, t, 255.0
addf t, t, 0.5
convfl l, t
convlw w, l
convwb c2, w
mergebw lo, a, c0
mergebw hi, c1, c2
mergewl d, lo, hi
