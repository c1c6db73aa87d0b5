/*
 * iso9660.c - see iso9660.h.
 *
 * The layout is fixed, in 2048-byte sectors (ECMA-119):
 *   0-15   system area (zeros)
 *   16     primary volume descriptor
 *   17     supplementary volume descriptor (Joliet, UCS-2 level 3)
 *   18     descriptor set terminator
 *   19-20  the primary tree's path table, little- then big-endian
 *   21-22  the Joliet tree's path table, the same
 *   23     the primary root directory
 *   24     the Joliet root directory
 *   25-    the files' data, each from a sector of its own
 * A path table and a root directory of at most 16 short names each fit one
 * sector, which is why the header sets those bounds.
 */
#include "iso9660.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fdio.h"

#define SECTOR 2048
#define S_PVD 16
#define S_SVD 17
#define S_TERM 18
#define S_PATH 19       /* primary L, M; Joliet L, M */
#define S_ROOT 23       /* primary, then Joliet */
#define S_DATA 25

static void le16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void be16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void le32(uint8_t *p, uint32_t v) { le16(p, v & 0xffff); le16(p + 2, v >> 16); }
static void be32(uint8_t *p, uint32_t v) { be16(p, v >> 16); be16(p + 2, v & 0xffff); }
/* "Both-byte orders": little-endian, then the same big-endian. */
static void both16(uint8_t *p, uint32_t v) { le16(p, v); be16(p + 2, v); }
static void both32(uint8_t *p, uint32_t v) { le32(p, v); be32(p + 4, v); }

/* A text field: ASCII padded with spaces, or (Joliet) UCS-2 big-endian
 * padded with UCS-2 spaces. */
static void text(uint8_t *p, size_t field, const char *s, bool ucs2)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < field; i += ucs2 ? 2 : 1) {
        size_t k = ucs2 ? i / 2 : i;
        char ch = k < n ? s[k] : ' ';
        if (ucs2) {
            if (i + 1 < field) {
                p[i] = 0;
                p[i + 1] = (uint8_t)ch;
            }
        } else {
            p[i] = (uint8_t)ch;
        }
    }
}

struct entry {
    const struct iso_file *f;
    char name[ISO_MAX_NAME + 4];   /* as this tree spells it */
    uint8_t id[2 * ISO_MAX_NAME + 4];
    size_t id_len;
    uint32_t extent;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t n = x->id_len < y->id_len ? x->id_len : y->id_len;
    int c = memcmp(x->id, y->id, n);
    return c ? c : (x->id_len > y->id_len) - (x->id_len < y->id_len);
}

/* A directory record at p; its length. */
static size_t record(uint8_t *p, uint32_t extent, uint32_t size, bool dir, const uint8_t *id, size_t id_len,
                     const uint8_t date[7])
{
    size_t len = 33 + id_len + (id_len % 2 == 0);   /* padded to an even length */
    memset(p, 0, len);
    p[0] = (uint8_t)len;
    both32(p + 2, extent);
    both32(p + 10, size);
    memcpy(p + 18, date, 7);
    p[25] = dir ? 2 : 0;
    both16(p + 28, 1);
    p[32] = (uint8_t)id_len;
    memcpy(p + 33, id, id_len);
    return len;
}

static void volume_descriptor(uint8_t *p, int type, const char *volume_id, uint32_t sectors, uint32_t path_lba,
                              uint32_t root_lba, const uint8_t date[7], const char vdate[17])
{
    bool joliet = type == 2;
    p[0] = (uint8_t)type;
    memcpy(p + 1, "CD001", 5);
    p[6] = 1;
    text(p + 8, 32, "LINUX", joliet);
    text(p + 40, 32, volume_id, joliet);
    both32(p + 80, sectors);
    if (joliet)
        memcpy(p + 88, "%/E", 3);   /* UCS-2 level 3 */
    both16(p + 120, 1);
    both16(p + 124, 1);
    both16(p + 128, SECTOR);
    both32(p + 132, 10);            /* a path table of the root alone */
    le32(p + 140, path_lba);
    be32(p + 148, path_lba + 1);
    static const uint8_t root_id = 0;
    record(p + 156, root_lba, SECTOR, true, &root_id, 1, date);
    text(p + 190, 128, "", joliet);   /* volume set */
    text(p + 318, 128, "", joliet);   /* publisher */
    text(p + 446, 128, "", joliet);   /* preparer */
    text(p + 574, 128, "DUET", joliet);   /* application */
    text(p + 702, 37, "", joliet);
    text(p + 739, 37, "", joliet);
    text(p + 776, 37, "", joliet);
    memcpy(p + 813, vdate, 17);     /* created */
    memcpy(p + 830, vdate, 17);     /* modified */
    memset(p + 847, '0', 16);       /* expires: never */
    memset(p + 864, '0', 16);       /* effective: at once */
    p[881] = 1;
}

static void path_table(uint8_t *l, uint8_t *m, uint32_t root_lba)
{
    l[0] = m[0] = 1;
    le32(l + 2, root_lba);
    be32(m + 2, root_lba);
    le16(l + 6, 1);
    be16(m + 6, 1);
}

static void directory(uint8_t *p, struct entry *e, size_t n, uint32_t self, const uint8_t date[7])
{
    static const uint8_t dot = 0, dotdot = 1;
    size_t o = record(p, self, SECTOR, true, &dot, 1, date);
    o += record(p + o, self, SECTOR, true, &dotdot, 1, date);   /* the root is its own parent */
    for (size_t i = 0; i < n; i++)
        o += record(p + o, e[i].extent, (uint32_t)e[i].f->len, false, e[i].id, e[i].id_len, date);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ISO_MAX_NAME || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-'))
            return false;
    return true;
}

int iso_write(int fd, const char *volume_id, const struct iso_file *files, size_t n, time_t mtime,
              struct duet_err *err)
{
    size_t vn = strlen(volume_id);
    if (vn == 0 || vn > ISO_MAX_VOLUME_ID || strspn(volume_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                               "0123456789_") != vn)
        return duet_err_set(err, EINVAL, "ISO volume id \"%.32s\" is not 1 to 16 of [A-Za-z0-9_]", volume_id);
    if (n > ISO_MAX_FILES)
        return duet_err_set(err, EINVAL, "an ISO seed holds at most %d files, not %zu", ISO_MAX_FILES, n);
    struct entry prim[ISO_MAX_FILES], jol[ISO_MAX_FILES];
    uint32_t next = S_DATA;
    for (size_t i = 0; i < n; i++) {
        if (!name_ok(files[i].name))
            return duet_err_set(err, EINVAL, "ISO file name \"%.40s\" is not 1 to %d of [a-z0-9._-]", files[i].name,
                                ISO_MAX_NAME);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(files[i].name, files[j].name))
                return duet_err_set(err, EINVAL, "ISO file name %s is given twice", files[i].name);
        if (files[i].len > UINT32_MAX - SECTOR || next + (files[i].len + SECTOR - 1) / SECTOR > UINT32_MAX / 2)
            return duet_err_set(err, EFBIG, "ISO file %s is too large", files[i].name);
        struct entry *p = &prim[i], *j = &jol[i];
        p->f = j->f = &files[i];
        p->extent = j->extent = next;
        next += (uint32_t)((files[i].len + SECTOR - 1) / SECTOR);
        /* Primary: upper case, a dot always, version 1 ("USER-DATA.;1"),
         * which Linux shows as user-data when a disc has no Joliet. */
        const char *name = files[i].name;
        size_t k = 0;
        for (; name[k]; k++)
            p->id[k] = (uint8_t)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 'a' + 'A' : name[k]);
        if (!strchr(name, '.'))
            p->id[k++] = '.';
        p->id[k++] = ';';
        p->id[k++] = '1';
        p->id_len = k;
        /* Joliet: the name as given, UCS-2 big-endian. */
        for (k = 0; name[k]; k++) {
            j->id[2 * k] = 0;
            j->id[2 * k + 1] = (uint8_t)name[k];
        }
        j->id_len = 2 * k;
    }
    uint32_t sectors = next;
    qsort(prim, n, sizeof(*prim), entry_cmp);
    qsort(jol, n, sizeof(*jol), entry_cmp);

    struct tm tm;
    gmtime_r(&mtime, &tm);
    uint8_t date[7] = {(uint8_t)(tm.tm_year), (uint8_t)(tm.tm_mon + 1), (uint8_t)tm.tm_mday, (uint8_t)tm.tm_hour,
                       (uint8_t)tm.tm_min, (uint8_t)tm.tm_sec, 0};
    char vdate[64];
    snprintf(vdate, sizeof(vdate), "%04d%02d%02d%02d%02d%02d00", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    vdate[16] = 0;   /* the offset from GMT, in quarter hours */

    uint8_t *h = calloc(S_DATA, SECTOR);
    if (!h)
        return duet_err_set(err, ENOMEM, "no memory for an ISO image");
    volume_descriptor(h + S_PVD * SECTOR, 1, volume_id, sectors, S_PATH, S_ROOT, date, vdate);
    volume_descriptor(h + S_SVD * SECTOR, 2, volume_id, sectors, S_PATH + 2, S_ROOT + 1, date, vdate);
    uint8_t *t = h + S_TERM * SECTOR;
    t[0] = 255;
    memcpy(t + 1, "CD001", 5);
    t[6] = 1;
    path_table(h + S_PATH * SECTOR, h + (S_PATH + 1) * SECTOR, S_ROOT);
    path_table(h + (S_PATH + 2) * SECTOR, h + (S_PATH + 3) * SECTOR, S_ROOT + 1);
    directory(h + S_ROOT * SECTOR, prim, n, S_ROOT, date);
    directory(h + (S_ROOT + 1) * SECTOR, jol, n, S_ROOT + 1, date);
    bool ok = duet_write_full(fd, h, (size_t)S_DATA * SECTOR);
    free(h);
    static const uint8_t zeros[SECTOR];
    for (size_t i = 0; ok && i < n; i++) {
        size_t pad = (SECTOR - files[i].len % SECTOR) % SECTOR;
        ok = duet_write_full(fd, files[i].data, files[i].len) && duet_write_full(fd, zeros, pad);
    }
    if (!ok)
        return duet_err_sys(err, "cannot write an ISO image");
    return 0;
}
