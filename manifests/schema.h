/* schema.h - internal to manifests/: one YAML document to specs in a set. */
#ifndef DUET_SCHEMA_H
#define DUET_SCHEMA_H

#include "manifest.h"
#include "common/units.h"
#include "ytree.h"

/* Converts one document into part (specs, hosts, diagnostics).  Thread-safe
 * for distinct parts.  stored: the document is duetd's own specjson text
 * (manifest_set.loading_stored). */
void schema_convert_document(struct manifest_part *part, const char *file, const char *dir, bool stored,
                             const struct ydoc *doc);
const char *schema_suggest(const char *s, size_t len, const char *const *names);
char *schema_path_normalize(struct arena *a, const char *path);

#endif
