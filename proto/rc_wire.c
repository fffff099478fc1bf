/* rc_wire: the out-of-line part of the hand wire helpers: rc_wire_scan,
 * which reads a hot message's simple shape or declines (see rc_wire.h). */
#include "rc_wire.h"

bool rc_wire_scan(const uint8_t *p, const uint8_t *end, const uint8_t *kinds, unsigned n, unsigned repeated,
                  rc_wire_field_t *fields)
{
    memset(fields, 0, (n + 1) * sizeof *fields);
    unsigned last = 0;
    while (p < end) {
        const uint8_t *key_at = p;
        uint32_t key = *p++;
        if (key & 0x80) {
            /* A two-byte key (fields 16 to 2047), written canonically: a
             * message of at most 15 fields declines it below, as before. */
            if (p >= end || *p == 0 || *p & 0x80)
                return false;
            key = (key & 0x7f) | (uint32_t) *p++ << 7;
        }
        unsigned f = key >> 3, wt = key & 7;
        if (f == 0 || f > n || (f < last || (f == last && f != repeated)))
            return false;
        last = f;
        uint64_t v;
        switch (kinds[f]) {
        case RC_F_LEN:
            if (wt != 2 || !rc_wire_varint(&p, end, 5, &v) || v > (uint64_t) (end - p))
                return false;
            if (f == repeated) {
                if (!fields[f].v)
                    fields[f].ptr = key_at;
                fields[f].v++;
                fields[f].end = p + v;
            } else {
                fields[f].ptr = p;
                fields[f].v = v;
            }
            p += v;
            break;
        case RC_F_U32:
            if (wt != 0 || !rc_wire_varint(&p, end, 5, &v) || v > UINT32_MAX)
                return false;
            fields[f].v = v;
            break;
        case RC_F_U64:
            if (wt != 0 || !rc_wire_varint(&p, end, 10, &v))
                return false;
            fields[f].v = v;
            break;
        case RC_F_BOOL:
            if (wt != 0 || p >= end || *p & 0x80)
                return false;
            fields[f].v = *p++ != 0;
            break;
        default:
            return false;
        }
    }
    return true;
}

bool rc_wire_field(const uint8_t **pp, const uint8_t *end, uint32_t *field, rc_wire_field_t *f)
{
    const uint8_t *p = *pp;
    uint64_t key;
    memset(f, 0, sizeof *f);
    if (!rc_wire_varint(&p, end, 10, &key) || key >> 3 == 0 || key >> 3 > UINT32_MAX)
        return false;
    switch (key & 7) {
    case 0:
        if (!rc_wire_varint(&p, end, 10, &f->v))
            return false;
        break;
    case 1:
    case 5: {
        size_t n = (key & 7) == 1 ? 8 : 4;
        if ((size_t) (end - p) < n)
            return false;
        p += n;
        break;
    }
    case 2:
        if (!rc_wire_varint(&p, end, 10, &f->v) || f->v > (uint64_t) (end - p))
            return false;
        f->ptr = p;
        p += f->v;
        break;
    default:
        return false;
    }
    *field = (uint32_t) (key >> 3);
    *pp = p;
    return true;
}
