/*
 * backup_forge.h - hand-made backup archives for the tests: entries
 * chosen freely (names that lead out, links, devices), sealed as duet
 * seals (storage/backup.c), or with a seal of other data.
 */
#ifndef DUET_TEST_BACKUP_FORGE_H
#define DUET_TEST_BACKUP_FORGE_H

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "images/digest.h"
#include "storage/backup.h"

struct entry {
    const char *name;
    mode_t type;                   /* AE_IF*; 0: a hard link */
    const char *data;              /* regular file contents, symlink target or hard link target */
};

static inline void backup_forge_add(struct archive *a, struct archive_entry *ae, const char *name, const char *text)
{
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, name);
    archive_entry_set_filetype(ae, AE_IFREG);
    archive_entry_set_perm(ae, 0600);
    archive_entry_set_size(ae, (la_int64_t)strlen(text));
    archive_write_header(a, ae);
    archive_write_data(a, text, strlen(text));
}

/* index_text NULL: no index.  0, or -1 when libarchive refuses. */
static inline int backup_forge(const char *file, const char *index_text, const struct entry *e, size_t n,
                               bool tampered)
{
    struct archive *a = archive_write_new();
    if (archive_write_add_filter_zstd(a) != ARCHIVE_OK || archive_write_set_format_pax(a) != ARCHIVE_OK ||
        archive_write_open_filename(a, file) != ARCHIVE_OK) {
        archive_write_free(a);
        return -1;
    }
    struct archive_entry *ae = archive_entry_new();
    if (index_text)
        backup_forge_add(a, ae, BACKUP_INDEX, index_text);
    struct digest_ctx h;
    digest_init(&h);
    for (size_t i = 0; i < n; i++) {
        bool data = e[i].type == AE_IFREG && e[i].data && e[i].data[0];
        char head[512];
        int hn = snprintf(head, sizeof(head), "%s%c%lld%c", e[i].name, 0, data ? (long long)strlen(e[i].data) : 0LL, 0);
        digest_update(&h, head, (size_t)hn);
        if (data)
            digest_update(&h, tampered ? "tampered" : e[i].data, tampered ? 8 : strlen(e[i].data));
        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, e[i].name);
        archive_entry_set_perm(ae, 0644);
        if (e[i].type == AE_IFLNK) {
            archive_entry_set_filetype(ae, AE_IFLNK);
            archive_entry_set_symlink(ae, e[i].data);
        } else if (e[i].type == 0) {
            archive_entry_set_filetype(ae, AE_IFREG);
            archive_entry_set_hardlink(ae, e[i].data);
        } else {
            archive_entry_set_filetype(ae, e[i].type);
            if (e[i].type == AE_IFCHR)
                archive_entry_set_rdev(ae, makedev(1, 3));
            archive_entry_set_size(ae, data ? (la_int64_t)strlen(e[i].data) : 0);
        }
        archive_write_header(a, ae);
        if (data)
            archive_write_data(a, e[i].data, strlen(e[i].data));
    }
    char sum[DIGEST_STR], seal[DIGEST_STR + 64];
    digest_final(&h, sum);
    snprintf(seal, sizeof(seal), "{\"entries\":%zu,\"digest\":\"%s\"}", n, sum);
    backup_forge_add(a, ae, "duet-backup.seal", seal);
    archive_entry_free(ae);
    int rc = archive_write_close(a) == ARCHIVE_OK ? 0 : -1;
    archive_write_free(a);
    return rc;
}

#endif
